/* The masters of ncc-directory (R4, R5, R8; docs/masters.md), end to end:
 * the real ncc-directory, ncc-gateway and, for live propagation, ncc-calls
 * (from NCC_TEST_BIN_DIR) against a database of this test's own on the
 * cluster NCC_DATABASE_URL points at (scripts/pg.sh fresh), with a bus actor
 * key, data keys and the first administrator made here. Requests go through
 * the gateway's plain listener with libcurl as the signed-in administrator:
 * CRUD of every kind, conflicts, references and retirement, CSV export and
 * import (round trip, Shift_JIS, mixed encodings, wrong header, bad rows,
 * preview, replace, users), scheduled changes (in the past, applied by
 * themselves once with two directory copies running) and MasterChanged
 * reaching a caching daemon. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <iconv.h>
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

#include "masters.pb-c.h"
#include "ncc/bus.h"
#include "ncc/crypto.h"
#include "ncc/log.h"
#include "ncc/service.h"
#include "ncc/webhook.h"
#include "ncc_system.h"
#include "ncc_test.h"

#define DEPARTMENTS_CSV_HEADER "code,name,parent_code,phone,active"
#define PBX_SECRET             NCCT_PBX_SECRET

/* ---- the system: directory and gateway; calls and a second directory in
 * the tests that need them (tests/support/ncc_system.h) ----------------------------- */

static ncct_system_t s_sys;
static ncct_session_t s_session; /* the administrator's */
#define s_db      (s_sys.db)
#define s_gateway (s_sys.gateway)

typedef ncct_resp_t resp_t;

static void setup(void)
{
    ncc_log_init("test_masters", NCC_LOG_ERROR);
    ncct_system_init(&s_sys, "test_masters");
    ncct_system_start(&s_sys, "directory", NULL);
    ncct_system_start_gateway(&s_sys, NULL);
}

static void teardown(void)
{
    ncct_system_teardown(&s_sys);
}

TestSuite(masters, .init = setup, .fini = teardown, .timeout = 240);

static void s_stop_all(void)
{
    ncct_system_stop_all(&s_sys);
}

