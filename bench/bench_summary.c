/* bench_summary: the in-process figures of ncc-summary (issue 7,
 * docs/performance.md "Summary"): masking and the extractive summary of a
 * 10-minute call transcript (goal: under 50 ms together), and the emotion
 * scores. The transcript is made up (invented people, a ward office's
 * conversation) at the speed people talk: about 300 characters a minute
 * for both speakers together, so 10 minutes is about 3,000 characters in
 * 150 segments; BENCH_MINUTES changes the length.
 *
 *   bench_summary [runs]                 timings, one line per figure (TSV)
 *   bench_summary --transcript CALL_ID   the transcript as the PBX's JSON
 *                                        body (bench/bench_summary.sh sends it) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../services/summary/emotion.h"
#include "../services/summary/mask.h"
#include "../services/summary/summarizer.h"

static const char *const s_caller[] = {
    "もしもし、山本一郎と申します。",
    "児童手当の申請をしたいんですが、どうすればいいですか。",
    "住所は中野区中野四丁目8番1号です。",
    "電話番号は090-2345-6789です。",
    "えっと、先月引っ越してきたばかりで、よくわからないんです。",
    "子どもは二人います。上の子は平成30年5月3日生まれです。",
    "マイナンバーカードは持っています。",
    "必要な書類は何ですか。",
    "平日は仕事なので、窓口に行くのが難しいんですけど。",
    "郵送でもできますか。",
    "口座は普通口座1234567です。",
    "わかりました、ありがとうございます。助かりました。",
};
static const char *const s_operator[] = {
    "お電話ありがとうございます。中野区役所です。",
    "児童手当のご申請ですね。ご本人確認のため、お名前と生年月日をお願いします。",
    "転入されたばかりでしたら、転入日から15日以内に申請が必要です。",
    "申請には、請求者の健康保険証の写しと、振込先の口座がわかるものが必要になります。",
    "マイナンバーカードがあれば、電子申請もご利用いただけます。",
    "郵送の場合は、申請書を区のホームページからダウンロードしてください。",
    "窓口は子ども家庭支援課で、平日の8時30分から17時までです。",
    "ほかにご不明な点はございますか。",
};

#define S_CHARS_PER_MINUTE 300

typedef struct {
    char *speaker;
    char *text;
} s_seg_t;

/* The transcript of a `minutes`-minute call; *ret_n segments. */
static s_seg_t *s_transcript(int minutes, size_t *ret_n, size_t *ret_chars)
{
    size_t cap = 4096, n = 0, chars = 0, target = (size_t)minutes * S_CHARS_PER_MINUTE;
    s_seg_t *segs = calloc(cap, sizeof *segs);
    size_t ci = 0, oi = 0;
    while (chars < target && n < cap) {
        bool caller = n % 2 == 1;
        const char *text = caller ? s_caller[ci++ % (sizeof s_caller / sizeof *s_caller)]
                                  : s_operator[oi++ % (sizeof s_operator / sizeof *s_operator)];
        segs[n].speaker = caller ? "caller" : "operator";
        segs[n].text = (char *)text;
        for (const unsigned char *p = (const unsigned char *)text; *p; p++)
            chars += (*p & 0xC0) != 0x80;
        n++;
    }
    *ret_n = n;
    *ret_chars = chars;
    return segs;
}

