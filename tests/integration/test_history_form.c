/* ncc-history following the record form setting (R3, R38; docs/record-form.md) and
 * applying ncc-summary's final call summary (R30; docs/history.md), end to end: the real
 * ncc-directory, ncc-calls, ncc-history, ncc-summary and ncc-gateway (from
 * NCC_TEST_BIN_DIR) against a database of this test's own (tests/support/ncc_system.h).
 *
 * The form: fields of the ward's own (x_...) stored and returned; 422 naming the field for
 * a missing required field, a value outside a choice list, a status transition the setting
 * does not allow, an x_ field the setting lacks, with nothing stored; a changed setting
 * taking effect (RecordFormChanged); records from calls made without the required fields
 * and completed by the operator; ncc-directory stopped: the last form held still applies
 * and records are still saved.
 *
 * Summaries: CallSummary events put into ncc-summary's outbox exactly as ncc-summary
 * does it at hang-up (ncc_outbox_add: type and packed message), published by the running
 * ncc-summary: one arriving before the record of its call is applied when the call's
 * record is made, a newer version replaces it, an older one changes nothing, an
 * operator's own summary is never overwritten, and the summary is searchable. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "history.pb-c.h"
#include "ncc/bus.h"
#include "ncc/log.h"
#include "ncc_system.h"
#include "ncc_test.h"
#include "summary.pb-c.h"

#define PASSWORD  "Madoguchi-Pass-2027"
#define FORM_PATH "/api/v1/settings/record-form"

static ncct_system_t s_sys;
static ncct_session_t s_admin, s_op1, s_sup;

static void setup(void)
{
    ncc_log_init("test_history_form", NCC_LOG_ERROR);
    ncct_system_init(&s_sys, "test_history_form");
}

static void teardown(void)
{
    ncct_system_teardown(&s_sys);
}

TestSuite(history_form, .init = setup, .fini = teardown, .timeout = 300);

/* ---- helpers ---------------------------------------------------------------------------- */

static void s_start(bool with_summary)
{
    ncct_system_start(&s_sys, "directory", NULL);
    ncct_system_start_gateway(&s_sys, NULL);
    ncct_login_admin(&s_sys, &s_admin);
    ncct_resp_t r = ncct_request(&s_sys, &s_admin, "POST", "/api/v1/departments",
                                 "{\"code\":\"D01\",\"name\":\"市民課\"}", NULL);
    ncct_expect(&r, 201, NULL, "department");
    ncct_resp_free(&r);
    ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", PASSWORD);
    ncct_create_user(&s_sys, &s_admin, "sup1", "[\"supervisor\"]", NULL, PASSWORD);
    ncct_login(&s_sys, &s_op1, "op1", PASSWORD, NULL);
    ncct_login(&s_sys, &s_sup, "sup1", PASSWORD, NULL);
    ncct_system_start(&s_sys, "calls", NULL);
    if (with_summary)
        ncct_system_start(&s_sys, "summary", NULL);
    ncct_system_start(&s_sys, "history", NULL);
}

static ncct_resp_t s_req(const ncct_session_t *who, const char *method, const char *path,
                         const char *body)
{
    return ncct_request(&s_sys, who, method, path, body, NULL);
}

static long s_count(const char *sql)
{
    return ncct_owner_long(&s_sys, sql);
}

static bool s_wait_count(const char *sql, long want, int timeout_ms)
{
    long long deadline = ncct_now_ms() + timeout_ms;
    while (ncct_now_ms() < deadline) {
        if (s_count(sql) == want)
            return true;
        usleep(20 * 1000);
    }
    return false;
}

/* Asserts the status and, for an error, the field it names; frees the answer. */
static void s_check(ncct_resp_t r, long status, const char *field, const char *what)
{
    ncct_expect(&r, status, NULL, what);
    if (field) {
        const cJSON *error = cJSON_GetObjectItemCaseSensitive(r.json, "error");
        const char *got = ncct_str(error, "field");
        cr_assert(got && strcmp(got, field) == 0, "%s: field %s expected: %s", what, field, r.body);
    }
    ncct_resp_free(&r);
}

/* The value of x_ field `name` in a record answer, or NULL. */
static const char *s_extra(const cJSON *record, const char *name)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(record, "extra"))
    {
        const char *n = ncct_str(item, "name");
        if (n && strcmp(n, name) == 0)
            return ncct_str(item, "value");
    }
    return NULL;
}

