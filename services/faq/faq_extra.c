/* faq_extra: synonym groups (R43), suggestions from conversation text
 * (R36), the zero-hit report, and the residents' requests (R50): the public
 * list and page, votes (one per browser and FAQ, rate limited per address)
 * and view counts. docs/faq.md. */
#include "faq.h"
#include "faq_report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ncc/roles.h"

#define S_EDITORS         (NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN)
#define S_MAX_GROUPS      1000
#define S_MAX_GROUP_WORDS 20
#define S_MAX_WORD        50

/* ---- synonyms ------------------------------------------------------------------------------- */

static void s_reply_synonyms(faq_t *self, ncc_reply_t *reply)
{
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT g.id, w.word, " FAQ_RFC3339("g.updated_at") ", g.updated_by FROM synonym_groups "
                                                            "g, unnest(g.words) WITH ORDINALITY "
                                                            "AS w(word, n) ORDER BY g.id, w.n",
        0, NULL, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "read synonyms");
        return;
    }
    int rows = PQntuples(res);
    Ncc__Faq__Synonyms out = NCC__FAQ__SYNONYMS__INIT;
    Ncc__Faq__SynonymGroup *groups = calloc((size_t)rows + 1, sizeof *groups);
    Ncc__Faq__SynonymGroup **gptrs = calloc((size_t)rows + 1, sizeof *gptrs);
    char **words = calloc((size_t)rows + 1, sizeof *words);
    if (!groups || !gptrs || !words) {
        free(groups);
        free(gptrs);
        free(words);
        PQclear(res);
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    size_t n = 0;
    const char *last = NULL;
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(res, i, 0);
        if (!last || strcmp(last, id) != 0) {
            ncc__faq__synonym_group__init(&groups[n]);
            groups[n].words = &words[i];
            gptrs[n] = &groups[n];
            n++;
            last = id;
            out.updated_at = PQgetvalue(res, i, 2);
            out.updated_by = PQgetvalue(res, i, 3);
        }
        words[i] = PQgetvalue(res, i, 1);
        groups[n - 1].n_words++;
    }
    out.groups = gptrs;
    out.n_groups = n;
    ncc_reply_message(reply, &out.base);
    free(groups);
    free(gptrs);
    free(words);
    PQclear(res);
}

static void s_on_get_synonyms(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    s_reply_synonyms(arg, reply);
}

/* Appends an element to a PostgreSQL array literal being built in buf. */
static bool s_array_word(char *buf, size_t cap, size_t *len, const char *word)
{
    size_t need = strlen(word) * 2 + 4;
    if (*len + need >= cap)
        return false;
    if (buf[*len - 1] != '{')
        buf[(*len)++] = ',';
    buf[(*len)++] = '"';
    for (const char *p = word; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf[(*len)++] = '\\';
        buf[(*len)++] = *p;
    }
    buf[(*len)++] = '"';
    buf[*len] = '\0';
    return true;
}

