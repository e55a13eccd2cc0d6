/* draft: answer drafts for residents from published public FAQs (R49;
 * draft.h, docs/summary.md "Answer drafts").
 *
 * ncc.summary.DraftAnswer {question}: the question is masked; its masked
 * words (placeholders removed) are searched in ncc-faq (ncc.faq.ListFaqs
 * with visibility public and status published; what comes back is checked
 * again); the FAQs whose words cover the question are chosen. None: a
 * refusal (refused, reason, message), not an error. The `extractive` drafter
 * composes the answer from the chosen answers' sentences with （FAQ n）; the
 * `openai` one sends the masked question and the chosen FAQs to the Chat
 * Completions endpoint, told to answer from them only and cite their
 * numbers, and falls back to the extractive draft when it fails, cites no
 * number or a number it was not given, or repeats an entity's original. */
#include "draft.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mecab.h>
#include <utf8proc.h>

#include "faq.pb-c.h"
#include "ncc/log.h"
#include "ncc/roles.h"
#include "summary.h"
#include "summary.pb-c.h"

#define S_TERMS_MAX    64
#define S_TERM_BYTES   96
#define S_QUERY_BYTES  2700 /* about 900 characters: ncc-faq takes q up to 1,000 */
#define S_SEARCHED     5    /* FAQs asked of ncc-faq */
#define S_CHOSEN_MAX   2    /* FAQs a draft cites at most */
#define S_FIT_MIN      0.5  /* share of the question's words an FAQ must hold */
#define S_SENTENCE_MAX 64
#define S_REFUSAL      "回答できません"

struct draft {
    mecab_t *mecab; /* owned */
};

draft_t *draft_new(void)
{
    draft_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->mecab = mecab_new2("");
    if (!self->mecab) {
        free(self);
        return NULL;
    }
    return self;
}

void draft_destroy(draft_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mecab_destroy((*self_p)->mecab);
    free(*self_p);
    *self_p = NULL;
}

/* ---- the question's words -------------------------------------------------------------------- */

typedef struct {
    char text[S_TERM_BYTES];     /* a compound noun (住民 + 票 -> 住民票) */
    char parts[4][S_TERM_BYTES]; /* its parts of two characters or more */
    size_t n_parts;
} s_term_t;

/* Words that say nothing about which FAQ is meant. */
static const char *const s_stopwords[] = {
    "方法",       "手続き", "手続",   "こと", "もの", "場合", "件",   "必要", "質問",
    "問い合わせ", "問合せ", "お願い", "教え", "今日", "明日", "今",   "私",   "区役所",
    "中野区",     "ため",   "よう",   "時",   "所",   "何",   "どこ", "いつ", "それ",
    "これ",       "方",     "ところ", "感じ", "本日", "前",   "後",   "自分", NULL};

static bool s_stopword(const char *word)
{
    for (size_t i = 0; s_stopwords[i]; i++)
        if (strcmp(word, s_stopwords[i]) == 0)
            return true;
    return false;
}

