/* faq_review: department reviewers (所管課の確認者; spec 6.2(5), issue 6).
 * When the department (所管課) of an FAQ has reviewers, only one of them may
 * approve it, whatever their role (ward staff included); when it has none,
 * or the FAQ has no department, supervisors and administrators approve as
 * before. A staff reviewer reads the drafts and FAQs in review of the
 * departments they review (their approval queue). Administrators replace a
 * department's list by logins, which are checked with ncc-directory
 * (ListUsers, asked on the administrator's behalf) and stored with the user
 * ids the approval compares. docs/faq.md "States". */
#include "faq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "directory.pb-c.h"
#include "ncc/roles.h"

#define S_APPROVERS     (NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN)
#define S_MAX_REVIEWERS 50
#define S_LOGIN_MAX     64
#define S_TIMEOUT_MS    2000

/* The actor's user id; 0 for a daemon ("svc:...") or no actor. */
static int64_t s_actor_user(const ncc_request_t *request)
{
    ncc_actor_t actor = ncc_request_actor(request);
    if (!actor.id || !*actor.id)
        return 0;
    char *end = NULL;
    long long id = strtoll(actor.id, &end, 10);
    return end && end != actor.id && !*end && id > 0 ? (int64_t)id : 0;
}

/* A login as ncc-directory allows them: 1-64 of A-Z a-z 0-9 . _ @ - */
static bool s_login_ok(const char *login)
{
    size_t n = 0;
    for (const char *p = login; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '@' || c == '-';
        if (!ok)
            return false;
    }
    return n >= 1 && n <= S_LOGIN_MAX;
}

/* The name of a department for messages (the masters cache's), else its code. */
static const char *s_department_name(faq_t *self, const char *code)
{
    const Ncc__Directory__MasterValues *d =
        code && *code ? ncc_masters_cache_find(self->masters, "departments", code) : NULL;
    return d && d->name && *d->name ? d->name : code;
}

/* ---- the rule ------------------------------------------------------------------------------ */

int faq_review_check_approver(faq_t *self, const ncc_request_t *request, ncc_reply_t *reply,
                              int64_t id)
{
    ncc_actor_t actor = ncc_request_actor(request);
    char id_text[24], user_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    snprintf(user_text, sizeof user_text, "%" PRId64, s_actor_user(request));
    const char *params[] = {id_text, user_text};
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT coalesce(f.department_id, 0), f.department_code, count(r.user_id), "
        "coalesce(bool_or(r.user_id = $2::bigint), false), coalesce(string_agg(r.login, ', ' "
        "ORDER BY lower(r.login)), '') FROM faqs f LEFT JOIN reviewers r ON r.department_id = "
        "f.department_id WHERE f.id = $1::bigint GROUP BY f.id",
        2, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "read reviewers");
        return -EIO;
    }
    if (PQntuples(res) == 0) { /* the caller holds the row's lock: not expected */
        PQclear(res);
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 404, "not_found", "id", "no such FAQ");
        return -ENOENT;
    }
    int64_t department_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    long reviewers = strtol(PQgetvalue(res, 0, 2), NULL, 10);
    bool is_reviewer = PQgetvalue(res, 0, 3)[0] == 't';
    if ((reviewers > 0 && is_reviewer) || (reviewers == 0 && (actor.roles & S_APPROVERS))) {
        PQclear(res);
        return 0;
    }
    const char *name = s_department_name(self, PQgetvalue(res, 0, 1));
    char department[160];
    if (name && *name)
        snprintf(department, sizeof department, "%s", name);
    else
        snprintf(department, sizeof department, "department %" PRId64, department_id);
    ncc_db_rollback(self->db);
    if (reviewers > 0)
        ncc_reply_error(reply, 403, "forbidden", "department_id",
                        "this FAQ is approved by the reviewers of its department, %s (%s): "
                        "only one of them may approve it",
                        department, PQgetvalue(res, 0, 4));
    else if (department_id > 0)
        ncc_reply_error(reply, 403, "forbidden", NULL,
                        "the department of this FAQ, %s, has no reviewers: a supervisor or an "
                        "administrator approves it",
                        department);
    else
        ncc_reply_error(reply, 403, "forbidden", NULL,
                        "this FAQ has no department: a supervisor or an administrator approves it");
    PQclear(res);
    return -EPERM;
}

