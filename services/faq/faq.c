/* faq: the service object, the search index's life (built at start, rebuilt
 * when index_state.revision moves), and the FAQ itself: list and search,
 * get, create, update, delete, versions and approval (docs/faq.md). */
#include "faq.h"
#include "faq_report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory.pb-c.h"
#include "ncc/roles.h"
#include "ncc/bus.h"

#define S_EDITORS (NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN)

/* ---- helpers ------------------------------------------------------------------------------ */

void faq_reply_db_error(faq_t *self, ncc_reply_t *reply, const char *what)
{
    ncc_reply_db_error(self->db, reply, what);
}

const char *faq_text_problem(const char *text, size_t max_chars, bool multiline)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p & 0xc0) != 0x80)
            chars++;
        if (*p < 0x20 || *p == 0x7f) {
            if (!(multiline && (*p == '\n' || *p == '\r' || *p == '\t')))
                return "must not hold control characters";
        }
        /* C1 controls U+0080..U+009F are C2 80..C2 9F */
        if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            return "must not hold control characters";
    }
    if (chars > max_chars)
        return "is too long";
    return NULL;
}

void faq_paging(bool has_page, int32_t page, bool has_per_page, int32_t per_page,
                int64_t *ret_offset, int64_t *ret_limit)
{
    int64_t p = has_page && page > 0 ? page : 1;
    int64_t n = has_per_page && per_page > 0 ? per_page : 50;
    if (n > 500)
        n = 500;
    if (p > 1000000)
        p = 1000000;
    *ret_offset = (p - 1) * n;
    *ret_limit = n;
}

int faq_department_id(faq_t *self, const char *code, int64_t *ret_id)
{
    *ret_id = 0;
    if (!code || !*code)
        return 0;
    if (ncc_masters_cache_count(self->masters, "departments") == 0)
        return 0;
    const Ncc__Directory__MasterValues *d =
        ncc_masters_cache_find(self->masters, "departments", code);
    if (!d)
        return -ENOENT;
    *ret_id = d->has_id ? d->id : 0;
    return 0;
}

void faq_from_row(faq_t *self, const PGresult *res, int row, Ncc__Faq__Faq *out)
{
    ncc__faq__faq__init(out);
    out->has_id = out->has_number = out->has_version = true;
    out->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    out->number = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    out->question = PQgetvalue(res, row, 2);
    out->answer = PQgetvalue(res, row, 3);
    out->department_id = strtoll(PQgetvalue(res, row, 4), NULL, 10);
    out->has_department_id = out->department_id > 0;
    out->department_code = PQgetvalue(res, row, 5);
    if (out->department_code[0]) {
        const Ncc__Directory__MasterValues *d =
            ncc_masters_cache_find(self->masters, "departments", out->department_code);
        if (d && d->name)
            out->department_name = d->name;
    }
    out->category = PQgetvalue(res, row, 6);
    out->visibility = PQgetvalue(res, row, 7);
    out->keywords = PQgetvalue(res, row, 8);
    out->status = PQgetvalue(res, row, 9);
    out->version = strtoll(PQgetvalue(res, row, 10), NULL, 10);
    out->has_views = out->has_helpful = out->has_not_helpful = true;
    out->views = strtoll(PQgetvalue(res, row, 11), NULL, 10);
    out->helpful = strtoll(PQgetvalue(res, row, 12), NULL, 10);
    out->not_helpful = strtoll(PQgetvalue(res, row, 13), NULL, 10);
    out->updated_at = PQgetvalue(res, row, 14);
    if (!PQgetisnull(res, row, 15))
        out->approved_by = PQgetvalue(res, row, 15);
    if (!PQgetisnull(res, row, 16))
        out->approved_at = PQgetvalue(res, row, 16);
    out->created_at = PQgetvalue(res, row, 17);
    out->updated_by = PQgetvalue(res, row, 18);
}

static void s_free_string(void **item)
{
    free(*item);
    *item = NULL;
}

const char *faq_actor_login(faq_t *self, const ncc_request_t *request, char *buf, size_t len)
{
    ncc_actor_t actor = ncc_request_actor(request);
    buf[0] = '\0';
    if (!actor.id || !*actor.id)
        return buf;
    const char *known = zhashx_lookup(self->logins, actor.id);
    if (known) {
        snprintf(buf, len, "%s", known);
        return buf;
    }
    char *end = NULL;
    long long id = strtoll(actor.id, &end, 10);
    if (!end || *end || id <= 0) {
        snprintf(buf, len, "%s", actor.id);
        return buf;
    }
    Ncc__Directory__GetUser get = NCC__DIRECTORY__GET_USER__INIT;
    get.has_id = true;
    get.id = id;
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    ctx.trace_id = actor.trace_id;
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    ncc_rpc_client_t *client = ncc_service_client(self->service, "directory");
    int rc = client ? ncc_rpc_call_typed(client, &ctx, &get.base, &ncc__directory__user__descriptor,
                                         1000, &answer, &error)
                    : -ENOTCONN;
    const Ncc__Directory__User *user = (const Ncc__Directory__User *)answer;
    if (rc == 0 && user && user->login && *user->login) {
        snprintf(buf, len, "%s", user->login);
        char *copy = strdup(user->login);
        if (copy && zhashx_insert(self->logins, actor.id, copy) != 0)
            free(copy);
    } else {
        snprintf(buf, len, "user:%s", actor.id); /* the directory did not answer */
    }
    if (answer)
        protobuf_c_message_free_unpacked(answer, NULL);
    if (error)
        ncc__error__free_unpacked(error, NULL);
    return buf;
}

