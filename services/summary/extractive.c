/* extractive: the built-in summarizer (summarizer.h). The conversation is cut
 * into sentences; MeCab gives each sentence's content nouns, weighted by how
 * often the call uses them. 用件 is the caller's best request sentence (cue
 * words such as たい, について, ですか, early sentences first), 回答 the
 * operator's best answer sentence (ください, できます, 必要です; sharing nouns
 * with the 用件), 結果 comes from rules (transferred to which 課, a call back,
 * an SMS, solved). Each part is cut to its share of the length. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>
#include <mecab.h>

#include "summarizer.h"

#define S_SENTENCES_MAX 2000

struct extractive {
    mecab_t *mecab; /* owned */
};

typedef struct {
    char *text;      /* owned, trimmed */
    bool caller;     /* spoken by the caller (or guessed so) */
    bool known;      /* the speaker was given */
    int index;       /* order in the call */
    zlistx_t *nouns; /* the content nouns (owned strings) */
} s_sentence_t;

extractive_t *extractive_new(void)
{
    extractive_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->mecab = mecab_new2("");
    if (!self->mecab) {
        free(self);
        return NULL;
    }
    return self;
}

void extractive_destroy(extractive_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mecab_destroy((*self_p)->mecab);
    free(*self_p);
    *self_p = NULL;
}

static const char *const s_fillers[] = {"えー", "えっと", "えーと",     "あのー",     "あの",
                                        "はい", "ええ",   "そうですね", "すみません", "もしもし",
                                        "、",   " ",      NULL};

/* The sentence without leading fillers and trailing blanks (a new string). */
static char *s_trim(const char *start, size_t len)
{
    bool again = true;
    while (again && len > 0) {
        again = false;
        for (size_t i = 0; s_fillers[i]; i++) {
            size_t n = strlen(s_fillers[i]);
            if (len >= n && memcmp(start, s_fillers[i], n) == 0) {
                start += n;
                len -= n;
                again = true;
            }
        }
    }
    while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\n'))
        len--;
    char *text = malloc(len + 1);
    if (text) {
        memcpy(text, start, len);
        text[len] = '\0';
    }
    return text;
}

static bool s_has(const char *text, const char *const *cues)
{
    for (size_t i = 0; cues[i]; i++)
        if (strstr(text, cues[i]))
            return true;
    return false;
}

static double s_cue_score(const char *text, const char *const *cues, double each)
{
    double score = 0;
    for (size_t i = 0; cues[i]; i++)
        if (strstr(text, cues[i]))
            score += each;
    return score;
}

static const char *const s_request_cues[] = {
    "たい",       "ほしい",     "欲しい",     "について", "教えて",   "方法",
    "どうすれば", "どうしたら", "でしょうか", "ですか",   "ますか",   "お願いしたい",
    "んですが",   "んですけど", "のですが",   "件で",     "のことで", "知りたい",
    "申請",       "手続き",     "届",         NULL};
static const char *const s_answer_cues[] = {
    "ください", "できます", "必要です", "必要になります", "になります", "お持ち",   "窓口",
    "ご案内",   "可能",     "受け付け", "発行",           "お送り",     "届きます", "かかります",
    "です",     NULL};
static const char *const s_small_talk[] = {
    "ありがとう",         "お待たせ", "少々",       "申します", "お電話", "失礼",
    "よろしいでしょうか", "お名前",   "確認させて", "本人確認", "[氏名]", NULL};

static void s_sentence_free(s_sentence_t *s)
{
    free(s->text);
    zlistx_destroy(&s->nouns);
}

/* The content nouns of a sentence, counted into `counts` (noun -> count). */
static void s_nouns(extractive_t *self, s_sentence_t *s, zhashx_t *counts)
{
    s->nouns = zlistx_new();
    zlistx_set_destructor(s->nouns, (zlistx_destructor_fn *)zstr_free);
    zlistx_set_duplicator(s->nouns, (zlistx_duplicator_fn *)strdup);
    const mecab_node_t *node = mecab_sparse_tonode(self->mecab, s->text);
    for (; node; node = node->next) {
        if (node->stat == MECAB_BOS_NODE || node->stat == MECAB_EOS_NODE || node->length == 0 ||
            node->length > 60)
            continue;
        const char *f = node->feature;
        if (strncmp(f, "名詞,", 7) != 0 || strncmp(f, "名詞,非自立", 16) == 0 ||
            strncmp(f, "名詞,代名詞", 16) == 0 || strncmp(f, "名詞,数", 10) == 0 ||
            strncmp(f, "名詞,接尾", 13) == 0)
            continue;
        char word[64];
        memcpy(word, node->surface, node->length);
        word[node->length] = '\0';
        if (strchr(word, '[') || strchr(word, ']'))
            continue;
        zlistx_add_end(s->nouns, word);
        size_t *count = zhashx_lookup(counts, word);
        if (count)
            (*count)++;
        else {
            size_t *one = malloc(sizeof *one);
            if (one) {
                *one = 1;
                zhashx_insert(counts, word, one);
            }
        }
    }
}