bool faq_review_may_read(faq_t *self, const ncc_request_t *request, int64_t id)
{
    int64_t user = s_actor_user(request);
    if (!(ncc_request_actor(request).roles & NCC_ROLE_STAFF) || user <= 0 || id <= 0)
        return false;
    char id_text[24], user_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    snprintf(user_text, sizeof user_text, "%" PRId64, user);
    const char *params[] = {id_text, user_text};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT 1 FROM faqs f JOIN reviewers r ON r.department_id = "
                                "f.department_id WHERE f.id = $1::bigint AND r.user_id = "
                                "$2::bigint AND f.status IN ('draft', 'review')",
                                2, params, NULL);
    bool ok = res && PQntuples(res) > 0;
    PQclear(res);
    return ok;
}

bool faq_review_list(faq_t *self, const ncc_request_t *request, const Ncc__Faq__ListFaqs *m,
                     int64_t department_id, int64_t offset, int64_t limit, ncc_reply_t *reply)
{
    if (!(ncc_request_actor(request).roles & NCC_ROLE_STAFF) || !m->status ||
        (strcmp(m->status, "review") != 0 && strcmp(m->status, "draft") != 0))
        return false;
    char user[24], dep[24], off[24], lim[24];
    snprintf(user, sizeof user, "%" PRId64, s_actor_user(request));
    snprintf(dep, sizeof dep, "%" PRId64, department_id);
    snprintf(off, sizeof off, "%" PRId64, offset);
    snprintf(lim, sizeof lim, "%" PRId64, limit);
    const char *params[] = {
        m->status,
        user,
        m->visibility && *m->visibility ? m->visibility : NULL,
        m->category && *m->category ? m->category : NULL,
        dep,
        off,
        lim,
    };
#define S_QUEUE_WHERE                                                                              \
    " FROM faqs WHERE status = $1 AND department_id IN (SELECT department_id FROM reviewers "      \
    "WHERE user_id = $2::bigint) AND ($3::text IS NULL OR visibility = $3) AND ($4::text IS NULL " \
    "OR category = $4) AND ($5::bigint = 0 OR department_id = $5::bigint)"
    PGresult *count = ncc_db_exec(self->db, "SELECT count(*)" S_QUEUE_WHERE, 5, params, NULL);
    PGresult *res = count ? ncc_db_exec(self->db,
                                        "SELECT " FAQ_COLUMNS S_QUEUE_WHERE
                                        " ORDER BY number OFFSET $6::bigint LIMIT $7::bigint",
                                        7, params, NULL)
                          : NULL;
#undef S_QUEUE_WHERE
    if (!res) {
        PQclear(count);
        faq_reply_db_error(self, reply, "list the FAQs to review");
        return true;
    }
    int rows = PQntuples(res);
    Ncc__Faq__FaqList list = NCC__FAQ__FAQ_LIST__INIT;
    Ncc__Faq__Faq *items = calloc((size_t)rows + 1, sizeof *items);
    Ncc__Faq__Faq **ptrs = calloc((size_t)rows + 1, sizeof *ptrs);
    if (!items || !ptrs) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < rows; i++) {
        faq_from_row(self, res, i, &items[i]);
        ptrs[i] = &items[i];
    }
    list.items = ptrs;
    list.n_items = (size_t)rows;
    list.has_total = true;
    list.total = PQntuples(count) ? strtoll(PQgetvalue(count, 0, 0), NULL, 10) : 0;
    ncc_reply_message(reply, &list.base);
out:
    free(items);
    free(ptrs);
    PQclear(res);
    PQclear(count);
    return true;
}

/* ---- the lists ----------------------------------------------------------------------------- */

/* Answers the reviewers of every department that has some (department_id
 * 0), or of one: a FaqReviewerList, or with `single` the department's
 * FaqDepartmentReviewers (its users possibly empty). */
