/* routing: what a PBX reads of the ACD settings (R25, docs/routing.md).
 * Skills, queues and routing rules are masters (masters_kinds.c: edited,
 * imported, scheduled and propagated like the others); here are the two
 * read-only views built from them: the whole configuration (GetRouting) and
 * the decision for one call (ResolveRoute). Each is one SQL statement that
 * makes the answer as JSON, converted to its message. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "directory.h"
#include "masters.h"
#include "ncc/roles.h"
#include "ncc/time.h"

/* Lists of codes are kept as text "a b"; as arrays for the answers. */
#define S_LIST(col) "coalesce(string_to_array(nullif(" col ", ''), ' '), '{}'::text[])"

/* The operators who can take calls: active, role operator, an extension. */
#define S_AGENT_WHERE "u.active AND 'operator' = ANY (u.roles) AND u.extension IS NOT NULL"

#define S_AGENT_JSON                                                                               \
    "jsonb_build_object('login', u.login, 'name', u.name, 'extension', u.extension, "              \
    "'skills', to_jsonb(" S_LIST(                                                                  \
        "u.skills") "), 'queues', to_jsonb(coalesce((SELECT "                                      \
                    "array_agg(q.code ORDER BY q.code) FROM queues q WHERE q.active AND " S_LIST(  \
                        "q.skills") " <@ " S_LIST("u.skills") "), '{}'::text[])))"

static const char s_routing_sql[] =
    "SELECT jsonb_build_object("
    "'change_id', (SELECT coalesce(max(id), 0) FROM master_changes WHERE kind IN ('skills', "
    "'queues', 'routing-rules', 'announcements', 'users')), "
    "'generated_at', " DIRECTORY_RFC3339(
        "now()") ", "
                 "'skills', coalesce((SELECT jsonb_agg(jsonb_build_object('code', s.code, 'name', "
                 "s.name) "
                 "ORDER BY s.sort_order, s.code) FROM skills s WHERE s.active), '[]'::jsonb), "
                 "'queues', coalesce((SELECT jsonb_agg(jsonb_build_object('code', q.code, 'name', "
                 "q.name, "
                 "'department_code', q.department_code, 'skills', to_jsonb(" S_LIST(
                     "q.skills") "), "
                                 "'priority', q.priority, 'max_wait_seconds', q.max_wait_seconds, "
                                 "'overflow_code', "
                                 "q.overflow_code, 'distribution', q.distribution) ORDER BY "
                                 "q.priority DESC, q.code) "
                                 "FROM queues q "
                                 "WHERE q.active), "
                                 "'[]'::jsonb), "
                                 "'rules', coalesce((SELECT jsonb_agg(jsonb_build_object('code', "
                                 "r.code, 'name', r.name, "
                                 "'priority', r.priority, 'called_number', r.called_number, "
                                 "'ivr_choice', r.ivr_choice, "
                                 "'weekdays', to_jsonb(" S_LIST(
                                     "r.weekdays") "), 'hours', r.hours, 'queue_code', "
                                                   "r.queue_code, 'skills', to_jsonb(" S_LIST(
                                                       "r.skills") ")) ORDER BY r.priority, "
                                                                   "r.code) "
                                                                   "FROM routing_rules r WHERE "
                                                                   "r.active), '[]'::jsonb), "
                                                                   "'agents', coalesce((SELECT "
                                                                   "jsonb_agg(" S_AGENT_JSON
                                                                   " ORDER BY u.login) FROM users "
                                                                   "u "
                                                                   "WHERE " S_AGENT_WHERE
                                                                   "), '[]'::jsonb), "
                                                                   "'announcements', "
                                                                   "coalesce((SELECT "
                                                                   "jsonb_agg(jsonb_build_object('"
                                                                   "code', a.code, 'text_ja', "
                                                                   "a.text_ja, 'text_en', "
                                                                   "a.text_en) ORDER BY a.code) "
                                                                   "FROM announcements a WHERE "
                                                                   "a.active), "
                                                                   "'[]'::jsonb))::text";

/* $1 called number, $2 IVR choice, $3 the time (NULL: now). Numbers compare
 * by their digits and * # +, so "03-1234-5678" matches "0312345678". */