static long s_owner_long(const char *sql)
{
    return ncct_owner_long(&s_sys, sql);
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

/* One request as the signed-in administrator (after s_admin_login).
 * content_type NULL: JSON when there is a body. */
static resp_t s_request(const char *method, const char *path, const char *body, size_t len,
                        const char *content_type)
{
    return ncct_request_raw(&s_sys, &s_session, method, path, body, len, content_type, NULL);
}

static resp_t s_json(const char *method, const char *path, const char *json)
{
    return s_request(method, path, json, json ? strlen(json) : 0, NULL);
}

static resp_t s_csv(const char *path, const char *csv, size_t len)
{
    return s_request("POST", path, csv, len, "text/csv");
}

static void s_free(resp_t *resp)
{
    ncct_resp_free(resp);
}

static char *s_header(const resp_t *resp, const char *name)
{
    return ncct_header(resp, name);
}

static const char *s_str(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static long s_num(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    cr_assert(cJSON_IsNumber(item), "no number %s", name);
    return (long)item->valuedouble;
}

static const char *s_error_code(const resp_t *resp)
{
    return s_str(cJSON_GetObjectItemCaseSensitive(resp->json, "error"), "code");
}

/* Asserts the status (and error code when not NULL); returns the response. */
static resp_t s_expect(resp_t resp, long status, const char *code, const char *what)
{
    cr_assert_eq(resp.status, status, "%s: status %ld (expected %ld): %s", what, resp.status,
                 status, resp.body);
    if (code) {
        const char *got = s_error_code(&resp);
        cr_assert(got && strcmp(got, code) == 0, "%s: code %s (expected %s): %s", what,
                  got ? got : "(none)", code, resp.body);
    }
    return resp;
}

static void s_check(resp_t resp, long status, const char *code, const char *what)
{
    resp = s_expect(resp, status, code, what);
    s_free(&resp);
}

/* The administrator signs in (TOTP of this time step) on the gateway. */
static void s_admin_login(void)
{
    ncct_login_admin(&s_sys, &s_session);
}

/* POST `json` to `path`, expecting 201; returns the new id. */
static long s_create(const char *path, const char *json)
{
    resp_t resp = s_expect(s_json("POST", path, json), 201, NULL, path);
    long id = s_num(resp.json, "id");
    s_free(&resp);
    return id;
}

/* The total of a list. */
static long s_total(const char *path)
{
    resp_t resp = s_expect(s_json("GET", path, NULL), 200, NULL, path);
    long total = s_num(resp.json, "total");
    s_free(&resp);
    return total;
}

/* Rows of a kind's table in the database. */
static long s_rows(const char *table)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM directory.%s", table);
    return s_owner_long(sql);
}

/* The three departments most tests start from: D01 (a division), D02 and D03
 * under it. */
static void s_departments(void)
{
    s_create("/api/v1/departments",
             "{\"code\":\"D01\",\"name\":\"区民部\",\"phone\":\"03-3228-8000\"}");
    s_create("/api/v1/departments", "{\"code\":\"D02\",\"name\":\"戸籍住民課\",\"parent_code\":"
                                    "\"D01\",\"phone\":\"03-3228-5511\"}");
    s_create("/api/v1/departments",
             "{\"code\":\"D03\",\"name\":\"税務課\",\"parent_code\":\"D01\"}");
}

/* UTF-8 text as CP932 (caller frees), *ret_len bytes. */
static char *s_to_cp932(const char *utf8, size_t *ret_len)
{
    iconv_t cd = iconv_open("CP932", "UTF-8");
    cr_assert_neq(cd, (iconv_t)-1);
    size_t in_left = strlen(utf8), out_cap = in_left * 2 + 1, out_left = out_cap;
    char *out = malloc(out_cap);
    char *in = (char *)utf8, *o = out;
    cr_assert_neq(iconv(cd, &in, &in_left, &o, &out_left), (size_t)-1, "not CP932: %s", utf8);
    iconv_close(cd);
    *ret_len = out_cap - out_left;
    return out;
}

/* ---- CRUD -------------------------------------------------------------------------------------
 */

Test(masters, departments_are_created_listed_updated_and_conflicts_refused)
{
    s_admin_login();
    s_departments();

    /* Read one, the list, a search, a filter, paging. */
    resp_t resp = s_expect(s_json("GET", "/api/v1/departments/2", NULL), 200, NULL, "get");
    cr_assert_str_eq(s_str(resp.json, "code"), "D02");
    cr_assert_str_eq(s_str(resp.json, "name"), "戸籍住民課");
    cr_assert_str_eq(s_str(resp.json, "parent_code"), "D01");
    cr_assert_str_eq(s_str(resp.json, "phone"), "03-3228-5511");
    cr_assert_eq(s_num(resp.json, "version"), 1);
    s_free(&resp);
    cr_assert_eq(s_total("/api/v1/departments"), 3);
    cr_assert_eq(s_total("/api/v1/departments?q=%E7%A8%8E"), 1, "q=税");
    cr_assert_eq(s_total("/api/v1/departments?parent_code=D01"), 2);
    resp = s_expect(s_json("GET", "/api/v1/departments?per_page=2&page=2&sort=-code", NULL), 200,
                    NULL, "page 2");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(resp.json, "items");
    cr_assert_eq(cJSON_GetArraySize(items), 1);
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(items, 0), "code"), "D01");
    cr_assert_eq(s_num(resp.json, "total"), 3);
    s_free(&resp);
    s_check(s_json("GET", "/api/v1/departments?per_page=501", NULL), 422, "invalid_field",
            "per_page over 500");
    s_check(s_json("GET", "/api/v1/departments?sort=password", NULL), 422, "invalid_field",
            "unknown sort");
    s_check(s_json("GET", "/api/v1/departments/99", NULL), 404, "not_found", "no such id");

    /* Duplicate code, unknown parent, bad values: nothing is written. */
    s_check(s_json("POST", "/api/v1/departments", "{\"code\":\"D02\",\"name\":\"二つ目\"}"), 409,
            "conflict", "duplicate code");
    s_check(s_json("POST", "/api/v1/departments",
                   "{\"code\":\"D09\",\"name\":\"x\",\"parent_code\":\"NOPE\"}"),
            422, "invalid_field", "unknown parent");
    s_check(s_json("POST", "/api/v1/departments", "{\"code\":\"D 9\",\"name\":\"x\"}"), 422,
            "invalid_field", "code with a space");
    s_check(s_json("POST", "/api/v1/departments", "{\"code\":\"D09\"}"), 422, "invalid_field",
            "no name");
    cr_assert_eq(s_rows("departments"), 3);

    /* PATCH needs the version read; a stale one is 409; the code cannot change. */
    resp = s_expect(s_json("PATCH", "/api/v1/departments/3",
                           "{\"version\":1,\"name\":\"税務課 "
                           "(本庁舎)\",\"phone\":\"03-1\"}"),
                    200, NULL, "update");
    cr_assert_str_eq(s_str(resp.json, "name"), "税務課 (本庁舎)");
    cr_assert_eq(s_num(resp.json, "version"), 2);
    s_free(&resp);
    s_check(s_json("PATCH", "/api/v1/departments/3", "{\"version\":1,\"name\":\"後から\"}"), 409,
            "conflict", "stale version");
    s_check(s_json("PATCH", "/api/v1/departments/3", "{\"name\":\"x\"}"), 422, "invalid_field",
            "no version");
    s_check(s_json("PATCH", "/api/v1/departments/3", "{\"version\":2,\"code\":\"D33\"}"), 422,
            "invalid_field", "new code");
    s_check(s_json("PATCH", "/api/v1/departments/1", "{\"version\":1,\"parent_code\":\"D02\"}"),
            422, "invalid_field", "a cycle of parents");
    s_check(s_json("PATCH", "/api/v1/departments/1", "{\"version\":1,\"parent_code\":\"D01\"}"),
            422, "invalid_field", "its own parent");

    /* Delete: refused while referenced, naming who refers; retire instead. */
    s_create("/api/v1/directory", "{\"code\":\"T001\",\"department_code\":\"D02\",\"section\":"
                                  "\"証明係\",\"name\":\"住民票窓口\",\"phone\":\"03-3228-5512\","
                                  "\"hours\":\"平日 8:30-17:15\"}");
    resp = s_expect(s_json("DELETE", "/api/v1/departments/2", NULL), 409, "referenced",
                    "delete a referenced department");
    const char *message = s_str(cJSON_GetObjectItemCaseSensitive(resp.json, "error"), "message");
    cr_assert(message && strstr(message, "T001") && strstr(message, "department_code"), "%s",
              resp.body);
    s_free(&resp);
    resp = s_expect(s_json("DELETE", "/api/v1/departments/1", NULL), 409, "referenced",
                    "delete a parent");
    message = s_str(cJSON_GetObjectItemCaseSensitive(resp.json, "error"), "message");
    cr_assert(message && strstr(message, "D02") && strstr(message, "D03") &&
                  strstr(message, "parent_code"),
              "%s", resp.body);
    s_free(&resp);
    cr_assert_eq(s_rows("departments"), 3);
    resp = s_expect(s_json("PATCH", "/api/v1/departments/2", "{\"version\":1,\"active\":false}"),
                    200, NULL, "retire");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(resp.json, "active")));
    s_free(&resp);
    cr_assert_eq(s_total("/api/v1/departments?active=true"), 2);
    cr_assert_eq(s_total("/api/v1/departments?active=false"), 1);
    /* The phone book still names the retired department. */
    resp = s_expect(s_json("GET", "/api/v1/directory/1", NULL), 200, NULL, "entry");
    cr_assert_str_eq(s_str(resp.json, "department_code"), "D02");
    s_free(&resp);
    /* An entry nobody refers to is deleted. */
    s_check(s_json("DELETE", "/api/v1/directory/1", NULL), 200, NULL, "delete the entry");
    s_check(s_json("GET", "/api/v1/directory/1", NULL), 404, "not_found", "deleted");

    /* History: who, when, before and after, for the retirement. */
    resp = s_expect(s_json("GET", "/api/v1/masters/departments/history?code=D02", NULL), 200, NULL,
                    "history");
    items = cJSON_GetObjectItemCaseSensitive(resp.json, "items");
    cr_assert_eq(cJSON_GetArraySize(items), 2, "%s", resp.body);
    const cJSON *last = cJSON_GetArrayItem(items, 0);
    cr_assert_str_eq(s_str(last, "op"), "retired");
    cr_assert_str_eq(s_str(last, "actor_login"), "admin");
    cr_assert_str_eq(s_str(last, "source"), "api");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(last, "before"), "active")));
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(last, "after"), "active")));
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(items, 1), "op"), "created");
    s_free(&resp);
    resp = s_expect(s_json("GET", "/api/v1/masters/directory/history?code=T001", NULL), 200, NULL,
                    "entry history");
    last = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_str_eq(s_str(last, "op"), "deleted");
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(last, "after"));
    cr_assert_str_eq(s_str(cJSON_GetObjectItemCaseSensitive(last, "before"), "name"), "住民票窓口");
    s_free(&resp);
    /* The history is append-only for the application's role. */
    const char *user = strstr(s_db.url, "://");
    cr_assert_not_null(user);
    user += 3;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM unnest(array['UPDATE', 'DELETE', 'TRUNCATE']) p WHERE "
             "has_table_privilege('%.*s', 'directory.master_history', p)",
             (int)strcspn(user, ":@/"), user);
    cr_assert_eq(s_owner_long(sql), 0, "%s", sql);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM unnest(array['SELECT', 'INSERT']) p WHERE "
             "has_table_privilege('%.*s', 'directory.master_history', p)",
             (int)strcspn(user, ":@/"), user);
    cr_assert_eq(s_owner_long(sql), 2, "%s", sql);
    s_stop_all();
}

