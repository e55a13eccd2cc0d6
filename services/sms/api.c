/* api: the requests ncc-sms answers on its loop: templates (admin CRUD and
 * history), preview and count, SendSms (stored first, idempotent), reads,
 * opt-outs, the HTTP provider's receipts and the public survey. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncc/crypto.h"
#include "ncc/log.h"
#include "ncc/roles.h"
#include "sms.h"
#include "text.h"

#define S_TEXT(res, r, i) (PQgetisnull(res, r, i) ? NULL : PQgetvalue(res, r, i))

static void s_db_error(sms_t *self, ncc_reply_t *reply, const char *what)
{
    ncc_reply_db_error(self->db, reply, what);
}

static void s_fill_count(Ncc__Sms__Count *out, const sms_count_t *c, int max_parts)
{
    ncc__sms__count__init(out);
    out->encoding = c->gsm7 ? "gsm7" : "ucs2";
    out->has_characters = out->has_parts = out->has_part_limit = out->has_per_part = true;
    out->has_remaining = out->has_within_limit = true;
    out->characters = c->characters;
    out->parts = c->parts;
    out->part_limit = max_parts;
    out->per_part = c->per_part;
    out->remaining = c->remaining;
    out->within_limit = c->parts <= max_parts;
}

/* ---- templates ---------------------------------------------------------------------------- */

#define S_TEMPLATE_COLUMNS                                                                         \
    "id, name, body, urgent, active, version, " SMS_RFC3339("updated_at") ", updated_by"

typedef struct {
    Ncc__Sms__Template t;
    Ncc__Sms__Count count;
    char **vars;
} s_template_t;

static void s_template_fill(sms_t *self, PGresult *res, int r, s_template_t *out)
{
    Ncc__Sms__Template *t = &out->t;
    ncc__sms__template__init(t);
    t->has_id = t->has_urgent = t->has_active = t->has_version = true;
    t->id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
    t->name = PQgetvalue(res, r, 1);
    t->body = PQgetvalue(res, r, 2);
    t->urgent = PQgetvalue(res, r, 3)[0] == 't';
    t->active = PQgetvalue(res, r, 4)[0] == 't';
    t->version = strtoll(PQgetvalue(res, r, 5), NULL, 10);
    t->updated_at = PQgetvalue(res, r, 6);
    t->updated_by = PQgetvalue(res, r, 7);
    out->vars = NULL;
    if (sms_template_variables(t->body, &out->vars) == 0) {
        size_t n = 0;
        while (out->vars[n])
            n++;
        t->n_variables = n;
        t->variables = out->vars;
    }
    char *empty = sms_template_render(t->body, NULL, NULL, 0, NULL);
    sms_count_t c;
    if (empty && sms_count(empty, &c) == 0) {
        s_fill_count(&out->count, &c, self->settings->max_parts);
        t->count = &out->count;
    }
    free(empty);
}

static void s_reply_templates(sms_t *self, ncc_reply_t *reply, PGresult *res, bool one)
{
    int n = PQntuples(res);
    s_template_t *items = calloc((size_t)n + 1, sizeof *items);
    Ncc__Sms__Template **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    if (!items || !ptrs) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        s_template_fill(self, res, i, &items[i]);
        ptrs[i] = &items[i].t;
    }
    if (one) {
        ncc_reply_message(reply, &items[0].t.base);
    } else {
        Ncc__Sms__TemplateList list = NCC__SMS__TEMPLATE_LIST__INIT;
        list.n_items = (size_t)n;
        list.items = ptrs;
        list.has_total = true;
        list.total = n;
        ncc_reply_message(reply, &list.base);
    }
out:
    for (int i = 0; items && i < n; i++)
        sms_strv_free(items[i].vars);
    free(items);
    free(ptrs);
}

static void s_on_list_templates(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    sms_t *self = arg;
    const Ncc__Sms__ListTemplates *m = (const Ncc__Sms__ListTemplates *)request->message;
    bool all = m->has_include_inactive && m->include_inactive;
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT " S_TEMPLATE_COLUMNS
                                " FROM templates WHERE active OR $1::boolean ORDER BY name, id",
                                1, (const char *[]){all ? "true" : "false"}, NULL);
    if (!res) {
        s_db_error(self, reply, "list templates");
        return;
    }
    s_reply_templates(self, reply, res, false);
    PQclear(res);
}

static void s_reply_template(sms_t *self, ncc_reply_t *reply, int64_t id)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    PGresult *res =
        ncc_db_exec(self->db, "SELECT " S_TEMPLATE_COLUMNS " FROM templates WHERE id = $1::bigint",
                    1, (const char *[]){id_text}, NULL);
    if (!res) {
        s_db_error(self, reply, "get template");
        return;
    }
    if (PQntuples(res) == 0)
        ncc_reply_error(reply, 404, "not_found", "id", "no template %" PRId64, id);
    else
        s_reply_templates(self, reply, res, true);
    PQclear(res);
}

static void s_on_get_template(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    const Ncc__Sms__GetTemplate *m = (const Ncc__Sms__GetTemplate *)request->message;
    s_reply_template(arg, reply, m->has_id ? m->id : 0);
}

/* Checks a template's name and body; false after answering 422. */
static bool s_template_ok(sms_t *self, const char *name, const char *body, ncc_reply_t *reply)
{
    if (name && (strlen(name) == 0 || strlen(name) > 300)) {
        ncc_reply_error(reply, 422, "invalid_field", "name", "name is 1 to 100 characters");
        return false;
    }
    if (!body)
        return true;
    if (strlen(body) == 0 || strlen(body) > SMS_BODY_MAX_BYTES) {
        ncc_reply_error(reply, 422, "invalid_field", "body", "body is 1 to %d bytes",
                        SMS_BODY_MAX_BYTES);
        return false;
    }
    char *empty = sms_template_render(body, NULL, NULL, 0, NULL);
    sms_count_t c;
    int rc = empty ? sms_count(empty, &c) : -ENOMEM;
    free(empty);
    if (rc < 0 || c.parts > self->settings->max_parts) {
        ncc_reply_error(reply, 422, "too_long", "body",
                        "the fixed text alone needs %d parts; the limit is %d (NCC_SMS_MAX_PARTS)",
                        rc < 0 ? 0 : c.parts, self->settings->max_parts);
        return false;
    }
    /* A '{' that does not open a well-formed variable is most likely a typo. */
    for (const char *p = strchr(body, '{'); p; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        if (!end || !sms_var_name_ok(p + 1, (size_t)(end - p - 1))) {
            ncc_reply_error(reply, 422, "invalid_field", "body",
                            "a variable is {name} with a-z, 0-9 and _ (at most 40)");
            return false;
        }
    }
    return true;
}