static void s_on_put_synonyms(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__PutSynonyms *m = (const Ncc__Faq__PutSynonyms *)request->message;
    if (m->n_groups > S_MAX_GROUPS) {
        ncc_reply_error(reply, 422, "invalid_field", "groups", "at most %d groups", S_MAX_GROUPS);
        return;
    }
    for (size_t g = 0; g < m->n_groups; g++) {
        const Ncc__Faq__SynonymGroup *group = m->groups[g];
        char field[48];
        snprintf(field, sizeof field, "groups[%zu].words", g);
        if (group->n_words < 2 || group->n_words > S_MAX_GROUP_WORDS) {
            ncc_reply_error(reply, 422, "invalid_field", field, "a group holds 2 to %d words",
                            S_MAX_GROUP_WORDS);
            return;
        }
        for (size_t w = 0; w < group->n_words; w++) {
            char *norm = faq_normalize(group->words[w]);
            bool empty = !norm || !*norm;
            free(norm);
            const char *why = faq_text_problem(group->words[w], S_MAX_WORD, false);
            if (empty || why) {
                snprintf(field, sizeof field, "groups[%u].words[%u]", (unsigned)(g % 10000),
                         (unsigned)(w % 100));
                ncc_reply_error(reply, 422, "invalid_field", field,
                                "a word is 1 to %d characters without control characters",
                                S_MAX_WORD);
                return;
            }
        }
    }
    char login[80];
    faq_actor_login(self, request, login, sizeof login);
    if (ncc_db_begin(self->db) < 0 ||
        ncc_db_run(self->db, "DELETE FROM synonym_groups", 0, NULL) < 0) {
        faq_reply_db_error(self, reply, "write synonyms");
        return;
    }
    for (size_t g = 0; g < m->n_groups; g++) {
        char buf[S_MAX_GROUP_WORDS * (S_MAX_WORD * 4 * 2 + 4) + 8];
        size_t len = 1;
        buf[0] = '{';
        buf[1] = '\0';
        for (size_t w = 0; w < m->groups[g]->n_words; w++)
            s_array_word(buf, sizeof buf, &len, m->groups[g]->words[w]);
        buf[len++] = '}';
        buf[len] = '\0';
        const char *params[] = {buf, login};
        if (ncc_db_run(self->db,
                       "INSERT INTO synonym_groups (words, updated_by) VALUES ($1::text[], $2)", 2,
                       params) < 0) {
            faq_reply_db_error(self, reply, "write synonyms");
            return;
        }
    }
    if (faq_touch_index(self) < 0) {
        faq_reply_db_error(self, reply, "write synonyms");
        return;
    }
    if (ncc_db_commit(self->db) < 0) {
        faq_reply_db_error(self, reply, "commit");
        return;
    }
    int rc = faq_index_rebuild(self);
    if (rc < 0)
        ncc_error("faq.index_failed", "the search index could not be rebuilt: %s", strerror(-rc));
    s_reply_synonyms(self, reply);
}

/* ---- suggestions ------------------------------------------------------------------------------
 */

static void s_on_suggest(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__SuggestFaqs *m = (const Ncc__Faq__SuggestFaqs *)request->message;
    char *norm = m->text ? faq_normalize(m->text) : NULL;
    bool empty = !norm || !*norm;
    free(norm);
    if (empty) {
        ncc_reply_error(reply, 422, "invalid_field", "text",
                        "text is required (the conversation so far)");
        return;
    }
    const char *why = faq_text_problem(m->text, FAQ_TEXT_MAX, true);
    if (why) {
        ncc_reply_error(reply, 422, "invalid_field", "text", "text %s (at most %d characters)", why,
                        FAQ_TEXT_MAX);
        return;
    }
    int64_t limit = m->has_limit && m->limit > 0 ? m->limit : 3;
    if (limit > 10)
        limit = 10;
    faq_query_t query = {.q = m->text, .published_only = true, .top = (size_t)limit};
    faq_hit_t *hits = NULL;
    size_t count = 0;
    int rc = faq_search(self, &query, &hits, &count);
    if (rc < 0) {
        ncc_reply_error(reply, 500, "internal", NULL, "the search failed");
        return;
    }
    faq_reply_hits(self, reply, hits, count < (size_t)limit ? count : (size_t)limit, 0, limit,
                   false);
    free(hits);
}

/* ---- zero hits ----------------------------------------------------------------------------------
 */