static double s_salience(const s_sentence_t *s, zhashx_t *counts)
{
    double score = 0;
    for (const char *w = zlistx_first(s->nouns); w; w = zlistx_next(s->nouns)) {
        size_t *count = zhashx_lookup(counts, w);
        score += count ? (*count > 1 ? 0.6 : 0.3) : 0;
    }
    return score > 3 ? 3 : score;
}

static double s_overlap(const s_sentence_t *a, const s_sentence_t *b)
{
    double n = 0;
    for (const char *w = zlistx_first(a->nouns); w; w = zlistx_next(a->nouns))
        for (const char *v = zlistx_first(b->nouns); v; v = zlistx_next(b->nouns))
            if (strcmp(w, v) == 0) {
                n += 1;
                break;
            }
    return n;
}

/* At most `chars` characters of text into out (UTF-8 safe; … when cut). */
static void s_append_cut(char *out, size_t outlen, const char *text, int chars)
{
    size_t w = strlen(out);
    int n = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p && n < chars) {
        size_t len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : 4;
        if (w + len + 4 >= outlen)
            break;
        memcpy(out + w, p, len);
        w += len;
        p += len;
        n++;
    }
    if (*p && w + 4 < outlen) {
        memcpy(out + w, "…", 3);
        w += 3;
    }
    out[w] = '\0';
}

/* 結果 by rules over the whole call, the last cue winning within its kind. */
static void s_result(const s_sentence_t *ss, size_t n, char *out, size_t len)
{
    static const char *const transfer[] = {"おつなぎ", "お繋ぎ",   "転送",     "お回し",
                                           "おまわし", "担当課に", "担当部署", NULL};
    static const char *const callback[] = {"折り返し",       "改めてご連絡",   "後ほどご連絡",
                                           "確認してご連絡", "確認して折り返", NULL};
    static const char *const sms[] = {"SMS", "ショートメッセージ", "ショートメール", NULL};
    static const char *const solved[] = {"わかりました",
                                         "分かりました",
                                         "ありがとうございました",
                                         "助かりました",
                                         "了解",
                                         "解決",
                                         NULL};
    const char *where = NULL;
    char dept[96] = "";
    bool is_transfer = false, is_callback = false, is_sms = false, is_solved = false;
    for (size_t i = 0; i < n; i++) {
        const char *t = ss[i].text;
        if (s_has(t, transfer)) {
            is_transfer = true;
            where = t;
        }
        is_callback = is_callback || s_has(t, callback);
        is_sms = is_sms || s_has(t, sms);
        is_solved = is_solved || (ss[i].caller && s_has(t, solved));
    }
    if (where) {
        /* the department: the characters before 課/係/センター in that sentence */
        static const char *const units[] = {"課", "係", "センター", "事務所", NULL};
        for (size_t u = 0; units[u] && !*dept; u++) {
            const char *hit = strstr(where, units[u]);
            if (!hit)
                continue;
            const char *start = hit;
            int chars = 0;
            while (start > where && chars < 8) {
                const char *prev = start - 1;
                while (prev > where && ((unsigned char)*prev & 0xC0) == 0x80)
                    prev--;
                unsigned char c = (unsigned char)*prev;
                /* kanji and katakana only (の, を, に end the name) */
                if (c < 0xE3 || (c == 0xE3 && (unsigned char)prev[1] < 0x82))
                    break;
                if (strncmp(prev, "の", 3) == 0 || strncmp(prev, "、", 3) == 0 ||
                    strncmp(prev, "。", 3) == 0)
                    break;
                start = prev;
                chars++;
            }
            snprintf(dept, sizeof dept, "%.*s%s", (int)(hit - start), start, units[u]);
        }
    }
    if (is_transfer)
        snprintf(out, len, "%sへ転送", *dept ? dept : "担当課");
    else if (is_callback)
        snprintf(out, len, "折り返し連絡予定");
    else if (is_sms)
        snprintf(out, len, "SMSで案内を送付");
    else if (is_solved)
        snprintf(out, len, "案内済み(解決)");
    else
        snprintf(out, len, "案内済み");
    if (is_sms && (is_transfer || is_callback))
        strncat(out, "、SMS送付", len - strlen(out) - 1);
}