static int s_template_version_row(sms_t *self, const char *id_text, const char *actor)
{
    return ncc_db_run(self->db,
                      "INSERT INTO template_versions (template_id, version, name, body, urgent, "
                      "active, changed_by) SELECT id, version, name, body, urgent, active, $2 FROM "
                      "templates WHERE id = $1::bigint",
                      2, (const char *[]){id_text, actor});
}

static void s_on_create_template(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    sms_t *self = arg;
    const Ncc__Sms__CreateTemplate *m = (const Ncc__Sms__CreateTemplate *)request->message;
    if (!m->name || !m->body) {
        ncc_reply_error(reply, 422, "invalid_field", m->name ? "body" : "name",
                        "name and body are required");
        return;
    }
    if (!s_template_ok(self, m->name, m->body, reply))
        return;
    ncc_actor_t actor = ncc_request_actor(request);
    char sqlstate[6];
    if (ncc_db_begin(self->db) < 0) {
        s_db_error(self, reply, "create template");
        return;
    }
    PGresult *res = ncc_db_exec(
        self->db,
        "INSERT INTO templates (name, body, urgent, updated_by) VALUES ($1, $2, $3::boolean, $4) "
        "RETURNING id",
        4,
        (const char *[]){m->name, m->body, m->has_urgent && m->urgent ? "true" : "false", actor.id},
        sqlstate);
    if (!res) {
        if (strcmp(sqlstate, "23505") == 0) {
            ncc_db_rollback(self->db);
            ncc_reply_error(reply, 409, "conflict", "name", "a template with that name exists");
        } else {
            s_db_error(self, reply, "create template");
        }
        return;
    }
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    PQclear(res);
    if (s_template_version_row(self, id_text, actor.id) < 0 || ncc_db_commit(self->db) < 0) {
        s_db_error(self, reply, "create template");
        return;
    }
    s_reply_template(self, reply, id);
}

static void s_on_update_template(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    sms_t *self = arg;
    const Ncc__Sms__UpdateTemplate *m = (const Ncc__Sms__UpdateTemplate *)request->message;
    if (!m->has_version) {
        ncc_reply_error(reply, 422, "invalid_field", "version", "version is required");
        return;
    }
    if (!s_template_ok(self, m->name, m->body, reply))
        return;
    ncc_actor_t actor = ncc_request_actor(request);
    char id_text[24], version[24], sqlstate[6];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->has_id ? m->id : 0);
    snprintf(version, sizeof version, "%" PRId64, m->version);
    if (ncc_db_begin(self->db) < 0) {
        s_db_error(self, reply, "update template");
        return;
    }
    PGresult *res = ncc_db_exec(
        self->db,
        "UPDATE templates SET name = coalesce($3, name), body = coalesce($4, body), urgent = "
        "coalesce($5::boolean, urgent), active = coalesce($6::boolean, active), version = version "
        "+ 1, updated_at = now(), updated_by = $7 WHERE id = $1::bigint AND version = $2::bigint "
        "RETURNING id",
        7,
        (const char *[]){id_text, version, m->name, m->body,
                         m->has_urgent ? (m->urgent ? "true" : "false") : NULL,
                         m->has_active ? (m->active ? "true" : "false") : NULL, actor.id},
        sqlstate);
    if (!res) {
        if (strcmp(sqlstate, "23505") == 0) {
            ncc_db_rollback(self->db);
            ncc_reply_error(reply, 409, "conflict", "name", "a template with that name exists");
        } else {
            s_db_error(self, reply, "update template");
        }
        return;
    }
    int n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        ncc_db_rollback(self->db);
        res = ncc_db_exec(self->db, "SELECT 1 FROM templates WHERE id = $1::bigint", 1,
                          (const char *[]){id_text}, NULL);
        bool exists = res && PQntuples(res) > 0;
        PQclear(res);
        if (exists)
            ncc_reply_error(reply, 409, "conflict", "version",
                            "the template changed since version %s: read it again", version);
        else
            ncc_reply_error(reply, 404, "not_found", "id", "no template %s", id_text);
        return;
    }
    if (s_template_version_row(self, id_text, actor.id) < 0 || ncc_db_commit(self->db) < 0) {
        s_db_error(self, reply, "update template");
        return;
    }
    s_reply_template(self, reply, m->id);
}

static void s_on_template_versions(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    sms_t *self = arg;
    const Ncc__Sms__ListTemplateVersions *m =
        (const Ncc__Sms__ListTemplateVersions *)request->message;
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->has_id ? m->id : 0);
    PGresult *res =
        ncc_db_exec(self->db,
                    "SELECT template_id, name, body, urgent, active, version, " SMS_RFC3339(
                        "changed_at") ", changed_by FROM template_versions WHERE "
                                      "template_id = $1::bigint ORDER BY version DESC",
                    1, (const char *[]){id_text}, NULL);
    if (!res) {
        s_db_error(self, reply, "template history");
        return;
    }
    if (PQntuples(res) == 0)
        ncc_reply_error(reply, 404, "not_found", "id", "no template %s", id_text);
    else
        s_reply_templates(self, reply, res, false);
    PQclear(res);
}

/* ---- variables and preview --------------------------------------------------------------- */