static void s_on_zero_hits(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__ListZeroHits *m = (const Ncc__Faq__ListZeroHits *)request->message;
    int64_t offset, limit;
    faq_paging(m->has_page, m->page, m->has_per_page, m->per_page, &offset, &limit);
    char off[24], lim[24];
    snprintf(off, sizeof off, "%" PRId64, offset);
    snprintf(lim, sizeof lim, "%" PRId64, limit);
    const char *params[] = {m->from && *m->from ? m->from : NULL, m->to && *m->to ? m->to : NULL,
                            off, lim};
    char state[6];
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT q, count(*), " FAQ_RFC3339("max(at)") ", count(*) FILTER (WHERE public), count(*) "
                                                      "OVER () FROM zero_hits WHERE ($1::text IS "
                                                      "NULL OR at >= $1::timestamptz) AND "
                                                      "($2::text IS NULL OR at < "
                                                      "$2::timestamptz) GROUP BY q ORDER BY "
                                                      "count(*) DESC, max(at) DESC OFFSET "
                                                      "$3::bigint LIMIT $4::bigint",
        4, params, state);
    if (!res) {
        if (strncmp(state, "22", 2) == 0) {
            ncc_reply_error(reply, 422, "invalid_field", m->from ? "from" : "to",
                            "from and to are dates (2027-04-01) or RFC 3339 times");
            return;
        }
        faq_reply_db_error(self, reply, "zero hits");
        return;
    }
    int rows = PQntuples(res);
    Ncc__Faq__ZeroHitList list = NCC__FAQ__ZERO_HIT_LIST__INIT;
    Ncc__Faq__ZeroHit *items = calloc((size_t)rows + 1, sizeof *items);
    Ncc__Faq__ZeroHit **ptrs = calloc((size_t)rows + 1, sizeof *ptrs);
    if (!items || !ptrs) {
        free(items);
        free(ptrs);
        PQclear(res);
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    for (int i = 0; i < rows; i++) {
        Ncc__Faq__ZeroHit *z = &items[i];
        ncc__faq__zero_hit__init(z);
        z->q = PQgetvalue(res, i, 0);
        z->has_count = z->has_public_count = true;
        z->count = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        z->last_at = PQgetvalue(res, i, 2);
        z->public_count = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        ptrs[i] = z;
    }
    list.items = ptrs;
    list.n_items = (size_t)rows;
    list.has_total = true;
    list.total = rows ? strtoll(PQgetvalue(res, 0, 4), NULL, 10) : 0;
    ncc_reply_message(reply, &list.base);
    free(items);
    free(ptrs);
    PQclear(res);
}

/* ---- residents --------------------------------------------------------------------------------
 */

static void s_on_public_list(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__PublicListFaqs *m = (const Ncc__Faq__PublicListFaqs *)request->message;
    const char *q = m->q ? m->q : "";
    const char *why = faq_text_problem(q, FAQ_QUERY_MAX, false);
    if (why) {
        ncc_reply_error(reply, 422, "invalid_field", "q", "q %s (at most %d characters)", why,
                        FAQ_QUERY_MAX);
        return;
    }
    int64_t offset, limit;
    faq_paging(m->has_page, m->page, m->has_per_page, m->per_page, &offset, &limit);
    if (limit > 100)
        limit = 100;
    char *norm = faq_normalize(q);
    bool has_q = norm && *norm;
    free(norm);
    if (has_q) {
        faq_query_t query = {.q = q, .public_only = true, .top = (size_t)(offset + limit)};
        faq_hit_t *hits = NULL;
        size_t count = 0;
        if (faq_search(self, &query, &hits, &count) < 0) {
            ncc_reply_error(reply, 500, "internal", NULL, "the search failed");
            return;
        }
        if (count == 0)
            faq_log_zero_hit(self, q, true);
        faq_report_searched(self, q, hits, count, true); /* ncc-report (docs/kpi.md) */
        faq_reply_hits(self, reply, hits, count, offset, limit, true);
        free(hits);
        return;
    }
    /* no words: every public FAQ by number */
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT id FROM faqs WHERE status = 'published' AND visibility = "
                                "'public' ORDER BY number",
                                0, NULL, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "public list");
        return;
    }
    int rows = PQntuples(res);
    faq_hit_t *hits = calloc((size_t)rows + 1, sizeof *hits);
    if (!hits) {
        PQclear(res);
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    for (int i = 0; i < rows; i++)
        hits[i].id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    PQclear(res);
    faq_reply_hits(self, reply, hits, (size_t)rows, offset, limit, true);
    free(hits);
}

/* ---- view counts ----
 * A public page view is counted in memory and stored once a second for all FAQs in one
 * statement: an UPDATE per view was a disk flush per page (the public pages served a few
 * hundred a second). A crash loses at most a second of views; the page shows the stored
 * count plus those not yet stored. */

static int64_t s_views_pending(faq_t *self, const char *number)
{
    const int64_t *n = self->views ? zhashx_lookup(self->views, number) : NULL;
    return n ? *n : 0;
}

static void s_view_count(faq_t *self, const char *number)
{
    if (!self->views)
        return;
    int64_t *n = zhashx_lookup(self->views, number);
    if (n) {
        (*n)++;
        return;
    }
    if (zhashx_size(self->views) >= 100000)
        return; /* every FAQ counted already: cannot happen with real numbers */
    n = malloc(sizeof *n);
    if (!n)
        return;
    *n = 1;
    if (zhashx_insert(self->views, number, n) != 0)
        free(n);
}