static void s_reply_reviewers(faq_t *self, ncc_reply_t *reply, int64_t department_id, bool single)
{
    char dep[24];
    snprintf(dep, sizeof dep, "%" PRId64, department_id);
    const char *params[] = {dep};
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT department_id, user_id, login, added_by, " FAQ_RFC3339(
            "added_at") " FROM reviewers WHERE ($1::bigint = 0 OR department_id = $1::bigint) "
                        "ORDER BY department_id, lower(login)",
        1, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "read reviewers");
        return;
    }
    int rows = PQntuples(res);
    Ncc__Faq__FaqDepartmentReviewers *deps = calloc((size_t)rows + 1, sizeof *deps);
    Ncc__Faq__FaqDepartmentReviewers **dep_ptrs = calloc((size_t)rows + 1, sizeof *dep_ptrs);
    Ncc__Faq__FaqReviewer *users = calloc((size_t)rows + 1, sizeof *users);
    Ncc__Faq__FaqReviewer **user_ptrs = calloc((size_t)rows + 1, sizeof *user_ptrs);
    if (!deps || !dep_ptrs || !users || !user_ptrs) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    size_t n = 0;
    for (int i = 0; i < rows; i++) {
        int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        if (n == 0 || deps[n - 1].department_id != id) {
            ncc__faq__faq_department_reviewers__init(&deps[n]);
            deps[n].has_department_id = true;
            deps[n].department_id = id;
            deps[n].users = &user_ptrs[i];
            dep_ptrs[n] = &deps[n];
            n++;
        }
        Ncc__Faq__FaqReviewer *u = &users[i];
        ncc__faq__faq_reviewer__init(u);
        u->has_user_id = true;
        u->user_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        u->login = PQgetvalue(res, i, 2);
        u->added_by = PQgetvalue(res, i, 3);
        u->added_at = PQgetvalue(res, i, 4);
        user_ptrs[i] = u;
        deps[n - 1].n_users++;
    }
    if (department_id > 0 && n == 0) { /* the department asked for, without reviewers */
        ncc__faq__faq_department_reviewers__init(&deps[0]);
        deps[0].has_department_id = true;
        deps[0].department_id = department_id;
        dep_ptrs[0] = &deps[0];
        n = 1;
    }
    if (single) {
        ncc_reply_message(reply, &deps[0].base);
    } else {
        Ncc__Faq__FaqReviewerList list = NCC__FAQ__FAQ_REVIEWER_LIST__INIT;
        list.items = dep_ptrs;
        list.n_items = n;
        ncc_reply_message(reply, &list.base);
    }
out:
    free(deps);
    free(dep_ptrs);
    free(users);
    free(user_ptrs);
    PQclear(res);
}

static void s_on_list(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    const Ncc__Faq__ListFaqReviewers *m = (const Ncc__Faq__ListFaqReviewers *)request->message;
    if (m->has_department_id && m->department_id < 0) {
        ncc_reply_error(reply, 422, "invalid_field", "department_id",
                        "department_id must be a department's id");
        return;
    }
    s_reply_reviewers(arg, reply, m->has_department_id ? m->department_id : 0, false);
}

/* Checks with ncc-directory, on the requester's behalf, that department `id`
 * exists and is active: 0, or -1 after answering. */
static int s_department_check(faq_t *self, const ncc_request_t *request, ncc_reply_t *reply,
                              int64_t id)
{
    Ncc__Directory__GetDepartment get = NCC__DIRECTORY__GET_DEPARTMENT__INIT;
    get.has_id = true;
    get.id = id;
    ncc_ctx_t ctx = ncc_request_ctx(request);
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    ncc_rpc_client_t *client = ncc_service_client(self->service, "directory");
    int rc = client ? ncc_rpc_call_typed(client, &ctx, &get.base,
                                         &ncc__directory__department__descriptor, S_TIMEOUT_MS,
                                         &answer, &error)
                    : -ENOTCONN;
    const Ncc__Directory__Department *d = (const Ncc__Directory__Department *)answer;
    int out = -1;
    if (rc == 0 && d && d->has_active && !d->active)
        ncc_reply_error(reply, 422, "invalid_field", "department_id",
                        "the department %s (%s) is retired", d->name ? d->name : "",
                        d->code ? d->code : "");
    else if (rc == 0 && d)
        out = 0;
    else if (rc == -EPROTO && error && error->status == 404)
        ncc_reply_error(reply, 422, "invalid_field", "department_id",
                        "no department has the id %" PRId64, id);
    else
        ncc_reply_error(reply, 503, "service_unavailable", NULL,
                        "ncc-directory could not be asked about the department: try again");
    if (answer)
        protobuf_c_message_free_unpacked(answer, NULL);
    if (error)
        ncc__error__free_unpacked(error, NULL);
    return out;
}

