/* faq_clicks: learning from operators (docs/faq.md "Learning from
 * operators"). A staff user who opened an FAQ from the results of a search,
 * or put an FAQ found by a search into a record's 利用FAQ, tells which words
 * led to which FAQ; each user counts once per FAQ and words. Every index
 * build loads the clicks (counted per FAQ and words, not older than
 * NCC_FAQ_CLICK_DAYS); between builds every copy reads the recent ones and
 * adds those it does not hold to its live index, so all copies learn within
 * an index check. Supervisors and administrators list an FAQ's learned
 * words and remove a wrong one (every copy then rebuilds). How the words
 * raise an FAQ is faq_search.c's (faq_index_add_click). */
#include "faq.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncc/roles.h"

#define S_EDITORS (NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN)

/* What the set of recent click ids maps to (only the keys matter). */
static int s_present = 1;

/* How far back each index check reads clicks (seconds): a minute, or five
 * checks when they are further apart. A click reaches the database within
 * its own statement, so one that commits late is still read. */
static int s_window_seconds(const faq_t *self)
{
    int check_s = self->settings->index_check_ms / 1000 + 1;
    return check_s * 5 > 60 ? check_s * 5 : 60;
}

static bool s_is_reader_only(const ncc_request_t *request)
{
    ncc_actor_t actor = ncc_request_actor(request);
    return !(actor.roles & (S_EDITORS | NCC_ROLE_SYSTEM));
}

/* The words of a request normalised (caller frees), or NULL with the error
 * answered: required, at most FAQ_QUERY_MAX characters, no control
 * characters; with `searchable`, they must also give terms to search. */
static char *s_words(faq_t *self, ncc_reply_t *reply, const char *q, bool searchable)
{
    if (!q || !*q) {
        ncc_reply_error(reply, 422, "invalid_field", "q", "q is required (the words searched)");
        return NULL;
    }
    const char *why = faq_text_problem(q, FAQ_QUERY_MAX, false);
    if (why) {
        ncc_reply_error(reply, 422, "invalid_field", "q", "q %s (at most %d characters)", why,
                        FAQ_QUERY_MAX);
        return NULL;
    }
    char *norm = faq_normalize(q);
    if (!norm || !*norm) {
        free(norm);
        ncc_reply_error(reply, 422, "invalid_field", "q", "q is required (the words searched)");
        return NULL;
    }
    if (searchable) {
        char *terms = faq_analyzer_terms(self->analyzer, norm);
        bool empty = !terms || !*terms;
        free(terms);
        if (empty) {
            free(norm);
            ncc_reply_error(reply, 422, "invalid_field", "q", "q holds no words to search");
            return NULL;
        }
    }
    return norm;
}

/* 0 when FAQ `id` exists (for a reader: and is published), else the 404 or
 * the database error answered and -ENOENT or -EIO. */
static int s_faq_exists(faq_t *self, ncc_reply_t *reply, int64_t id, bool reader)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {id_text, reader ? "true" : "false"};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT 1 FROM faqs WHERE id = $1::bigint AND (NOT $2::boolean OR "
                                "status = 'published')",
                                2, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "read FAQ");
        return -EIO;
    }
    bool found = PQntuples(res) > 0;
    PQclear(res);
    if (!found) {
        ncc_reply_error(reply, 404, "not_found", "id", "no such FAQ");
        return -ENOENT;
    }
    return 0;
}

/* Adds one click to the live index (0 or a negative errno). */
static int s_index_add(faq_t *self, int64_t faq_id, const char *q, int users)
{
    if (!self->index)
        return 0; /* the first build loads it */
    int rc = faq_index_add_click(self->index, faq_id, q, users);
    if (rc == -ENOMEM)
        ncc_warn("faq.click_not_indexed", "out of memory adding a click to the index");
    /* -ENOENT: an FAQ this index does not hold yet (the build that follows
     * its creation loads the click); -EINVAL: words without terms. */
    return rc;
}

/* ---- requests ------------------------------------------------------------------------------ */