/* Checks the variables; false after answering 422. */
static bool s_variables_ok(Ncc__Sms__Variable *const *vars, size_t n, ncc_reply_t *reply)
{
    if (n > 50) {
        ncc_reply_error(reply, 422, "invalid_field", "variables", "at most 50 variables");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = vars[i]->name ? vars[i]->name : "";
        const char *value = vars[i]->value ? vars[i]->value : "";
        if (!sms_var_name_ok(name, strlen(name))) {
            ncc_reply_error(reply, 422, "invalid_field", "variables",
                            "variable %zu: a name is a-z, 0-9 and _ (at most 40)", i + 1);
            return false;
        }
        if (strlen(value) > SMS_VAR_VALUE_MAX * 4) {
            ncc_reply_error(reply, 422, "invalid_field", "variables",
                            "variable %s: at most %d characters", name, SMS_VAR_VALUE_MAX);
            return false;
        }
        for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
            if (*p < 0x20 && *p != '\n') {
                ncc_reply_error(reply, 422, "invalid_field", "variables",
                                "variable %s: control characters are not allowed", name);
                return false;
            }
        }
        for (size_t j = 0; j < i; j++) {
            if (vars[j]->name && strcmp(vars[j]->name, name) == 0) {
                ncc_reply_error(reply, 422, "invalid_field", "variables", "variable %s given twice",
                                name);
                return false;
            }
        }
    }
    return true;
}

/* The template's body, urgent flag and active flag, or NULL (answered). */
static char *s_template_body(sms_t *self, int64_t id, bool *ret_urgent, ncc_reply_t *reply)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT body, urgent, active FROM templates WHERE id = "
                                "$1::bigint",
                                1, (const char *[]){id_text}, NULL);
    if (!res) {
        s_db_error(self, reply, "template");
        return NULL;
    }
    if (PQntuples(res) == 0 || PQgetvalue(res, 0, 2)[0] != 't') {
        ncc_reply_error(reply, 422, "unknown_template", "template_id",
                        PQntuples(res) ? "template %s is retired" : "no template %s", id_text);
        PQclear(res);
        return NULL;
    }
    char *body = strdup(PQgetvalue(res, 0, 0));
    *ret_urgent = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    if (!body)
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
    return body;
}

/* Renders with the request's variables plus one extra pair (may be NULL). */
static char *s_render(const char *body, Ncc__Sms__Variable *const *vars, size_t n,
                      const char *extra_name, const char *extra_value, char ***ret_missing)
{
    const char **names = calloc(n + 2, sizeof *names);
    const char **values = calloc(n + 2, sizeof *values);
    char *text = NULL;
    if (names && values) {
        for (size_t i = 0; i < n; i++) {
            names[i] = vars[i]->name ? vars[i]->name : "";
            values[i] = vars[i]->value ? vars[i]->value : "";
        }
        if (extra_name) {
            names[n] = extra_name;
            values[n] = extra_value;
        }
        text = sms_template_render(body, names, values, n + (extra_name ? 1 : 0), ret_missing);
    }
    free(names);
    free(values);
    return text;
}

static void s_on_preview(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    sms_t *self = arg;
    const Ncc__Sms__PreviewSms *m = (const Ncc__Sms__PreviewSms *)request->message;
    if (!s_variables_ok(m->variables, m->n_variables, reply))
        return;
    char *body = NULL;
    bool urgent = false;
    if (m->body) {
        if (strlen(m->body) > SMS_BODY_MAX_BYTES) {
            ncc_reply_error(reply, 422, "invalid_field", "body", "body is at most %d bytes",
                            SMS_BODY_MAX_BYTES);
            return;
        }
        body = strdup(m->body);
    } else if (m->has_template_id) {
        body = s_template_body(self, m->template_id, &urgent, reply);
        if (!body)
            return;
    } else {
        ncc_reply_error(reply, 422, "invalid_field", "template_id", "a template_id or a body");
        return;
    }
    /* A survey link is as long as the real one will be. */
    char url[600];
    snprintf(url, sizeof url, "%s/s/%064d", self->settings->survey_base_url, 0);
    char **missing = NULL;
    char *text =
        body ? s_render(body, m->variables, m->n_variables, "survey_url", url, &missing) : NULL;
    sms_count_t c;
    if (!text || sms_count(text, &c) < 0) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
    } else {
        Ncc__Sms__Preview p = NCC__SMS__PREVIEW__INIT;
        Ncc__Sms__Count count;
        s_fill_count(&count, &c, self->settings->max_parts);
        p.text = text;
        p.count = &count;
        size_t n = 0;
        while (missing && missing[n])
            n++;
        p.n_missing = n;
        p.missing = missing;
        ncc_reply_message(reply, &p.base);
    }
    sms_strv_free(missing);
    free(text);
    free(body);
}

/* ---- messages -------------------------------------------------------------------------------- */

/* clang-format off */
#define S_SMS_COLUMNS                                                                              \
    "m.id, m.status, m.to_enc, m.template_id, t.name, coalesce(m.record_id, 0), m.body_enc, "     \
    "m.encoding, m.parts, m.urgent, m.attempts, m.error, "                                         \
    SMS_RFC3339("m.created_at") ", m.created_by, "                                                 \
    SMS_RFC3339("m.sent_at") ", "                                                                  \
    SMS_RFC3339("m.delivered_at") ", "                                                             \
    SMS_RFC3339("m.finished_at") ", "                                                              \
    SMS_RFC3339("m.next_attempt_at") ", s.satisfaction, s.resolved, s.comment, "                   \
    SMS_RFC3339("s.answered_at") ", "                                                              \
    SMS_RFC3339("s.expires_at") ", s.message_id IS NOT NULL, "                                     \
    "CASE WHEN s.answered_at IS NOT NULL THEN 'answered' WHEN s.expires_at < now() THEN "          \
    "'expired' ELSE 'open' END"
/* clang-format on */
#define S_SMS_FROM                                                                                 \
    " FROM messages m JOIN templates t ON t.id = m.template_id LEFT JOIN surveys s ON "            \
    "s.message_id = m.id"

typedef struct {
    Ncc__Sms__Sms sms;
    Ncc__Sms__Survey survey;
    char *to, *body;
} s_sms_t;

