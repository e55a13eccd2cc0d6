/* emotion: lexicon and rules (emotion.h). The lexicon file is built into
 * the binary with the assembler's .incbin (module.mk makes this object depend
 * on it) and parsed once. */
#include "emotion.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

__asm__(".section .rodata\n"
        ".global summary_emotion_lexicon\n"
        "summary_emotion_lexicon:\n"
        ".incbin \"services/summary/emotion_lexicon.tsv\"\n"
        ".byte 0\n"
        ".previous\n");
extern const char summary_emotion_lexicon[];

enum { S_ANGER, S_CONFUSION, S_SATISFACTION, S_INTENSIFIER };

typedef struct {
    char *text; /* NFKC */
    int kind;
    double weight;
} s_entry_t;

static s_entry_t *s_entries;
static int s_count;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_load(void)
{
    const char *p = summary_emotion_lexicon;
    int cap = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[256];
        if (len < sizeof line && *p != '#') {
            memcpy(line, p, len);
            line[len] = '\0';
            char *tab1 = strchr(line, '\t');
            char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
            if (tab2) {
                *tab1 = *tab2 = '\0';
                static const char *const kinds[] = {"anger", "confusion", "satisfaction",
                                                    "intensifier"};
                int kind = -1;
                for (int k = 0; k < 4; k++)
                    if (strcmp(tab1 + 1, kinds[k]) == 0)
                        kind = k;
                char *text = (char *)utf8proc_NFKC((const utf8proc_uint8_t *)line);
                if (kind >= 0 && text && *text) {
                    if (s_count == cap) {
                        cap = cap ? cap * 2 : 64;
                        s_entry_t *grown = realloc(s_entries, (size_t)cap * sizeof *grown);
                        if (!grown) {
                            free(text);
                            return;
                        }
                        s_entries = grown;
                    }
                    s_entries[s_count++] = (s_entry_t){text, kind, strtod(tab2 + 1, NULL)};
                } else {
                    free(text);
                }
            }
        }
        p += len + (eol ? 1 : 0);
    }
}

int emotion_lexicon_size(void)
{
    pthread_once(&s_once, s_load);
    return s_count;
}

emotion_t emotion_score(const char *text)
{
    emotion_t e = {0, 0, 0};
    pthread_once(&s_once, s_load);
    char *norm = text ? (char *)utf8proc_NFKC((const utf8proc_uint8_t *)text) : NULL;
    if (!norm)
        return e;
    double sum[4] = {0, 0, 0, 0};
    for (int i = 0; i < s_count; i++) {
        size_t len = strlen(s_entries[i].text);
        for (const char *p = strstr(norm, s_entries[i].text); p;
             p = strstr(p + len, s_entries[i].text))
            sum[s_entries[i].kind] += s_entries[i].weight;
    }
    int questions = 0;
    for (const char *p = norm; *p; p++)
        questions += *p == '?';
    if (questions > 1)
        sum[S_CONFUSION] += 0.3 * (questions - 1);
    if (sum[S_ANGER] > 0)
        sum[S_ANGER] *= 1 + sum[S_INTENSIFIER];
    else if (sum[S_CONFUSION] > 0)
        sum[S_CONFUSION] *= 1 + sum[S_INTENSIFIER] / 2;
    free(norm);
    e.anger = 1 - exp(-sum[S_ANGER]);
    e.confusion = 1 - exp(-sum[S_CONFUSION]);
    e.satisfaction = 1 - exp(-sum[S_SATISFACTION]);
    return e;
}

void emotion_fold(emotion_t *call, const emotion_t *segment, int count)
{
    double alpha = count == 0 ? 1.0 : 0.4;
    call->anger += alpha * (segment->anger - call->anger);
    call->confusion += alpha * (segment->confusion - call->confusion);
    call->satisfaction += alpha * (segment->satisfaction - call->satisfaction);
}

const char *emotion_label(const emotion_t *e)
{
    double best = e->anger;
    const char *label = "anger";
    if (e->confusion > best) {
        best = e->confusion;
        label = "confusion";
    }
    if (e->satisfaction > best) {
        best = e->satisfaction;
        label = "satisfaction";
    }
    return best >= 0.2 ? label : "neutral";
}