static void s_on_record(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__RecordFaqClick *m = (const Ncc__Faq__RecordFaqClick *)request->message;
    if (!m->has_id || m->id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
        return;
    }
    ncc_actor_t actor = ncc_request_actor(request);
    char *end = NULL;
    long long user_id = actor.id ? strtoll(actor.id, &end, 10) : 0;
    if (!end || *end || user_id <= 0) {
        ncc_reply_error(reply, 403, "forbidden", NULL, "only a signed-in user's choice is learned");
        return;
    }
    char *q = s_words(self, reply, m->q, true);
    if (!q)
        return;
    char id_text[24], user_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->id);
    snprintf(user_text, sizeof user_text, "%lld", user_id);
    const char *params[] = {id_text, m->q, user_text, s_is_reader_only(request) ? "true" : "false",
                            q};
    /* One statement: the FAQ (published, for a reader), then the click
     * unless this user gave these words for it already. */
    PGresult *res = ncc_db_exec(
        self->db,
        "WITH f AS (SELECT id FROM faqs WHERE id = $1::bigint AND (NOT $4::boolean OR status = "
        "'published')), c AS (INSERT INTO clicks (faq_id, q, q_norm, user_id) SELECT id, $2, $5, "
        "$3::bigint FROM f ON CONFLICT DO NOTHING RETURNING id) SELECT (SELECT id FROM f), "
        "(SELECT id FROM c)",
        5, params, NULL);
    if (!res) {
        free(q);
        faq_reply_db_error(self, reply, "record click");
        return;
    }
    if (PQgetisnull(res, 0, 0)) {
        PQclear(res);
        free(q);
        ncc_reply_error(reply, 404, "not_found", "id", "no such FAQ");
        return;
    }
    bool recorded = !PQgetisnull(res, 0, 1);
    if (recorded) {
        /* this copy learns at once; the others at their next check */
        s_index_add(self, m->id, m->q, 1);
        if (self->click_ids)
            zhashx_insert(self->click_ids, PQgetvalue(res, 0, 1), &s_present);
    }
    PQclear(res);
    Ncc__Faq__FaqClickRecorded out = NCC__FAQ__FAQ_CLICK_RECORDED__INIT;
    out.has_id = out.has_recorded = true;
    out.id = m->id;
    out.q = m->q;
    out.recorded = recorded;
    ncc_reply_message(reply, &out.base);
    free(q);
}

static void s_on_list(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__ListFaqClicks *m = (const Ncc__Faq__ListFaqClicks *)request->message;
    if (!m->has_id || m->id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
        return;
    }
    if (s_faq_exists(self, reply, m->id, false) < 0)
        return;
    int64_t offset, limit;
    faq_paging(m->has_page, m->page, m->has_per_page, m->per_page, &offset, &limit);
    char id_text[24], days[24], off[24], lim[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->id);
    snprintf(days, sizeof days, "%d", self->settings->click_days);
    snprintf(off, sizeof off, "%" PRId64, offset);
    snprintf(lim, sizeof lim, "%" PRId64, limit);
    const char *params[] = {id_text, days, off, lim};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT min(q), count(*), " FAQ_RFC3339(
                                    "max(at)") ", count(*) OVER () FROM clicks "
                                               "WHERE faq_id = $1::bigint AND at > now() - "
                                               "make_interval(days => $2::int) GROUP BY "
                                               "q_norm ORDER BY count(*) DESC, max(at) DESC, "
                                               "q_norm OFFSET $3::bigint LIMIT $4::bigint",
                                4, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "list clicks");
        return;
    }
    int rows = PQntuples(res);
    Ncc__Faq__FaqClickList list = NCC__FAQ__FAQ_CLICK_LIST__INIT;
    Ncc__Faq__FaqClick *items = calloc((size_t)rows + 1, sizeof *items);
    Ncc__Faq__FaqClick **ptrs = calloc((size_t)rows + 1, sizeof *ptrs);
    if (!items || !ptrs) {
        free(items);
        free(ptrs);
        PQclear(res);
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    for (int i = 0; i < rows; i++) {
        Ncc__Faq__FaqClick *c = &items[i];
        ncc__faq__faq_click__init(c);
        c->q = PQgetvalue(res, i, 0);
        c->has_users = true;
        c->users = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        c->last_at = PQgetvalue(res, i, 2);
        ptrs[i] = c;
    }
    list.items = ptrs;
    list.n_items = (size_t)rows;
    list.has_total = true;
    list.total = rows ? strtoll(PQgetvalue(res, 0, 3), NULL, 10) : 0;
    if (rows == 0 && offset > 0) {
        /* past the last page: the total still */
        PGresult *count = ncc_db_exec(self->db,
                                      "SELECT count(DISTINCT q_norm) FROM clicks WHERE faq_id = "
                                      "$1::bigint AND at > now() - make_interval(days => $2::int)",
                                      2, params, NULL);
        list.total = count && PQntuples(count) ? strtoll(PQgetvalue(count, 0, 0), NULL, 10) : 0;
        PQclear(count);
    }
    ncc_reply_message(reply, &list.base);
    free(items);
    free(ptrs);
    PQclear(res);
}

static void s_on_delete(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__DeleteFaqClicks *m = (const Ncc__Faq__DeleteFaqClicks *)request->message;
    if (!m->has_id || m->id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
        return;
    }
    /* any stored words may go, even ones that no longer give terms */
    char *q = s_words(self, reply, m->q, false);
    if (!q)
        return;
    if (s_faq_exists(self, reply, m->id, false) < 0) {
        free(q);
        return;
    }
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->id);
    const char *params[] = {id_text, q};
    if (ncc_db_begin(self->db) < 0) {
        free(q);
        faq_reply_db_error(self, reply, "begin");
        return;
    }
    PGresult *res =
        ncc_db_exec(self->db,
                    "WITH d AS (DELETE FROM clicks WHERE faq_id = $1::bigint AND q_norm = $2 "
                    "RETURNING 1) SELECT count(*) FROM d",
                    2, params, NULL);
    if (!res) {
        free(q);
        faq_reply_db_error(self, reply, "delete clicks");
        return;
    }
    int64_t removed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    /* every copy forgets them: a rebuild everywhere (index_state) */
    if (removed > 0 && faq_touch_index(self) < 0) {
        free(q);
        faq_reply_db_error(self, reply, "delete clicks");
        return;
    }
    if (ncc_db_commit(self->db) < 0) {
        free(q);
        faq_reply_db_error(self, reply, "commit");
        return;
    }
    if (removed > 0) {
        int rc = faq_index_rebuild(self);
        if (rc < 0)
            ncc_error("faq.index_failed", "the search index could not be rebuilt: %s",
                      strerror(-rc));
        ncc_info("faq.clicks_deleted", "FAQ %" PRId64 ": %" PRId64 " users' clicks removed", m->id,
                 removed);
    }
    Ncc__Faq__FaqClicksDeleted out = NCC__FAQ__FAQ_CLICKS_DELETED__INIT;
    out.has_id = out.has_removed = true;
    out.id = m->id;
    out.q = q;
    out.removed = removed;
    ncc_reply_message(reply, &out.base);
    free(q);
}