static void s_sms_fill(sms_t *self, PGresult *res, int r, s_sms_t *out)
{
    Ncc__Sms__Sms *s = &out->sms;
    ncc__sms__sms__init(s);
    s->has_id = s->has_template_id = s->has_record_id = s->has_parts = true;
    s->has_urgent = s->has_attempts = true;
    s->id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
    s->status = PQgetvalue(res, r, 1);
    out->to = self->keyring
                  ? ncc_decrypt(self->keyring, SMS_TO_CONTEXT, PQgetvalue(res, r, 2), NULL)
                  : NULL;
    if (!out->to)
        ncc_warn("sms.undecryptable", "message %" PRId64 ": the destination does not decrypt",
                 s->id);
    s->to = out->to;
    s->template_id = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    s->template_name = PQgetvalue(res, r, 4);
    s->record_id = strtoll(PQgetvalue(res, r, 5), NULL, 10);
    out->body = self->keyring
                    ? ncc_decrypt(self->keyring, SMS_BODY_CONTEXT, PQgetvalue(res, r, 6), NULL)
                    : NULL;
    s->body = out->body;
    s->encoding = PQgetvalue(res, r, 7);
    s->parts = atoi(PQgetvalue(res, r, 8));
    s->urgent = PQgetvalue(res, r, 9)[0] == 't';
    s->attempts = atoi(PQgetvalue(res, r, 10));
    s->error = PQgetvalue(res, r, 11);
    s->created_at = S_TEXT(res, r, 12);
    s->created_by = S_TEXT(res, r, 13);
    s->sent_at = S_TEXT(res, r, 14);
    s->delivered_at = S_TEXT(res, r, 15);
    s->finished_at = S_TEXT(res, r, 16);
    s->next_attempt_at = strcmp(s->status, "queued") == 0 ? S_TEXT(res, r, 17) : NULL;
    if (PQgetvalue(res, r, 23)[0] == 't') {
        Ncc__Sms__Survey *v = &out->survey;
        ncc__sms__survey__init(v);
        v->state = PQgetvalue(res, r, 24);
        if (S_TEXT(res, r, 18)) {
            v->has_satisfaction = v->has_resolved = true;
            v->satisfaction = atoi(PQgetvalue(res, r, 18));
            v->resolved = PQgetvalue(res, r, 19)[0] == 't';
            v->comment = S_TEXT(res, r, 20);
        }
        v->answered_at = S_TEXT(res, r, 21);
        v->expires_at = S_TEXT(res, r, 22);
        v->has_record_id = true;
        v->record_id = s->record_id;
        s->survey = v;
    }
}

/* Answers message `id` (with its history when `history`). */
static void s_reply_sms(sms_t *self, ncc_reply_t *reply, int64_t id, bool history, bool duplicate)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    PGresult *res =
        ncc_db_exec(self->db, "SELECT " S_SMS_COLUMNS S_SMS_FROM " WHERE m.id = $1::bigint", 1,
                    (const char *[]){id_text}, NULL);
    if (!res) {
        s_db_error(self, reply, "get sms");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_reply_error(reply, 404, "not_found", "id", "no SMS %s", id_text);
        return;
    }
    PGresult *events = history ? ncc_db_exec(self->db,
                                             "SELECT status, " SMS_RFC3339("at") ", detail FROM "
                                                                                 "message_events "
                                                                                 "WHERE "
                                                                                 "message_id = "
                                                                                 "$1::bigint "
                                                                                 "ORDER BY id",
                                             1, (const char *[]){id_text}, NULL)
                               : NULL;
    s_sms_t out;
    s_sms_fill(self, res, 0, &out);
    out.sms.has_duplicate = duplicate;
    out.sms.duplicate = duplicate;
    int n = events ? PQntuples(events) : 0;
    Ncc__Sms__SmsEvent *items = calloc((size_t)n + 1, sizeof *items);
    Ncc__Sms__SmsEvent **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    if (items && ptrs) {
        for (int i = 0; i < n; i++) {
            ncc__sms__sms_event__init(&items[i]);
            items[i].status = PQgetvalue(events, i, 0);
            items[i].at = PQgetvalue(events, i, 1);
            items[i].detail = PQgetvalue(events, i, 2);
            ptrs[i] = &items[i];
        }
        out.sms.n_history = (size_t)n;
        out.sms.history = ptrs;
        ncc_reply_message(reply, &out.sms.base);
    } else {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
    }
    free(items);
    free(ptrs);
    free(out.to);
    free(out.body);
    PQclear(events);
    PQclear(res);
}

static void s_on_get_sms(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    const Ncc__Sms__GetSms *m = (const Ncc__Sms__GetSms *)request->message;
    s_reply_sms(arg, reply, m->has_id ? m->id : 0, true, false);
}

static void s_on_list_sms(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    sms_t *self = arg;
    const Ncc__Sms__ListSms *m = (const Ncc__Sms__ListSms *)request->message;
    static const char *const statuses[] = {"queued", "sent", "delivered", "failed", "expired"};
    const char *status = m->status && *m->status ? m->status : NULL;
    bool status_ok = !status;
    for (size_t i = 0; status && i < 5; i++)
        status_ok = status_ok || strcmp(status, statuses[i]) == 0;
    if (!status_ok) {
        ncc_reply_error(reply, 422, "invalid_field", "status",
                        "status is queued, sent, delivered, failed or expired");
        return;
    }
    int per_page = m->has_per_page ? m->per_page : 50;
    int page = m->has_page ? m->page : 1;
    if (per_page < 1 || per_page > 500 || page < 1 || page > 1000000) {
        ncc_reply_error(reply, 422, "invalid_field",
                        per_page < 1 || per_page > 500 ? "per_page" : "page",
                        "per_page is 1 to 500, page 1 or more");
        return;
    }
    char record[24] = "", limit[16], offset[24];
    if (m->has_record_id)
        snprintf(record, sizeof record, "%" PRId64, m->record_id);
    snprintf(limit, sizeof limit, "%d", per_page);
    snprintf(offset, sizeof offset, "%" PRId64, (int64_t)(page - 1) * per_page);
    PGresult *res =
        ncc_db_exec(self->db,
                    "SELECT " S_SMS_COLUMNS ", count(*) OVER ()" S_SMS_FROM
                    " WHERE ($1::bigint IS NULL OR m.record_id = $1::bigint) AND "
                    "($2::text IS NULL OR m.status = $2) ORDER BY m.id DESC LIMIT "
                    "$3::int OFFSET $4::bigint",
                    4, (const char *[]){record[0] ? record : NULL, status, limit, offset}, NULL);
    if (!res) {
        s_db_error(self, reply, "list sms");
        return;
    }
    int n = PQntuples(res);
    s_sms_t *items = calloc((size_t)n + 1, sizeof *items);
    Ncc__Sms__Sms **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    if (items && ptrs) {
        for (int i = 0; i < n; i++) {
            s_sms_fill(self, res, i, &items[i]);
            ptrs[i] = &items[i].sms;
        }
        Ncc__Sms__SmsList list = NCC__SMS__SMS_LIST__INIT;
        list.n_items = (size_t)n;
        list.items = ptrs;
        list.has_total = true;
        list.total = n ? strtoll(PQgetvalue(res, 0, 25), NULL, 10) : 0;
        ncc_reply_message(reply, &list.base);
    } else {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
    }
    for (int i = 0; items && i < n; i++) {
        free(items[i].to);
        free(items[i].body);
    }
    free(items);
    free(ptrs);
    PQclear(res);
}

