/* The record form setting of ncc-directory (R3, R38; docs/record-form.md),
 * end to end: the real ncc-directory and ncc-gateway (from NCC_TEST_BIN_DIR)
 * against a database of this test's own on the cluster NCC_DATABASE_URL
 * points at (scripts/pg.sh fresh), with a bus actor key, data keys and the
 * first administrator made here. Requests go through the gateway's plain
 * listener with libcurl, as the administrator, an operator, a supervisor
 * and staff: the default form, a change with its new version, history and
 * audit entry, a stale version, every rule of the definition with the path
 * it names, the roles, a daemon reading it on the bus, and the
 * RecordFormChanged event reaching a subscriber. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <czmq.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "ncc.pb-c.h"
#include "ncc/bus.h"
#include "ncc/crypto.h"
#include "ncc/log.h"
#include "ncc/service.h"
#include "ncc_system.h"
#include "ncc_test.h"
#include "settings.pb-c.h"

#define USER_PASSWORD "Madoguchi-Pass-2027"
#define FORM_PATH     "/api/v1/settings/record-form"
#define HISTORY_PATH  "/api/v1/settings/record-form/history"

/* ---- the system: ncc-directory and the gateway (tests/support/ncc_system.h) ---- */

static ncct_system_t s_sys;
#define s_db        (s_sys.db)
#define s_directory (*ncct_service(&s_sys, "directory"))

typedef ncct_session_t session_t;
typedef ncct_resp_t resp_t;

static void setup(void)
{
    ncc_log_init("test_record_form", NCC_LOG_ERROR);
    ncct_system_init(&s_sys, "test_record_form");
    ncct_system_start(&s_sys, "directory", NULL);
    ncct_system_start_gateway(&s_sys, NULL);
}

static void teardown(void)
{
    ncct_system_teardown(&s_sys);
}

TestSuite(record_form, .init = setup, .fini = teardown, .timeout = 240);

static void s_stop_all(void)
{
    ncct_system_stop_all(&s_sys);
}

static long s_owner_long(const char *sql)
{
    return ncct_owner_long(&s_sys, sql);
}

/* Runs `sql` as the application role (the daemons' role); true when it worked. */
static bool s_app_runs(const char *sql)
{
    PGconn *conn = PQconnectdb(s_db.url);
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    PQfinish(conn);
    return ok;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

/* One JSON request as `session` (NULL: without one). */
static resp_t s_request(const session_t *session, const char *method, const char *path,
                        const char *body)
{
    return ncct_request(&s_sys, session, method, path, body, NULL);
}

static void s_free(resp_t *resp)
{
    ncct_resp_free(resp);
}

static const char *s_str(const cJSON *object, const char *name)
{
    return ncct_str(object, name);
}

static long s_num(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    cr_assert(cJSON_IsNumber(item), "no number %s", name);
    return (long)item->valuedouble;
}

static const cJSON *s_error(const resp_t *resp)
{
    return cJSON_GetObjectItemCaseSensitive(resp->json, "error");
}

/* Asserts the status (and error code when not NULL); returns the response. */
static resp_t s_expect(resp_t resp, long status, const char *code, const char *what)
{
    ncct_expect(&resp, status, code, what);
    return resp;
}

static void s_check(resp_t resp, long status, const char *code, const char *what)
{
    resp = s_expect(resp, status, code, what);
    s_free(&resp);
}

/* Signs in; `totp` for the administrator. */
static void s_sign_in(session_t *session, const char *login, const char *password, bool totp)
{
    ncct_login(&s_sys, session, login, password, totp ? NCCT_ADMIN_TOTP : NULL);
}

static session_t s_admin;

static void s_admin_login(void)
{
    ncct_login_admin(&s_sys, &s_admin);
}

/* A user with `role`, signed in. */
static void s_user(session_t *session, const char *login, const char *role)
{
    char body[400];
    snprintf(body, sizeof body,
             "{\"login\":\"%s\",\"name\":\"%s\",\"roles\":[\"%s\"],\"password\":\"%s\"}", login,
             login, role, USER_PASSWORD);
    s_check(s_request(&s_admin, "POST", "/api/v1/users", body), 201, NULL, "create user");
    s_sign_in(session, login, USER_PASSWORD, false);
}

/* ---- the form ------------------------------------------------------------------------------ */

/* The current form as the administrator reads it (caller deletes). */
static cJSON *s_form(void)
{
    resp_t resp = s_expect(s_request(&s_admin, "GET", FORM_PATH, NULL), 200, NULL, "read");
    cJSON *form = resp.json;
    resp.json = NULL;
    s_free(&resp);
    return form;
}

/* The field `name` of a definition, or NULL. */
static cJSON *s_field(const cJSON *definition, const char *name)
{
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(definition, "fields"))
    {
        if (s_str(item, "name") && strcmp(s_str(item, "name"), name) == 0)
            return item;
    }
    return NULL;
}