static const char s_resolve_sql[] =
    "WITH t AS (SELECT coalesce($3::timestamptz, now()) AS at), "
    "l AS (SELECT at, at AT TIME ZONE 'Asia/Tokyo' AS local FROM t), "
    "r AS (SELECT r.code, r.name, r.queue_code, r.skills, q.name AS queue_name, q.skills AS "
    "queue_skills, q.max_wait_seconds, q.overflow_code, q.distribution FROM routing_rules r "
    "JOIN queues q ON "
    "q.code = r.queue_code, l WHERE r.active AND q.active "
    "AND (r.called_number = '' OR regexp_replace(r.called_number, '[^0-9*#+]', '', 'g') = "
    "regexp_replace(coalesce($1, ''), '[^0-9*#+]', '', 'g')) "
    "AND (r.ivr_choice = '' OR r.ivr_choice = coalesce($2, '')) "
    "AND (r.weekdays = '' OR lower(to_char(l.local, 'Dy')) = ANY (string_to_array(r.weekdays, "
    "' '))) "
    "AND (r.hours = '' OR (to_char(l.local, 'HH24:MI') >= split_part(r.hours, '-', 1) AND "
    "to_char(l.local, 'HH24:MI') < split_part(r.hours, '-', 2))) "
    "ORDER BY r.priority, r.code LIMIT 1), "
    "n AS (SELECT r.*, ARRAY(SELECT DISTINCT c FROM unnest(" S_LIST(
        "r.queue_skills") " || "
                          "" S_LIST(
                              "r.skills") ") c ORDER BY c) AS need FROM r) "
                                          "SELECT jsonb_build_object('rule_code', n.code, "
                                          "'rule_name', n.name, 'queue_code', "
                                          "n.queue_code, 'queue_name', n.queue_name, 'skills', "
                                          "to_jsonb(n.need), "
                                          "'max_wait_seconds', n.max_wait_seconds, "
                                          "'overflow_code', n.overflow_code, 'distribution', "
                                          "n.distribution, "
                                          "'at', (SELECT " DIRECTORY_RFC3339(
                                              "at") " FROM l), "
                                                    "'agents', coalesce((SELECT "
                                                    "jsonb_agg(" S_AGENT_JSON
                                                    " ORDER BY u.login) FROM users u WHERE "
                                                    "" S_AGENT_WHERE " AND n.need <@ " S_LIST(
                                                        "u.skills") "), '[]'::jsonb))::text FROM n";

static void s_on_routing(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    cJSON *json = NULL;
    int rc = masters_query_json(self, s_routing_sql, 0, NULL, &json);
    if (rc == -ENOMEM)
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
    else if (rc <= 0)
        directory_reply_db_error(self, reply, "read routing");
    else
        masters_reply_json(reply, &ncc__directory__routing__descriptor, json);
    cJSON_Delete(json);
}

static void s_on_resolve(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    const Ncc__Directory__ResolveRoute *m = (const Ncc__Directory__ResolveRoute *)request->message;
    if (m->called_number &&
        (strlen(m->called_number) > 32 ||
         strspn(m->called_number, "0123456789+-()#* ") != strlen(m->called_number))) {
        ncc_reply_error(reply, 422, "invalid_field", "called_number",
                        "a phone number is at most 32 of half-width 0-9 + - ( ) # * and spaces");
        return;
    }
    if (m->ivr_choice && (strlen(m->ivr_choice) > 16 ||
                          strspn(m->ivr_choice, "0123456789#*") != strlen(m->ivr_choice))) {
        ncc_reply_error(reply, 422, "invalid_field", "ivr_choice",
                        "an IVR choice is at most 16 of 0-9 # *");
        return;
    }
    const char *at = m->at && *m->at ? m->at : NULL;
    if (at && !ncc_rfc3339_valid(at)) {
        ncc_reply_error(reply, 422, "invalid_field", "at",
                        "at is an RFC 3339 time with an offset (2027-04-01T09:00:00+09:00)");
        return;
    }
    const char *params[] = {m->called_number, m->ivr_choice, at};
    cJSON *json = NULL;
    int rc = masters_query_json(self, s_resolve_sql, 3, params, &json);
    if (rc == -ENOMEM)
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
    else if (rc < 0)
        directory_reply_db_error(self, reply, "resolve a route");
    else if (rc == 0)
        ncc_reply_error(reply, 404, "no_route", NULL,
                        "no active routing rule matches this call (add a rule without "
                        "conditions as the last one)");
    else
        masters_reply_json(reply, &ncc__directory__route_decision__descriptor, json);
    cJSON_Delete(json);
}

int directory_routing_register(directory_t *self)
{
    const unsigned roles = NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN | NCC_ROLE_SYSTEM;
    if (ncc_service_on(self->service, &ncc__directory__get_routing__descriptor, roles, s_on_routing,
                       self) < 0 ||
        ncc_service_on(self->service, &ncc__directory__resolve_route__descriptor, roles,
                       s_on_resolve, self) < 0)
        return -EINVAL;
    return 0;
}