static bool s_key_ok(const char *key)
{
    size_t len = key ? strlen(key) : 0;
    return len > 0 && len <= 128 &&
           strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == len;
}

/* What makes two SendSms the same request (the idempotency check). */
static void s_request_hash(const Ncc__Sms__SendSms *m, const char *e164, char out[65])
{
    size_t cap = 256;
    for (size_t i = 0; i < m->n_variables; i++)
        cap += strlen(m->variables[i]->name ? m->variables[i]->name : "") +
               strlen(m->variables[i]->value ? m->variables[i]->value : "") + 4;
    char *text = malloc(cap);
    if (!text) {
        out[0] = '\0';
        return;
    }
    int len = snprintf(text, cap, "%s\n%" PRId64 "\n%" PRId64 "\n%d\n", e164, m->template_id,
                       m->has_record_id ? m->record_id : 0, m->has_urgent && m->urgent);
    for (size_t i = 0; i < m->n_variables; i++)
        len += snprintf(text + len, cap - (size_t)len, "%s=%s\x1f",
                        m->variables[i]->name ? m->variables[i]->name : "",
                        m->variables[i]->value ? m->variables[i]->value : "");
    ncc_sha256_hex(text, (size_t)len, out);
    free(text);
}

/* The message stored under key: 1 and answered, 0 none, -1 answered an error. */
static int s_existing(sms_t *self, const char *key, const char *hash, ncc_reply_t *reply)
{
    PGresult *res =
        ncc_db_exec(self->db, "SELECT id, request_hash FROM messages WHERE idempotency_key = $1", 1,
                    (const char *[]){key}, NULL);
    if (!res) {
        s_db_error(self, reply, "send sms");
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    bool same = strcmp(PQgetvalue(res, 0, 1), hash) == 0;
    PQclear(res);
    if (!same) {
        ncc_reply_error(reply, 409, "idempotency_conflict", "idempotency_key",
                        "this idempotency_key was used for another SMS (%" PRId64 ")", id);
        return -1;
    }
    s_reply_sms(self, reply, id, false, true);
    return 1;
}

static void s_on_send(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    sms_t *self = arg;
    const Ncc__Sms__SendSms *m = (const Ncc__Sms__SendSms *)request->message;
    const sms_settings_t *st = self->settings;
    if (!self->keyring) {
        ncc_reply_error(reply, 503, "service_unavailable", NULL,
                        "SMS are off: NCC_DATA_KEYS is not set");
        return;
    }
    if (!s_key_ok(m->idempotency_key)) {
        ncc_reply_error(reply, 422, "invalid_field", "idempotency_key",
                        "idempotency_key is 1 to 128 of A-Z a-z 0-9 . _ : -");
        return;
    }
    char e164[SMS_E164_MAX];
    const char *why = NULL;
    int rc = sms_number_e164(m->to, e164, &why);
    if (rc < 0) {
        ncc_reply_error(reply, 422, rc == -EPERM ? "not_mobile" : "invalid_field", "to", "%s", why);
        return;
    }
    if (!m->has_template_id) {
        ncc_reply_error(reply, 422, "invalid_field", "template_id", "template_id is required");
        return;
    }
    if (m->has_record_id && m->record_id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "record_id", "record_id is a record's id");
        return;
    }
    if (!s_variables_ok(m->variables, m->n_variables, reply))
        return;
    char hash[65];
    s_request_hash(m, e164, hash);
    if (s_existing(self, m->idempotency_key, hash, reply) != 0)
        return;

    bool urgent = false;
    char *body = s_template_body(self, m->template_id, &urgent, reply);
    if (!body)
        return;
    urgent = urgent || (m->has_urgent && m->urgent);
    char **names = NULL;
    bool survey = false;
    if (sms_template_variables(body, &names) == 0)
        for (size_t i = 0; names[i]; i++)
            survey = survey || strcmp(names[i], "survey_url") == 0;
    /* Unknown variables are refused: a typo would otherwise vanish. */
    for (size_t i = 0; names && i < m->n_variables; i++) {
        bool used = false;
        for (size_t j = 0; names[j] && !used; j++)
            used =
                strcmp(names[j], m->variables[i]->name) == 0 && strcmp(names[j], "survey_url") != 0;
        if (!used) {
            ncc_reply_error(reply, 422, "invalid_field", "variables",
                            "the template has no variable %s", m->variables[i]->name);
            sms_strv_free(names);
            free(body);
            return;
        }
    }
    sms_strv_free(names);
    char token[65] = "", url[700] = "";
    if (survey) {
        if (ncc_random_hex(32, token) < 0) {
            free(body);
            ncc_reply_error(reply, 500, "internal", NULL, "no random bytes");
            return;
        }
        snprintf(url, sizeof url, "%s/s/%s", st->survey_base_url, token);
    }
    char **missing = NULL;
    char *text =
        s_render(body, m->variables, m->n_variables, survey ? "survey_url" : NULL, url, &missing);
    free(body);
    if (!text) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    if (missing) {
        char list[300] = "";
        for (size_t i = 0; missing[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     missing[i]);
        ncc_reply_error(reply, 422, "missing_variables", "variables", "missing variables: %s",
                        list);
        sms_strv_free(missing);
        free(text);
        return;
    }
    sms_count_t c;
    if (sms_count(text, &c) < 0 || c.parts == 0 || c.parts > st->max_parts) {
        ncc_reply_error(reply, 422, "too_long", "variables",
                        "the text needs %d parts (%d characters, %s); the limit is %d", c.parts,
                        c.characters, c.gsm7 ? "GSM-7" : "UCS-2", st->max_parts);
        free(text);
        return;
    }
    char index[65];
    if (ncc_blind_index(self->keyring, SMS_TO_INDEX, e164, index) < 0) {
        free(text);
        ncc_reply_error(reply, 503, "service_unavailable", NULL,
                        "SMS are off: NCC_BLIND_INDEX_KEY is not set");
        return;
    }
    ncc_actor_t actor = ncc_request_actor(request);
    char *to_enc = ncc_encrypt(self->keyring, SMS_TO_CONTEXT, e164, strlen(e164));
    char *body_enc = ncc_encrypt(self->keyring, SMS_BODY_CONTEXT, text, strlen(text));
    free(text);
    char parts[16], expiry[16], per_minute[16], record[24] = "", template_id[24];
    snprintf(parts, sizeof parts, "%d", c.parts);
    snprintf(expiry, sizeof expiry, "%d", st->expiry_s);
    snprintf(per_minute, sizeof per_minute, "%d", st->operator_per_minute);
    snprintf(template_id, sizeof template_id, "%" PRId64, m->template_id);
    if (m->has_record_id)
        snprintf(record, sizeof record, "%" PRId64, m->record_id);
    PGresult *res = NULL;
    if (!to_enc || !body_enc) {
        ncc_reply_error(reply, 500, "internal", NULL, "encryption failed");
        goto out;
    }
    if (ncc_db_begin(self->db) < 0)
        goto db_fail;
    /* Opt-outs win over everything. */
    res = ncc_db_exec(self->db, "SELECT 1 FROM opt_outs WHERE to_index = $1", 1,
                      (const char *[]){index}, NULL);
    if (!res)
        goto db_fail;
    if (PQntuples(res) > 0) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 422, "opted_out", "to",
                        "this number asked for no more SMS (opt-out list)");
        goto out;
    }
    PQclear(res);
    /* A flood from one user: serialised per user so that copies agree. */
    if (ncc_db_run(self->db, "SELECT pg_advisory_xact_lock(hashtext('sms.send.' || $1))", 1,
                   (const char *[]){actor.id}) < 0)
        goto db_fail;
    res = ncc_db_exec(self->db,
                      "SELECT count(*) >= $2::int FROM messages WHERE created_by = $1 AND "
                      "created_at > now() - interval '1 minute'",
                      2, (const char *[]){actor.id, per_minute}, NULL);
    if (!res)
        goto db_fail;
    if (PQgetvalue(res, 0, 0)[0] == 't') {
        ncc_db_rollback(self->db);
        ncc_warn("sms.flood", "user %s: more than %d SMS in a minute refused", actor.id,
                 st->operator_per_minute);
        ncc_reply_error(reply, 429, "rate_limited", NULL,
                        "more than %d SMS in one minute: wait a moment", st->operator_per_minute);
        goto out;
    }
    PQclear(res);
    res = ncc_db_exec(
        self->db,
        "INSERT INTO messages (idempotency_key, request_hash, to_enc, to_index, template_id, "
        "record_id, body_enc, encoding, parts, urgent, created_by, expires_at) VALUES ($1, $2, $3, "
        "$4, $5::bigint, $6::bigint, $7, $8, $9::int, $10::boolean, $11, now() + "
        "make_interval(secs "
        "=> $12::int)) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        12,
        (const char *[]){m->idempotency_key, hash, to_enc, index, template_id,
                         record[0] ? record : NULL, body_enc, c.gsm7 ? "gsm7" : "ucs2", parts,
                         urgent ? "true" : "false", actor.id, expiry},
        NULL);
    if (!res)
        goto db_fail;
    if (PQntuples(res) == 0) {
        /* Another copy stored the same key meanwhile. */
        PQclear(res);
        res = NULL;
        ncc_db_rollback(self->db);
        if (s_existing(self, m->idempotency_key, hash, reply) == 0)
            ncc_reply_error(reply, 409, "conflict", "idempotency_key", "try again");
        goto out;
    }
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    char id_text[24], token_hash[65], days[16];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    snprintf(days, sizeof days, "%d", st->survey_days);
    if (ncc_db_run(self->db,
                   "INSERT INTO message_events (message_id, status, detail) VALUES ($1::bigint, "
                   "'queued', '')",
                   1, (const char *[]){id_text}) < 0)
        goto db_fail;
    if (survey) {
        ncc_sha256_hex(token, strlen(token), token_hash);
        if (ncc_db_run(self->db,
                       "INSERT INTO surveys (token_hash, message_id, record_id, expires_at) VALUES "
                       "($1, $2::bigint, $3::bigint, now() + make_interval(days => $4::int))",
                       4,
                       (const char *[]){token_hash, id_text, record[0] ? record : NULL, days}) < 0)
            goto db_fail;
    }
    Ncc__Sms__SmsStatusChanged event = NCC__SMS__SMS_STATUS_CHANGED__INIT;
    event.has_id = event.has_record_id = true;
    event.id = id;
    event.record_id = m->has_record_id ? m->record_id : 0;
    event.status = "queued";
    ncc_ctx_t ctx = ncc_request_ctx(request);
    if (ncc_outbox_add(self->db, &ctx, &event.base) < 0 || ncc_db_commit(self->db) < 0)
        goto db_fail;
    PQclear(res);
    res = NULL;
    ncc_info("sms.queued", "message %" PRId64 ": %d part(s) %s%s", id, c.parts,
             c.gsm7 ? "GSM-7" : "UCS-2", urgent ? ", urgent" : "");
    /* The answer first (read before the sender is woken), then the sender. */
    s_reply_sms(self, reply, id, false, false);
    sms_sender_wake(self);
    ncc_publisher_flush(ncc_service_publisher(self->service));
    goto out;