static cJSON *s_status(const cJSON *definition, const char *code)
{
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(definition, "statuses"))
    {
        if (s_str(item, "code") && strcmp(s_str(item, "code"), code) == 0)
            return item;
    }
    return NULL;
}

static bool s_bool(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    cr_assert(cJSON_IsBool(item), "no boolean %s", name);
    return cJSON_IsTrue(item);
}

static void s_set(cJSON *object, const char *name, cJSON *value)
{
    if (cJSON_GetObjectItemCaseSensitive(object, name))
        cJSON_ReplaceItemInObjectCaseSensitive(object, name, value);
    else
        cJSON_AddItemToObject(object, name, value);
}

/* The body of a PUT: {"version", "definition"}. Caller frees. */
static char *s_put_body(long version, const cJSON *definition)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "version", (double)version);
    cJSON_AddItemToObject(body, "definition", cJSON_Duplicate(definition, true));
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    return text;
}

static resp_t s_put(const session_t *session, long version, const cJSON *definition)
{
    char *body = s_put_body(version, definition);
    resp_t resp = s_request(session, "PUT", FORM_PATH, body);
    free(body);
    return resp;
}

/* The definition of a read form. */
static cJSON *s_definition(const cJSON *form)
{
    cJSON *definition = cJSON_GetObjectItemCaseSensitive(form, "definition");
    cr_assert(cJSON_IsObject(definition), "no definition");
    return definition;
}

/* ---- tests ---------------------------------------------------------------------------------- */

Test(record_form, the_default_form_is_read_by_every_role_and_by_daemons)
{
    s_admin_login();
    session_t op, staff, sup;
    s_user(&op, "op1", "operator");
    s_user(&staff, "staff1", "staff");
    s_user(&sup, "sup1", "supervisor");

    /* The operator desk renders from it: the fields of API.md in order. */
    resp_t resp = s_expect(s_request(&op, "GET", FORM_PATH, NULL), 200, NULL, "operator reads");
    cr_assert_eq(s_num(resp.json, "version"), 1);
    const cJSON *def = s_definition(resp.json);
    const cJSON *inquiry = s_field(def, "inquiry");
    cr_assert_not_null(inquiry, "%s", resp.body);
    cr_assert_str_eq(s_str(inquiry, "label_ja"), "受付内容");
    cr_assert_str_eq(s_str(inquiry, "label_en"), "Inquiry");
    cr_assert_str_eq(s_str(inquiry, "type"), "textarea");
    cr_assert(s_bool(inquiry, "required") && s_bool(inquiry, "visible"));
    static const struct {
        const char *name, *label, *list;
    } lists[] = {{"reception_type", "受付区分", "reception-types"},
                 {"handling_type", "対応区分", "handling-types"},
                 {"category", "カテゴリー", "categories"},
                 {"department_id", "問い合わせ受付区分", "departments"},
                 {"transfer_to", "転送先", "directory"}};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        const cJSON *field = s_field(def, lists[i].name);
        cr_assert_not_null(field, "%s", lists[i].name);
        cr_assert_str_eq(s_str(field, "type"), "choice");
        cr_assert_str_eq(s_str(field, "label_ja"), lists[i].label);
        cr_assert_str_eq(s_str(field, "choices"), lists[i].list);
    }
    cr_assert_str_eq(s_str(s_field(def, "faq_ids"), "type"), "faq_ids");
    cr_assert_str_eq(s_str(s_field(def, "response"), "label_ja"), "対応内容");
    cr_assert(s_bool(s_field(def, "started_at"), "required"));
    /* Statuses: 未対応 -> 対応中 -> 完了. */
    const cJSON *open = s_status(def, "open");
    cr_assert_not_null(open);
    cr_assert_str_eq(s_str(open, "label_ja"), "未対応");
    cr_assert(s_bool(open, "initial") && !s_bool(open, "final"));
    cr_assert_str_eq(s_str(s_status(def, "in_progress"), "label_ja"), "対応中");
    const cJSON *closed = s_status(def, "closed");
    cr_assert(s_bool(closed, "final") && !s_bool(closed, "initial"));
    cr_assert_str_eq(s_str(closed, "label_ja"), "完了");
    /* The default passes its own rules: written back unchanged, nothing changes. */
    resp_t same = s_expect(s_put(&s_admin, 1, def), 200, NULL, "the default written back");
    cr_assert_eq(s_num(same.json, "version"), 1, "%s", same.body);
    s_free(&same);
    s_free(&resp);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.record_form_history"), 0);

    /* Staff and supervisors read it too; without a session nobody does. */
    s_check(s_request(&staff, "GET", FORM_PATH, NULL), 200, NULL, "staff reads");
    s_check(s_request(&sup, "GET", FORM_PATH, NULL), 200, NULL, "supervisor reads");
    s_check(s_request(NULL, "GET", FORM_PATH, NULL), 401, NULL, "no session");

    /* A daemon (ncc-history) reads it on the bus; it cannot change it. */
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_directory.rpc);
    ncc_rpc_client_t *client = ncc_rpc_client_new(endpoint);
    cr_assert_not_null(client);
    ncc_ctx_t system = {.actor_id = "svc:history", .actor_role = "system"};
    Ncc__Directory__GetRecordForm get = NCC__DIRECTORY__GET_RECORD_FORM__INIT;
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    cr_assert_eq(ncc_rpc_call_typed(client, &system, &get.base,
                                    &ncc__directory__record_form__descriptor, 10000, &answer,
                                    &error),
                 0);
    Ncc__Directory__RecordForm *form = (Ncc__Directory__RecordForm *)answer;
    cr_assert_eq(form->version, 1);
    cr_assert_not_null(form->definition);
    cr_assert_geq(form->definition->n_fields, 15);
    cr_assert_eq(form->definition->n_statuses, 3);
    protobuf_c_message_free_unpacked(answer, NULL);
    Ncc__Directory__UpdateRecordForm update = NCC__DIRECTORY__UPDATE_RECORD_FORM__INIT;
    update.has_version = true;
    update.version = 1;
    cr_assert_eq(ncc_rpc_call_typed(client, &system, &update.base,
                                    &ncc__directory__record_form__descriptor, 10000, &answer,
                                    &error),
                 -EPROTO);
    cr_assert_not_null(error);
    cr_assert_eq(error->status, 403);
    ncc__error__free_unpacked(error, NULL);
    ncc_rpc_client_destroy(&client);
    s_stop_all();
}