Test(masters, every_kind_has_list_create_update_and_delete)
{
    s_admin_login();
    s_departments();
    static const struct {
        const char *path, *create, *patch, *field, *value;
    } kinds[] = {
        {"/api/v1/directory",
         "{\"code\":\"P1\",\"department_code\":\"D02\",\"name\":\"窓口\",\"phone\":\"03-1\"}",
         "{\"version\":1,\"hours\":\"平日\"}", "hours", "平日"},
        {"/api/v1/categories", "{\"code\":\"C1\",\"name\":\"住民票\",\"sort_order\":2}",
         "{\"version\":1,\"sort_order\":5}", "name", "住民票"},
        {"/api/v1/reception-types", "{\"code\":\"R1\",\"name\":\"電話\"}",
         "{\"version\":1,\"name\":\"電話（代表）\"}", "name", "電話（代表）"},
        {"/api/v1/handling-types", "{\"code\":\"H1\",\"name\":\"回答済\"}",
         "{\"version\":1,\"name\":\"転送\"}", "name", "転送"},
        {"/api/v1/faq-classes", "{\"code\":\"F1\",\"name\":\"届出\",\"department_code\":\"D02\"}",
         "{\"version\":1,\"name\":\"届出・証明\"}", "name", "届出・証明"},
        {"/api/v1/skills", "{\"code\":\"S1\",\"name\":\"税\"}",
         "{\"version\":1,\"name\":\"税・保険料\"}", "name", "税・保険料"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        long id = s_create(kinds[i].path, kinds[i].create);
        char path[128];
        snprintf(path, sizeof path, "%s/%ld", kinds[i].path, id);
        resp_t resp = s_expect(s_json("PATCH", path, kinds[i].patch), 200, NULL, path);
        cr_assert_str_eq(s_str(resp.json, kinds[i].field), kinds[i].value, "%s", resp.body);
        cr_assert_eq(s_num(resp.json, "version"), 2);
        s_free(&resp);
        cr_assert_eq(s_total(kinds[i].path), 1, "%s", kinds[i].path);
        s_check(s_json("POST", kinds[i].path, kinds[i].create), 409, "conflict", kinds[i].path);
        s_check(s_json("DELETE", path, NULL), 200, NULL, path);
        cr_assert_eq(s_total(kinds[i].path), 0, "%s", kinds[i].path);
    }
    /* A class under a class; the parent cannot go while it has children. */
    s_create("/api/v1/faq-classes", "{\"code\":\"F2\",\"name\":\"税\"}");
    s_create("/api/v1/faq-classes", "{\"code\":\"F3\",\"name\":\"住民税\",\"parent_code\":\"F2\"}");
    resp_t resp = s_expect(s_json("DELETE", "/api/v1/faq-classes/2", NULL), 409, "referenced",
                           "parent class");
    cr_assert(strstr(resp.body, "F3"), "%s", resp.body);
    s_free(&resp);
    /* A directory entry must name a department that exists. */
    s_check(s_json("POST", "/api/v1/directory",
                   "{\"code\":\"P2\",\"department_code\":\"ZZ\",\"name\":\"x\",\"phone\":\"1\"}"),
            422, "invalid_field", "unknown department");
    s_stop_all();
}

/* ---- CSV ------------------------------------------------------------------------------------- */

Test(masters, export_then_import_of_the_same_file_changes_nothing)
{
    s_admin_login();
    s_departments();
    /* Values the formula defence guards, and quoting. */
    s_create("/api/v1/departments", "{\"code\":\"D04\",\"name\":\"=SUM(A1), \\\"危機\\\"管理\","
                                    "\"phone\":\"+81-3-3228-8000\"}");
    resp_t resp =
        s_expect(s_json("GET", "/api/v1/departments/export.csv", NULL), 200, NULL, "export");
    char *type = s_header(&resp, "Content-Type");
    char *disposition = s_header(&resp, "Content-Disposition");
    cr_assert(type && strcmp(type, "text/csv; charset=utf-8") == 0, "%s", type);
    cr_assert(disposition && strstr(disposition, "attachment") &&
                  strstr(disposition, "filename=\"departments.csv\""),
              "%s", disposition);
    free(type);
    free(disposition);
    static const char header[] = "\xEF\xBB\xBF" DEPARTMENTS_CSV_HEADER "\r\n";
    cr_assert_eq(memcmp(resp.body, header, sizeof header - 1), 0, "%s", resp.body);
    cr_assert(strstr(resp.body, "D02,戸籍住民課,D01,03-3228-5511,true\r\n"), "%s", resp.body);
    cr_assert(strstr(resp.body, "'+81-3-3228-8000"), "%s", resp.body);
    cr_assert(strstr(resp.body, "\"'=SUM(A1), \"\"危機\"\"管理\""), "%s", resp.body);
    char *file = malloc(resp.len);
    memcpy(file, resp.body, resp.len);
    size_t file_len = resp.len;
    s_free(&resp);

    /* Preview, then import: every row unchanged, no change set, no event. */
    long changes = s_owner_long("SELECT count(*) FROM directory.master_changes");
    resp = s_expect(s_csv("/api/v1/departments/import?preview=1", file, file_len), 200, NULL,
                    "preview");
    cr_assert_eq(s_num(resp.json, "unchanged"), 4, "%s", resp.body);
    cr_assert_eq(s_num(resp.json, "create"), 0);
    cr_assert_eq(s_num(resp.json, "update"), 0);
    cr_assert_eq(s_num(resp.json, "delete"), 0);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp.json, "preview")));
    s_free(&resp);
    resp = s_expect(s_csv("/api/v1/departments/import", file, file_len), 200, NULL, "import");
    cr_assert_eq(s_num(resp.json, "unchanged"), 4, "%s", resp.body);
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(resp.json, "change_id"));
    s_free(&resp);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.master_changes"), changes);
    resp = s_expect(s_json("GET", "/api/v1/departments/4", NULL), 200, NULL, "D04");
    cr_assert_str_eq(s_str(resp.json, "phone"), "+81-3-3228-8000");
    cr_assert_str_eq(s_str(resp.json, "name"), "=SUM(A1), \"危機\"管理");
    cr_assert_eq(s_num(resp.json, "version"), 1);
    s_free(&resp);
    free(file);

    /* Shift_JIS export: Excel's encoding, declared in the Content-Type. */
    resp = s_expect(s_json("GET", "/api/v1/departments/export.csv?encoding=shift_jis", NULL), 200,
                    NULL, "export sjis");
    type = s_header(&resp, "Content-Type");
    cr_assert(type && strcmp(type, "text/csv; charset=shift_jis") == 0, "%s", type);
    free(type);
    size_t sjis_len = 0;
    char *expected = s_to_cp932("D02,戸籍住民課,D01,03-3228-5511,true\r\n", &sjis_len);
    cr_assert(memmem(resp.body, resp.len, expected, sjis_len), "no CP932 row");
    free(expected);
    s_free(&resp);
    s_check(s_json("GET", "/api/v1/departments/export.csv?encoding=latin1", NULL), 422,
            "invalid_field", "unknown encoding");
    s_stop_all();
}

Test(masters, shift_jis_import_reads_back_as_utf8)
{
    s_admin_login();
    s_departments();
    /* As Excel on Japanese Windows saves it: CP932, CRLF, NEC and IBM
     * extensions (①, 髙) and half-width katakana. */
    size_t len = 0;
    char *file = s_to_cp932(DEPARTMENTS_CSV_HEADER "\r\n"
                                                   "D02,戸籍住民課,D01,03-3228-5511,true\r\n"
                                                   "D10,髙橋記念ﾎｰﾙ①,D01,03-3228-0001,true\r\n"
                                                   "D11,子ども家庭支援センター,D01,,true\r\n",
                            &len);
    resp_t resp = s_expect(s_csv("/api/v1/departments/import", file, len), 200, NULL, "import");
    cr_assert_str_eq(s_str(resp.json, "encoding"), "shift_jis");
    cr_assert_eq(s_num(resp.json, "create"), 2, "%s", resp.body);
    cr_assert_eq(s_num(resp.json, "unchanged"), 1);
    cr_assert_gt(s_num(resp.json, "change_id"), 0);
    s_free(&resp);
    free(file);
    resp = s_expect(s_json("GET", "/api/v1/departments?q=D10", NULL), 200, NULL, "read back");
    const cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_str_eq(s_str(item, "name"), "髙橋記念ﾎｰﾙ①");
    s_free(&resp);
    resp = s_expect(s_json("GET", "/api/v1/departments?q=D11", NULL), 200, NULL, "read back");
    item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_str_eq(s_str(item, "name"), "子ども家庭支援センター");
    s_free(&resp);
    /* One import, one change set, one history row per entry created. */
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.master_history h JOIN "
                              "directory.master_changes c ON c.id = h.change_id WHERE c.op = "
                              "'import' AND h.op = 'created'"),
                 2);
    s_stop_all();
}