int faq_numbers_follow(faq_t *self)
{
    return ncc_db_run(self->db,
                      "SELECT setval('faq_numbers', greatest((SELECT last_value FROM faq_numbers), "
                      "(SELECT coalesce(max(number), 1) FROM faqs)))",
                      0, NULL);
}

int faq_touch_index(faq_t *self)
{
    return ncc_db_run(self->db, "UPDATE index_state SET revision = revision + 1 WHERE id = 1", 0,
                      NULL);
}

/* ---- the search index --------------------------------------------------------------------- */

int faq_index_rebuild(faq_t *self)
{
    PGresult *rev =
        ncc_db_exec(self->db, "SELECT revision FROM index_state WHERE id = 1", 0, NULL, NULL);
    if (!rev)
        return -EIO;
    int64_t revision = PQntuples(rev) ? strtoll(PQgetvalue(rev, 0, 0), NULL, 10) : 0;
    PQclear(rev);
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT id, number, question, answer, keywords, status, "
                                "visibility, category, coalesce(department_id, 0) FROM faqs "
                                "ORDER BY id",
                                0, NULL, NULL);
    if (!res)
        return -EIO;
    PGresult *syn =
        ncc_db_exec(self->db, "SELECT words FROM synonym_groups ORDER BY id", 0, NULL, NULL);
    if (!syn) {
        PQclear(res);
        return -EIO;
    }
    int64_t started = ncc_bus_now_us();
    faq_index_t *index = faq_index_new(self->analyzer);
    int rc = index ? 0 : -ENOMEM;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        faq_doc_t doc = {
            .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
            .number = strtoll(PQgetvalue(res, i, 1), NULL, 10),
            .question = PQgetvalue(res, i, 2),
            .answer = PQgetvalue(res, i, 3),
            .keywords = PQgetvalue(res, i, 4),
            .status = PQgetvalue(res, i, 5),
            .visibility = PQgetvalue(res, i, 6),
            .category = PQgetvalue(res, i, 7),
            .department_id = strtoll(PQgetvalue(res, i, 8), NULL, 10),
        };
        rc = faq_index_add(index, &doc);
    }
    if (rc == 0)
        rc = faq_clicks_load(self, index); /* learned from operators (faq_clicks.c) */
    if (rc == 0) {
        faq_index_finish(index);
        /* synonyms: text[] arrives as {a,b,"c d"}; parse the simple array form */
        int groups = PQntuples(syn);
        char ***lists = calloc((size_t)groups + 1, sizeof *lists);
        for (int g = 0; lists && g < groups; g++) {
            const char *text = PQgetvalue(syn, g, 0);
            size_t cap = strlen(text) + 2;
            lists[g] = calloc(cap, sizeof(char *));
            char *copy = strdup(text);
            if (!lists[g] || !copy) {
                free(copy);
                break;
            }
            size_t n = 0;
            char *p = copy + (copy[0] == '{');
            while (*p && *p != '}') {
                char word[512];
                size_t w = 0;
                if (*p == '"') {
                    p++;
                    while (*p && *p != '"') {
                        if (*p == '\\' && p[1])
                            p++;
                        if (w + 1 < sizeof word)
                            word[w++] = *p;
                        p++;
                    }
                    if (*p == '"')
                        p++;
                } else {
                    while (*p && *p != ',' && *p != '}') {
                        if (w + 1 < sizeof word)
                            word[w++] = *p;
                        p++;
                    }
                }
                word[w] = '\0';
                if (w)
                    lists[g][n++] = strdup(word);
                if (*p == ',')
                    p++;
            }
            free(copy);
        }
        if (lists) {
            faq_index_set_synonyms(index, (const char *const *const *)lists, (size_t)groups);
            for (int g = 0; g < groups; g++) {
                for (char **w = lists[g]; w && *w; w++)
                    free(*w);
                free(lists[g]);
            }
            free(lists);
        }
    }
    PQclear(res);
    PQclear(syn);
    if (rc < 0) {
        faq_index_destroy(&index);
        return rc;
    }
    faq_index_destroy(&self->index);
    self->index = index;
    self->index_revision = revision;
    ncc_info("faq.index_built", "%zu FAQs indexed in %" PRId64 " ms (revision %" PRId64 ")",
             faq_index_size(index), (ncc_bus_now_us() - started) / 1000, revision);
    return 0;
}

/* Timer: another copy (or an import) changed the FAQ: rebuild; else add
 * the clicks other copies stored since. */