Test(record_form, an_admin_change_gets_a_new_version_history_and_audit)
{
    s_admin_login();
    cJSON *form = s_form();
    cJSON *def = s_definition(form);
    /* A label, a required flag, a field hidden, one moved, one of our own. */
    s_set(s_field(def, "inquiry"), "label_ja", cJSON_CreateString("お問い合わせ内容"));
    s_set(s_field(def, "response"), "required", cJSON_CreateTrue());
    s_set(s_field(def, "wrapup_ended_at"), "visible", cJSON_CreateFalse());
    cJSON *custom = cJSON_Parse("{\"name\":\"x_ward_area\",\"label_ja\":\"地域\",\"label_en\":"
                                "\"Area\",\"type\":\"choice\",\"options\":[{\"code\":\"north\","
                                "\"label_ja\":\"北部\",\"label_en\":\"North\"},{\"code\":"
                                "\"south\",\"label_ja\":\"南部\"}]}");
    cJSON_InsertItemInArray(cJSON_GetObjectItemCaseSensitive(def, "fields"), 0, custom);
    s_set(s_status(def, "in_progress"), "label_en", cJSON_CreateString("Working"));

    resp_t resp = s_expect(s_put(&s_admin, 1, def), 200, NULL, "change");
    cr_assert_eq(s_num(resp.json, "version"), 2, "%s", resp.body);
    cr_assert_str_eq(s_str(resp.json, "updated_by"), "admin");
    cr_assert_not_null(s_str(resp.json, "updated_at"));
    const cJSON *saved = s_definition(resp.json);
    cr_assert_str_eq(s_str(s_field(saved, "inquiry"), "label_ja"), "お問い合わせ内容");
    cr_assert(s_bool(s_field(saved, "response"), "required"));
    cr_assert(!s_bool(s_field(saved, "wrapup_ended_at"), "visible"));
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(saved, "fields"), 0);
    cr_assert_str_eq(s_str(first, "name"), "x_ward_area", "the order is kept");
    /* Flags left out are stored explicitly. */
    cr_assert(!s_bool(first, "required") && s_bool(first, "visible"));
    s_free(&resp);

    /* Everyone reads the new version. */
    cJSON *again = s_form();
    cr_assert_eq(s_num(again, "version"), 2);
    cr_assert_str_eq(s_str(s_field(s_definition(again), "inquiry"), "label_ja"),
                     "お問い合わせ内容");
    cr_assert_str_eq(s_str(s_status(s_definition(again), "in_progress"), "label_en"), "Working");
    cJSON_Delete(again);

    /* The history: who, when, before and after. */
    resp = s_expect(s_request(&s_admin, "GET", HISTORY_PATH, NULL), 200, NULL, "history");
    cr_assert_eq(s_num(resp.json, "total"), 1, "%s", resp.body);
    const cJSON *entry =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_eq(s_num(entry, "version"), 2);
    cr_assert_str_eq(s_str(entry, "actor_login"), "admin");
    cr_assert_str_eq(s_str(entry, "actor_id"), "1");
    cr_assert_not_null(s_str(entry, "at"));
    const cJSON *before = cJSON_GetObjectItemCaseSensitive(entry, "before");
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(entry, "after");
    cr_assert_str_eq(s_str(s_field(before, "inquiry"), "label_ja"), "受付内容");
    cr_assert_str_eq(s_str(s_field(after, "inquiry"), "label_ja"), "お問い合わせ内容");
    cr_assert_null(s_field(before, "x_ward_area"));
    cr_assert_not_null(s_field(after, "x_ward_area"));
    s_free(&resp);

    /* A second change, then two entries, newest first, paged. */
    s_set(s_field(def, "inquiry"), "label_ja", cJSON_CreateString("受付内容"));
    s_check(s_put(&s_admin, 2, def), 200, NULL, "second change");
    resp = s_expect(s_request(&s_admin, "GET", HISTORY_PATH "?per_page=1&page=1", NULL), 200, NULL,
                    "history page 1");
    cr_assert_eq(s_num(resp.json, "total"), 2);
    entry = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_eq(s_num(entry, "version"), 3);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp.json, "items")), 1);
    s_free(&resp);
    s_check(s_request(&s_admin, "GET", HISTORY_PATH "?per_page=101", NULL), 422, "invalid_field",
            "per_page too large");

    /* The history is append-only for the daemons' database role. */
    cr_assert(!s_app_runs("UPDATE directory.record_form_history SET actor_login = 'x'"));
    cr_assert(!s_app_runs("DELETE FROM directory.record_form_history"));
    cr_assert(s_app_runs("SELECT count(*) FROM directory.record_form_history"));
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.record_form_history"), 2);

    /* Each change is in the audit log; so is the history read. */
    resp = s_expect(s_request(&s_admin, "GET", "/api/v1/audit?action=record_form.update", NULL),
                    200, NULL, "audit");
    cr_assert_eq(s_num(resp.json, "total"), 2, "%s", resp.body);
    entry = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_str_eq(s_str(entry, "outcome"), "ok");
    cr_assert_str_eq(s_str(entry, "actor_login"), "admin");
    s_free(&resp);
    cr_assert_geq(s_owner_long("SELECT count(*) FROM directory.audit_log WHERE action = "
                               "'record_form.history'"),
                  2);
    cJSON_Delete(form);
    s_stop_all();
}