Test(masters, bad_files_are_refused_whole_with_line_numbers)
{
    s_admin_login();
    s_departments();
    long before = s_rows("departments");

    /* Mixed encodings: UTF-8 with a line pasted in from a Shift_JIS file. */
    size_t sjis_len = 0;
    char *sjis = s_to_cp932("D13,財務課,D01,,true\r\n", &sjis_len);
    char mixed[512];
    int n = snprintf(mixed, sizeof mixed,
                     DEPARTMENTS_CSV_HEADER "\r\nD12,区民活動推進課,D01,,true\r\n");
    memcpy(mixed + n, sjis, sjis_len);
    free(sjis);
    resp_t resp = s_expect(s_csv("/api/v1/departments/import", mixed, (size_t)n + sjis_len), 422,
                           "invalid_csv", "mixed encodings");
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(resp.json, "errors");
    cr_assert_eq(cJSON_GetArraySize(errors), 1, "%s", resp.body);
    cr_assert_eq(s_num(cJSON_GetArrayItem(errors, 0), "line"), 3, "%s", resp.body);
    s_free(&resp);

    /* A wrong header: 400 naming the expected columns. */
    static const char wrong[] = "code,name,phone\r\nD20,x,1\r\n";
    resp = s_expect(s_csv("/api/v1/departments/import", wrong, sizeof wrong - 1), 400,
                    "invalid_header", "wrong header");
    const char *message = s_str(cJSON_GetObjectItemCaseSensitive(resp.json, "error"), "message");
    cr_assert(message && strstr(message, DEPARTMENTS_CSV_HEADER), "%s", resp.body);
    s_free(&resp);
    s_check(s_csv("/api/v1/departments/import", "", 0), 400, "invalid_header", "empty file");
    s_check(s_request("POST", "/api/v1/departments/import", "{}", 2, "application/json"), 415,
            "unsupported_media_type", "JSON instead of CSV");

    /* Three bad rows among good ones: 422, each with its line, nothing applied. */
    static const char bad[] = DEPARTMENTS_CSV_HEADER "\r\n"
                                                     "D30,新しい課,D01,,true\r\n"   /* 2: good */
                                                     "D31,,D01,,true\r\n"           /* 3: no name */
                                                     "D32,課,NOPE,,true\r\n"        /* 4: parent */
                                                     "D33,別の課,D01,03-1,true\r\n" /* 5: good */
                                                     "D30,重複,D01,,true\r\n";      /* 6: twice */
    resp = s_expect(s_csv("/api/v1/departments/import", bad, sizeof bad - 1), 422, "invalid_csv",
                    "three bad rows");
    errors = cJSON_GetObjectItemCaseSensitive(resp.json, "errors");
    cr_assert_eq(cJSON_GetArraySize(errors), 3, "%s", resp.body);
    cr_assert_eq(s_num(resp.json, "errors_total"), 3);
    static const struct {
        long line;
        const char *field;
    } expected[] = {{3, "name"}, {4, "parent_code"}, {6, "code"}};
    for (int i = 0; i < 3; i++) {
        const cJSON *e = cJSON_GetArrayItem(errors, i);
        cr_assert_eq(s_num(e, "line"), expected[i].line, "%s", resp.body);
        cr_assert_str_eq(s_str(e, "field"), expected[i].field, "%s", resp.body);
        cr_assert_not_null(s_str(e, "message"));
    }
    s_free(&resp);
    /* A row with the wrong number of fields. */
    static const char short_row[] = DEPARTMENTS_CSV_HEADER "\r\nD40,課\r\n";
    resp = s_expect(s_csv("/api/v1/departments/import", short_row, sizeof short_row - 1), 422,
                    "invalid_csv", "short row");
    cr_assert_eq(
        s_num(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "errors"), 0), "line"),
        2);
    s_free(&resp);
    cr_assert_eq(s_rows("departments"), before, "something was half-applied");
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.master_changes WHERE op = 'import'"),
                 0);
    s_stop_all();
}

Test(masters, preview_shows_changes_and_changes_nothing_replace_retires)
{
    s_admin_login();
    s_departments();
    long history = s_rows("master_history");
    static const char file[] =
        DEPARTMENTS_CSV_HEADER "\r\n"
                               "D01,区民部,,03-3228-8000,true\r\n"
                               "D02,戸籍住民課（新）,D01,03-3228-5511,true\r\n"
                               "D05,新設課,D01,,true\r\n";
    resp_t resp =
        s_expect(s_csv("/api/v1/departments/import?preview=1&replace=1", file, sizeof file - 1),
                 200, NULL, "preview");
    cr_assert_eq(s_num(resp.json, "create"), 1, "%s", resp.body);
    cr_assert_eq(s_num(resp.json, "update"), 1);
    cr_assert_eq(s_num(resp.json, "unchanged"), 1);
    cr_assert_eq(s_num(resp.json, "retire"), 1, "D03 is not in the file");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(resp.json, "rows");
    cr_assert_eq(cJSON_GetArraySize(rows), 3, "%s", resp.body);
    const cJSON *update = cJSON_GetArrayItem(rows, 0);
    cr_assert_eq(s_num(update, "line"), 3);
    cr_assert_str_eq(s_str(update, "action"), "update");
    cr_assert_str_eq(s_str(cJSON_GetObjectItemCaseSensitive(update, "before"), "name"),
                     "戸籍住民課");
    cr_assert_str_eq(s_str(cJSON_GetObjectItemCaseSensitive(update, "after"), "name"),
                     "戸籍住民課（新）");
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(rows, 1), "action"), "create");
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(rows, 2), "action"), "retire");
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(rows, 2), "code"), "D03");
    s_free(&resp);
    /* Nothing changed. */
    cr_assert_eq(s_rows("departments"), 3);
    cr_assert_eq(s_rows("master_history"), history);
    resp = s_expect(s_json("GET", "/api/v1/departments/2", NULL), 200, NULL, "D02");
    cr_assert_str_eq(s_str(resp.json, "name"), "戸籍住民課");
    s_free(&resp);

    /* The import itself: D03 retired (not deleted), all in one change set. */
    resp = s_expect(s_csv("/api/v1/departments/import?replace=1", file, sizeof file - 1), 200, NULL,
                    "import");
    long change = s_num(resp.json, "change_id");
    s_free(&resp);
    cr_assert_eq(s_rows("departments"), 4);
    cr_assert_eq(s_total("/api/v1/departments?active=false"), 1);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM directory.master_history WHERE change_id = %ld AND op IN "
             "('created', 'updated', 'retired')",
             change);
    cr_assert_eq(s_owner_long(sql), 3);
    s_stop_all();
}

Test(masters, users_csv_round_trip_never_holds_passwords)
{
    s_admin_login();
    resp_t resp =
        s_expect(s_json("GET", "/api/v1/users/export.csv", NULL), 200, NULL, "users export");
    cr_assert(strstr(resp.body, "login,name,roles,extension,skills,active\r\n"), "%s", resp.body);
    cr_assert(strstr(resp.body, "admin,Administrator,admin,,,true\r\n"), "%s", resp.body);
    cr_assert_null(strstr(resp.body, "argon2"), "a password hash in the export");
    s_free(&resp);
    static const char file[] = "login,name,roles,extension,skills,active\r\n"
                               "admin,Administrator,admin,,,true\r\n"
                               "sato,佐藤 花子,operator supervisor,2001,,true\r\n"
                               "tanaka,田中 一郎,operator,2002,,true\r\n";
    resp = s_expect(s_csv("/api/v1/users/import", file, sizeof file - 1), 200, NULL, "import");
    cr_assert_eq(s_num(resp.json, "create"), 2, "%s", resp.body);
    s_free(&resp);
    resp = s_expect(s_json("GET", "/api/v1/users?q=sato", NULL), 200, NULL, "list");
    const cJSON *user = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_str_eq(s_str(user, "name"), "佐藤 花子");
    cr_assert_str_eq(s_str(user, "extension"), "2001");
    const cJSON *roles = cJSON_GetObjectItemCaseSensitive(user, "roles");
    cr_assert_eq(cJSON_GetArraySize(roles), 2);
    s_free(&resp);
    /* Imported users have no password until an administrator sets one. */
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.users WHERE login IN ('sato', "
                              "'tanaka') AND password_hash IS NULL"),
                 2);
    /* An extension twice, and an import that would leave no administrator. */
    static const char twice[] = "login,name,roles,extension,skills,active\r\n"
                                "suzuki,鈴木,operator,2001,,true\r\n";
    resp = s_expect(s_csv("/api/v1/users/import", twice, sizeof twice - 1), 422, "invalid_csv",
                    "extension taken");
    cr_assert(strstr(resp.body, "\"field\":\"extension\""), "%s", resp.body);
    s_free(&resp);
    static const char no_admin[] = "login,name,roles,extension,skills,active\r\n"
                                   "admin,Administrator,operator,,,true\r\n";
    s_check(s_csv("/api/v1/users/import", no_admin, sizeof no_admin - 1), 409, "conflict",
            "last administrator");
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.users WHERE login = 'admin' AND "
                              "roles = '{admin}'"),
                 1);
    /* Who imported what is in the history and in the audit log. */
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.master_history WHERE kind = "
                              "'users' AND op = 'created' AND actor_login = 'admin'"),
                 2);
    cr_assert_geq(s_owner_long("SELECT count(*) FROM directory.audit_log WHERE action = "
                               "'user.imported'"),
                  1);
    cr_assert_geq(s_owner_long("SELECT count(*) FROM directory.audit_log WHERE action = "
                               "'user.import' AND outcome = 'ok'"),
                  1);
    s_stop_all();
}