db_fail:
    s_db_error(self, reply, "send sms");
out:
    PQclear(res);
    free(to_enc);
    free(body_enc);
}

/* ---- opt-outs ---------------------------------------------------------------------------------
 */

static void s_on_opt_out(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    sms_t *self = arg;
    const Ncc__Sms__AddOptOut *m = (const Ncc__Sms__AddOptOut *)request->message;
    if (!self->keyring) {
        ncc_reply_error(reply, 503, "service_unavailable", NULL, "NCC_DATA_KEYS is not set");
        return;
    }
    char e164[SMS_E164_MAX], index[65];
    const char *why = NULL;
    int rc = sms_number_e164(m->to, e164, &why);
    if (rc < 0) {
        ncc_reply_error(reply, 422, rc == -EPERM ? "not_mobile" : "invalid_field", "to", "%s", why);
        return;
    }
    if (ncc_blind_index(self->keyring, SMS_TO_INDEX, e164, index) < 0) {
        ncc_reply_error(reply, 503, "service_unavailable", NULL, "NCC_BLIND_INDEX_KEY is not set");
        return;
    }
    char *enc = ncc_encrypt(self->keyring, SMS_OPT_OUT_CONTEXT, e164, strlen(e164));
    ncc_actor_t actor = ncc_request_actor(request);
    PGresult *res = NULL;
    if (!enc || ncc_db_begin(self->db) < 0)
        goto fail;
    res = ncc_db_exec(self->db,
                      "INSERT INTO opt_outs (to_index, to_enc, reason, created_by) VALUES ($1, $2, "
                      "$3, $4) ON CONFLICT DO NOTHING RETURNING 1",
                      4, (const char *[]){index, enc, m->reason ? m->reason : "", actor.id}, NULL);
    if (!res)
        goto fail;
    bool duplicate = PQntuples(res) == 0;
    PQclear(res);
    /* Messages still queued to that number will not go (one being handed to the
     * carrier at this moment, under a sender's lease, goes on; an uncertain one
     * may have gone: it waits for its receipt). */
    res = ncc_db_exec(
        self->db,
        "SELECT id FROM messages WHERE to_index = $1 AND status = 'queued' AND submit_state = "
        "'idle' AND (lease_until IS NULL OR lease_until < now()) FOR UPDATE",
        1, (const char *[]){index}, NULL);
    if (!res)
        goto fail;
    int cancelled = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        int moved = sms_set_status(self->db, strtoll(PQgetvalue(res, i, 0), NULL, 10), "failed",
                                   "opted out");
        if (moved < 0)
            goto fail;
        cancelled += moved;
    }
    PQclear(res);
    res = NULL;
    if (ncc_db_commit(self->db) < 0)
        goto fail;
    free(enc);
    Ncc__Sms__OptOut out = NCC__SMS__OPT_OUT__INIT;
    out.to = e164;
    out.has_duplicate = out.has_cancelled = true;
    out.duplicate = duplicate;
    out.cancelled = cancelled;
    ncc_reply_message(reply, &out.base);
    return;