Test(record_form, a_stale_version_is_a_conflict)
{
    s_admin_login();
    cJSON *form = s_form();
    cJSON *def = s_definition(form);
    s_set(s_field(def, "response"), "label_ja", cJSON_CreateString("回答内容"));
    s_check(s_put(&s_admin, 1, def), 200, NULL, "first change");
    /* Another administrator still holds version 1. */
    s_set(s_field(def, "response"), "label_ja", cJSON_CreateString("対応の内容"));
    resp_t resp = s_expect(s_put(&s_admin, 1, def), 409, "conflict", "stale version");
    cr_assert_str_eq(s_str(s_error(&resp), "field"), "version");
    s_free(&resp);
    cJSON *now = s_form();
    cr_assert_eq(s_num(now, "version"), 2);
    cr_assert_str_eq(s_str(s_field(s_definition(now), "response"), "label_ja"), "回答内容");
    cJSON_Delete(now);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.record_form_history"), 1);
    /* No version at all: 422. */
    char *body = cJSON_PrintUnformatted(def);
    char wrapped[16384];
    snprintf(wrapped, sizeof wrapped, "{\"definition\":%s}", body);
    free(body);
    resp = s_expect(s_request(&s_admin, "PUT", FORM_PATH, wrapped), 422, "invalid_field",
                    "no version");
    cr_assert_str_eq(s_str(s_error(&resp), "field"), "version");
    s_free(&resp);
    resp = s_expect(s_request(&s_admin, "PUT", FORM_PATH, "{\"version\":2}"), 422, "invalid_field",
                    "no definition");
    cr_assert_str_eq(s_str(s_error(&resp), "field"), "definition");
    s_free(&resp);
    cJSON_Delete(form);
    s_stop_all();
}

/* Broken definitions: each e_*() breaks one rule of the default. */