Test(masters, a_larger_import_goes_through_in_one_piece)
{
    s_admin_login();
    s_departments();
    /* 2,000 phone-book rows (the 10,000-row figure is bench/bench_masters.sh's). */
    size_t cap = 2000 * 120 + 256, len = 0;
    char *file = malloc(cap);
    len += (size_t)snprintf(file + len, cap - len,
                            "code,department_code,section,name,phone,hours,active\r\n");
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(file + len, cap - len,
                                "E%05d,%s,第%d係,窓口担当%d,03-3228-%04d,平日 8:30-17:15,true\r\n",
                                i, i % 2 ? "D02" : "D03", i % 7, i, i);
    resp_t resp = s_expect(s_csv("/api/v1/directory/import", file, len), 200, NULL, "import");
    cr_assert_eq(s_num(resp.json, "create"), 2000, "%s", resp.body);
    s_free(&resp);
    cr_assert_eq(s_rows("directory_entries"), 2000);
    resp = s_expect(s_csv("/api/v1/directory/import", file, len), 200, NULL, "again");
    cr_assert_eq(s_num(resp.json, "unchanged"), 2000, "%s", resp.body);
    s_free(&resp);
    free(file);
    s_stop_all();
}

/* ---- scheduled changes ------------------------------------------------------------------------
 */

/* RFC 3339 for now + seconds, in UTC. */
static void s_rfc3339(int seconds, char *out, size_t len)
{
    time_t t = time(NULL) + seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

Test(masters, scheduled_changes_in_the_past_are_refused)
{
    s_admin_login();
    s_departments();
    char past[40], body[256];
    s_rfc3339(-60, past, sizeof past);
    snprintf(body, sizeof body, "{\"version\":1,\"name\":\"昔\",\"effective_at\":\"%s\"}", past);
    resp_t resp =
        s_expect(s_json("PATCH", "/api/v1/departments/2", body), 422, "invalid_field", "past time");
    cr_assert_str_eq(s_str(cJSON_GetObjectItemCaseSensitive(resp.json, "error"), "field"),
                     "effective_at");
    s_free(&resp);
    s_check(s_json("POST", "/api/v1/departments",
                   "{\"code\":\"D50\",\"name\":\"x\",\"effective_at\":\"2020-04-01\"}"),
            422, "invalid_field", "past date");
    s_check(s_json("POST", "/api/v1/departments",
                   "{\"code\":\"D50\",\"name\":\"x\",\"effective_at\":\"2099-13-01\"}"),
            422, "invalid_field", "no such month");
    s_check(s_json("POST", "/api/v1/departments",
                   "{\"code\":\"D50\",\"name\":\"x\",\"effective_at\":\"next april\"}"),
            422, "invalid_field", "not a time");
    static const char file[] = DEPARTMENTS_CSV_HEADER "\r\nD51,課,D01,,true\r\n";
    s_check(s_csv("/api/v1/departments/import?effective_at=2020-04-01", file, sizeof file - 1), 422,
            "invalid_field", "past import");
    cr_assert_eq(s_rows("scheduled_changes"), 0);
    /* A date in the future (the April reorganisation) is taken and listed;
     * it can be cancelled. */
    resp =
        s_expect(s_json("POST", "/api/v1/departments",
                        "{\"code\":\"D52\",\"name\":\"新設課\",\"effective_at\":\"2099-04-01\"}"),
                 201, NULL, "future date");
    cr_assert_str_eq(s_str(resp.json, "effective_at"), "2099-04-01T00:00:00+09:00");
    cr_assert_str_eq(s_str(resp.json, "status"), "pending");
    long id = s_num(resp.json, "id");
    s_free(&resp);
    cr_assert_eq(s_total("/api/v1/masters/scheduled"), 1);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/masters/scheduled/%ld", id);
    resp = s_expect(s_json("DELETE", path, NULL), 200, NULL, "cancel");
    cr_assert_str_eq(s_str(resp.json, "status"), "cancelled");
    s_free(&resp);
    s_check(s_json("DELETE", path, NULL), 409, "conflict", "cancel twice");
    cr_assert_eq(s_total("/api/v1/masters/scheduled"), 0);
    cr_assert_eq(s_rows("departments"), 3);
    s_stop_all();
}

Test(masters, a_scheduled_change_applies_by_itself_once_with_two_copies)
{
    ncct_system_start_copy(&s_sys, "directory", NULL);
    s_admin_login();
    s_departments();
    char when[40], body[256];
    s_rfc3339(2, when, sizeof when);
    snprintf(body, sizeof body,
             "{\"version\":1,\"name\":\"戸籍住民課（4月から）\",\"effective_at\":\"%s\"}", when);
    resp_t resp = s_expect(s_json("PATCH", "/api/v1/departments/2", body), 200, NULL, "schedule");
    long id = s_num(resp.json, "id");
    cr_assert_str_eq(s_str(resp.json, "status"), "pending");
    s_free(&resp);
    /* An import scheduled for the same moment, referring to a department
     * created by another scheduled change: applied in order. */
    snprintf(body, sizeof body, "{\"code\":\"D60\",\"name\":\"新設課\",\"effective_at\":\"%s\"}",
             when);
    s_check(s_json("POST", "/api/v1/departments", body), 201, NULL, "schedule a creation");
    static const char file[] = "code,department_code,section,name,phone,hours,active\r\n"
                               "N001,D60,,新設課窓口,03-3228-6000,,true\r\n";
    char path[128];
    snprintf(path, sizeof path, "/api/v1/directory/import?effective_at=%s", when);
    resp = s_expect(s_csv(path, file, sizeof file - 1), 200, NULL, "schedule an import");
    cr_assert_str_eq(s_str(cJSON_GetObjectItemCaseSensitive(resp.json, "scheduled"), "status"),
                     "pending");
    s_free(&resp);
    /* Not yet. */
    resp = s_expect(s_json("GET", "/api/v1/departments/2", NULL), 200, NULL, "before");
    cr_assert_str_eq(s_str(resp.json, "name"), "戸籍住民課");
    s_free(&resp);

    /* Both copies tick every second; one applies each change, once. */
    long long deadline = ncct_now_ms() + 15000;
    while (s_owner_long("SELECT count(*) FROM directory.scheduled_changes WHERE status = "
                        "'pending'") > 0) {
        cr_assert_lt(ncct_now_ms(), deadline, "the scheduled changes were not applied");
        usleep(100 * 1000);
    }
    sleep(2); /* more ticks of both copies after the changes were due */
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.scheduled_changes WHERE status = "
                              "'applied'"),
                 3, "a scheduled change failed");
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM directory.master_history WHERE scheduled_id = %ld", id);
    cr_assert_eq(s_owner_long(sql), 1, "applied more than once");
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.master_changes WHERE source = "
                              "'scheduled'"),
                 3);
    resp = s_expect(s_json("GET", "/api/v1/departments/2", NULL), 200, NULL, "after");
    cr_assert_str_eq(s_str(resp.json, "name"), "戸籍住民課（4月から）");
    s_free(&resp);
    cr_assert_eq(s_total("/api/v1/directory?department_code=D60"), 1);
    /* The history: before, after, the actor who scheduled it, the source. */
    resp = s_expect(s_json("GET", "/api/v1/masters/departments/history?code=D02&per_page=1", NULL),
                    200, NULL, "history");
    const cJSON *entry =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_str_eq(s_str(entry, "source"), "scheduled");
    cr_assert_str_eq(s_str(entry, "actor_login"), "admin");
    cr_assert_eq(s_num(entry, "scheduled_id"), id);
    cr_assert_str_eq(s_str(cJSON_GetObjectItemCaseSensitive(entry, "before"), "name"),
                     "戸籍住民課");
    cr_assert_str_eq(s_str(cJSON_GetObjectItemCaseSensitive(entry, "after"), "name"),
                     "戸籍住民課（4月から）");
    s_free(&resp);
    s_stop_all();
}