fail:
    PQclear(res);
    free(enc);
    s_db_error(self, reply, "opt out");
}

/* ---- receipts (HTTP provider)
 * -------------------------------------------------------------------- */

static void s_on_receipt(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    sms_t *self = arg;
    const Ncc__Sms__Receipt *m = (const Ncc__Sms__Receipt *)request->message;
    const char *sid = m->message_sid;
    size_t len = sid ? strlen(sid) : 0;
    if (len == 0 || len > 64 ||
        strspn(sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != len) {
        ncc_reply_error(reply, 422, "invalid_field", "message_sid", "MessageSid is malformed");
        return;
    }
    const char *st = m->message_status ? m->message_status : "";
    const char *status = strcmp(st, "delivered") == 0                                  ? "delivered"
                         : strcmp(st, "undelivered") == 0 || strcmp(st, "failed") == 0 ? "failed"
                                                                                       : NULL;
    bool interim = strcmp(st, "queued") == 0 || strcmp(st, "sending") == 0 ||
                   strcmp(st, "sent") == 0 || strcmp(st, "accepted") == 0;
    if (!status && !interim) {
        ncc_reply_error(reply, 422, "invalid_field", "message_status",
                        "MessageStatus is queued, sending, sent, delivered, undelivered or failed");
        return;
    }
    Ncc__Sms__ReceiptAck ack = NCC__SMS__RECEIPT_ACK__INIT;
    ack.has_accepted = ack.has_duplicate = ack.has_id = true;
    ack.accepted = true;
    if (!status) {
        ncc_reply_message(reply, &ack.base);
        return;
    }
    char error[80];
    snprintf(error, sizeof error, "%s%s", m->error_code && *m->error_code ? "error " : "",
             m->error_code && *m->error_code ? m->error_code : "");
    if (ncc_db_begin(self->db) < 0)
        goto fail;
    PGresult *res =
        ncc_db_exec(self->db,
                    "INSERT INTO receipts (provider, provider_id, status, error) VALUES "
                    "('http', $1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
                    3, (const char *[]){sid, status, error}, NULL);
    if (!res)
        goto fail;
    ack.duplicate = PQntuples(res) == 0;
    PQclear(res);
    if (!ack.duplicate) {
        int rc = sms_apply_receipt(self->db, "http", sid, status, error);
        if (rc < 0)
            goto fail;
        if (rc == 1 && ncc_db_run(self->db,
                                  "UPDATE receipts SET applied = true WHERE provider = 'http' AND "
                                  "provider_id = $1 AND status = $2",
                                  2, (const char *[]){sid, status}) < 0)
            goto fail;
    }
    res = ncc_db_exec(self->db,
                      "SELECT message_id FROM parts WHERE provider = 'http' AND provider_id = $1",
                      1, (const char *[]){sid}, NULL);
    if (!res)
        goto fail;
    ack.id = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    if (ncc_db_commit(self->db) < 0)
        goto fail;
    if (ack.duplicate)
        ncc_info("sms.receipt_duplicate", "receipt %s %s taken before", sid, status);
    ncc_publisher_flush(ncc_service_publisher(self->service));
    ncc_reply_message(reply, &ack.base);
    return;
fail:
    s_db_error(self, reply, "receipt");
}

/* ---- surveys
 * ------------------------------------------------------------------------------------- */

/* The token's hash, or false when it cannot be a token (64 hex). */
static bool s_token_hash(const char *token, char out[65])
{
    if (!token || strlen(token) != 64 || strspn(token, "0123456789abcdef") != 64)
        return false;
    ncc_sha256_hex(token, 64, out);
    return true;
}

static void s_reply_survey(sms_t *self, ncc_reply_t *reply, const char *hash)
{
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT CASE WHEN answered_at IS NOT NULL THEN 'answered' WHEN expires_at < now() THEN "
        "'expired' ELSE 'open' END, satisfaction, resolved, comment, " SMS_RFC3339(
            "answered_at") ", " SMS_RFC3339("expires_at") ", coalesce(record_id, 0) FROM surveys "
                                                          "WHERE token_hash = $1",
        1, (const char *[]){hash}, NULL);
    if (!res) {
        s_db_error(self, reply, "survey");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_reply_error(reply, 404, "not_found", "token", "no such survey");
        return;
    }
    Ncc__Sms__Survey v = NCC__SMS__SURVEY__INIT;
    v.state = PQgetvalue(res, 0, 0);
    if (!PQgetisnull(res, 0, 1)) {
        v.has_satisfaction = v.has_resolved = true;
        v.satisfaction = atoi(PQgetvalue(res, 0, 1));
        v.resolved = PQgetvalue(res, 0, 2)[0] == 't';
    }
    v.answered_at = S_TEXT(res, 0, 4);
    v.expires_at = S_TEXT(res, 0, 5);
    ncc_reply_message(reply, &v.base);
    PQclear(res);
}