/* The active user whose login is `login` (any case), asked of ncc-directory
 * on the requester's (an administrator's) behalf: 0 with *ret_id and the
 * login as the directory spells it; -ENOENT when there is none, -EPERM when
 * they hold none of the roles that approve, -EIO when the directory did not
 * answer. */
static int s_find_user(faq_t *self, const ncc_request_t *request, const char *login,
                       int64_t *ret_id, char *ret_login, size_t login_len)
{
    Ncc__Directory__ListUsers list = NCC__DIRECTORY__LIST_USERS__INIT;
    list.q = (char *)login;
    list.has_active = list.active = true;
    list.has_per_page = true;
    list.per_page = 500;
    ncc_ctx_t ctx = ncc_request_ctx(request);
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    ncc_rpc_client_t *client = ncc_service_client(self->service, "directory");
    int rc = client ? ncc_rpc_call_typed(client, &ctx, &list.base,
                                         &ncc__directory__user_list__descriptor, S_TIMEOUT_MS,
                                         &answer, &error)
                    : -ENOTCONN;
    const Ncc__Directory__UserList *users = (const Ncc__Directory__UserList *)answer;
    int out = rc == 0 && users ? -ENOENT : -EIO;
    for (size_t i = 0; out == -ENOENT && i < users->n_items; i++) {
        const Ncc__Directory__User *u = users->items[i];
        if (!u->login || strcasecmp(u->login, login) != 0 || !u->has_id)
            continue;
        out = -EPERM;
        for (size_t r = 0; r < u->n_roles; r++)
            if (ncc_role_parse(u->roles[r]) & (S_APPROVERS | NCC_ROLE_STAFF))
                out = 0;
        if (out == 0) {
            *ret_id = u->id;
            snprintf(ret_login, login_len, "%s", u->login);
        }
    }
    if (answer)
        protobuf_c_message_free_unpacked(answer, NULL);
    if (error)
        ncc__error__free_unpacked(error, NULL);
    return out;
}