static void s_views_flush(void *arg)
{
    faq_t *self = arg;
    if (!self->views || zhashx_size(self->views) == 0)
        return;
    size_t cap = zhashx_size(self->views) * 44 + 8, used_n = 1, used_c = 1;
    char *numbers = malloc(cap), *counts = malloc(cap);
    if (!numbers || !counts) {
        free(numbers);
        free(counts);
        return;
    }
    numbers[0] = counts[0] = '{';
    for (int64_t *n = zhashx_first(self->views); n; n = zhashx_next(self->views)) {
        const char *key = zhashx_cursor(self->views);
        used_n +=
            (size_t)snprintf(numbers + used_n, cap - used_n, "%s%s", used_n > 1 ? "," : "", key);
        used_c += (size_t)snprintf(counts + used_c, cap - used_c, "%s%" PRId64,
                                   used_c > 1 ? "," : "", *n);
    }
    snprintf(numbers + used_n, cap - used_n, "}");
    snprintf(counts + used_c, cap - used_c, "}");
    const char *params[] = {numbers, counts};
    if (ncc_db_run(self->db,
                   "UPDATE faqs f SET views = f.views + v.c FROM unnest($1::bigint[], "
                   "$2::bigint[]) AS v(n, c) WHERE f.number = v.n",
                   2, params) < 0)
        ncc_warn("faq.views_not_stored", "%s (kept; tried again in a second)",
                 ncc_db_error(self->db));
    else
        zhashx_purge(self->views);
    free(numbers);
    free(counts);
}

void faq_views_stop(faq_t *self)
{
    if (!self || !self->views)
        return;
    s_views_flush(self);
    zhashx_destroy(&self->views);
}

static void s_on_public_get(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__PublicGetFaq *m = (const Ncc__Faq__PublicGetFaq *)request->message;
    if (!m->has_number || m->number <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "number", "number is required");
        return;
    }
    char number[24];
    snprintf(number, sizeof number, "%" PRId64, m->number);
    const char *params[] = {number};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT " FAQ_COLUMNS " FROM faqs WHERE number = $1::bigint AND "
                                "status = 'published' AND visibility = 'public'",
                                1, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "public FAQ");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_reply_error(reply, 404, "not_found", "number", "no such FAQ");
        return;
    }
    if (m->has_count_view && m->count_view)
        s_view_count(self, number);
    Ncc__Faq__Faq faq;
    faq_from_row(self, res, 0, &faq);
    faq.views += s_views_pending(self, number);
    faq.approved_by = faq.updated_by = faq.keywords = faq.status = NULL;
    faq.has_version = faq.has_id = false;
    ncc_reply_message(reply, &faq.base);
    PQclear(res);
}

typedef struct {
    int64_t window; /* when this address's current minute began (unix seconds) */
    int count;
} s_rate_t;

/* True when `address` may vote once more this minute (and counts it). */
static bool s_rate_ok(faq_t *self, const char *address)
{
    int64_t now = (int64_t)time(NULL);
    if (zhashx_size(self->rate) > 100000)
        zhashx_purge(self->rate); /* a flood of addresses: start over */
    s_rate_t *rate = zhashx_lookup(self->rate, address);
    if (!rate) {
        rate = calloc(1, sizeof *rate);
        if (!rate || zhashx_insert(self->rate, address, rate) != 0) {
            free(rate);
            return true;
        }
    }
    if (now - rate->window >= 60) {
        rate->window = now;
        rate->count = 0;
    }
    return ++rate->count <= self->settings->votes_per_minute;
}