static int64_t s_id(const cJSON *record)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(record, "id");
    cr_assert(cJSON_IsNumber(id), "no id");
    return (int64_t)id->valuedouble;
}

/* The record form as the administrator reads it (caller frees) and its version. */
static cJSON *s_form(int64_t *ret_version)
{
    ncct_resp_t r = s_req(&s_admin, "GET", FORM_PATH, NULL);
    ncct_expect(&r, 200, NULL, "the record form");
    *ret_version = (int64_t)cJSON_GetObjectItemCaseSensitive(r.json, "version")->valuedouble;
    cJSON *def = cJSON_DetachItemFromObjectCaseSensitive(r.json, "definition");
    ncct_resp_free(&r);
    return def;
}

/* Saves `def` (freed) over version `version`. */
static void s_put_form(cJSON *def, int64_t version)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "version", (double)version);
    cJSON_AddItemToObject(body, "definition", def);
    char *text = cJSON_PrintUnformatted(body);
    ncct_resp_t r = s_req(&s_admin, "PUT", FORM_PATH, text);
    ncct_expect(&r, 200, NULL, text);
    ncct_resp_free(&r);
    free(text);
    cJSON_Delete(body);
}

static cJSON *s_field_named(cJSON *def, const char *name)
{
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(def, "fields"))
    {
        const char *n = ncct_str(item, "name");
        if (n && strcmp(n, name) == 0)
            return item;
    }
    return NULL;
}

static cJSON *s_status_named(cJSON *def, const char *code)
{
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(def, "statuses"))
    {
        const char *c = ncct_str(item, "code");
        if (c && strcmp(c, code) == 0)
            return item;
    }
    return NULL;
}

/* POST /api/v1/records until it is answered 201 (the setting reaches ncc-history through
 * an event); returns the answer (caller frees). */
static ncct_resp_t s_create_eventually(const ncct_session_t *who, const char *body)
{
    long long deadline = ncct_now_ms() + 10000;
    for (;;) {
        ncct_resp_t r = s_req(who, "POST", "/api/v1/records", body);
        if (r.status == 201 || ncct_now_ms() > deadline)
            return r;
        ncct_resp_free(&r);
        usleep(50 * 1000);
    }
}

static void s_pbx(const char *event_id, const char *type, const char *call_id, const char *at,
                  const char *extra)
{
    char body[768];
    snprintf(body, sizeof body,
             "{\"event_id\":\"%s\",\"type\":\"%s\",\"call_id\":\"%s\",\"occurred_at\":\"%s\","
             "\"from\":\"090-1234-5678\",\"to\":\"03-3228-1111\"%s%s}",
             event_id, type, call_id, at, extra ? "," : "", extra ? extra : "");
    ncct_resp_t r =
        ncct_signed_post(&s_sys, "/api/v1/pbx/events", body, NCCT_PBX_SECRET, (int64_t)time(NULL));
    ncct_expect(&r, 200, NULL, body);
    ncct_resp_free(&r);
}

/* ---- the record form -------------------------------------------------------------------- */

#define RECORDS "SELECT count(*) FROM history.records"