static cJSON *s_fields(cJSON *def)
{
    return cJSON_GetObjectItemCaseSensitive(def, "fields");
}

static cJSON *s_statuses(cJSON *def)
{
    return cJSON_GetObjectItemCaseSensitive(def, "statuses");
}

/* Index of field `name` in the default (asserted by the cases' paths). */
static int s_index(cJSON *def, const char *name)
{
    int i = 0;
    cJSON *item;
    cJSON_ArrayForEach(item, s_fields(def))
    {
        if (strcmp(s_str(item, "name"), name) == 0)
            return i;
        i++;
    }
    cr_assert_fail("no field %s", name);
    return -1;
}

static void s_add_custom(cJSON *def, const char *json)
{
    cJSON_AddItemToArray(s_fields(def), cJSON_Parse(json));
}

static void e_unknown_name(cJSON *def)
{
    s_set(cJSON_GetArrayItem(s_fields(def), 2), "name", cJSON_CreateString("colour"));
}
static void e_status_as_field(cJSON *def)
{
    s_set(cJSON_GetArrayItem(s_fields(def), 2), "name", cJSON_CreateString("status"));
}
static void e_duplicate(cJSON *def)
{
    s_set(cJSON_GetArrayItem(s_fields(def), 3), "name", cJSON_CreateString("receipt_id"));
}
static void e_bad_type(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"checkbox\"}");
}
static void e_builtin_type(cJSON *def)
{
    s_set(s_field(def, "inquiry"), "type", cJSON_CreateString("number"));
}
static void e_choice_without_list(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"choice\"}");
}
static void e_unknown_list(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"choice\",\"choices\":"
                      "\"users\"}");
}
static void e_builtin_other_list(cJSON *def)
{
    s_set(s_field(def, "reception_type"), "choices", cJSON_CreateString("categories"));
}
static void e_list_and_options(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"choice\",\"choices\":"
                      "\"categories\",\"options\":[{\"code\":\"a\",\"label_ja\":\"A\"}]}");
}
static void e_list_on_text(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"text\",\"choices\":"
                      "\"categories\"}");
}
static void e_bad_option_code(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"choice\",\"options\":[{"
                      "\"code\":\"ok\",\"label_ja\":\"A\"},{\"code\":\"no good\",\"label_ja\":"
                      "\"B\"}]}");
}
static void e_unknown_channel(cJSON *def)
{
    cJSON *options = cJSON_GetObjectItemCaseSensitive(s_field(def, "channel"), "options");
    s_set(cJSON_GetArrayItem(options, 1), "code", cJSON_CreateString("fax"));
}
static void e_inquiry_hidden(cJSON *def)
{
    s_set(s_field(def, "inquiry"), "visible", cJSON_CreateFalse());
}
static void e_inquiry_optional(cJSON *def)
{
    s_set(s_field(def, "inquiry"), "required", cJSON_CreateFalse());
}
static void e_inquiry_removed(cJSON *def)
{
    cJSON_DeleteItemFromArray(s_fields(def), s_index(def, "inquiry"));
}
static void e_started_at_hidden(cJSON *def)
{
    s_set(s_field(def, "started_at"), "visible", cJSON_CreateFalse());
}
static void e_system_required(cJSON *def)
{
    s_set(s_field(def, "receipt_id"), "required", cJSON_CreateTrue());
}
static void e_required_hidden(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"text\",\"required\":true,"
                      "\"visible\":false}");
}
static void e_bad_custom_name(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_Bad\",\"label_ja\":\"A\",\"type\":\"text\"}");
}
static void e_long_label(cJSON *def)
{
    char label[61 * 3 + 1];
    for (int i = 0; i < 61; i++)
        memcpy(label + 3 * i, "あ", 3); /* 61 characters: one too many */
    label[61 * 3] = '\0';
    s_set(s_field(def, "response"), "label_ja", cJSON_CreateString(label));
}
static void e_no_label(cJSON *def)
{
    s_set(s_field(def, "response"), "label_ja", cJSON_CreateString(""));
}
static void e_max_length_on_choice(cJSON *def)
{
    s_set(s_field(def, "category"), "max_length", cJSON_CreateNumber(10));
}
static void e_max_length_zero(cJSON *def)
{
    s_set(s_field(def, "response"), "max_length", cJSON_CreateNumber(0));
}
static void e_too_many_fields(cJSON *def)
{
    for (int i = 0; i < 50; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"name\":\"x_f%d\",\"label_ja\":\"F\",\"type\":\"text\"}", i);
        s_add_custom(def, json);
    }
}
static void e_two_initial(cJSON *def)
{
    s_set(s_status(def, "in_progress"), "initial", cJSON_CreateTrue());
}
static void e_no_initial(cJSON *def)
{
    s_set(s_status(def, "open"), "initial", cJSON_CreateFalse());
}
static void e_no_final(cJSON *def)
{
    s_set(s_status(def, "closed"), "final", cJSON_CreateFalse());
}
static void e_unknown_next(cJSON *def)
{
    cJSON *next = cJSON_GetObjectItemCaseSensitive(s_status(def, "open"), "next");
    cJSON_ReplaceItemInArray(next, 1, cJSON_CreateString("done"));
}
static void e_next_itself(cJSON *def)
{
    cJSON *next = cJSON_GetObjectItemCaseSensitive(s_status(def, "closed"), "next");
    cJSON_ReplaceItemInArray(next, 0, cJSON_CreateString("closed"));
}
static void e_dead_end(cJSON *def)
{
    s_set(s_status(def, "in_progress"), "next", cJSON_CreateArray());
}
static void e_unreachable(cJSON *def)
{
    cJSON_AddItemToArray(s_statuses(def),
                         cJSON_Parse("{\"code\":\"waiting\",\"label_ja\":\"保留\",\"next\":["
                                     "\"closed\"]}"));
}
static void e_bad_status_code(cJSON *def)
{
    cJSON_AddItemToArray(s_statuses(def),
                         cJSON_Parse("{\"code\":\"Done!\",\"label_ja\":\"済\",\"next\":["
                                     "\"closed\"]}"));
}
static void e_duplicate_status(cJSON *def)
{
    cJSON_AddItemToArray(s_statuses(def),
                         cJSON_Parse("{\"code\":\"open\",\"label_ja\":\"再\",\"next\":["
                                     "\"closed\"]}"));
}
static void e_no_statuses(cJSON *def)
{
    s_set(def, "statuses", cJSON_CreateArray());
}