static void s_check_index(void *arg)
{
    faq_t *self = arg;
    PGresult *res =
        ncc_db_exec(self->db, "SELECT revision FROM index_state WHERE id = 1", 0, NULL, NULL);
    if (!res)
        return;
    int64_t revision = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    if (!self->index || revision != self->index_revision) {
        int rc = faq_index_rebuild(self);
        if (rc < 0)
            ncc_error("faq.index_failed", "the search index could not be built: %s", strerror(-rc));
    } else {
        faq_clicks_follow(self);
    }
}

static void s_on_ready(void *arg)
{
    s_check_index(arg);
}

int faq_search(faq_t *self, const faq_query_t *query, faq_hit_t **ret_hits, size_t *ret_count)
{
    *ret_hits = NULL;
    *ret_count = 0;
    if (!self->index) {
        int rc = faq_index_rebuild(self);
        if (rc < 0)
            return rc;
    }
    return faq_index_search(self->index, query, ret_hits, ret_count);
}

void faq_log_zero_hit(faq_t *self, const char *q, bool public_request)
{
    char *norm = faq_normalize(q);
    if (!norm || !*norm) {
        free(norm);
        return;
    }
    const char *params[] = {norm, public_request ? "true" : "false"};
    if (ncc_db_run(self->db, "INSERT INTO zero_hits (q, public) VALUES (left($1, 200), $2)", 2,
                   params) < 0)
        ncc_warn("faq.zero_hit_log", "could not log a search without hits: %s",
                 ncc_db_error(self->db));
    free(norm);
}

void faq_reply_hits(faq_t *self, ncc_reply_t *reply, const faq_hit_t *hits, size_t count,
                    int64_t offset, int64_t limit, bool public_view)
{
    Ncc__Faq__FaqList list = NCC__FAQ__FAQ_LIST__INIT;
    list.has_total = true;
    list.total = (int64_t)count;
    size_t first = (size_t)offset < count ? (size_t)offset : count;
    size_t n = count - first < (size_t)limit ? count - first : (size_t)limit;
    if (n == 0) {
        ncc_reply_message(reply, &list.base);
        return;
    }
    /* the ids as a text array, in rank order */
    size_t cap = n * 24 + 4;
    char *ids = malloc(cap);
    if (!ids) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    size_t at = 0;
    ids[at++] = '{';
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(ids + at, cap - at, "%s%" PRId64, i ? "," : "", hits[first + i].id);
    ids[at++] = '}';
    ids[at] = '\0';
    const char *params[] = {ids};
    PGresult *res = ncc_db_exec(
        self->db, "SELECT " FAQ_COLUMNS " FROM faqs WHERE id = ANY($1::bigint[])", 1, params, NULL);
    free(ids);
    if (!res) {
        faq_reply_db_error(self, reply, "read FAQs");
        return;
    }
    Ncc__Faq__Faq *items = calloc(n, sizeof *items);
    Ncc__Faq__Faq **ptrs = calloc(n, sizeof *ptrs);
    if (!items || !ptrs) {
        free(items);
        free(ptrs);
        PQclear(res);
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        for (int r = 0; r < PQntuples(res); r++) {
            if (strtoll(PQgetvalue(res, r, 0), NULL, 10) != hits[first + i].id)
                continue;
            Ncc__Faq__Faq *f = &items[out];
            faq_from_row(self, res, r, f);
            f->has_score = true;
            f->score = hits[first + i].score;
            if (public_view) {
                f->approved_by = NULL;
                f->updated_by = NULL;
                f->keywords = NULL;
                f->status = NULL;
                f->has_version = false;
                f->has_id = false;
            }
            ptrs[out] = f;
            out++;
            break;
        }
    }
    list.n_items = out;
    list.items = ptrs;
    ncc_reply_message(reply, &list.base);
    free(items);
    free(ptrs);
    PQclear(res);
}

/* ---- list, get ---------------------------------------------------------------------------- */

static bool s_is_reader_only(const ncc_request_t *request)
{
    ncc_actor_t actor = ncc_request_actor(request);
    return !(actor.roles & (S_EDITORS | NCC_ROLE_SYSTEM));
}

static bool s_one_of(const char *value, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strcmp(value, *allowed) == 0)
            return true;
    return false;
}

static const char *const s_statuses[] = {"draft", "review", "published", "archived", NULL};
static const char *const s_visibilities[] = {"public", "internal", NULL};