static double s_ms(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void s_json_string(const char *text)
{
    putchar('"');
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\')
            putchar('\\');
        putchar(*p);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    const char *env = getenv("BENCH_MINUTES");
    int minutes = env ? atoi(env) : 10;
    if (minutes < 1)
        minutes = 10;
    size_t n = 0, chars = 0;
    s_seg_t *segs = s_transcript(minutes, &n, &chars);
    if (argc == 3 && strcmp(argv[1], "--transcript") == 0) {
        printf("{\"segments\":[");
        for (size_t i = 0; i < n; i++) {
            int start = (int)(i * (size_t)minutes * 60000 / n);
            printf("%s{\"seq\":%zu,\"speaker\":\"%s\",\"start_ms\":%d,\"end_ms\":%d,\"text\":",
                   i ? "," : "", i, segs[i].speaker, start, start + 3000);
            s_json_string(segs[i].text);
            putchar('}');
        }
        printf("]}\n");
        free(segs);
        return 0;
    }
    int runs = argc > 1 ? atoi(argv[1]) : 50;
    if (runs < 1)
        runs = 50;
    mask_t *mask = mask_new();
    summarizer_config_t config = {.kind = "extractive", .max_chars = 200};
    summarizer_t *summarizer = summarizer_new(&config);
    if (!mask || !summarizer) {
        fprintf(stderr, "bench_summary: MeCab with the IPA dictionary is needed\n");
        return 1;
    }
    double *mask_ms = calloc((size_t)runs, sizeof *mask_ms);
    double *sum_ms = calloc((size_t)runs, sizeof *sum_ms);
    double *all_ms = calloc((size_t)runs, sizeof *all_ms);
    double *emo_ms = calloc((size_t)runs, sizeof *emo_ms);
    summary_segment_t *masked = calloc(n, sizeof *masked);
    size_t entities = 0;
    char *last = NULL;
    for (int r = 0; r < runs; r++) {
        struct timespec t0, t1, t2, t3;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        entities = 0;
        for (size_t i = 0; i < n; i++) {
            char *out = NULL;
            mask_entity_t *e = NULL;
            size_t k = 0;
            if (mask_text(mask, segs[i].text, strlen(segs[i].text), &out, &e, &k) < 0)
                return 1;
            free(e);
            entities += k;
            masked[i] = (summary_segment_t){segs[i].speaker, out};
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        char *summary = NULL;
        const char *used = NULL, *reason = NULL;
        summarizer_run(summarizer, masked, n, NULL, 0, false, &summary, &used, &reason);
        clock_gettime(CLOCK_MONOTONIC, &t2);
        emotion_t call = {0, 0, 0};
        for (size_t i = 0; i < n; i++) {
            emotion_t e = emotion_score(masked[i].text);
            emotion_fold(&call, &e, (int)i);
        }
        clock_gettime(CLOCK_MONOTONIC, &t3);
        mask_ms[r] = s_ms(&t0, &t1);
        sum_ms[r] = s_ms(&t1, &t2);
        all_ms[r] = s_ms(&t0, &t2);
        emo_ms[r] = s_ms(&t2, &t3);
        free(last);
        last = summary;
        for (size_t i = 0; i < n; i++)
            free((char *)masked[i].text);
    }
    qsort(mask_ms, (size_t)runs, sizeof *mask_ms, s_cmp);
    qsort(sum_ms, (size_t)runs, sizeof *sum_ms, s_cmp);
    qsort(all_ms, (size_t)runs, sizeof *all_ms, s_cmp);
    qsort(emo_ms, (size_t)runs, sizeof *emo_ms, s_cmp);
    int p95 = (runs * 95 + 99) / 100 - 1;
    printf("# %d-minute transcript: %zu segments, %zu characters, %zu entities masked; %d runs\n",
           minutes, n, chars, entities, runs);
    printf("# summary:\n# %s\n", last);
    for (char *p = last; p && *p; p++)
        if (*p == '\n')
            *p = ' ';
    printf("figure\tp50_ms\tp95_ms\n");
    printf("masking\t%.2f\t%.2f\n", mask_ms[runs / 2], mask_ms[p95]);
    printf("extractive summary\t%.2f\t%.2f\n", sum_ms[runs / 2], sum_ms[p95]);
    printf("masking + summary (goal < 50)\t%.2f\t%.2f\n", all_ms[runs / 2], all_ms[p95]);
    printf("emotion scores\t%.2f\t%.2f\n", emo_ms[runs / 2], emo_ms[p95]);
    free(last);
    free(masked);
    free(mask_ms);
    free(sum_ms);
    free(all_ms);
    free(emo_ms);
    free(segs);
    summarizer_destroy(&summarizer);
    mask_destroy(&mask);
    return 0;
}