char *extractive_summarize(extractive_t *self, const summary_segment_t *segments, size_t count,
                           int max_chars)
{
    s_sentence_t *ss = calloc(S_SENTENCES_MAX, sizeof *ss);
    zhashx_t *counts = zhashx_new();
    char *summary = NULL;
    size_t n = 0;
    if (!ss || !counts)
        goto out;
    zhashx_set_destructor(counts, (zhashx_destructor_fn *)zstr_free);
    for (size_t i = 0; i < count && n < S_SENTENCES_MAX; i++) {
        const char *p = segments[i].text ? segments[i].text : "";
        while (*p && n < S_SENTENCES_MAX) {
            size_t len = 0, stop = 0;
            while (p[len] && !stop) {
                if (strncmp(p + len, "。", 3) == 0 || strncmp(p + len, "？", 3) == 0 ||
                    strncmp(p + len, "！", 3) == 0)
                    stop = 3;
                else if (p[len] == '?' || p[len] == '!' || p[len] == '\n')
                    stop = 1;
                else
                    len++;
            }
            /* the sentence keeps its end mark (not a newline) */
            char *text = s_trim(p, len + (p[len] == '\n' ? 0 : stop));
            p += len + stop;
            if (!text || strlen(text) < 6) {
                free(text);
                continue;
            }
            s_sentence_t *s = &ss[n];
            s->text = text;
            s->index = (int)n;
            s->known = segments[i].speaker != NULL;
            s->caller = s->known ? strcmp(segments[i].speaker, "caller") == 0
                                 : s_has(text, s_request_cues) && !s_has(text, s_answer_cues);
            s_nouns(self, s, counts);
            n++;
        }
    }
    /* 用件 */
    int best_req = -1, best_ans = -1;
    double best = -1e9;
    for (size_t i = 0; i < n; i++) {
        const s_sentence_t *s = &ss[i];
        if (s->known && !s->caller)
            continue;
        double score = s_cue_score(s->text, s_request_cues, 1.0) + s_salience(s, counts) -
                       0.02 * s->index - (s_has(s->text, s_small_talk) ? 2 : 0);
        if (score > best) {
            best = score;
            best_req = (int)i;
        }
    }
    /* 回答 */
    best = -1e9;
    for (size_t i = 0; i < n; i++) {
        const s_sentence_t *s = &ss[i];
        if ((int)i == best_req || (s->known && s->caller))
            continue;
        double score = s_cue_score(s->text, s_answer_cues, 0.8) + s_salience(s, counts) +
                       (best_req >= 0 ? 0.7 * s_overlap(s, &ss[best_req]) : 0) -
                       (s_has(s->text, s_small_talk) ? 2.5 : 0) -
                       (strstr(s->text, "か。") || strstr(s->text, "か?") ? 1 : 0) +
                       (best_req >= 0 && (int)i > best_req ? 0.5 : 0);
        if (score > best) {
            best = score;
            best_ans = (int)i;
        }
    }
    char result[160];
    s_result(ss, n, result, sizeof result);
    int budget = max_chars > 60 ? max_chars : 60;
    int req_chars = (budget - 20) * 2 / 5, ans_chars = (budget - 20) - req_chars - 14;
    size_t outlen = (size_t)budget * 4 + 256;
    summary = malloc(outlen);
    if (!summary)
        goto out;
    summary[0] = '\0';
    strcat(summary, "用件: ");
    s_append_cut(summary, outlen, best_req >= 0 ? ss[best_req].text : "(聞き取れず)", req_chars);
    strcat(summary, "\n回答: ");
    s_append_cut(summary, outlen, best_ans >= 0 ? ss[best_ans].text : "(なし)", ans_chars);
    strcat(summary, "\n結果: ");
    s_append_cut(summary, outlen, result, 20);
out:
    for (size_t i = 0; ss && i < n; i++)
        s_sentence_free(&ss[i]);
    free(ss);
    zhashx_destroy(&counts);
    return summary;
}