static void s_on_list(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__ListFaqs *m = (const Ncc__Faq__ListFaqs *)request->message;
    bool reader = s_is_reader_only(request);
    if (m->status && *m->status && !s_one_of(m->status, s_statuses)) {
        ncc_reply_error(reply, 422, "invalid_field", "status",
                        "status must be draft, review, published or archived");
        return;
    }
    if (m->visibility && *m->visibility && !s_one_of(m->visibility, s_visibilities)) {
        ncc_reply_error(reply, 422, "invalid_field", "visibility",
                        "visibility must be public or internal");
        return;
    }
    int64_t department_id = m->has_department_id ? m->department_id : 0;
    if (m->department_code && *m->department_code &&
        faq_department_id(self, m->department_code, &department_id) < 0) {
        ncc_reply_error(reply, 422, "invalid_field", "department_code", "no such department");
        return;
    }
    int64_t offset, limit;
    faq_paging(m->has_page, m->page, m->has_per_page, m->per_page, &offset, &limit);
    const char *q = m->q ? m->q : "";
    const char *why = faq_text_problem(q, FAQ_QUERY_MAX, false);
    if (why) {
        ncc_reply_error(reply, 422, "invalid_field", "q", "q %s (at most %d characters)", why,
                        FAQ_QUERY_MAX);
        return;
    }
    char *norm = faq_normalize(q);
    bool has_q = norm && *norm;
    free(norm);
    if (!has_q && reader && faq_review_list(self, request, m, department_id, offset, limit, reply))
        return; /* a staff reviewer's approval queue (faq_review.c) */
    if (has_q) {
        faq_query_t query = {
            .q = q,
            .status = m->status,
            .visibility = m->visibility,
            .category = m->category,
            .department_id = department_id,
            .published_only = reader,
            .top = (size_t)(offset + limit),
        };
        faq_hit_t *hits = NULL;
        size_t count = 0;
        int rc = faq_search(self, &query, &hits, &count);
        if (rc < 0) {
            ncc_reply_error(reply, rc == -EIO ? 503 : 500,
                            rc == -EIO ? "service_unavailable" : "internal", NULL,
                            "the search failed");
            return;
        }
        if (count == 0 && (!m->has_log || m->log))
            faq_log_zero_hit(self, q, false);
        if (!m->has_log || m->log)
            faq_report_searched(self, q, hits, count, false); /* ncc-report (docs/kpi.md) */
        faq_reply_hits(self, reply, hits, count, offset, limit, false);
        free(hits);
        return;
    }
    char dep[24], off[24], lim[24];
    snprintf(dep, sizeof dep, "%" PRId64, department_id);
    snprintf(off, sizeof off, "%" PRId64, offset);
    snprintf(lim, sizeof lim, "%" PRId64, limit);
    const char *params[] = {
        reader ? "published" : (m->status && *m->status ? m->status : NULL),
        m->visibility && *m->visibility ? m->visibility : NULL,
        m->category && *m->category ? m->category : NULL,
        dep,
        off,
        lim,
    };
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT " FAQ_COLUMNS ", count(*) OVER () FROM faqs WHERE ($1::text IS NULL OR status = "
        "$1) AND ($2::text IS NULL OR visibility = $2) AND ($3::text IS NULL OR category = $3) "
        "AND ($4::bigint = 0 OR department_id = $4::bigint) ORDER BY number OFFSET $5::bigint "
        "LIMIT $6::bigint",
        6, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "list FAQs");
        return;
    }
    int rows = PQntuples(res);
    Ncc__Faq__FaqList list = NCC__FAQ__FAQ_LIST__INIT;
    Ncc__Faq__Faq *items = calloc((size_t)rows + 1, sizeof *items);
    Ncc__Faq__Faq **ptrs = calloc((size_t)rows + 1, sizeof *ptrs);
    if (!items || !ptrs) {
        free(items);
        free(ptrs);
        PQclear(res);
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    for (int i = 0; i < rows; i++) {
        faq_from_row(self, res, i, &items[i]);
        ptrs[i] = &items[i];
    }
    list.n_items = (size_t)rows;
    list.items = ptrs;
    list.has_total = true;
    if (rows > 0) {
        list.total = strtoll(PQgetvalue(res, 0, PQnfields(res) - 1), NULL, 10);
    } else {
        /* past the last page: the total still */
        PGresult *count = ncc_db_exec(
            self->db,
            "SELECT count(*) FROM faqs WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS "
            "NULL OR visibility = $2) AND ($3::text IS NULL OR category = $3) AND ($4::bigint = 0 "
            "OR department_id = $4::bigint)",
            4, params, NULL);
        list.total = count && PQntuples(count) ? strtoll(PQgetvalue(count, 0, 0), NULL, 10) : 0;
        PQclear(count);
    }
    ncc_reply_message(reply, &list.base);
    free(items);
    free(ptrs);
    PQclear(res);
}

/* Answers the FAQ `id` (404 when none, or when a reader may not see it). */
static void s_reply_faq(faq_t *self, ncc_reply_t *reply, int64_t id, bool reader)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {id_text};
    PGresult *res = ncc_db_exec(self->db, "SELECT " FAQ_COLUMNS " FROM faqs WHERE id = $1::bigint",
                                1, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "read FAQ");
        return;
    }
    if (PQntuples(res) == 0 || (reader && strcmp(PQgetvalue(res, 0, 9), "published") != 0)) {
        PQclear(res);
        ncc_reply_error(reply, 404, "not_found", "id", "no such FAQ");
        return;
    }
    Ncc__Faq__Faq faq;
    faq_from_row(self, res, 0, &faq);
    ncc_reply_message(reply, &faq.base);
    PQclear(res);
}