/* ---- live propagation ---------------------------------------------------------------------------
 */

/* ncc-calls' cache of departments, asked over the bus. */
static Ncc__Masters__CacheStatus *s_cache_status(ncc_rpc_client_t *client)
{
    Ncc__Masters__GetCacheStatus ask = NCC__MASTERS__GET_CACHE_STATUS__INIT;
    ask.kind = "departments";
    ncc_ctx_t ctx = {.actor_id = "svc:test", .actor_role = "system"};
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    int rc = ncc_rpc_call_typed(client, &ctx, &ask.base, &ncc__masters__cache_status__descriptor,
                                2000, &answer, &error);
    if (error)
        ncc__error__free_unpacked(error, NULL);
    return rc == 0 ? (Ncc__Masters__CacheStatus *)answer : NULL;
}

/* Polls the cache until it holds `change_id`; the milliseconds it took. */
static long long s_wait_change(ncc_rpc_client_t *client, long change_id, long long limit_ms)
{
    long long started = ncct_now_ms();
    for (;;) {
        Ncc__Masters__CacheStatus *status = s_cache_status(client);
        bool reached = status && status->change_id >= change_id;
        if (status)
            ncc__masters__cache_status__free_unpacked(status, NULL);
        long long elapsed = ncct_now_ms() - started;
        if (reached || elapsed > limit_ms)
            return elapsed;
        usleep(5 * 1000);
    }
}

Test(masters, a_change_reaches_a_caching_daemon_live)
{
    s_admin_login();
    s_departments();
    ncct_system_start(&s_sys, "calls", NULL);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", ncct_service(&s_sys, "calls")->rpc);
    ncc_rpc_client_t *client = ncc_rpc_client_new(endpoint);
    cr_assert_not_null(client);
    /* The first load. */
    long long deadline = ncct_now_ms() + 10000;
    for (;;) {
        Ncc__Masters__CacheStatus *status = s_cache_status(client);
        bool loaded = status && status->loaded && status->entries == 3;
        if (status)
            ncc__masters__cache_status__free_unpacked(status, NULL);
        if (loaded)
            break;
        cr_assert_lt(ncct_now_ms(), deadline, "ncc-calls did not load the departments");
        usleep(50 * 1000);
    }

    /* An administrator renames a department: ncc-calls has it at once. */
    s_check(s_json("PATCH", "/api/v1/departments/3", "{\"version\":1,\"name\":\"課税課\"}"), 200,
            NULL, "rename");
    resp_t resp =
        s_expect(s_json("GET", "/api/v1/masters/departments/history?code=D03&per_page=1", NULL),
                 200, NULL, "history");
    long change = s_num(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0),
                        "change_id");
    s_free(&resp);
    long long took = s_wait_change(client, change, 5000);
    cr_assert_lt(took, 5000, "the change did not reach ncc-calls within 5 s");
    cr_log_info("rename reached ncc-calls %lld ms after the answer", took);

    /* The directory's own check of every caching daemon says so too; the
     * services this test does not run did not answer, so it is not complete. */
    resp = s_expect(s_json("GET", "/api/v1/masters/propagation?kind=departments", NULL), 200, NULL,
                    "propagation");
    cr_assert_eq(s_num(resp.json, "change_id"), change);
    const cJSON *services = cJSON_GetObjectItemCaseSensitive(resp.json, "services");
    cr_assert_eq(cJSON_GetArraySize(services), 1, "%s", resp.body);
    const cJSON *service = cJSON_GetArrayItem(services, 0);
    cr_assert_str_eq(s_str(service, "service"), "calls");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(service, "reached")), "%s", resp.body);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(resp.json, "complete")), "%s",
              resp.body);
    cr_assert(strstr(resp.body, "\"unanswered\":[\"history\""), "%s", resp.body);
    s_free(&resp);

    /* An import (many entries): the cache reloads the kind. */
    static const char file[] = DEPARTMENTS_CSV_HEADER "\r\n"
                                                      "D70,新設課A,D01,,true\r\n"
                                                      "D71,新設課B,D01,,true\r\n";
    resp =
        s_expect(s_csv("/api/v1/departments/import", file, sizeof file - 1), 200, NULL, "import");
    change = s_num(resp.json, "change_id");
    s_free(&resp);
    took = s_wait_change(client, change, 5000);
    cr_assert_lt(took, 5000, "the import did not reach ncc-calls within 5 s");
    Ncc__Masters__CacheStatus *status = s_cache_status(client);
    cr_assert_not_null(status);
    cr_assert_eq(status->entries, 5);
    ncc__masters__cache_status__free_unpacked(status, NULL);
    /* A deletion removes the entry. */
    s_check(s_json("DELETE", "/api/v1/departments/5", NULL), 200, NULL, "delete D71");
    resp = s_expect(s_json("GET", "/api/v1/masters/departments/history?code=D71&per_page=1", NULL),
                    200, NULL, "history");
    change = s_num(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0),
                   "change_id");
    s_free(&resp);
    cr_assert_lt(s_wait_change(client, change, 5000), 5000);
    status = s_cache_status(client);
    cr_assert_not_null(status);
    cr_assert_eq(status->entries, 4);
    ncc__masters__cache_status__free_unpacked(status, NULL);
    ncc_rpc_client_destroy(&client);
    s_stop_all();
}

/* ---- ACD: skills, queues, routing rules and what the PBX reads (R25) --------------------------
 */

/* GET `target` signed as the PBX signs it (docs/routing.md) at time t. */
static resp_t s_pbx_get(const char *target, const char *secret, int64_t t)
{
    char header[160], line[200];
    cr_assert_eq(ncc_webhook_sign(secret, t, target, strlen(target), header, sizeof header), 0);
    snprintf(line, sizeof line, "X-NCC-Signature: %s", header);
    return ncct_request(&s_sys, NULL, "GET", target, NULL, (const char *[]){line, NULL});
}

/* The strings of array `name` of `object`, joined by spaces, into buf. */
static const char *s_list(const cJSON *object, const char *name, char *buf, size_t len)
{
    const cJSON *array = cJSON_GetObjectItemCaseSensitive(object, name);
    cr_assert(cJSON_IsArray(array), "no array %s", name);
    size_t used = 0;
    buf[0] = '\0';
    const cJSON *item;
    cJSON_ArrayForEach(item, array)
    {
        cr_assert(cJSON_IsString(item));
        used +=
            (size_t)snprintf(buf + used, len - used, "%s%s", used ? " " : "", item->valuestring);
    }
    return buf;
}

/* The entry of array `name` whose `key` is `value`, or NULL. */
static const cJSON *s_find(const cJSON *object, const char *name, const char *key,
                           const char *value)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(object, name))
    {
        const char *v = s_str(item, key);
        if (v && strcmp(v, value) == 0)
            return item;
    }
    return NULL;
}