static bool s_voter_ok(const char *voter)
{
    size_t len = voter ? strlen(voter) : 0;
    if (len < 16 || len > 64)
        return false;
    for (const char *p = voter; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

static void s_on_public_feedback(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__PublicFeedback *m = (const Ncc__Faq__PublicFeedback *)request->message;
    if (!m->has_number || m->number <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "number", "number is required");
        return;
    }
    if (!m->has_helpful) {
        ncc_reply_error(reply, 422, "invalid_field", "helpful",
                        "helpful (true or false) is required");
        return;
    }
    if (!s_voter_ok(m->voter)) {
        ncc_reply_error(reply, 422, "invalid_field", "voter",
                        "voter is the browser's id: 16 to 64 of A-Z a-z 0-9 _ -");
        return;
    }
    ncc_actor_t actor = ncc_request_actor(request);
    if (!s_rate_ok(self, actor.address && *actor.address ? actor.address : "unknown")) {
        ncc_reply_error(reply, 429, "rate_limited", NULL,
                        "too many votes from this address: try again in a minute");
        return;
    }
    char number[24];
    snprintf(number, sizeof number, "%" PRId64, m->number);
    const char *params[] = {number, m->voter, m->helpful ? "true" : "false"};
    if (ncc_db_begin(self->db) < 0) {
        faq_reply_db_error(self, reply, "begin");
        return;
    }
    PGresult *res = ncc_db_exec(
        self->db,
        "WITH f AS (SELECT id FROM faqs WHERE number = $1::bigint AND status = 'published' AND "
        "visibility = 'public'), v AS (INSERT INTO votes (faq_id, voter, helpful) SELECT id, $2, "
        "$3::boolean FROM f ON CONFLICT DO NOTHING RETURNING faq_id) SELECT (SELECT id FROM f), "
        "(SELECT count(*) FROM v)",
        3, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "vote");
        return;
    }
    bool found = !PQgetisnull(res, 0, 0);
    bool accepted = strtoll(PQgetvalue(res, 0, 1), NULL, 10) > 0;
    PQclear(res);
    if (!found) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 404, "not_found", "number", "no such FAQ");
        return;
    }
    res = ncc_db_exec(self->db,
                      accepted ? "UPDATE faqs SET helpful = helpful + CASE WHEN $2::boolean THEN "
                                 "1 ELSE 0 END, not_helpful = not_helpful + CASE WHEN "
                                 "$2::boolean THEN 0 ELSE 1 END WHERE number = $1::bigint "
                                 "RETURNING helpful, not_helpful"
                               : "SELECT helpful, not_helpful FROM faqs WHERE number = $1::bigint "
                                 "AND $2::boolean IS NOT NULL",
                      2, (const char *[]){number, m->helpful ? "true" : "false"}, NULL);
    if (!res || ncc_db_commit(self->db) < 0) {
        PQclear(res);
        faq_reply_db_error(self, reply, "vote");
        return;
    }
    Ncc__Faq__FeedbackResult out = NCC__FAQ__FEEDBACK_RESULT__INIT;
    out.has_number = out.has_accepted = out.has_helpful = out.has_not_helpful = true;
    out.number = m->number;
    out.accepted = accepted;
    out.helpful = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out.not_helpful = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    ncc_reply_message(reply, &out.base);
    PQclear(res);
}

static void s_free_count(void **item)
{
    free(*item);
    *item = NULL;
}

void faq_extra_register(faq_t *self)
{
    ncc_service_t *s = self->service;
    ncc_service_on(s, &ncc__faq__get_synonyms__descriptor, NCC_ROLES_USERS, s_on_get_synonyms,
                   self);
    ncc_service_on(s, &ncc__faq__put_synonyms__descriptor, S_EDITORS, s_on_put_synonyms, self);
    ncc_service_on(s, &ncc__faq__suggest_faqs__descriptor, NCC_ROLES_ALL, s_on_suggest, self);
    ncc_service_on(s, &ncc__faq__list_zero_hits__descriptor, S_EDITORS | NCC_ROLE_STAFF,
                   s_on_zero_hits, self);
    /* residents: no session, no actor (the gateway's public routes) */
    ncc_service_on(s, &ncc__faq__public_list_faqs__descriptor, 0, s_on_public_list, self);
    ncc_service_on(s, &ncc__faq__public_get_faq__descriptor, 0, s_on_public_get, self);
    ncc_service_on(s, &ncc__faq__public_feedback__descriptor, 0, s_on_public_feedback, self);
    self->views = zhashx_new();
    if (self->views)
        zhashx_set_destructor(self->views, s_free_count);
    ncc_service_every(s, 1000, s_views_flush, self);
}