/* ---- the index: every build, and between builds ----------------------------------------- */

int faq_clicks_load(faq_t *self, faq_index_t *index)
{
    char days[24], window[24];
    snprintf(days, sizeof days, "%d", self->settings->click_days);
    snprintf(window, sizeof window, "%d", s_window_seconds(self));
    const char *params[] = {days, window};
    /* One statement, so one snapshot: the counts, and the recent clicks they
     * hold (which faq_clicks_follow then does not add again). */
    PGresult *res = ncc_db_exec(
        self->db,
        "WITH c AS (SELECT id, faq_id, q, q_norm, at FROM clicks WHERE at > now() - "
        "make_interval(days => "
        "$1::int)) SELECT faq_id, min(q), count(*), NULL::bigint FROM c GROUP BY faq_id, q_norm "
        "UNION ALL "
        "SELECT NULL::bigint, NULL::text, NULL::bigint, id FROM c WHERE at > now() - "
        "make_interval(secs => $2::int)",
        2, params, NULL);
    if (!res)
        return -EIO;
    zhashx_t *recent = zhashx_new();
    if (!recent) {
        PQclear(res);
        return -ENOMEM;
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, 0)) {
            if (zhashx_insert(recent, PQgetvalue(res, i, 3), &s_present) == -1 &&
                !zhashx_lookup(recent, PQgetvalue(res, i, 3)))
                rc = -ENOMEM;
            continue;
        }
        long long users = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        int added =
            faq_index_add_click(index, strtoll(PQgetvalue(res, i, 0), NULL, 10),
                                PQgetvalue(res, i, 1), users > INT_MAX ? INT_MAX : (int)users);
        if (added == -ENOMEM)
            rc = -ENOMEM;
        /* -ENOENT (an FAQ created after the FAQs were read: its creation
         * rebuilds again) and -EINVAL (words without terms) are skipped */
    }
    PQclear(res);
    if (rc < 0) {
        zhashx_destroy(&recent);
        return rc;
    }
    zhashx_destroy(&self->click_ids);
    self->click_ids = recent;
    return 0;
}

void faq_clicks_follow(faq_t *self)
{
    if (!self->index || !self->click_ids)
        return;
    char window[24];
    snprintf(window, sizeof window, "%d", s_window_seconds(self));
    const char *params[] = {window};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT id, faq_id, q FROM clicks WHERE at > now() - "
                                "make_interval(secs => $1::int) ORDER BY id",
                                1, params, NULL);
    if (!res)
        return; /* the next check tries again */
    /* the ids read now replace the set: one that left the window is never
     * read again */
    zhashx_t *recent = zhashx_new();
    if (!recent) {
        PQclear(res);
        return;
    }
    int added = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 0);
        if (!zhashx_lookup(self->click_ids, id)) {
            s_index_add(self, strtoll(PQgetvalue(res, i, 1), NULL, 10), PQgetvalue(res, i, 2), 1);
            added++;
        }
        if (zhashx_insert(recent, id, &s_present) == -1 && !zhashx_lookup(recent, id)) {
            /* out of memory: keep the old set (a click may be added twice) */
            zhashx_destroy(&recent);
            break;
        }
    }
    PQclear(res);
    if (recent) {
        zhashx_destroy(&self->click_ids);
        self->click_ids = recent;
    }
    if (added)
        ncc_debug("faq.clicks_followed", "%d clicks of other copies added to the index", added);
}

/* ---- the object ---------------------------------------------------------------------------- */

void faq_clicks_register(faq_t *self)
{
    ncc_service_t *s = self->service;
    ncc_service_on(s, &ncc__faq__record_faq_click__descriptor, NCC_ROLES_USERS, s_on_record, self);
    ncc_service_on(s, &ncc__faq__list_faq_clicks__descriptor, S_EDITORS, s_on_list, self);
    ncc_service_on(s, &ncc__faq__delete_faq_clicks__descriptor, S_EDITORS, s_on_delete, self);
    self->click_ids = zhashx_new();
}

void faq_clicks_stop(faq_t *self)
{
    if (self)
        zhashx_destroy(&self->click_ids);
}