/* Two skills, two queues (tax overflows to general after 120 s), a weekday
 * daytime rule for the tax number and a catch-all; two operators. */
static void s_acd(void)
{
    s_departments();
    s_create("/api/v1/skills", "{\"code\":\"tax\",\"name\":\"税\"}");
    s_create("/api/v1/skills", "{\"code\":\"pension\",\"name\":\"年金\",\"sort_order\":2}");
    s_create("/api/v1/queues", "{\"code\":\"Q-GEN\",\"name\":\"総合案内\",\"priority\":1,"
                               "\"distribution\":\"round_robin\"}");
    s_create("/api/v1/queues",
             "{\"code\":\"Q-TAX\",\"name\":\"税の窓口\",\"department_code\":\"D03\",\"skills\":"
             "\"tax\",\"priority\":5,\"max_wait_seconds\":120,\"overflow_code\":\"Q-GEN\"}");
    s_create("/api/v1/routing-rules",
             "{\"code\":\"R10\",\"name\":\"税（平日昼）\",\"priority\":10,\"called_number\":"
             "\"03-3228-1111\",\"weekdays\":\"月 火 水 木 金\",\"hours\":\"8:30-17:15\","
             "\"queue_code\":\"Q-TAX\",\"skills\":\"pension\"}");
    s_create("/api/v1/routing-rules",
             "{\"code\":\"R99\",\"name\":\"その他\",\"priority\":99,\"queue_code\":\"Q-GEN\"}");
    s_create("/api/v1/users", "{\"login\":\"op1\",\"name\":\"佐藤\",\"roles\":[\"operator\"],"
                              "\"extension\":\"2001\",\"skills\":\"tax, pension\","
                              "\"password\":\"Operator-Pass-0001\"}");
    s_create("/api/v1/users", "{\"login\":\"op2\",\"name\":\"田中\",\"roles\":[\"operator\"],"
                              "\"extension\":\"2002\",\"skills\":\"tax\","
                              "\"password\":\"Operator-Pass-0002\"}");
}

Test(masters, acd_settings_are_checked_and_kept_canonical)
{
    s_admin_login();
    s_acd();
    /* Stored canonical: days in week order, hours padded, skills once each. */
    resp_t resp = s_expect(s_json("GET", "/api/v1/routing-rules?q=R10", NULL), 200, NULL, "R10");
    const cJSON *rule = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_str_eq(s_str(rule, "weekdays"), "mon tue wed thu fri");
    cr_assert_str_eq(s_str(rule, "hours"), "08:30-17:15");
    s_free(&resp);
    resp = s_expect(s_json("GET", "/api/v1/users?q=op1", NULL), 200, NULL, "op1");
    const cJSON *user = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_str_eq(s_str(user, "skills"), "tax pension");
    s_free(&resp);

    /* Bad values, each refused with its field; nothing is written. */
    static const struct {
        const char *path, *body, *field;
    } bad[] = {
        {"/api/v1/queues", "{\"code\":\"Q1\",\"name\":\"x\",\"skills\":\"nope\"}", "skills"},
        {"/api/v1/queues", "{\"code\":\"Q1\",\"name\":\"x\",\"skills\":\"税\"}", "skills"},
        {"/api/v1/queues", "{\"code\":\"Q1\",\"name\":\"x\",\"overflow_code\":\"Q1\"}",
         "overflow_code"},
        {"/api/v1/queues", "{\"code\":\"Q1\",\"name\":\"x\",\"overflow_code\":\"QX\"}",
         "overflow_code"},
        {"/api/v1/queues", "{\"code\":\"Q1\",\"name\":\"x\",\"distribution\":\"random\"}",
         "distribution"},
        {"/api/v1/routing-rules",
         "{\"code\":\"R1\",\"name\":\"x\",\"queue_code\":\"Q-GEN\","
         "\"hours\":\"17:00-08:00\"}",
         "hours"},
        {"/api/v1/routing-rules",
         "{\"code\":\"R1\",\"name\":\"x\",\"queue_code\":\"Q-GEN\","
         "\"hours\":\"25:00-26:00\"}",
         "hours"},
        {"/api/v1/routing-rules",
         "{\"code\":\"R1\",\"name\":\"x\",\"queue_code\":\"Q-GEN\","
         "\"weekdays\":\"mon funday\"}",
         "weekdays"},
        {"/api/v1/routing-rules", "{\"code\":\"R1\",\"name\":\"x\"}", "queue_code"},
        {"/api/v1/routing-rules",
         "{\"code\":\"R1\",\"name\":\"x\",\"queue_code\":\"Q-GEN\","
         "\"ivr_choice\":\"1a\"}",
         "ivr_choice"},
        {"/api/v1/users",
         "{\"login\":\"op3\",\"name\":\"x\",\"roles\":[\"operator\"],"
         "\"skills\":\"nope\",\"password\":\"Operator-Pass-0003\"}",
         "skills"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        resp =
            s_expect(s_json("POST", bad[i].path, bad[i].body), 422, "invalid_field", bad[i].body);
        const char *field = s_str(cJSON_GetObjectItemCaseSensitive(resp.json, "error"), "field");
        cr_assert(field && strcmp(field, bad[i].field) == 0, "%s: %s", bad[i].body, resp.body);
        s_free(&resp);
    }
    cr_assert_eq(s_rows("queues"), 2);
    cr_assert_eq(s_rows("routing_rules"), 2);
    /* An overflow loop: Q-GEN -> Q-TAX while Q-TAX -> Q-GEN. */
    resp = s_expect(s_json("GET", "/api/v1/queues?q=Q-GEN", NULL), 200, NULL, "Q-GEN");
    long id =
        s_num(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0), "id");
    s_free(&resp);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/queues/%ld", id);
    resp = s_expect(s_json("PATCH", path, "{\"version\":1,\"overflow_code\":\"Q-TAX\"}"), 422, NULL,
                    "overflow loop");
    cr_assert(strstr(resp.body, "cycle"), "%s", resp.body);
    s_free(&resp);
    /* A skill in use cannot be deleted (a queue, a rule and users hold it). */
    resp = s_expect(s_json("DELETE", "/api/v1/skills/1", NULL), 409, "referenced", "skill tax");
    cr_assert(strstr(resp.body, "Q-TAX") && strstr(resp.body, "op1"), "%s", resp.body);
    s_free(&resp);
    /* A user's skills can be changed and cleared by PATCH. */
    resp = s_expect(s_json("GET", "/api/v1/users?q=op2", NULL), 200, NULL, "op2");
    user = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    snprintf(path, sizeof path, "/api/v1/users/%ld", s_num(user, "id"));
    char body[96];
    snprintf(body, sizeof body, "{\"version\":%ld,\"skills\":\"pension tax\"}",
             s_num(user, "version"));
    s_free(&resp);
    resp = s_expect(s_json("PATCH", path, body), 200, NULL, "op2 skills");
    cr_assert_str_eq(s_str(resp.json, "skills"), "pension tax");
    s_free(&resp);
    /* CSV of queues: the columns in order. */
    resp = s_expect(s_json("GET", "/api/v1/queues/export.csv", NULL), 200, NULL, "export");
    cr_assert(strstr(resp.body, "code,name,department_code,skills,priority,max_wait_seconds,"
                                "overflow_code,distribution,active\r\n"),
              "%s", resp.body);
    cr_assert(strstr(resp.body, "Q-TAX,税の窓口,D03,tax,5,120,Q-GEN,longest_idle,true\r\n"), "%s",
              resp.body);
    s_free(&resp);
    s_stop_all();
}