Test(history_form, fields_of_its_own_required_choices_and_transitions)
{
    s_start(false);
    /* The administrator adds two fields of the ward's own: a note (at most 20 characters)
     * and a required choice of its own list. */
    int64_t version = 0;
    cJSON *def = s_form(&version);
    cJSON *fields = cJSON_GetObjectItemCaseSensitive(def, "fields");
    cJSON_AddItemToArray(fields, cJSON_Parse("{\"name\":\"x_note\",\"label_ja\":\"備考\","
                                             "\"type\":\"text\",\"max_length\":20}"));
    cJSON_AddItemToArray(
        fields, cJSON_Parse("{\"name\":\"x_kind\",\"label_ja\":\"種別\",\"type\":"
                            "\"choice\",\"required\":true,\"options\":[{\"code\":\"A\","
                            "\"label_ja\":\"甲\"},{\"code\":\"B\",\"label_ja\":\"乙\"}]}"));
    s_put_form(def, version);

    /* Stored and returned (the answer, a read, a list, the table). */
    ncct_resp_t r = s_create_eventually(
        &s_op1, "{\"channel\":\"visit\",\"inquiry\":\"転入届\",\"extra\":[{\"name\":\"x_note\","
                "\"value\":\"窓口2番\"},{\"name\":\"x_kind\",\"value\":\"A\"}]}");
    ncct_expect(&r, 201, NULL, "a record with fields of the ward's own");
    int64_t id = s_id(r.json);
    cr_assert_str_eq(s_extra(r.json, "x_note"), "窓口2番", "%s", r.body);
    cr_assert_str_eq(s_extra(r.json, "x_kind"), "A", "%s", r.body);
    ncct_resp_free(&r);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/records/%lld", (long long)id);
    r = s_req(&s_op1, "GET", path, NULL);
    ncct_expect(&r, 200, NULL, "read");
    cr_assert_str_eq(s_extra(r.json, "x_note"), "窓口2番", "%s", r.body);
    ncct_resp_free(&r);
    r = s_req(&s_sup, "GET", "/api/v1/records?channel=visit", NULL);
    ncct_expect(&r, 200, NULL, "list");
    cr_assert_str_eq(
        s_extra(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r.json, "items"), 0), "x_kind"),
        "A", "%s", r.body);
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM history.records WHERE extra->>'x_note' = '窓口2番' "
                         "AND extra->>'x_kind' = 'A'"),
                 1);

    /* Refused with the field named, nothing stored. */
    long before = s_count(RECORDS);
    s_check(
        s_req(&s_op1, "POST", "/api/v1/records", "{\"channel\":\"visit\",\"inquiry\":\"転入届\"}"),
        422, "x_kind", "a required field of the ward's own missing");
    s_check(s_req(&s_op1, "POST", "/api/v1/records",
                  "{\"channel\":\"visit\",\"inquiry\":\"転入届\",\"extra\":[{\"name\":\"x_kind\","
                  "\"value\":\"Z\"}]}"),
            422, "x_kind", "not one of the choices");
    s_check(s_req(&s_op1, "POST", "/api/v1/records",
                  "{\"channel\":\"visit\",\"inquiry\":\"転入届\",\"extra\":[{\"name\":\"x_kind\","
                  "\"value\":\"A\"},{\"name\":\"x_unknown\",\"value\":\"1\"}]}"),
            422, "x_unknown", "an x_ field the form lacks");
    s_check(s_req(&s_op1, "POST", "/api/v1/records",
                  "{\"channel\":\"visit\",\"inquiry\":\"転入届\",\"extra\":[{\"name\":\"x_kind\","
                  "\"value\":\"A\"},{\"name\":\"x_note\",\"value\":\"あいうえおかきくけこさしす"
                  "せそたちつてとな\"}]}"),
            422, "x_note", "longer than the form's max_length");
    s_check(s_req(&s_op1, "POST", "/api/v1/records",
                  "{\"channel\":\"visit\",\"extra\":[{\"name\":\"x_kind\",\"value\":\"A\"}]}"),
            422, "inquiry", "a required built-in missing");
    cr_assert_eq(s_count(RECORDS), before, "nothing stored");

    /* Changes: a transition the default form does not allow (closed -> open), emptying a
     * required field, an unknown field: 422 and the record as it was. */
    r = s_req(&s_op1, "POST", "/api/v1/records",
              "{\"channel\":\"visit\",\"inquiry\":\"住民票\",\"response\":\"発行済み\","
              "\"status\":\"closed\",\"extra\":[{\"name\":\"x_kind\",\"value\":\"B\"}]}");
    ncct_expect(&r, 201, NULL, "created closed (a next status of the initial one)");
    int64_t closed_id = s_id(r.json);
    ncct_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/records/%lld", (long long)closed_id);
    s_check(s_req(&s_op1, "PATCH", path, "{\"version\":1,\"status\":\"open\"}"), 422, "status",
            "closed -> open is not in the default form");
    s_check(s_req(&s_op1, "PATCH", path,
                  "{\"version\":1,\"extra\":[{\"name\":\"x_kind\",\"value\":\"\"}]}"),
            422, "x_kind", "a required field emptied");
    s_check(s_req(&s_op1, "PATCH", path,
                  "{\"version\":1,\"response\":\"変更\",\"extra\":[{\"name\":\"x_other\","
                  "\"value\":\"1\"}]}"),
            422, "x_other", "an unknown field in a change");
    s_check(s_req(&s_op1, "PATCH", path, "{\"version\":1,\"status\":\"no_such\"}"), 422, "status",
            "a status the form lacks");
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM history.records WHERE id = %lld AND version = 1 AND status = "
             "'closed' AND response = '発行済み' AND extra = '{\"x_kind\": \"B\"}'::jsonb",
             (long long)closed_id);
    cr_assert_eq(s_count(sql), 1, "nothing changed");
    r = s_req(&s_op1, "PATCH", path,
              "{\"version\":1,\"status\":\"in_progress\",\"extra\":[{\"name\":\"x_note\","
              "\"value\":\"再調査\"}]}");
    ncct_expect(&r, 200, NULL, "closed -> in_progress is allowed; a value added");
    cr_assert_str_eq(s_extra(r.json, "x_note"), "再調査", "%s", r.body);
    cr_assert_str_eq(s_extra(r.json, "x_kind"), "B", "the other value kept: %s", r.body);
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "wrapup_ended_at"), "reopened");
    ncct_resp_free(&r);

    /* A changed setting takes effect: x_note required, closed may go back to open. */
    def = s_form(&version);
    cJSON *note = s_field_named(def, "x_note");
    cr_assert_not_null(note);
    cJSON_ReplaceItemInObjectCaseSensitive(note, "required", cJSON_CreateTrue());
    cJSON *closed = s_status_named(def, "closed");
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(closed, "next"),
                         cJSON_CreateString("open"));
    s_put_form(def, version);
    long long deadline = ncct_now_ms() + 10000;
    for (;;) {
        r = s_req(&s_op1, "POST", "/api/v1/records",
                  "{\"channel\":\"visit\",\"inquiry\":\"転出届\",\"extra\":[{\"name\":\"x_kind\","
                  "\"value\":\"A\"}]}");
        if (r.status == 422 || ncct_now_ms() > deadline)
            break;
        ncct_resp_free(&r);
        usleep(50 * 1000);
    }
    ncct_expect(&r, 422, NULL, "x_note is now required");
    cr_assert_str_eq(ncct_str(cJSON_GetObjectItemCaseSensitive(r.json, "error"), "field"),
                     "x_note");
    ncct_resp_free(&r);
    r = s_req(&s_op1, "PATCH", path, "{\"version\":2,\"status\":\"closed\"}");
    ncct_expect(&r, 200, NULL, "in_progress -> closed");
    ncct_resp_free(&r);
    r = s_req(&s_op1, "PATCH", path, "{\"version\":3,\"status\":\"open\"}");
    ncct_expect(&r, 200, NULL, "closed -> open, allowed by the new form");
    ncct_resp_free(&r);

    /* A record from a call is made without the required fields; the operator's save must
     * complete them. */
    s_pbx("f1", "ringing", "C-F1", "2027-04-05T10:00:00+09:00", NULL);
    s_pbx("f2", "answered", "C-F1", "2027-04-05T10:00:05+09:00", "\"agent_extension\":\"2001\"");
    cr_assert(s_wait_count("SELECT count(*) FROM history.records WHERE call_id = 'C-F1' AND "
                           "status = 'open' AND extra = '{}'::jsonb",
                           1, 5000),
              "no record from the answered call");
    long call_id = s_count("SELECT id FROM history.records WHERE call_id = 'C-F1'");
    snprintf(path, sizeof path, "/api/v1/records/%ld", call_id);
    s_check(s_req(&s_op1, "PATCH", path, "{\"version\":1,\"inquiry\":\"保育園の申込み\"}"), 422,
            "x_note", "the operator's save needs the required fields (the first in form order)");
    s_check(s_req(&s_op1, "PATCH", path,
                  "{\"version\":1,\"inquiry\":\"保育園の申込み\",\"extra\":[{\"name\":"
                  "\"x_note\",\"value\":\"折り返し\"}]}"),
            422, "x_kind", "and every one of them");
    r = s_req(&s_op1, "PATCH", path,
              "{\"version\":1,\"inquiry\":\"保育園の申込み\",\"extra\":[{\"name\":\"x_kind\","
              "\"value\":\"B\"},{\"name\":\"x_note\",\"value\":\"折り返し\"}]}");
    ncct_expect(&r, 200, NULL, "completed");
    ncct_resp_free(&r);

    /* CSV: the fields of the ward's own follow the export's columns, in the form's order,
     * on every page (two rows a page), and come back through the import, checked as a save
     * checks them. */
    r = s_req(&s_sup, "GET", "/api/v1/records/export.csv?page_rows=2", NULL);
    ncct_expect(&r, 200, NULL, "export with x_ columns");
    cr_assert(strstr(r.body, ",created_at,updated_at,x_note,x_kind\r\n"), "header: %.400s", r.body);
    cr_assert(strstr(r.body, ",再調査,B\r\n"), "the first record's x_ values: %s", r.body);
    cr_assert(strstr(r.body, ",折り返し,B\r\n"), "a later page's x_ values: %s", r.body);
    ncct_resp_free(&r);
    const char *header = "receipt_id,call_id,channel,operator_id,operator_name,started_at,"
                         "ended_at,wrapup_ended_at,reception_type,department_id,handling_type,"
                         "faq_ids,category,inquiry,response,transfer_to,summary,status,"
                         "caller_number,created_at,updated_at";
    char csv[1024];
    before = s_count(RECORDS);
    int len = snprintf(csv, sizeof csv,
                       "%s,x_kind,x_note\r\n"
                       ",,visit,,,2027-04-10 10:00,,,,,,,,窓口の相談,,,,open,,,,C,メモ\r\n"
                       ",,visit,,,2027-04-10 11:00,,,,,,,,窓口の相談,,,,open,,,,A,"
                       "あいうえおかきくけこさしすせそたちつてとな\r\n",
                       header);
    r = ncct_request_raw(&s_sys, &s_sup, "POST", "/api/v1/records/import", csv, (size_t)len,
                         "text/csv", NULL);
    ncct_expect(&r, 422, "invalid_csv", "x_ values checked as a save checks them");
    cr_assert(strstr(r.body, "\"line\":2") && strstr(r.body, "\"field\":\"x_kind\"") &&
                  strstr(r.body, "\"line\":3") && strstr(r.body, "\"field\":\"x_note\""),
              "errors by line and field: %s", r.body);
    ncct_resp_free(&r);
    len = snprintf(csv, sizeof csv,
                   "%s,x_unknown\r\n,,visit,,,2027-04-10 10:00,,,,,,,,x,,,,,,,,1\r\n", header);
    r = ncct_request_raw(&s_sys, &s_sup, "POST", "/api/v1/records/import", csv, (size_t)len,
                         "text/csv", NULL);
    ncct_expect(&r, 400, "invalid_header", "an x_ column the form lacks");
    ncct_resp_free(&r);
    cr_assert_eq(s_count(RECORDS), before, "nothing imported");
    len = snprintf(csv, sizeof csv,
                   "%s,x_kind,x_note\r\n"
                   ",,visit,,,2027-04-10 10:00,,,,,,,,紙で受けた相談,,,,open,,,,A,停電中の記録\r\n",
                   header);
    r = ncct_request_raw(&s_sys, &s_sup, "POST", "/api/v1/records/import", csv, (size_t)len,
                         "text/csv", NULL);
    ncct_expect(&r, 200, NULL, "import with x_ values");
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM history.records WHERE source = 'import' AND "
                         "extra = '{\"x_kind\": \"A\", \"x_note\": \"停電中の記録\"}'::jsonb"),
                 1, "the x_ values stored");

    /* ncc-directory stopped, ncc-history restarted: the built-in default applies (logged),
     * records are still saved; once the directory is back, its form applies again. */
    ncct_daemon_stop(ncct_service(&s_sys, "history"));
    ncct_daemon_stop(ncct_service(&s_sys, "directory"));
    ncct_system_start(&s_sys, "history", NULL);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", ncct_service(&s_sys, "history")->rpc);
    ncc_rpc_client_t *client = ncc_rpc_client_new(endpoint);
    cr_assert_not_null(client);
    ncc_ctx_t sup = {.actor_id = "1", .actor_role = "supervisor"};
    Ncc__History__CreateRecord create = NCC__HISTORY__CREATE_RECORD__INIT;
    create.channel = "visit";
    create.inquiry = "停電中の記録";
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    /* With the directory down, the daemon's loop also waits on its tries to reach it (the
     * masters, the form, the operator's name: up to a second each), hence the long wait. */
    int rc = ncc_rpc_call_typed(client, &sup, &create.base, &ncc__history__record__descriptor,
                                30000, &answer, &error);
    cr_assert_eq(rc, 0, "saved with the directory down: %d %s", rc,
                 error && error->message ? error->message : "");
    protobuf_c_message_free_unpacked(answer, NULL);
    ncct_system_start(&s_sys, "directory", NULL);
    deadline = ncct_now_ms() + 40000; /* the history asks again after 1, 2, 4, 8, 16 s */
    for (;;) {
        rc = ncc_rpc_call_typed(client, &sup, &create.base, &ncc__history__record__descriptor,
                                30000, &answer, &error);
        if (rc == 0)
            protobuf_c_message_free_unpacked(answer, NULL);
        if (error) {
            ncc__error__free_unpacked(error, NULL);
            error = NULL;
        }
        if (rc != 0 || ncct_now_ms() > deadline)
            break;
        usleep(200 * 1000);
    }
    cr_assert_eq(rc, -EPROTO, "the directory's form (x_kind required) applies again");
    ncc_rpc_client_destroy(&client);
    ncct_system_stop_all(&s_sys);
}