Test(record_form, every_rule_is_checked_and_names_the_field)
{
    s_admin_login();
    cJSON *form = s_form();
    const cJSON *def0 = s_definition(form);
    char path[128];
    /* The default's positions (the paths below follow them). */
    cr_assert_eq(s_index((cJSON *)def0, "receipt_id"), 0);
    int inquiry = s_index((cJSON *)def0, "inquiry");
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(def0, "fields"));
    char p_custom[64], p_inquiry[64], p_started[64], p_reception[64], p_channel[64], p_response[64],
        p_category[64];
    snprintf(p_custom, sizeof p_custom, "definition.fields[%d]", n);
    snprintf(p_inquiry, sizeof p_inquiry, "definition.fields[%d]", inquiry);
    snprintf(p_started, sizeof p_started, "definition.fields[%d]",
             s_index((cJSON *)def0, "started_at"));
    snprintf(p_reception, sizeof p_reception, "definition.fields[%d]",
             s_index((cJSON *)def0, "reception_type"));
    snprintf(p_channel, sizeof p_channel, "definition.fields[%d]",
             s_index((cJSON *)def0, "channel"));
    snprintf(p_response, sizeof p_response, "definition.fields[%d]",
             s_index((cJSON *)def0, "response"));
    snprintf(p_category, sizeof p_category, "definition.fields[%d]",
             s_index((cJSON *)def0, "category"));
    struct {
        const char *what;
        void (*edit)(cJSON *def);
        const char *base, *suffix;
    } cases[] = {
        {"an unknown name", e_unknown_name, "definition.fields[2]", ".name"},
        {"status as a field", e_status_as_field, "definition.fields[2]", ".name"},
        {"a name twice", e_duplicate, "definition.fields[3]", ".name"},
        {"an unknown type", e_bad_type, p_custom, ".type"},
        {"a built-in's type changed", e_builtin_type, p_inquiry, ".type"},
        {"a choice without a list", e_choice_without_list, p_custom, ".choices"},
        {"an unknown list", e_unknown_list, p_custom, ".choices"},
        {"a built-in's list changed", e_builtin_other_list, p_reception, ".choices"},
        {"a list and options", e_list_and_options, p_custom, ".options"},
        {"a list on a text field", e_list_on_text, p_custom, ".choices"},
        {"a bad option code", e_bad_option_code, p_custom, ".options[1].code"},
        {"a channel API.md lacks", e_unknown_channel, p_channel, ".options[1].code"},
        {"inquiry hidden", e_inquiry_hidden, p_inquiry, ".visible"},
        {"inquiry optional", e_inquiry_optional, p_inquiry, ".required"},
        {"inquiry removed", e_inquiry_removed, "definition.fields", ""},
        {"started_at hidden", e_started_at_hidden, p_started, ".visible"},
        {"a system field required", e_system_required, "definition.fields[0]", ".required"},
        {"required but hidden", e_required_hidden, p_custom, ".visible"},
        {"a bad custom name", e_bad_custom_name, p_custom, ".name"},
        {"a label too long", e_long_label, p_response, ".label_ja"},
        {"no label", e_no_label, p_response, ".label_ja"},
        {"max_length on a choice", e_max_length_on_choice, p_category, ".max_length"},
        {"max_length 0", e_max_length_zero, p_response, ".max_length"},
        {"61 fields or more", e_too_many_fields, "definition.fields", ""},
        {"two initial statuses", e_two_initial, "definition.statuses[1]", ".initial"},
        {"no initial status", e_no_initial, "definition.statuses", ""},
        {"no final status", e_no_final, "definition.statuses", ""},
        {"next names no status", e_unknown_next, "definition.statuses[0]", ".next[1]"},
        {"next names itself", e_next_itself, "definition.statuses[2]", ".next[0]"},
        {"a dead end", e_dead_end, "definition.statuses[1]", ".next"},
        {"an unreachable status", e_unreachable, "definition.statuses[3]", ""},
        {"a bad status code", e_bad_status_code, "definition.statuses[3]", ".code"},
        {"a status code twice", e_duplicate_status, "definition.statuses[3]", ".code"},
        {"no statuses", e_no_statuses, "definition.statuses", ""},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cJSON *def = cJSON_Duplicate(def0, true);
        cases[c].edit(def);
        snprintf(path, sizeof path, "%s%s", cases[c].base, cases[c].suffix);
        resp_t resp = s_expect(s_put(&s_admin, 1, def), 422, "invalid_field", cases[c].what);
        const char *field = s_str(s_error(&resp), "field");
        cr_assert(field && strcmp(field, path) == 0, "%s: field %s (expected %s): %s",
                  cases[c].what, field ? field : "(none)", path, resp.body);
        /* The list holds it too, with a sentence naming the path. */
        const cJSON *errors = cJSON_GetObjectItemCaseSensitive(resp.json, "errors");
        cr_assert_geq(cJSON_GetArraySize(errors), 1, "%s: %s", cases[c].what, resp.body);
        const char *message = s_str(cJSON_GetArrayItem(errors, 0), "message");
        cr_assert(message && strstr(message, path), "%s: %s", cases[c].what, resp.body);
        s_free(&resp);
        cJSON_Delete(def);
    }
    /* Several problems at once are all listed. */
    cJSON *def = cJSON_Duplicate(def0, true);
    e_inquiry_hidden(def);
    e_no_final(def);
    e_bad_type(def);
    resp_t resp = s_expect(s_put(&s_admin, 1, def), 422, "invalid_field", "three problems");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp.json, "errors")), 3, "%s",
                 resp.body);
    s_free(&resp);
    cJSON_Delete(def);
    /* What the JSON itself gets wrong the gateway refuses (400, docs/json.md), with
     * paths of the same form. */
    def = cJSON_Duplicate(def0, true);
    cJSON_AddStringToObject(cJSON_GetArrayItem(s_fields(def), 1), "colour", "red");
    resp = s_expect(s_put(&s_admin, 1, def), 400, "unknown_field", "an unknown member");
    cr_assert_str_eq(s_str(s_error(&resp), "field"), "definition.fields[1].colour");
    s_free(&resp);
    cJSON_Delete(def);
    def = cJSON_Duplicate(def0, true);
    s_set(cJSON_GetArrayItem(s_fields(def), 1), "required", cJSON_CreateString("yes"));
    resp = s_expect(s_put(&s_admin, 1, def), 400, "invalid_field", "a string for a flag");
    cr_assert_str_eq(s_str(s_error(&resp), "field"), "definition.fields[1].required");
    s_free(&resp);
    cJSON_Delete(def);

    /* Nothing was changed by any of them. */
    cJSON *now = s_form();
    cr_assert_eq(s_num(now, "version"), 1);
    cJSON_Delete(now);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.record_form_history"), 0);
    cr_assert_eq(s_owner_long("SELECT version FROM directory.record_form"), 1);
    cJSON_Delete(form);
    s_stop_all();
}