static void s_on_get(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__GetFaq *m = (const Ncc__Faq__GetFaq *)request->message;
    if (!m->has_id || m->id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
        return;
    }
    /* a staff reviewer also reads the drafts and reviews of their departments */
    s_reply_faq(self, reply, m->id,
                s_is_reader_only(request) && !faq_review_may_read(self, request, m->id));
}

/* ---- changes ------------------------------------------------------------------------------ */

/* Writes the FAQ's current row as a version (in the open transaction). */
static int s_version(faq_t *self, int64_t id, const char *op, const ncc_request_t *request,
                     const char *login)
{
    ncc_actor_t actor = ncc_request_actor(request);
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {id_text, op, actor.id ? actor.id : "", login ? login : ""};
    return ncc_db_run(self->db,
                      "INSERT INTO faq_versions (faq_id, version, number, question, answer, "
                      "department_code, category, visibility, keywords, status, op, actor_id, "
                      "actor_login) SELECT id, version, number, question, answer, "
                      "department_code, category, visibility, keywords, status, $2, $3, $4 FROM "
                      "faqs WHERE id = $1::bigint",
                      4, params);
}

/* The event of a change (in the open transaction). */
static int s_event(faq_t *self, const ncc_request_t *request, int64_t id, int64_t number,
                   const char *op, const char *status, int64_t version)
{
    Ncc__Faq__FaqChanged event = NCC__FAQ__FAQ_CHANGED__INIT;
    event.has_id = event.has_number = event.has_version = true;
    event.id = id;
    event.number = number;
    event.op = (char *)op;
    event.status = (char *)status;
    event.version = version;
    ncc_ctx_t ctx = ncc_request_ctx(request);
    return ncc_outbox_add(self->db, &ctx, &event.base);
}

/* Commits, flushes the outbox, rebuilds the index. 0 or -EIO. */
static int s_commit(faq_t *self)
{
    if (ncc_db_commit(self->db) < 0)
        return -EIO;
    ncc_publisher_flush(ncc_service_publisher(self->service));
    int rc = faq_index_rebuild(self);
    if (rc < 0)
        ncc_error("faq.index_failed", "the search index could not be rebuilt: %s", strerror(-rc));
    return 0;
}

/* Checks the editable fields of a create or update; NULL values are not
 * given. Answers the error and returns false on a problem. */
static bool s_check_fields(faq_t *self, ncc_reply_t *reply, const char *question,
                           const char *answer, const char *department_code, const char *category,
                           const char *visibility, const char *keywords, const char *status,
                           bool create, int64_t *ret_department_id)
{
    const char *why;
    if (question) {
        char *norm = faq_normalize(question);
        bool empty = !norm || !*norm;
        free(norm);
        if (empty) {
            ncc_reply_error(reply, 422, "invalid_field", "question", "a question is required");
            return false;
        }
        if ((why = faq_text_problem(question, FAQ_QUESTION_MAX, false))) {
            ncc_reply_error(reply, 422, "invalid_field", "question", "question %s (at most %d)",
                            why, FAQ_QUESTION_MAX);
            return false;
        }
    }
    if (answer) {
        if (!*answer) {
            ncc_reply_error(reply, 422, "invalid_field", "answer", "an answer is required");
            return false;
        }
        if ((why = faq_text_problem(answer, FAQ_ANSWER_MAX, true))) {
            ncc_reply_error(reply, 422, "invalid_field", "answer", "answer %s (at most %d)", why,
                            FAQ_ANSWER_MAX);
            return false;
        }
    }
    if (category && (why = faq_text_problem(category, FAQ_CATEGORY_MAX, false))) {
        ncc_reply_error(reply, 422, "invalid_field", "category", "category %s", why);
        return false;
    }
    if (keywords && (why = faq_text_problem(keywords, FAQ_KEYWORDS_MAX, false))) {
        ncc_reply_error(reply, 422, "invalid_field", "keywords", "keywords %s", why);
        return false;
    }
    if (visibility && !s_one_of(visibility, s_visibilities)) {
        ncc_reply_error(reply, 422, "invalid_field", "visibility",
                        "visibility must be public or internal");
        return false;
    }
    if (status) {
        bool ok = create ? (strcmp(status, "draft") == 0 || strcmp(status, "review") == 0)
                         : (strcmp(status, "draft") == 0 || strcmp(status, "review") == 0 ||
                            strcmp(status, "archived") == 0);
        if (!ok) {
            ncc_reply_error(reply, 422, "invalid_field", "status",
                            create ? "a new FAQ is a draft or in review (publish it with approve)"
                                   : "status may be set to draft, review or archived; publish "
                                     "with POST /api/v1/faqs/{id}/approve");
            return false;
        }
    }
    if (department_code && *department_code &&
        faq_department_id(self, department_code, ret_department_id) < 0) {
        ncc_reply_error(reply, 422, "invalid_field", "department_code",
                        "no department has the code %.32s", department_code);
        return false;
    }
    return true;
}

/* The end of a change to FAQ `id` inside its transaction: its version row,
 * its event, the index told; then the commit and the FAQ as the answer. */