static void s_on_get_survey(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    const Ncc__Sms__GetSurvey *m = (const Ncc__Sms__GetSurvey *)request->message;
    char hash[65];
    if (!s_token_hash(m->token, hash)) {
        ncc_reply_error(reply, 404, "not_found", "token", "no such survey");
        return;
    }
    s_reply_survey(arg, reply, hash);
}

static void s_on_answer_survey(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    sms_t *self = arg;
    const Ncc__Sms__AnswerSurvey *m = (const Ncc__Sms__AnswerSurvey *)request->message;
    char hash[65];
    if (!s_token_hash(m->token, hash)) {
        ncc_reply_error(reply, 404, "not_found", "token", "no such survey");
        return;
    }
    if (!m->has_satisfaction || m->satisfaction < 1 || m->satisfaction > 5) {
        ncc_reply_error(reply, 422, "invalid_field", "satisfaction", "satisfaction is 1 to 5");
        return;
    }
    if (!m->has_resolved) {
        ncc_reply_error(reply, 422, "invalid_field", "resolved", "resolved is yes or no");
        return;
    }
    if (m->comment && strlen(m->comment) > 4000) {
        ncc_reply_error(reply, 422, "invalid_field", "comment",
                        "comment is at most 1000 characters");
        return;
    }
    char sat[8];
    snprintf(sat, sizeof sat, "%d", m->satisfaction);
    if (ncc_db_begin(self->db) < 0) {
        s_db_error(self, reply, "answer survey");
        return;
    }
    PGresult *res = ncc_db_exec(
        self->db,
        "UPDATE surveys SET satisfaction = $2::int, resolved = $3::boolean, comment = $4, "
        "answered_at = now() WHERE token_hash = $1 AND answered_at IS NULL AND expires_at > now() "
        "RETURNING message_id, coalesce(record_id, 0), " SMS_RFC3339("answered_at"),
        4,
        (const char *[]){hash, sat, m->resolved ? "true" : "false", m->comment ? m->comment : ""},
        NULL);
    if (!res) {
        s_db_error(self, reply, "answer survey");
        return;
    }
    int n = PQntuples(res);
    if (n > 0) {
        Ncc__Sms__SurveyAnswered event = NCC__SMS__SURVEY_ANSWERED__INIT;
        event.has_message_id = event.has_record_id = event.has_satisfaction = true;
        event.has_resolved = true;
        event.message_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        event.record_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        event.satisfaction = m->satisfaction;
        event.resolved = m->resolved;
        event.answered_at = PQgetvalue(res, 0, 2);
        ncc_ctx_t ctx = {.actor_id = "resident", .actor_role = ""};
        if (ncc_outbox_add(self->db, &ctx, &event.base) < 0 || ncc_db_commit(self->db) < 0) {
            PQclear(res);
            s_db_error(self, reply, "answer survey");
            return;
        }
        ncc_publisher_flush(ncc_service_publisher(self->service));
    } else {
        ncc_db_rollback(self->db);
    }
    PQclear(res);
    if (n == 0) {
        res = ncc_db_exec(self->db,
                          "SELECT answered_at IS NOT NULL FROM surveys WHERE token_hash = $1", 1,
                          (const char *[]){hash}, NULL);
        int found = res ? PQntuples(res) : -1;
        bool answered = found > 0 && PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (found < 0)
            s_db_error(self, reply, "answer survey");
        else if (found == 0)
            ncc_reply_error(reply, 404, "not_found", "token", "no such survey");
        else if (answered)
            ncc_reply_error(reply, 409, "already_answered", "token",
                            "this survey was answered already");
        else
            ncc_reply_error(reply, 410, "expired", "token", "this survey has expired");
        return;
    }
    s_reply_survey(self, reply, hash);
}

int sms_api_register(sms_t *self)
{
    const unsigned read = NCC_ROLES_USERS | NCC_ROLE_SYSTEM;
    const unsigned send = NCC_ROLE_OPERATOR | NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN;
    const unsigned admin = NCC_ROLE_ADMIN;
    ncc_service_t *s = self->service;
    const struct {
        const ProtobufCMessageDescriptor *type;
        unsigned roles;
        ncc_rpc_handler_fn fn;
    } handlers[] = {
        {&ncc__sms__list_templates__descriptor, read, s_on_list_templates},
        {&ncc__sms__get_template__descriptor, read, s_on_get_template},
        {&ncc__sms__create_template__descriptor, admin, s_on_create_template},
        {&ncc__sms__update_template__descriptor, admin, s_on_update_template},
        {&ncc__sms__list_template_versions__descriptor, read, s_on_template_versions},
        {&ncc__sms__preview_sms__descriptor, read, s_on_preview},
        {&ncc__sms__send_sms__descriptor, send, s_on_send},
        {&ncc__sms__get_sms__descriptor, read, s_on_get_sms},
        {&ncc__sms__list_sms__descriptor, read, s_on_list_sms},
        {&ncc__sms__add_opt_out__descriptor, send, s_on_opt_out},
        {&ncc__sms__receipt__descriptor, NCC_ROLE_SYSTEM, s_on_receipt},
        /* The survey's token is its authority (as the public FAQ's votes). */
        {&ncc__sms__get_survey__descriptor, 0, s_on_get_survey},
        {&ncc__sms__answer_survey__descriptor, 0, s_on_answer_survey},
    };
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
        if (ncc_service_on(s, handlers[i].type, handlers[i].roles, handlers[i].fn, self) < 0)
            return -EINVAL;
    return 0;
}