Test(record_form, only_an_administrator_changes_it)
{
    s_admin_login();
    session_t op, sup, staff;
    s_user(&op, "op2", "operator");
    s_user(&sup, "sup2", "supervisor");
    s_user(&staff, "staff2", "staff");
    cJSON *form = s_form();
    cJSON *def = s_definition(form);
    s_set(s_field(def, "inquiry"), "label_ja", cJSON_CreateString("改ざん"));
    s_check(s_put(&op, 1, def), 403, "forbidden", "operator");
    s_check(s_put(&sup, 1, def), 403, "forbidden", "supervisor");
    s_check(s_put(&staff, 1, def), 403, "forbidden", "staff");
    /* The history is for supervisors and administrators. */
    s_check(s_request(&sup, "GET", HISTORY_PATH, NULL), 200, NULL, "supervisor reads history");
    s_check(s_request(&op, "GET", HISTORY_PATH, NULL), 403, "forbidden", "operator history");
    s_check(s_request(&staff, "GET", HISTORY_PATH, NULL), 403, "forbidden", "staff history");
    cJSON *now = s_form();
    cr_assert_eq(s_num(now, "version"), 1);
    cr_assert_str_eq(s_str(s_field(s_definition(now), "inquiry"), "label_ja"), "受付内容");
    cJSON_Delete(now);
    /* The attempts are audited as denied. */
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.audit_log WHERE action = "
                              "'record_form.update' AND outcome = 'denied'"),
                 3);
    cJSON_Delete(form);
    s_stop_all();
}