static void s_finish(faq_t *self, const ncc_request_t *request, ncc_reply_t *reply, int64_t id,
                     int64_t number, const char *op, const char *status, int64_t version,
                     const char *login, const char *what)
{
    if (s_version(self, id, op, request, login) < 0 ||
        s_event(self, request, id, number, op, status, version) < 0 || faq_touch_index(self) < 0) {
        faq_reply_db_error(self, reply, what);
        return;
    }
    if (s_commit(self) < 0) {
        faq_reply_db_error(self, reply, "commit");
        return;
    }
    s_reply_faq(self, reply, id, false);
}

static void s_on_create(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__CreateFaq *m = (const Ncc__Faq__CreateFaq *)request->message;
    if (!m->question) {
        ncc_reply_error(reply, 422, "invalid_field", "question", "a question is required");
        return;
    }
    if (!m->answer) {
        ncc_reply_error(reply, 422, "invalid_field", "answer", "an answer is required");
        return;
    }
    if (m->has_number && (m->number <= 0 || m->number > 999999999)) {
        ncc_reply_error(reply, 422, "invalid_field", "number", "number must be 1 to 999999999");
        return;
    }
    int64_t department_id = m->has_department_id ? m->department_id : 0;
    if (!s_check_fields(self, reply, m->question, m->answer, m->department_code, m->category,
                        m->visibility, m->keywords, m->status, true, &department_id))
        return;
    char login[80];
    faq_actor_login(self, request, login, sizeof login);
    char number[24], dep[24];
    snprintf(number, sizeof number, "%" PRId64, m->has_number ? m->number : 0);
    snprintf(dep, sizeof dep, "%" PRId64, department_id);
    const char *params[] = {number,
                            m->question,
                            m->answer,
                            dep,
                            m->department_code ? m->department_code : "",
                            m->category ? m->category : "",
                            m->visibility ? m->visibility : "internal",
                            m->keywords ? m->keywords : "",
                            m->status ? m->status : "draft",
                            login};
    if (ncc_db_begin(self->db) < 0) {
        faq_reply_db_error(self, reply, "begin");
        return;
    }
    char state[6];
    PGresult *res = ncc_db_exec(
        self->db,
        "INSERT INTO faqs (number, question, answer, department_id, department_code, category, "
        "visibility, keywords, status, updated_by) VALUES (CASE WHEN $1::bigint > 0 THEN "
        "$1::bigint ELSE nextval('faq_numbers') END, $2, $3, nullif($4::bigint, 0), $5, $6, $7, "
        "$8, $9, $10) RETURNING id, number",
        10, params, state);
    if (!res) {
        if (strcmp(state, "23505") == 0) {
            ncc_db_rollback(self->db);
            ncc_reply_error(reply, 409, "conflict", "number", "an FAQ has this number already");
            return;
        }
        faq_reply_db_error(self, reply, "create FAQ");
        return;
    }
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int64_t num = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    if (faq_numbers_follow(self) < 0) {
        faq_reply_db_error(self, reply, "create FAQ");
        return;
    }
    s_finish(self, request, reply, id, num, "created", m->status ? m->status : "draft", 1, login,
             "create FAQ");
}

/* Locks the FAQ row and checks the version: 0 with the number, status and
 * question/answer; answers the error otherwise (and rolls back). */
static PGresult *s_lock(faq_t *self, ncc_reply_t *reply, int64_t id, bool has_version,
                        int64_t version)
{
    if (id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
        return NULL;
    }
    if (!has_version) {
        ncc_reply_error(reply, 422, "invalid_field", "version",
                        "version is required (the one you read)");
        return NULL;
    }
    if (ncc_db_begin(self->db) < 0) {
        faq_reply_db_error(self, reply, "begin");
        return NULL;
    }
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {id_text};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT version, number, status FROM faqs WHERE id = $1::bigint "
                                "FOR UPDATE",
                                1, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "lock FAQ");
        return NULL;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 404, "not_found", "id", "no such FAQ");
        return NULL;
    }
    if (strtoll(PQgetvalue(res, 0, 0), NULL, 10) != version) {
        PQclear(res);
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 409, "conflict", "version",
                        "the FAQ was changed by someone else: read it again");
        return NULL;
    }
    return res;
}