static size_t s_chars(const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* NFKC (full and half width alike), or a copy; caller frees; NULL: no memory. */
static char *s_fold(const char *text)
{
    char *folded = (char *)utf8proc_NFKC((const utf8proc_uint8_t *)text);
    return folded ? folded : strdup(text);
}

/* The text with [placeholders] blanked (a new string). */
static char *s_without_placeholders(const char *text)
{
    char *copy = strdup(text);
    if (!copy)
        return NULL;
    for (char *p = strchr(copy, '['); p; p = strchr(p, '[')) {
        char *close = strchr(p, ']');
        if (!close || close - p > 24)
            break;
        memset(p, ' ', (size_t)(close - p + 1));
    }
    return copy;
}

static bool s_content_noun(const char *feature)
{
    return strncmp(feature, "名詞,", 7) == 0 && strncmp(feature, "名詞,非自立", 16) != 0 &&
           strncmp(feature, "名詞,代名詞", 16) != 0 && strncmp(feature, "名詞,数", 10) != 0;
}

/* The compound content nouns of a (folded) text, at most S_TERMS_MAX. */
static size_t s_terms(draft_t *self, const char *text, s_term_t *terms)
{
    size_t n = 0;
    s_term_t current = {0};
    size_t len = 0;
    const mecab_node_t *node = mecab_sparse_tonode(self->mecab, text);
    for (;; node = node->next) {
        bool noun = node && node->stat != MECAB_BOS_NODE && node->stat != MECAB_EOS_NODE &&
                    node->length > 0 && s_content_noun(node->feature) &&
                    !(len == 0 && strncmp(node->feature, "名詞,接尾", 13) == 0);
        if (noun && len + node->length < S_TERM_BYTES) {
            memcpy(current.text + len, node->surface, node->length);
            len += node->length;
            current.text[len] = '\0';
            if (current.n_parts < 4 && node->length >= 6 && node->length < S_TERM_BYTES) {
                memcpy(current.parts[current.n_parts], node->surface, node->length);
                current.parts[current.n_parts][node->length] = '\0';
                current.n_parts++;
            }
            continue;
        }
        if (len > 0) {
            bool single_kana = s_chars(current.text) == 1 &&
                               (unsigned char)current.text[0] == 0xE3 &&
                               (unsigned char)current.text[1] <= 0x83;
            bool duplicate = false;
            for (size_t i = 0; i < n; i++)
                duplicate = duplicate || strcmp(terms[i].text, current.text) == 0;
            if (!s_stopword(current.text) && !single_kana && !duplicate && n < S_TERMS_MAX &&
                !strchr(current.text, '[') && !strchr(current.text, ' '))
                terms[n++] = current;
            memset(&current, 0, sizeof current);
            len = 0;
        }
        if (!node || node->stat == MECAB_EOS_NODE)
            break;
    }
    return n;
}

/* ---- choosing the FAQs ------------------------------------------------------------------------
 */

/* How well an FAQ covers the terms: each term 1 when in its question or
 * keywords, 0.7 in its answer only, half that for a part of the term only. */
static double s_fit(const s_term_t *terms, size_t n, const char *head, const char *body,
                    bool *ret_in_head)
{
    double sum = 0;
    *ret_in_head = false;
    for (size_t i = 0; i < n; i++) {
        double best = 0;
        if (strstr(head, terms[i].text)) {
            best = 1;
            *ret_in_head = true;
        } else if (strstr(body, terms[i].text)) {
            best = 0.7;
        } else if (terms[i].n_parts > 1) {
            for (size_t k = 0; k < terms[i].n_parts; k++) {
                if (s_stopword(terms[i].parts[k]))
                    continue;
                if (strstr(head, terms[i].parts[k])) {
                    best = best > 0.5 ? best : 0.5;
                    *ret_in_head = true;
                } else if (strstr(body, terms[i].parts[k])) {
                    best = best > 0.35 ? best : 0.35;
                }
            }
        }
        sum += best;
    }
    return n ? sum / (double)n : 0;
}

size_t draft_choose(draft_t *self, const char *question, const draft_faq_t *faqs, size_t count,
                    size_t *ret_chosen, size_t max)
{
    s_term_t *terms = calloc(S_TERMS_MAX, sizeof *terms);
    char *plain = s_without_placeholders(question);
    char *folded = plain ? s_fold(plain) : NULL;
    size_t chosen = 0;
    if (!terms || !folded)
        goto out;
    size_t n = s_terms(self, folded, terms);
    if (n == 0)
        goto out;
    for (size_t i = 0; i < count && chosen < max; i++) {
        size_t head_len = strlen(faqs[i].question ? faqs[i].question : "") +
                          strlen(faqs[i].keywords ? faqs[i].keywords : "") + 2;
        char *head = malloc(head_len);
        if (!head)
            break;
        snprintf(head, head_len, "%s %s", faqs[i].question ? faqs[i].question : "",
                 faqs[i].keywords ? faqs[i].keywords : "");
        char *head_folded = s_fold(head);
        char *body_folded = s_fold(faqs[i].answer ? faqs[i].answer : "");
        free(head);
        bool in_head = false;
        double fit =
            head_folded && body_folded ? s_fit(terms, n, head_folded, body_folded, &in_head) : 0;
        free(head_folded);
        free(body_folded);
        if (in_head && fit >= S_FIT_MIN)
            ret_chosen[chosen++] = i;
    }
out:
    free(terms);
    free(plain);
    free(folded);
    return chosen;
}

/* ---- the extractive draft ---------------------------------------------------------------------
 */

typedef struct {
    const char *start;
    size_t len;
    bool ended; /* ends in 。！？ */
} s_sentence_t;

/* Cuts text into sentences at 。！？!? and line breaks (blank ones skipped). */
static size_t s_sentences(const char *text, s_sentence_t *out, size_t max)
{
    size_t n = 0;
    const char *start = text, *p = text;
    while (*p && n < max) {
        size_t step = 1;
        bool end = false, newline = false;
        if (strncmp(p, "。", 3) == 0 || strncmp(p, "！", 3) == 0 || strncmp(p, "？", 3) == 0) {
            step = 3;
            end = true;
        } else if (*p == '!' || *p == '?') {
            end = true;
        } else if (*p == '\n' || *p == '\r') {
            newline = true;
        }
        if (end || newline) {
            const char *stop = end ? p + step : p;
            while (start < stop && (*start == ' ' || *start == '\t'))
                start++;
            if (stop > start)
                out[n++] = (s_sentence_t){start, (size_t)(stop - start), end};
            start = p + step;
        }
        p += step;
    }
    while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
        start++;
    if (*start && n < max)
        out[n++] = (s_sentence_t){start, strlen(start), false};
    return n;
}

/* Appends at most `max_chars` characters of src[0..len) to buf. */
static size_t s_append(char *buf, size_t w, const char *src, size_t len, size_t max_chars)
{
    size_t chars = 0, i = 0;
    while (i < len) {
        if (((unsigned char)src[i] & 0xC0) != 0x80 && chars++ == max_chars)
            break;
        buf[w++] = src[i++];
    }
    buf[w] = '\0';
    return w;
}

char *draft_extractive(draft_t *self, const char *question, const draft_faq_t *faqs,
                       const size_t *chosen, size_t n_chosen, int max_chars)
{
    s_term_t *terms = calloc(S_TERMS_MAX, sizeof *terms);
    char *plain = s_without_placeholders(question);
    char *folded = plain ? s_fold(plain) : NULL;
    size_t total = 64;
    for (size_t c = 0; c < n_chosen; c++)
        total += strlen(faqs[chosen[c]].answer ? faqs[chosen[c]].answer : "") + 64;
    char *draft = malloc(total);
    if (!terms || !folded || !draft) {
        free(draft);
        draft = NULL;
        goto out;
    }
    size_t n_terms = s_terms(self, folded, terms);
    size_t w = 0;
    draft[0] = '\0';
    size_t budget = n_chosen ? (size_t)max_chars / n_chosen : 0;
    for (size_t c = 0; c < n_chosen; c++) {
        const draft_faq_t *faq = &faqs[chosen[c]];
        s_sentence_t sentences[S_SENTENCE_MAX];
        size_t n = s_sentences(faq->answer ? faq->answer : "", sentences, S_SENTENCE_MAX);
        size_t used = 0;
        if (c > 0)
            w = s_append(draft, w, "\n", 1, 1);
        for (size_t i = 0; i < n; i++) {
            bool relevant = i == 0;
            char sentence[1024];
            size_t len =
                sentences[i].len < sizeof sentence - 1 ? sentences[i].len : sizeof sentence - 1;
            memcpy(sentence, sentences[i].start, len);
            sentence[len] = '\0';
            char *sentence_folded = s_fold(sentence);
            for (size_t t = 0; !relevant && sentence_folded && t < n_terms; t++)
                relevant = strstr(sentence_folded, terms[t].text) != NULL;
            free(sentence_folded);
            if (!relevant)
                continue;
            size_t chars = s_chars(sentence) + (sentences[i].ended ? 0 : 1);
            if (used > 0 && used + chars > budget)
                break;
            if (used == 0 && chars > budget) {
                /* one long sentence: its beginning */
                w = s_append(draft, w, sentence, strlen(sentence), budget > 1 ? budget - 1 : 1);
                w = s_append(draft, w, "…", strlen("…"), 1);
                used = budget;
                break;
            }
            w = s_append(draft, w, sentence, strlen(sentence), chars);
            if (!sentences[i].ended)
                w = s_append(draft, w, "。", strlen("。"), 1);
            used += chars;
        }
        char citation[48];
        int len = snprintf(citation, sizeof citation, "（FAQ %" PRId64 "）", faq->number);
        w = s_append(draft, w, citation, (size_t)len, (size_t)len);
    }
out:
    free(terms);
    free(plain);
    free(folded);
    return draft;
}

/* ---- citations --------------------------------------------------------------------------------
 */

/* The value of one digit at p (ASCII or full width) and its length, or -1. */
static int s_digit(const char *p, size_t *ret_len)
{
    if (*p >= '0' && *p <= '9') {
        *ret_len = 1;
        return *p - '0';
    }
    const unsigned char *u = (const unsigned char *)p;
    if (u[0] == 0xEF && u[1] == 0xBC && u[2] >= 0x90 && u[2] <= 0x99) {
        *ret_len = 3;
        return u[2] - 0x90;
    }
    return -1;
}

/* Skips what may stand between "FAQ" and its number, or between numbers. */
static const char *s_skip(const char *p, const char *const *fillers)
{
    bool again = true;
    while (again) {
        again = false;
        for (size_t i = 0; fillers[i]; i++) {
            size_t n = strlen(fillers[i]);
            if (strncmp(p, fillers[i], n) == 0) {
                p += n;
                again = true;
            }
        }
    }
    return p;
}

size_t draft_citations(const char *text, int64_t *ret_numbers, size_t max)
{
    static const char *const lead[] = {" ", "　", "番号", "No.", "No", "no.",
                                       "#", "＃", ":",    "：",  "-",  NULL};
    static const char *const between[] = {" ",    "　",  "、",     ",", "，", "・", "と",
                                          "及び", "FAQ", "ＦＡＱ", "#", "＃", NULL};
    size_t found = 0;
    for (const char *p = text; *p;) {
        size_t tag = strncmp(p, "FAQ", 3) == 0 || strncmp(p, "faq", 3) == 0 ? 3
                     : strncmp(p, "ＦＡＱ", 9) == 0                         ? 9
                                                                            : 0;
        if (!tag) {
            p++;
            continue;
        }
        p = s_skip(p + tag, lead);
        for (;;) {
            size_t len = 0;
            int64_t number = 0;
            int digits = 0, d;
            while ((d = s_digit(p, &len)) >= 0 && digits < 15) {
                number = number * 10 + d;
                digits++;
                p += len;
            }
            if (digits == 0)
                break;
            if (found < max)
                ret_numbers[found] = number;
            found++;
            const char *next = s_skip(p, between);
            if (s_digit(next, &len) < 0)
                break;
            p = next;
        }
    }
    return found;
}

/* ---- the request ------------------------------------------------------------------------------
 */

static const char s_system_prompt[] =
    "あなたは区役所の職員として、住民からの質問に答える回答案を書きます。"
    "下に示すFAQだけを根拠にして、FAQに書かれていないことは書かないでください。"
    "根拠にしたFAQの番号を、その内容を書いた文の後に「（FAQ 番号）」の形で必ず示してください。"
    "示したFAQのどれもこの質問に答えていないときは「" S_REFUSAL "」とだけ出力してください。"
    "[氏名]や[電話番号]のような角括弧の置き換え文字はそのまま残し、元の個人情報を推測して"
    "書かないでください。丁寧語で、400文字以内で、回答案だけを出力してください。";

static bool s_blank(const char *text)
{
    for (const char *p = text; *p; p++) {
        if (strncmp(p, "　", 3) == 0)
            p += 2;
        else if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
            return false;
    }
    return true;
}

/* The original texts of the entities (code point spans of text), a NULL-
 * terminated array (caller frees each and the array), or NULL. */
static char **s_originals(const char *text, const mask_entity_t *entities, size_t n)
{
    char **originals = calloc(n + 1, sizeof *originals);
    if (!originals)
        return NULL;
    size_t len = strlen(text);
    for (size_t e = 0; e < n; e++) {
        size_t cp = 0, start = len, end = len;
        for (size_t byte = 0; byte <= len; byte++) {
            if (byte < len && ((unsigned char)text[byte] & 0xC0) == 0x80)
                continue;
            if (cp == entities[e].start)
                start = byte;
            if (cp == entities[e].end)
                end = byte;
            cp++;
        }
        originals[e] = strndup(text + start, end > start ? end - start : 0);
    }
    return originals;
}

static void s_originals_free(char **originals)
{
    for (size_t i = 0; originals && originals[i]; i++)
        free(originals[i]);
    free(originals);
}

/* The published public FAQs ncc-faq finds for q (ret_list freed by the
 * caller with protobuf_c_message_free_unpacked), or -errno. */
static int s_search(summary_t *self, const char *q, Ncc__Faq__FaqList **ret_list)
{
    ncc_rpc_client_t *client = ncc_service_client(self->service, "faq");
    if (!client)
        return -ENOTCONN;
    Ncc__Faq__ListFaqs ask = NCC__FAQ__LIST_FAQS__INIT;
    ask.q = (char *)q;
    ask.visibility = "public";
    ask.status = "published";
    ask.has_per_page = ask.has_log = true;
    ask.per_page = S_SEARCHED;
    ask.log = false;
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    int rc = ncc_rpc_call_typed(client, &ctx, &ask.base, &ncc__faq__faq_list__descriptor,
                                self->settings->faq_timeout_ms * 4, &answer, &error);
    if (rc < 0) {
        ncc_warn("summary.draft_faq_failed", "ListFaqs for a draft: %s%s%s", strerror(-rc),
                 error && error->code ? ": " : "", error && error->code ? error->code : "");
        if (error)
            ncc__error__free_unpacked(error, NULL);
        return rc;
    }
    *ret_list = (Ncc__Faq__FaqList *)answer;
    return 0;
}

/* The user message for the LLM: the masked question and the chosen FAQs. */
static char *s_prompt(const char *masked_question, const draft_faq_t *faqs, const size_t *chosen,
                      size_t n_chosen)
{
    size_t len = strlen(masked_question) + 64;
    for (size_t c = 0; c < n_chosen; c++)
        len += strlen(faqs[chosen[c]].question) + strlen(faqs[chosen[c]].answer) + 64;
    char *text = malloc(len);
    if (!text)
        return NULL;
    size_t w = (size_t)snprintf(text, len, "質問: %s\n\n", masked_question);
    for (size_t c = 0; c < n_chosen; c++)
        w += (size_t)snprintf(text + w, len - w, "FAQ %" PRId64 "\n質問: %s\n回答: %s\n\n",
                              faqs[chosen[c]].number, faqs[chosen[c]].question,
                              faqs[chosen[c]].answer);
    return text;
}

/* Checks the LLM's draft: it cites at least one FAQ, only FAQs it was given,
 * and holds no entity's original. NULL when it may be used, else why. */
static const char *s_check(const char *draft, const draft_faq_t *faqs, const size_t *chosen,
                           size_t n_chosen, char *const *originals)
{
    int64_t cited[32];
    size_t n = draft_citations(draft, cited, 32);
    if (n == 0)
        return "no_citation";
    if (n > 32)
        return "bad_citation";
    for (size_t i = 0; i < n; i++) {
        bool given = false;
        for (size_t c = 0; c < n_chosen; c++)
            given = given || faqs[chosen[c]].number == cited[i];
        if (!given)
            return "bad_citation";
    }
    for (size_t i = 0; originals && originals[i]; i++)
        if (strlen(originals[i]) >= 2 && strstr(draft, originals[i]))
            return "leaked_entity";
    if (s_chars(draft) > 2000)
        return "too_long";
    return NULL;
}

static void s_on_draft(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    summary_t *self = arg;
    const Ncc__Summary__DraftAnswer *m = (const Ncc__Summary__DraftAnswer *)request->message;
    if (!m->question || s_blank(m->question)) {
        ncc_reply_error(reply, 422, "invalid_field", "question", "question is required");
        return;
    }
    size_t chars = s_chars(m->question);
    if (chars > (size_t)self->settings->text_max_chars) {
        ncc_reply_error(reply, 413, "too_large", "question",
                        "question is at most %d characters (%zu sent)",
                        self->settings->text_max_chars, chars);
        return;
    }
    char *masked = NULL, *query = NULL, *draft = NULL, *prompt = NULL, **originals = NULL;
    mask_entity_t *entities = NULL;
    size_t n_entities = 0;
    Ncc__Faq__FaqList *list = NULL;
    draft_faq_t *faqs = NULL;
    int rc =
        mask_text(self->mask, m->question, strlen(m->question), &masked, &entities, &n_entities);
    if (rc == -EILSEQ) {
        ncc_reply_error(reply, 422, "invalid_field", "question", "question is not valid UTF-8");
        return;
    }
    if (rc < 0 || !(originals = s_originals(m->question, entities, n_entities)) ||
        !(query = s_without_placeholders(masked)))
        goto nomem;
    /* the search gets the masked words only, cut to what ncc-faq takes */
    if (strlen(query) > S_QUERY_BYTES) {
        size_t cut = S_QUERY_BYTES;
        while (cut > 0 && ((unsigned char)query[cut] & 0xC0) == 0x80)
            cut--;
        query[cut] = '\0';
    }
    size_t n_faqs = 0, chosen[S_CHOSEN_MAX], n_chosen = 0;
    if (!s_blank(query)) {
        rc = s_search(self, query, &list);
        if (rc < 0) {
            ncc_reply_error(reply, 503, "service_unavailable", NULL,
                            "the FAQ service did not answer; try again");
            goto out;
        }
        faqs = calloc(list->n_items + 1, sizeof *faqs);
        if (!faqs)
            goto nomem;
        for (size_t i = 0; i < list->n_items; i++) {
            const Ncc__Faq__Faq *f = list->items[i];
            /* published public FAQs only, whatever the search answered */
            if (!f->visibility || strcmp(f->visibility, "public") != 0 || !f->status ||
                strcmp(f->status, "published") != 0 || !f->question || !f->answer || !f->has_number)
                continue;
            faqs[n_faqs++] =
                (draft_faq_t){f->number, f->question, f->answer, f->keywords ? f->keywords : ""};
        }
        n_chosen = draft_choose(self->draft, masked, faqs, n_faqs, chosen, S_CHOSEN_MAX);
    }
    Ncc__Summary__AnswerDraft result = NCC__SUMMARY__ANSWER_DRAFT__INIT;
    result.masked_question = masked;
    result.has_refused = result.has_fallback = true;
    const char *used = "extractive";
    const char *reason = NULL; /* why the configured drafter was not used */
    bool model_refused = false;
    if (n_chosen > 0 && strcmp(summarizer_config(self->summarizer)->kind, "openai") == 0) {
        prompt = s_prompt(masked, faqs, chosen, n_chosen);
        if (!prompt)
            goto nomem;
        char *answer =
            openai_chat(summarizer_config(self->summarizer), s_system_prompt, prompt, &reason);
        if (answer && strstr(answer, S_REFUSAL) && draft_citations(answer, NULL, 0) == 0) {
            model_refused = true;
            used = "openai";
        } else if (answer && !(reason = s_check(answer, faqs, chosen, n_chosen, originals))) {
            draft = answer;
            answer = NULL;
            used = "openai";
        }
        free(answer);
        if (reason) {
            result.fallback = true;
            ncc_warn("summary.fallback",
                     "the openai drafter failed (%s): the extractive one "
                     "answered",
                     reason);
        }
    }
    if (n_chosen > 0 && !draft && !model_refused) {
        draft = draft_extractive(self->draft, masked, faqs, chosen, n_chosen,
                                 self->settings->max_chars * 2);
        if (!draft)
            goto nomem;
    }
    result.summarizer = (char *)used;
    Ncc__Summary__FaqSuggestion items[S_CHOSEN_MAX], *ptrs[S_CHOSEN_MAX];
    int64_t numbers[S_CHOSEN_MAX];
    if (draft) {
        /* the FAQs the draft cites (the extractive one cites all it was given) */
        int64_t cited[32];
        size_t n_cited = draft_citations(draft, cited, 32);
        for (size_t c = 0; c < n_chosen; c++) {
            bool is_cited = false;
            for (size_t i = 0; i < n_cited && i < 32; i++)
                is_cited = is_cited || cited[i] == faqs[chosen[c]].number;
            if (!is_cited)
                continue;
            const Ncc__Faq__Faq *f = NULL;
            for (size_t i = 0; i < list->n_items; i++)
                if (list->items[i]->number == faqs[chosen[c]].number)
                    f = list->items[i];
            size_t k = result.n_faq_numbers;
            numbers[k] = faqs[chosen[c]].number;
            ncc__summary__faq_suggestion__init(&items[k]);
            items[k].has_id = items[k].has_number = true;
            items[k].id = f ? f->id : 0;
            items[k].number = numbers[k];
            items[k].question = (char *)faqs[chosen[c]].question;
            ptrs[k] = &items[k];
            result.n_faq_numbers = result.n_faqs = k + 1;
        }
        result.faq_numbers = numbers;
        result.faqs = ptrs;
        result.draft = draft;
    } else {
        result.draft = "";
        result.refused = true;
        result.reason = model_refused ? "model_refused" : "no_matching_faq";
        result.message = "公開されているFAQの中に、この質問に答えるものが見つかりませんでした。"
                         "回答案は作りません。担当課に確認してください。";
    }
    ncc_info("summary.draft", "answer draft: %s, %zu FAQ(s) cited, by %s%s",
             result.refused ? "refused" : "made", result.n_faq_numbers, used,
             result.fallback ? " (fallback)" : "");
    ncc_reply_message(reply, &result.base);
    goto out;
nomem:
    ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
out:
    if (list)
        protobuf_c_message_free_unpacked(&list->base, NULL);
    s_originals_free(originals);
    free(faqs);
    free(prompt);
    free(draft);
    free(query);
    free(masked);
    free(entities);
}

int summary_draft_register(summary_t *self)
{
    self->draft = draft_new();
    if (!self->draft)
        return -ENOMEM;
    return ncc_service_on(self->service, &ncc__summary__draft_answer__descriptor, NCC_ROLES_ALL,
                          s_on_draft, self);
}