/* ---- the final call summary -------------------------------------------------------------- */

/* Puts CallSummary (call_id, version, text) into ncc-summary's outbox as ncc_outbox_add
 * does at hang-up; the running ncc-summary numbers and publishes it. */
static void s_summary_event(const char *call_id, int64_t version, const char *text)
{
    Ncc__Summary__CallSummary m = NCC__SUMMARY__CALL_SUMMARY__INIT;
    m.call_id = (char *)call_id;
    m.summary = (char *)text;
    m.summarizer = "extractive";
    m.has_version = true;
    m.version = version;
    size_t len = protobuf_c_message_get_packed_size(&m.base);
    uint8_t *packed = malloc(len);
    cr_assert_not_null(packed);
    protobuf_c_message_pack(&m.base, packed);
    char *sql = malloc(2 * len + 256);
    cr_assert_not_null(sql);
    size_t used = (size_t)sprintf(sql, "WITH i AS (INSERT INTO summary.outbox (type, payload) "
                                       "VALUES ('ncc.summary.CallSummary', '\\x");
    for (size_t i = 0; i < len; i++)
        used += (size_t)sprintf(sql + used, "%02x", packed[i]);
    sprintf(sql + used, "'::bytea) RETURNING id) SELECT id FROM i");
    cr_assert_gt(s_count(sql), 0);
    free(sql);
    free(packed);
}