static void s_on_update(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__UpdateFaq *m = (const Ncc__Faq__UpdateFaq *)request->message;
    int64_t department_id = m->has_department_id ? m->department_id : 0;
    if (!s_check_fields(self, reply, m->question, m->answer, m->department_code, m->category,
                        m->visibility, m->keywords, m->status, false, &department_id))
        return;
    char login[80];
    faq_actor_login(self, request, login, sizeof login);
    PGresult *row = s_lock(self, reply, m->has_id ? m->id : 0, m->has_version, m->version);
    if (!row)
        return;
    int64_t number = strtoll(PQgetvalue(row, 0, 1), NULL, 10);
    char old_status[16];
    snprintf(old_status, sizeof old_status, "%s", PQgetvalue(row, 0, 2));
    PQclear(row);
    /* A change of the text of a published FAQ needs a new approval. */
    bool content = m->question || m->answer || m->keywords || m->visibility;
    const char *status = m->status;
    if (!status && content && strcmp(old_status, "published") == 0)
        status = "review";
    char id_text[24], dep[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->id);
    snprintf(dep, sizeof dep, "%" PRId64, department_id);
    bool dep_given = m->department_code || m->has_department_id;
    const char *params[] = {id_text,
                            m->question,
                            m->answer,
                            dep_given ? dep : NULL,
                            m->department_code,
                            m->category,
                            m->visibility,
                            m->keywords,
                            status,
                            login};
    PGresult *res = ncc_db_exec(
        self->db,
        "UPDATE faqs SET question = coalesce($2, question), answer = coalesce($3, answer), "
        "department_id = CASE WHEN $4::bigint IS NULL THEN department_id ELSE nullif($4::bigint, "
        "0) END, department_code = coalesce($5, department_code), category = coalesce($6, "
        "category), visibility = coalesce($7, visibility), keywords = coalesce($8, keywords), "
        "status = coalesce($9, status), approved_by = CASE WHEN coalesce($9, status) = "
        "'published' THEN approved_by END, approved_at = CASE WHEN coalesce($9, status) = "
        "'published' THEN approved_at END, version = version + 1, updated_at = now(), "
        "updated_by = $10 WHERE id = $1::bigint RETURNING version, status",
        10, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "update FAQ");
        return;
    }
    int64_t version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    char new_status[16];
    snprintf(new_status, sizeof new_status, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    s_finish(self, request, reply, m->id, number, "updated", new_status, version, login,
             "update FAQ");
}

static void s_on_approve(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__ApproveFaq *m = (const Ncc__Faq__ApproveFaq *)request->message;
    char login[80];
    faq_actor_login(self, request, login, sizeof login);
    PGresult *row = s_lock(self, reply, m->has_id ? m->id : 0, m->has_version, m->version);
    if (!row)
        return;
    int64_t number = strtoll(PQgetvalue(row, 0, 1), NULL, 10);
    bool ok =
        strcmp(PQgetvalue(row, 0, 2), "draft") == 0 || strcmp(PQgetvalue(row, 0, 2), "review") == 0;
    PQclear(row);
    if (!ok) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 409, "conflict", "status",
                        "only a draft or an FAQ in review can be approved");
        return;
    }
    /* the department's reviewers, else supervisors and administrators (faq_review.c) */
    if (faq_review_check_approver(self, request, reply, m->id) < 0)
        return;
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->id);
    const char *params[] = {id_text, login};
    PGresult *res = ncc_db_exec(self->db,
                                "UPDATE faqs SET status = 'published', approved_by = $2, "
                                "approved_at = now(), version = version + 1, updated_at = now(), "
                                "updated_by = $2 WHERE id = $1::bigint RETURNING version",
                                2, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "approve FAQ");
        return;
    }
    int64_t version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    s_finish(self, request, reply, m->id, number, "approved", "published", version, login,
             "approve FAQ");
}

static void s_on_delete(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__DeleteFaq *m = (const Ncc__Faq__DeleteFaq *)request->message;
    char login[80];
    faq_actor_login(self, request, login, sizeof login);
    PGresult *row = s_lock(self, reply, m->has_id ? m->id : 0, m->has_version, m->version);
    if (!row)
        return;
    int64_t number = strtoll(PQgetvalue(row, 0, 1), NULL, 10);
    PQclear(row);
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->id);
    const char *params[] = {id_text};
    /* the answer is the FAQ as it was */
    PGresult *before = ncc_db_exec(
        self->db, "SELECT " FAQ_COLUMNS " FROM faqs WHERE id = $1::bigint", 1, params, NULL);
    if (!before || s_version(self, m->id, "deleted", request, login) < 0 ||
        ncc_db_run(self->db, "DELETE FROM faqs WHERE id = $1::bigint", 1, params) < 0 ||
        s_event(self, request, m->id, number, "deleted", "", m->version) < 0 ||
        faq_touch_index(self) < 0) {
        PQclear(before);
        faq_reply_db_error(self, reply, "delete FAQ");
        return;
    }
    if (s_commit(self) < 0) {
        PQclear(before);
        faq_reply_db_error(self, reply, "commit");
        return;
    }
    Ncc__Faq__Faq faq;
    faq_from_row(self, before, 0, &faq);
    ncc_reply_message(reply, &faq.base);
    PQclear(before);
}