static void s_on_put(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__PutFaqReviewers *m = (const Ncc__Faq__PutFaqReviewers *)request->message;
    if (!m->has_department_id || m->department_id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "department_id",
                        "department_id is required (a department's id)");
        return;
    }
    if (m->n_users == 0 || m->n_users > S_MAX_REVIEWERS) {
        ncc_reply_error(reply, 422, "invalid_field", "users",
                        "users holds the logins of 1 to %d reviewers (to remove every "
                        "reviewer, send the method delete to /api/v1/faq-reviewers/{id})",
                        S_MAX_REVIEWERS);
        return;
    }
    char field[32];
    for (size_t i = 0; i < m->n_users; i++) {
        snprintf(field, sizeof field, "users[%zu]", i);
        if (!s_login_ok(m->users[i])) {
            ncc_reply_error(reply, 422, "invalid_field", field,
                            "a login is 1 to %d of A-Z a-z 0-9 . _ @ -", S_LOGIN_MAX);
            return;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcasecmp(m->users[i], m->users[j]) == 0) {
                ncc_reply_error(reply, 422, "invalid_field", field, "%s is named twice",
                                m->users[i]);
                return;
            }
        }
    }
    if (s_department_check(self, request, reply, m->department_id) < 0)
        return;
    int64_t ids[S_MAX_REVIEWERS];
    char logins[S_MAX_REVIEWERS][S_LOGIN_MAX + 1];
    for (size_t i = 0; i < m->n_users; i++) {
        snprintf(field, sizeof field, "users[%zu]", i);
        int rc = s_find_user(self, request, m->users[i], &ids[i], logins[i], sizeof logins[i]);
        if (rc == -ENOENT) {
            ncc_reply_error(reply, 422, "invalid_field", field, "no active user has the login %s",
                            m->users[i]);
            return;
        }
        if (rc == -EPERM) {
            ncc_reply_error(reply, 422, "invalid_field", field,
                            "%s cannot approve: a reviewer is ward staff, a supervisor or an "
                            "administrator",
                            m->users[i]);
            return;
        }
        if (rc < 0) {
            ncc_reply_error(reply, 503, "service_unavailable", NULL,
                            "ncc-directory could not be asked about the logins: try again");
            return;
        }
    }
    /* the new list as arrays: {ids} and {logins} (logins need no quoting) */
    char id_array[S_MAX_REVIEWERS * 21 + 3], login_array[S_MAX_REVIEWERS * (S_LOGIN_MAX + 1) + 3];
    size_t ia = 0, la = 0;
    id_array[ia++] = '{';
    login_array[la++] = '{';
    for (size_t i = 0; i < m->n_users; i++) {
        ia += (size_t)snprintf(id_array + ia, sizeof id_array - ia, "%s%" PRId64, i ? "," : "",
                               ids[i]);
        la += (size_t)snprintf(login_array + la, sizeof login_array - la, "%s%s", i ? "," : "",
                               logins[i]);
    }
    snprintf(id_array + ia, sizeof id_array - ia, "}");
    snprintf(login_array + la, sizeof login_array - la, "}");
    char dep[24], login[80];
    snprintf(dep, sizeof dep, "%" PRId64, m->department_id);
    faq_actor_login(self, request, login, sizeof login);
    const char *params[] = {dep, id_array, login_array, login};
    if (ncc_db_begin(self->db) < 0 ||
        ncc_db_run(self->db,
                   "DELETE FROM reviewers WHERE department_id = $1::bigint AND NOT (user_id = "
                   "ANY ($2::bigint[]))",
                   2, params) < 0 ||
        ncc_db_run(self->db,
                   "INSERT INTO reviewers (department_id, user_id, login, added_by) SELECT "
                   "$1::bigint, u.id, u.login, $4 FROM unnest($2::bigint[], $3::text[]) AS "
                   "u(id, login) ON CONFLICT (department_id, user_id) DO UPDATE SET login = "
                   "excluded.login",
                   4, params) < 0) {
        faq_reply_db_error(self, reply, "write reviewers");
        return;
    }
    if (ncc_db_commit(self->db) < 0) {
        faq_reply_db_error(self, reply, "commit");
        return;
    }
    ncc_info("faq.reviewers", "department %" PRId64 ": reviewers %s (by %s)", m->department_id,
             login_array, login);
    s_reply_reviewers(self, reply, m->department_id, true);
}

static void s_on_delete(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__DeleteFaqReviewers *m = (const Ncc__Faq__DeleteFaqReviewers *)request->message;
    if (!m->has_department_id || m->department_id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "department_id",
                        "department_id is required (a department's id)");
        return;
    }
    char dep[24], login[80];
    snprintf(dep, sizeof dep, "%" PRId64, m->department_id);
    faq_actor_login(self, request, login, sizeof login);
    const char *params[] = {dep};
    if (ncc_db_run(self->db, "DELETE FROM reviewers WHERE department_id = $1::bigint", 1, params) <
        0) {
        faq_reply_db_error(self, reply, "remove reviewers");
        return;
    }
    ncc_info("faq.reviewers", "department %" PRId64 ": every reviewer removed (by %s)",
             m->department_id, login);
    s_reply_reviewers(self, reply, m->department_id, true);
}

void faq_review_register(faq_t *self)
{
    ncc_service_on(self->service, &ncc__faq__list_faq_reviewers__descriptor,
                   S_APPROVERS | NCC_ROLE_STAFF, s_on_list, self);
    ncc_service_on(self->service, &ncc__faq__put_faq_reviewers__descriptor, NCC_ROLE_ADMIN,
                   s_on_put, self);
    ncc_service_on(self->service, &ncc__faq__delete_faq_reviewers__descriptor, NCC_ROLE_ADMIN,
                   s_on_delete, self);
}