/* The next message on `sub` whose type frame is `type`, within timeout_ms
 * (other types skipped); its envelope (caller frees), or NULL. */
static Ncc__Envelope *s_next_event(zsock_t *sub, const char *type, int timeout_ms)
{
    long long deadline = ncct_now_ms() + timeout_ms;
    while (ncct_now_ms() < deadline) {
        zsock_set_rcvtimeo(sub, (int)(deadline - ncct_now_ms()) + 1);
        zmsg_t *msg = zmsg_recv(sub);
        if (!msg)
            return NULL;
        Ncc__Envelope *envelope = NULL;
        zframe_t *type_frame = zmsg_first(msg);
        zframe_t *body = zmsg_next(msg);
        if (type_frame && body && zframe_streq(type_frame, type))
            envelope = ncc__envelope__unpack(NULL, zframe_size(body), zframe_data(body));
        zmsg_destroy(&msg);
        if (envelope)
            return envelope;
    }
    return NULL;
}

Test(record_form, a_change_reaches_a_subscriber_on_the_bus)
{
    s_admin_login();
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_directory.pub);
    zsock_t *sub = zsock_new_sub(endpoint, "ncc.directory.RecordFormChanged");
    cr_assert_not_null(sub);
    zsock_set_subscribe(sub, "ncc.Heartbeat");
    /* Connected once a heartbeat (every second) arrives. */
    Ncc__Envelope *beat = s_next_event(sub, "ncc.Heartbeat", 5000);
    cr_assert_not_null(beat, "no heartbeat from ncc-directory");
    ncc__envelope__free_unpacked(beat, NULL);

    cJSON *form = s_form();
    cJSON *def = s_definition(form);
    s_set(s_field(def, "category"), "label_ja", cJSON_CreateString("分類"));
    s_set(s_field(def, "category"), "required", cJSON_CreateTrue());
    long long sent = ncct_now_ms();
    s_check(s_put(&s_admin, 1, def), 200, NULL, "change");

    Ncc__Envelope *event = s_next_event(sub, "ncc.directory.RecordFormChanged", 5000);
    cr_assert_not_null(event, "no RecordFormChanged within 5 s");
    cr_log_info("RecordFormChanged arrived %lld ms after the request", ncct_now_ms() - sent);
    cr_assert_str_eq(event->type, "ncc.directory.RecordFormChanged");
    cr_assert(event->has_seq && event->seq > 0, "published through the outbox (numbered)");
    cr_assert(event->actor_id && strcmp(event->actor_id, "1") == 0);
    Ncc__Directory__RecordFormChanged *changed =
        ncc__directory__record_form_changed__unpack(NULL, event->payload.len, event->payload.data);
    cr_assert_not_null(changed);
    cr_assert_eq(changed->version, 2);
    cr_assert_str_eq(changed->updated_by, "admin");
    cr_assert_not_null(changed->definition);
    bool found = false;
    for (size_t i = 0; i < changed->definition->n_fields; i++) {
        const Ncc__Directory__RecordFormField *field = changed->definition->fields[i];
        if (strcmp(field->name, "category") == 0) {
            found = true;
            cr_assert_str_eq(field->label_ja, "分類");
            cr_assert(field->has_required && field->required);
        }
    }
    cr_assert(found);
    ncc__directory__record_form_changed__free_unpacked(changed, NULL);
    ncc__envelope__free_unpacked(event, NULL);
    /* The outbox row was written in the transaction of the change. */
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.outbox WHERE type = "
                              "'ncc.directory.RecordFormChanged'"),
                 1);
    zsock_destroy(&sub);
    cJSON_Delete(form);
    s_stop_all();
}