/* A summary event for another call, then waits until it is pending: every event
 * published before it has been applied (one publisher's events come in order). */
static void s_summary_barrier(const char *call_id)
{
    s_summary_event(call_id, 1, "同期用");
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM history.pending_summaries WHERE call_id = '%s'",
             call_id);
    cr_assert(s_wait_count(sql, 1, 10000), "the barrier event %s did not arrive", call_id);
}

static long s_search_total(const char *q_encoded)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/records?q=%s", q_encoded);
    ncct_resp_t r = s_req(&s_sup, "GET", path, NULL);
    ncct_expect(&r, 200, NULL, path);
    long total = (long)cJSON_GetObjectItemCaseSensitive(r.json, "total")->valuedouble;
    ncct_resp_free(&r);
    return total;
}

Test(history_form, the_final_summary_of_a_call_fills_the_record)
{
    s_start(true);

    /* Before the record: kept, applied when the call's record is made. */
    s_summary_event("C-S1", 1, "用件: 粗大ごみの収集日。回答: 毎週水曜。");
    cr_assert(s_wait_count("SELECT count(*) FROM history.pending_summaries WHERE call_id = "
                           "'C-S1' AND version = 1",
                           1, 10000),
              "the early summary was not kept");
    s_pbx("s1", "ringing", "C-S1", "2027-04-05T10:00:00+09:00", NULL);
    s_pbx("s2", "answered", "C-S1", "2027-04-05T10:00:05+09:00", "\"agent_extension\":\"2001\"");
    cr_assert(s_wait_count("SELECT count(*) FROM history.records WHERE call_id = 'C-S1' AND "
                           "summary = '用件: 粗大ごみの収集日。回答: 毎週水曜。' AND "
                           "summary_version = 1 AND version = 1",
                           1, 5000),
              "the early summary is not in the record");
    cr_assert_eq(s_count("SELECT count(*) FROM history.pending_summaries WHERE call_id = 'C-S1'"),
                 0);
    /* searchable: 粗大ごみ */
    long long deadline = ncct_now_ms() + 3000;
    while (s_search_total("%E7%B2%97%E5%A4%A7%E3%81%94%E3%81%BF") != 1 && ncct_now_ms() < deadline)
        usleep(50 * 1000);
    cr_assert_eq(s_search_total("%E7%B2%97%E5%A4%A7%E3%81%94%E3%81%BF"), 1, "found by 粗大ごみ");

    /* A newer version replaces it (RecordChanged, source summary; the version stays). */
    long changes = s_count("SELECT count(*) FROM history.outbox WHERE type = "
                           "'ncc.history.RecordChanged'");
    s_summary_event("C-S1", 2, "用件: 粗大ごみの申込み。回答: 電話で受付。");
    cr_assert(s_wait_count("SELECT count(*) FROM history.records WHERE call_id = 'C-S1' AND "
                           "summary = '用件: 粗大ごみの申込み。回答: 電話で受付。' AND "
                           "summary_version = 2 AND version = 1",
                           1, 5000),
              "version 2 not applied");
    cr_assert_eq(s_count("SELECT count(*) FROM history.outbox WHERE type = "
                         "'ncc.history.RecordChanged'"),
                 changes + 1, "one RecordChanged");
    deadline = ncct_now_ms() + 3000;
    while (s_search_total("%E7%94%B3%E8%BE%BC") != 1 && ncct_now_ms() < deadline) /* 申込 */
        usleep(50 * 1000);
    cr_assert_eq(s_search_total("%E7%94%B3%E8%BE%BC"), 1, "the new text is searchable");

    /* An older version (or the same again) changes nothing. */
    s_summary_event("C-S1", 1, "古い要約");
    s_summary_event("C-S1", 2, "同じ版の別の文");
    s_summary_barrier("C-BARRIER-1");
    cr_assert_eq(s_count("SELECT count(*) FROM history.records WHERE call_id = 'C-S1' AND "
                         "summary = '用件: 粗大ごみの申込み。回答: 電話で受付。'"),
                 1, "an older version replaced a newer one");

    /* The operator writes a summary: a later version does not overwrite it. */
    long id = s_count("SELECT id FROM history.records WHERE call_id = 'C-S1'");
    char path[64];
    snprintf(path, sizeof path, "/api/v1/records/%ld", id);
    ncct_resp_t r = s_req(&s_op1, "PATCH", path,
                          "{\"version\":1,\"inquiry\":\"粗大ごみ\",\"summary\":\"オペレーターが"
                          "書いた要約\"}");
    ncct_expect(&r, 200, NULL, "the operator's own summary");
    ncct_resp_free(&r);
    s_summary_event("C-S1", 3, "用件: 上書きしてはならない要約");
    s_summary_barrier("C-BARRIER-2");
    cr_assert_eq(s_count("SELECT count(*) FROM history.records WHERE call_id = 'C-S1' AND "
                         "summary = 'オペレーターが書いた要約' AND summary_source = 'user'"),
                 1, "the operator's summary was overwritten");

    /* A record created through the API with the call's id takes an early summary too,
     * unless it brings one of its own. */
    s_summary_event("C-S2", 4, "用件: 犬の登録。");
    s_summary_event("C-S3", 1, "用件: 使われない要約");
    cr_assert(s_wait_count("SELECT count(*) FROM history.pending_summaries WHERE call_id IN "
                           "('C-S2', 'C-S3')",
                           2, 10000));
    r = s_req(&s_op1, "POST", "/api/v1/records",
              "{\"channel\":\"phone\",\"call_id\":\"C-S2\",\"inquiry\":\"犬の登録\"}");
    ncct_expect(&r, 201, NULL, "a record of a call through the API");
    cr_assert_str_eq(ncct_str(r.json, "summary"), "用件: 犬の登録。", "%s", r.body);
    ncct_resp_free(&r);
    r = s_req(&s_op1, "POST", "/api/v1/records",
              "{\"channel\":\"phone\",\"call_id\":\"C-S3\",\"inquiry\":\"猫\",\"summary\":\"手書き"
              "\"}");
    ncct_expect(&r, 201, NULL, "with a summary of its own");
    cr_assert_str_eq(ncct_str(r.json, "summary"), "手書き", "%s", r.body);
    ncct_resp_free(&r);
    ncct_system_stop_all(&s_sys);
}