static void s_on_versions(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__ListFaqVersions *m = (const Ncc__Faq__ListFaqVersions *)request->message;
    if (!m->has_id || m->id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
        return;
    }
    int64_t offset, limit;
    faq_paging(m->has_page, m->page, m->has_per_page, m->per_page, &offset, &limit);
    char id_text[24], off[24], lim[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->id);
    snprintf(off, sizeof off, "%" PRId64, offset);
    snprintf(lim, sizeof lim, "%" PRId64, limit);
    const char *params[] = {id_text, off, lim};
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT faq_id, version, number, question, answer, department_code, category, "
        "visibility, keywords, status, op, actor_id, actor_login, " FAQ_RFC3339(
            "at") ", count(*) OVER () FROM faq_versions WHERE faq_id = $1::bigint ORDER BY id "
                  "DESC OFFSET $2::bigint LIMIT $3::bigint",
        3, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "list versions");
        return;
    }
    int rows = PQntuples(res);
    if (rows == 0 && offset == 0) {
        PQclear(res);
        ncc_reply_error(reply, 404, "not_found", "id", "no such FAQ");
        return;
    }
    Ncc__Faq__FaqVersionList list = NCC__FAQ__FAQ_VERSION_LIST__INIT;
    Ncc__Faq__FaqVersion *items = calloc((size_t)rows + 1, sizeof *items);
    Ncc__Faq__FaqVersion **ptrs = calloc((size_t)rows + 1, sizeof *ptrs);
    if (!items || !ptrs) {
        free(items);
        free(ptrs);
        PQclear(res);
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    for (int i = 0; i < rows; i++) {
        Ncc__Faq__FaqVersion *v = &items[i];
        ncc__faq__faq_version__init(v);
        v->has_faq_id = v->has_version = v->has_number = true;
        v->faq_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        v->version = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        v->number = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        v->question = PQgetvalue(res, i, 3);
        v->answer = PQgetvalue(res, i, 4);
        v->department_code = PQgetvalue(res, i, 5);
        v->category = PQgetvalue(res, i, 6);
        v->visibility = PQgetvalue(res, i, 7);
        v->keywords = PQgetvalue(res, i, 8);
        v->status = PQgetvalue(res, i, 9);
        v->op = PQgetvalue(res, i, 10);
        v->actor_id = PQgetvalue(res, i, 11);
        v->actor_login = PQgetvalue(res, i, 12);
        v->at = PQgetvalue(res, i, 13);
        ptrs[i] = v;
    }
    list.items = ptrs;
    list.n_items = (size_t)rows;
    list.has_total = true;
    list.total = rows ? strtoll(PQgetvalue(res, 0, 14), NULL, 10) : 0;
    ncc_reply_message(reply, &list.base);
    free(items);
    free(ptrs);
    PQclear(res);
}

/* ---- the object --------------------------------------------------------------------------- */

faq_t *faq_new(ncc_service_t *service, const faq_settings_t *settings)
{
    faq_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->service = service;
    self->db = ncc_service_db(service);
    self->settings = settings;
    self->analyzer = faq_analyzer_new(settings->mecab_dicdir);
    if (!self->analyzer) {
        ncc_error("faq.mecab",
                  "MeCab could not start with the dictionary %s (install "
                  "mecab-ipadic-utf8, or set NCC_FAQ_MECAB_DICDIR)",
                  settings->mecab_dicdir && *settings->mecab_dicdir ? settings->mecab_dicdir
                                                                    : "of mecabrc");
        free(self);
        return NULL;
    }
    self->logins = zhashx_new();
    self->rate = zhashx_new();
    static const char *const kinds[] = {"departments", "faq-classes", NULL};
    self->masters = ncc_masters_cache_new(service, kinds);
    if (!self->logins || !self->rate || !self->masters) {
        faq_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->logins, s_free_string);
    zhashx_set_destructor(self->rate, s_free_string);
    ncc_service_on(service, &ncc__faq__list_faqs__descriptor, NCC_ROLES_ALL, s_on_list, self);
    ncc_service_on(service, &ncc__faq__get_faq__descriptor, NCC_ROLES_ALL, s_on_get, self);
    ncc_service_on(service, &ncc__faq__create_faq__descriptor, S_EDITORS, s_on_create, self);
    ncc_service_on(service, &ncc__faq__update_faq__descriptor, S_EDITORS, s_on_update, self);
    ncc_service_on(service, &ncc__faq__delete_faq__descriptor, S_EDITORS, s_on_delete, self);
    ncc_service_on(service, &ncc__faq__approve_faq__descriptor, S_EDITORS | NCC_ROLE_STAFF,
                   s_on_approve, self); /* staff: department reviewers (faq_review.c) */
    ncc_service_on(service, &ncc__faq__list_faq_versions__descriptor, NCC_ROLES_USERS,
                   s_on_versions, self);
    faq_csv_register(self);
    faq_extra_register(self);
    faq_clicks_register(self);
    faq_review_register(self);
    ncc_service_on_ready(service, s_on_ready, self);
    ncc_service_every(service, settings->index_check_ms > 0 ? settings->index_check_ms : 1000,
                      s_check_index, self);
    return self;
}

void faq_destroy(faq_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    faq_t *self = *self_p;
    faq_views_stop(self);
    faq_clicks_stop(self);
    faq_index_destroy(&self->index);
    faq_analyzer_destroy(&self->analyzer);
    ncc_masters_cache_destroy(&self->masters);
    zhashx_destroy(&self->logins);
    zhashx_destroy(&self->rate);
    free(self);
    *self_p = NULL;
}