Test(masters, the_pbx_reads_the_routing_and_resolves_calls)
{
    s_admin_login();
    s_acd();
    /* The whole configuration, as a supervisor or admin sees it. */
    resp_t resp = s_expect(s_json("GET", "/api/v1/routing", NULL), 200, NULL, "routing");
    char buf[256];
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp.json, "queues")), 2);
    cr_assert_str_eq(
        s_str(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "queues"), 0), "code"),
        "Q-TAX", "highest priority first: %s", resp.body);
    const cJSON *op1 = s_find(resp.json, "agents", "login", "op1");
    const cJSON *op2 = s_find(resp.json, "agents", "login", "op2");
    cr_assert(op1 && op2, "%s", resp.body);
    cr_assert_null(s_find(resp.json, "agents", "login", "admin"), "not an operator");
    cr_assert_str_eq(s_list(op1, "queues", buf, sizeof buf), "Q-GEN Q-TAX");
    /* How each queue shares its calls (load balancing), longest_idle by default. */
    cr_assert_str_eq(s_str(s_find(resp.json, "queues", "code", "Q-GEN"), "distribution"),
                     "round_robin");
    cr_assert_str_eq(s_str(s_find(resp.json, "queues", "code", "Q-TAX"), "distribution"),
                     "longest_idle");
    cr_assert_str_eq(s_list(op1, "skills", buf, sizeof buf), "tax pension");
    cr_assert_str_eq(s_str(op1, "extension"), "2001");
    const cJSON *r10 = s_find(resp.json, "rules", "code", "R10");
    cr_assert_str_eq(s_list(r10, "weekdays", buf, sizeof buf), "mon tue wed thu fri");
    cr_assert_gt(s_num(resp.json, "change_id"), 0);
    /* R23: the recording notice the PBX plays, there from the first start. */
    const cJSON *notice = s_find(resp.json, "announcements", "code", "recording-notice");
    cr_assert(notice && strstr(s_str(notice, "text_ja"), "録音"), "%s", resp.body);
    char *whole = strdup(resp.body);
    s_free(&resp);

    /* Monday 10:00 on the tax number: R10, Q-TAX, tax and pension, op1 only. */
    resp = s_expect(s_json("GET",
                           "/api/v1/routing/resolve?called_number=0332281111&at=2027-04-05T10:00:"
                           "00%2B09:00",
                           NULL),
                    200, NULL, "resolve monday");
    cr_assert_str_eq(s_str(resp.json, "rule_code"), "R10", "%s", resp.body);
    cr_assert_str_eq(s_str(resp.json, "queue_code"), "Q-TAX");
    cr_assert_str_eq(s_list(resp.json, "skills", buf, sizeof buf), "pension tax");
    cr_assert_eq(s_num(resp.json, "max_wait_seconds"), 120);
    cr_assert_str_eq(s_str(resp.json, "overflow_code"), "Q-GEN");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp.json, "agents")), 1);
    cr_assert_not_null(s_find(resp.json, "agents", "login", "op1"));
    s_free(&resp);
    /* Saturday; Monday 18:00 JST (09:00 UTC), after hours; another number:
     * the catch-all. */
    static const char *const elsewhere[] = {
        "/api/v1/routing/resolve?called_number=0332281111&at=2027-04-03T10:00:00%2B09:00",
        "/api/v1/routing/resolve?called_number=0332281111&at=2027-04-05T09:00:00Z",
        "/api/v1/routing/resolve?called_number=0353210000&at=2027-04-05T10:00:00%2B09:00",
    };
    for (size_t i = 0; i < 3; i++) {
        resp = s_expect(s_json("GET", elsewhere[i], NULL), 200, NULL, elsewhere[i]);
        cr_assert_str_eq(s_str(resp.json, "rule_code"), "R99", "%s: %s", elsewhere[i], resp.body);
        cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp.json, "agents")), 2,
                     "%s", resp.body);
        s_free(&resp);
    }
    resp = s_expect(s_json("GET",
                           "/api/v1/routing/resolve?called_number=0332281111&at=2027-04-05T01:"
                           "15:00Z",
                           NULL),
                    200, NULL, "resolve 10:15 JST");
    cr_assert_str_eq(s_str(resp.json, "rule_code"), "R10", "%s", resp.body);
    s_free(&resp);
    s_check(s_json("GET", "/api/v1/routing/resolve?at=yesterday", NULL), 422, "invalid_field",
            "bad time");
    s_check(s_json("GET", "/api/v1/routing/resolve?called_number=abc", NULL), 422, "invalid_field",
            "bad number");

    /* The PBX: signed with the webhook secret, no session. */
    int64_t now = (int64_t)time(NULL);
    resp = s_expect(s_pbx_get("/api/v1/pbx/routing", PBX_SECRET, now), 200, NULL, "pbx routing");
    cr_assert_not_null(s_find(resp.json, "agents", "login", "op1"), "%s", resp.body);
    cJSON *a = cJSON_Parse(whole), *b = cJSON_Duplicate(resp.json, true);
    cJSON_DeleteItemFromObject(a, "generated_at");
    cJSON_DeleteItemFromObject(b, "generated_at");
    cr_assert(cJSON_Compare(a, b, true), "the PBX reads what the admin reads");
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(whole);
    s_free(&resp);
    resp = s_expect(s_pbx_get("/api/v1/pbx/routing/resolve?called_number=03-3228-1111&at=2027-04-"
                              "05T10:00:00%2B09:00",
                              PBX_SECRET, now),
                    200, NULL, "pbx resolve");
    cr_assert_str_eq(s_str(resp.json, "queue_code"), "Q-TAX", "%s", resp.body);
    s_free(&resp);
    /* The ward changes the notice's words: the PBX reads the new ones. */
    resp = s_expect(s_json("GET", "/api/v1/announcements?q=recording-notice", NULL), 200, NULL,
                    "announcements");
    long notice_id =
        s_num(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0), "id");
    s_free(&resp);
    char notice_path[64];
    snprintf(notice_path, sizeof notice_path, "/api/v1/announcements/%ld", notice_id);
    s_check(
        s_json("PATCH", notice_path, "{\"version\":1,\"text_ja\":\"この通話は録音されます。\"}"),
        200, NULL, "new notice");
    resp = s_expect(s_pbx_get("/api/v1/pbx/routing", PBX_SECRET, now), 200, NULL, "pbx again");
    notice = s_find(resp.json, "announcements", "code", "recording-notice");
    cr_assert_str_eq(s_str(notice, "text_ja"), "この通話は録音されます。");
    s_free(&resp);
    /* Wrong secret, stale time, no signature, a signature of another query. */
    s_check(s_pbx_get("/api/v1/pbx/routing", "another-secret", now), 401, "invalid_signature",
            "wrong secret");
    s_check(s_pbx_get("/api/v1/pbx/routing", PBX_SECRET, now - 600), 401, "invalid_signature",
            "stale");
    s_check(s_json("GET", "/api/v1/pbx/routing", NULL), 401, "invalid_signature", "unsigned");
    {
        /* Signed for one query, sent with another. */
        char header[160], line[200];
        const char *signed_target = "/api/v1/pbx/routing/resolve?called_number=1";
        cr_assert_eq(ncc_webhook_sign(PBX_SECRET, now, signed_target, strlen(signed_target), header,
                                      sizeof header),
                     0);
        snprintf(line, sizeof line, "X-NCC-Signature: %s", header);
        resp = ncct_request(&s_sys, NULL, "GET", "/api/v1/pbx/routing/resolve?called_number=2",
                            NULL, (const char *[]){line, NULL});
        s_check(resp, 401, "invalid_signature", "a signature of another query");
    }

    /* Retire the catch-all: a Saturday call has no route. */
    resp = s_expect(s_json("GET", "/api/v1/routing-rules?q=R99", NULL), 200, NULL, "R99");
    long id =
        s_num(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0), "id");
    s_free(&resp);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/routing-rules/%ld", id);
    s_check(s_json("PATCH", path, "{\"version\":1,\"active\":false}"), 200, NULL, "retire R99");
    s_check(s_json("GET", elsewhere[0], NULL), 404, "no_route", "no rule left");
    s_stop_all();
}
