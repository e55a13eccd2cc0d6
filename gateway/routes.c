/* routes: the /api/v1 route table (data) and its matcher. To add an endpoint:
 * a request message in proto/, a line here, a handler in the service
 * (docs/gateway.md). */
#include "routes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ncc/bus.h"

/* clang-format off */
#define S_ADMIN     NCC_ROLE_ADMIN
#define S_OVERSIGHT (NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN)
#define S_READ      NCC_ROLES_USERS
#define S_PUBLIC    GW_ROUTE_PUBLIC
#define S_AUDIT     GW_ROUTE_AUDIT
#define S_SIGNED    (GW_ROUTE_PUBLIC | GW_ROUTE_OPEN | GW_ROUTE_SIGNED)

/* CSV imports take up to what one bus message carries (NCC_BUS_MAX_MESSAGE,
 * less room for the envelope): about 40,000 phone-book rows. Imports and
 * exports of large files may take longer than other requests. */
static const gw_route_raw_t s_csv_import = {"csv", NCC_BUS_MAX_MESSAGE - 64 * 1024, 30000};
static const gw_route_raw_t s_csv_export = {"csv", 0, 30000};
/* Reports' files (XLSX, a batch run's file): the reply's `data` (docs/kpi.md). */
static const gw_route_raw_t s_report_file = {"data", 0, 30000};

/* The seven routes of one kind of master (docs/masters.md): its path under
 * /api/v1/, the names in its request types (ncc.directory.List<plural>,
 * Get<single>, ...) and its audit actions' prefix. export.csv comes before
 * {id}: the first matching line wins. */
#define S_MASTER(path, single, plural, action) \
    {"GET",    "/api/v1/" path,                 "directory", "ncc.directory.List" plural,   S_READ,      0,                                 GW_ROUTE_GENERIC, NULL,              NULL, NULL}, \
    {"GET",    "/api/v1/" path "/export.csv",   "directory", "ncc.directory.Export" plural, S_OVERSIGHT, S_AUDIT | GW_ROUTE_CSV_REPLY,      GW_ROUTE_GENERIC, action ".export",  NULL, &s_csv_export}, \
    {"POST",   "/api/v1/" path "/import",       "directory", "ncc.directory.Import" plural, S_ADMIN,     S_AUDIT | GW_ROUTE_RAW_BODY,       GW_ROUTE_GENERIC, action ".import",  NULL, &s_csv_import}, \
    {"POST",   "/api/v1/" path,                 "directory", "ncc.directory.Create" single, S_ADMIN,     S_AUDIT | GW_ROUTE_CREATED,        GW_ROUTE_GENERIC, action ".create",  NULL, NULL}, \
    {"GET",    "/api/v1/" path "/{id}",         "directory", "ncc.directory.Get" single,    S_READ,      0,                                 GW_ROUTE_GENERIC, NULL,              NULL, NULL}, \
    {"PATCH",  "/api/v1/" path "/{id}",         "directory", "ncc.directory.Update" single, S_ADMIN,     S_AUDIT,                           GW_ROUTE_GENERIC, action ".update",  NULL, NULL}, \
    {"DELETE", "/api/v1/" path "/{id}",         "directory", "ncc.directory.Delete" single, S_ADMIN,     S_AUDIT,                           GW_ROUTE_GENERIC, action ".delete",  NULL, NULL}

const gw_route_t gw_routes[] = {
    /* method   pattern                              service      request type                     roles            flags                               kind                 audit action          self field  raw */
    {"GET",    "/api/v1/health",                  NULL,        NULL,                            NCC_ROLES_USERS, S_PUBLIC | GW_ROUTE_OPEN,           GW_ROUTE_HEALTH,     NULL,                 NULL,       NULL},
    {"GET",    "/api/v1/services/{service}/ping", "{service}", "ncc.Ping",                      NCC_ROLES_USERS, S_PUBLIC,                           GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"POST",   "/api/v1/services/{service}/ping", "{service}", "ncc.Ping",                      NCC_ROLES_USERS, S_PUBLIC,                           GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    /* sessions (sign-in is audited by ncc-directory itself) */
    {"POST",   "/api/v1/session",                 "directory", "ncc.directory.Authenticate",    NCC_ROLES_USERS, S_PUBLIC,                           GW_ROUTE_LOGIN,      NULL,                 NULL,       NULL},
    {"DELETE", "/api/v1/session",                 NULL,        NULL,                            NCC_ROLES_USERS, S_AUDIT,                            GW_ROUTE_LOGOUT,     "session.logout",     NULL,       NULL},
    {"DELETE", "/api/v1/sessions",                NULL,        NULL,                            NCC_ROLES_USERS, S_AUDIT,                            GW_ROUTE_LOGOUT_ALL, "session.logout_all", NULL,       NULL},
    {"GET",    "/api/v1/me",                      "directory", "ncc.directory.GetUser",         NCC_ROLES_USERS, 0,                                  GW_ROUTE_ME,         NULL,                 NULL,       NULL},
    /* calls from the PBX (R1, R22, R26, R28): docs/pbx-integration.md */
    {"POST",   "/api/v1/pbx/events",              "calls",     "ncc.calls.PbxEvent",            S_READ,          S_SIGNED,                           GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"POST",   "/api/v1/calls/{call_id}/transcript", "calls",  "ncc.calls.AddTranscript",       S_READ,          S_SIGNED,                           GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"GET",    "/api/v1/calls",                   "calls",     "ncc.calls.ListCalls",           S_READ,          S_AUDIT,                            GW_ROUTE_GENERIC,    "call.list",          NULL,       NULL},
    {"GET",    "/api/v1/calls/transcripts/tokens.csv", "calls", "ncc.calls.ExportTranscriptTokens", S_OVERSIGHT, S_AUDIT | GW_ROUTE_CSV_REPLY,       GW_ROUTE_GENERIC,    "transcript.export",  NULL,       &s_csv_export},
    {"GET",    "/api/v1/calls/{call_id}",         "calls",     "ncc.calls.GetCall",             S_READ,          S_AUDIT,                            GW_ROUTE_GENERIC,    "call.read",          NULL,       NULL},
    {"GET",    "/api/v1/calls/{call_id}/recording", "calls",   "ncc.calls.GetRecordingPart",    S_READ,          S_AUDIT,                            GW_ROUTE_FILE,       "recording.read",     NULL,       NULL},
    /* the push stream (Server-Sent Events): docs/push.md */
    {"GET",    "/api/v1/stream",                  NULL,        NULL,                            NCC_ROLES_USERS, 0,                                  GW_ROUTE_STREAM,     NULL,                 NULL,       NULL},
    {"POST",   "/api/v1/me/password",             "directory", "ncc.directory.ChangePassword",  NCC_ROLES_USERS, S_AUDIT | GW_ROUTE_USER_SYNC,        GW_ROUTE_GENERIC,    "password.change",    "user_id",  NULL},
    /* users and roles (R9, R18); their CSV through the masters (R4) */
    {"GET",    "/api/v1/users",                   "directory", "ncc.directory.ListUsers",       S_ADMIN,         S_AUDIT,                            GW_ROUTE_GENERIC,    "user.list",          NULL,       NULL},
    {"POST",   "/api/v1/users",                   "directory", "ncc.directory.CreateUser",      S_ADMIN,         S_AUDIT | GW_ROUTE_CREATED,         GW_ROUTE_GENERIC,    "user.create",        NULL,       NULL},
    {"GET",    "/api/v1/users/export.csv",        "directory", "ncc.directory.ExportUsers",     S_ADMIN,         S_AUDIT | GW_ROUTE_CSV_REPLY,       GW_ROUTE_GENERIC,    "user.export",        NULL,       &s_csv_export},
    {"POST",   "/api/v1/users/import",            "directory", "ncc.directory.ImportUsers",     S_ADMIN,         S_AUDIT | GW_ROUTE_RAW_BODY,        GW_ROUTE_GENERIC,    "user.import",        NULL,       &s_csv_import},
    {"GET",    "/api/v1/users/{id}",              "directory", "ncc.directory.GetUser",         S_ADMIN,         S_AUDIT,                            GW_ROUTE_GENERIC,    "user.read",          NULL,       NULL},
    {"PATCH",  "/api/v1/users/{id}",              "directory", "ncc.directory.UpdateUser",      S_ADMIN,         S_AUDIT | GW_ROUTE_USER_SYNC,       GW_ROUTE_GENERIC,    "user.update",        NULL,       NULL},
    {"DELETE", "/api/v1/users/{id}",              "directory", "ncc.directory.DeleteUser",      S_ADMIN,         S_AUDIT | GW_ROUTE_USER_SYNC,       GW_ROUTE_GENERIC,    "user.delete",        NULL,       NULL},
    /* the audit log (R17) */
    {"GET",    "/api/v1/audit",                   "directory", "ncc.directory.AuditSearch",     S_OVERSIGHT,     S_AUDIT,                            GW_ROUTE_GENERIC,    "audit.search",       NULL,       NULL},
    {"GET",    "/api/v1/audit/verify",            "directory", "ncc.directory.AuditVerify",     S_OVERSIGHT,     0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    /* the record form setting (R3, R38): docs/record-form.md */
    {"GET",    "/api/v1/settings/record-form",         "directory", "ncc.directory.GetRecordForm",         S_READ,      0,       GW_ROUTE_GENERIC, NULL,                  NULL, NULL},
    {"PUT",    "/api/v1/settings/record-form",         "directory", "ncc.directory.UpdateRecordForm",      S_ADMIN,     S_AUDIT, GW_ROUTE_GENERIC, "record_form.update",  NULL, NULL},
    {"GET",    "/api/v1/settings/record-form/history", "directory", "ncc.directory.ListRecordFormHistory", S_OVERSIGHT, S_AUDIT, GW_ROUTE_GENERIC, "record_form.history", NULL, NULL},
    /* FAQ (R8, R36, R40-R43, R49, R50): docs/faq.md */
    {"GET",    "/api/v1/faqs",                    "faq",       "ncc.faq.ListFaqs",               S_READ,          0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"POST",   "/api/v1/faqs",                    "faq",       "ncc.faq.CreateFaq",              S_OVERSIGHT,     S_AUDIT | GW_ROUTE_CREATED,         GW_ROUTE_GENERIC,    "faq.create",         NULL,       NULL},
    {"GET",    "/api/v1/faqs/export.csv",         "faq",       "ncc.faq.ExportFaqs",             S_OVERSIGHT,     S_AUDIT | GW_ROUTE_CSV_REPLY,       GW_ROUTE_GENERIC,    "faq.export",         NULL,       &s_csv_export},
    {"POST",   "/api/v1/faqs/import",             "faq",       "ncc.faq.ImportFaqs",             S_OVERSIGHT,     S_AUDIT | GW_ROUTE_RAW_BODY,        GW_ROUTE_GENERIC,    "faq.import",         NULL,       &s_csv_import},
    {"GET",    "/api/v1/faqs/suggest",            "faq",       "ncc.faq.SuggestFaqs",            S_READ,          0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"POST",   "/api/v1/faqs/suggest",            "faq",       "ncc.faq.SuggestFaqs",            S_READ,          0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"GET",    "/api/v1/faqs/zero-hits",          "faq",       "ncc.faq.ListZeroHits",           S_OVERSIGHT | NCC_ROLE_STAFF, 0,                     GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"GET",    "/api/v1/faqs/{id}",               "faq",       "ncc.faq.GetFaq",                 S_READ,          0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"PATCH",  "/api/v1/faqs/{id}",               "faq",       "ncc.faq.UpdateFaq",              S_OVERSIGHT,     S_AUDIT,                            GW_ROUTE_GENERIC,    "faq.update",         NULL,       NULL},
    {"DELETE", "/api/v1/faqs/{id}",               "faq",       "ncc.faq.DeleteFaq",              S_OVERSIGHT,     S_AUDIT,                            GW_ROUTE_GENERIC,    "faq.delete",         NULL,       NULL},
    {"GET",    "/api/v1/faqs/{id}/versions",      "faq",       "ncc.faq.ListFaqVersions",        S_READ,          0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    /* staff too: a department's reviewers approve its FAQs; ncc-faq decides (faq_review.c) */
    {"POST",   "/api/v1/faqs/{id}/approve",       "faq",       "ncc.faq.ApproveFaq",             S_OVERSIGHT | NCC_ROLE_STAFF, S_AUDIT,               GW_ROUTE_GENERIC,    "faq.approve",        NULL,       NULL},
    /* learning from operators: the words that led staff to an FAQ (docs/faq.md) */
    {"POST",   "/api/v1/faqs/{id}/clicks",        "faq",       "ncc.faq.RecordFaqClick",         S_READ,          S_AUDIT,                            GW_ROUTE_GENERIC,    "faq_clicks.create",  NULL,       NULL},
    {"GET",    "/api/v1/faqs/{id}/clicks",        "faq",       "ncc.faq.ListFaqClicks",          S_OVERSIGHT,     0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"DELETE", "/api/v1/faqs/{id}/clicks",        "faq",       "ncc.faq.DeleteFaqClicks",        S_OVERSIGHT,     S_AUDIT,                            GW_ROUTE_GENERIC,    "faq_clicks.delete",  NULL,       NULL},
    {"GET",    "/api/v1/faq-synonyms",            "faq",       "ncc.faq.GetSynonyms",            S_READ,          0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"PUT",    "/api/v1/faq-synonyms",            "faq",       "ncc.faq.PutSynonyms",            S_OVERSIGHT,     S_AUDIT,                            GW_ROUTE_GENERIC,    "faq_synonyms.update", NULL,      NULL},
    /* department reviewers (所管課の確認者): who approves a department's FAQs */
    {"GET",    "/api/v1/faq-reviewers",           "faq",       "ncc.faq.ListFaqReviewers",       S_OVERSIGHT | NCC_ROLE_STAFF, 0,                     GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"PUT",    "/api/v1/faq-reviewers/{department_id}", "faq", "ncc.faq.PutFaqReviewers",        S_ADMIN,         S_AUDIT,                            GW_ROUTE_GENERIC,    "faq_reviewers.update", NULL,     NULL},
    {"DELETE", "/api/v1/faq-reviewers/{department_id}", "faq", "ncc.faq.DeleteFaqReviewers",     S_ADMIN,         S_AUDIT,                            GW_ROUTE_GENERIC,    "faq_reviewers.delete", NULL,     NULL},
    {"GET",    "/api/v1/public/faqs",             "faq",       "ncc.faq.PublicListFaqs",         S_READ,          S_PUBLIC | GW_ROUTE_OPEN,           GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"GET",    "/api/v1/public/faqs/{number}",    "faq",       "ncc.faq.PublicGetFaq",           S_READ,          S_PUBLIC | GW_ROUTE_OPEN,           GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"POST",   "/api/v1/public/faqs/{number}/feedback", "faq", "ncc.faq.PublicFeedback",         S_READ,          S_PUBLIC | GW_ROUTE_OPEN | GW_ROUTE_CLIENT_ADDRESS, GW_ROUTE_GENERIC, NULL, NULL,      NULL},
    /* interaction records (R20, R29, R31-R35, R48): docs/history.md; export.csv before {id} */
    {"GET",    "/api/v1/records",                 "history",   "ncc.history.ListRecords",        S_READ,          S_AUDIT,                            GW_ROUTE_GENERIC,    "record.list",        NULL,       NULL},
    {"GET",    "/api/v1/records/export.csv",      "history",   "ncc.history.ExportRecords",      S_OVERSIGHT | NCC_ROLE_STAFF, S_AUDIT | GW_ROUTE_CSV_REPLY | GW_ROUTE_CSV_STREAM, GW_ROUTE_GENERIC, "record.export", NULL, &s_csv_export},
    {"POST",   "/api/v1/records/import",          "history",   "ncc.history.ImportRecords",      S_OVERSIGHT,     S_AUDIT | GW_ROUTE_RAW_BODY,        GW_ROUTE_GENERIC,    "record.import",      NULL,       &s_csv_import},
    {"POST",   "/api/v1/records/purge",           "history",   "ncc.history.PurgeRecords",       S_ADMIN,         S_AUDIT,                            GW_ROUTE_GENERIC,    "record.purge",       NULL,       NULL},
    {"POST",   "/api/v1/records/erase",           "history",   "ncc.history.EraseRecords",       S_ADMIN,         S_AUDIT,                            GW_ROUTE_GENERIC,    "record.erase",       NULL,       NULL},
    {"POST",   "/api/v1/records",                 "history",   "ncc.history.CreateRecord",       NCC_ROLE_OPERATOR | S_OVERSIGHT, S_AUDIT | GW_ROUTE_CREATED, GW_ROUTE_GENERIC, "record.create", NULL, NULL},
    {"GET",    "/api/v1/records/{id}",            "history",   "ncc.history.GetRecord",          S_READ,          S_AUDIT,                            GW_ROUTE_GENERIC,    "record.read",        NULL,       NULL},
    {"PATCH",  "/api/v1/records/{id}",            "history",   "ncc.history.UpdateRecord",       NCC_ROLE_OPERATOR | S_OVERSIGHT, S_AUDIT,            GW_ROUTE_GENERIC,    "record.update",      NULL,       NULL},
    /* SMS (R44): docs/sms.md. The provider's receipts (POST /api/v1/sms/receipts, signed with
     * NCC_SMS_RECEIPT_SECRET) and the survey pages /s/{token} are in survey.c. */
    {"GET",    "/api/v1/sms-templates",           "sms",       "ncc.sms.ListTemplates",          S_READ,          0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"POST",   "/api/v1/sms-templates",           "sms",       "ncc.sms.CreateTemplate",         S_ADMIN,         S_AUDIT | GW_ROUTE_CREATED,         GW_ROUTE_GENERIC,    "sms_template.create", NULL,      NULL},
    {"GET",    "/api/v1/sms-templates/{id}",      "sms",       "ncc.sms.GetTemplate",            S_READ,          0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"PATCH",  "/api/v1/sms-templates/{id}",      "sms",       "ncc.sms.UpdateTemplate",         S_ADMIN,         S_AUDIT,                            GW_ROUTE_GENERIC,    "sms_template.update", NULL,      NULL},
    {"GET",    "/api/v1/sms-templates/{id}/history", "sms",    "ncc.sms.ListTemplateVersions",   S_READ,          0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"POST",   "/api/v1/sms/preview",             "sms",       "ncc.sms.PreviewSms",             S_READ,          0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"POST",   "/api/v1/sms/opt-outs",            "sms",       "ncc.sms.AddOptOut",              NCC_ROLE_OPERATOR | S_OVERSIGHT, S_AUDIT,            GW_ROUTE_GENERIC,    "sms.opt_out",        NULL,       NULL},
    {"POST",   "/api/v1/sms",                     "sms",       "ncc.sms.SendSms",                NCC_ROLE_OPERATOR | S_OVERSIGHT, S_AUDIT | GW_ROUTE_CREATED, GW_ROUTE_GENERIC, "sms.send",   NULL,       NULL},
    {"GET",    "/api/v1/sms",                     "sms",       "ncc.sms.ListSms",                S_READ,          S_AUDIT,                            GW_ROUTE_GENERIC,    "sms.list",           NULL,       NULL},
    {"GET",    "/api/v1/sms/{id}",                "sms",       "ncc.sms.GetSms",                 S_READ,          S_AUDIT,                            GW_ROUTE_GENERIC,    "sms.read",           NULL,       NULL},
    /* summaries: masking first, then the summarizer (R22, R30, R37): docs/summary.md */
    {"POST",   "/api/v1/summaries",               "summary",   "ncc.summary.Summarize",         S_READ,          0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"GET",    "/api/v1/calls/{call_id}/summary", "summary",   "ncc.summary.GetCallSummary",    S_READ,          S_AUDIT,                            GW_ROUTE_GENERIC,    "call.summary.read",  NULL,       NULL},
    /* answer drafts for residents from published public FAQs (R49): docs/summary.md */
    {"POST",   "/api/v1/answers/draft",           "summary",   "ncc.summary.DraftAnswer",       S_READ,          0,                                  GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    /* reports and live figures (R29, R33, R39): docs/kpi.md */
    {"GET",    "/api/v1/reports/kpi",             "report",    "ncc.report.GetKpi",             S_OVERSIGHT | NCC_ROLE_STAFF, 0,                     GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"GET",    "/api/v1/reports/export.csv",      "report",    "ncc.report.ExportKpiCsv",       S_OVERSIGHT | NCC_ROLE_STAFF, S_AUDIT | GW_ROUTE_CSV_REPLY | GW_ROUTE_CSV_STREAM, GW_ROUTE_GENERIC, "report.export", NULL, &s_csv_export},
    {"GET",    "/api/v1/reports/export.xlsx",     "report",    "ncc.report.ExportKpiXlsx",      S_OVERSIGHT | NCC_ROLE_STAFF, S_AUDIT | GW_ROUTE_CSV_REPLY, GW_ROUTE_GENERIC,    "report.export",      NULL,       &s_report_file},
    {"GET",    "/api/v1/reports/runs",            "report",    "ncc.report.ListRuns",           S_OVERSIGHT | NCC_ROLE_STAFF, 0,                     GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    {"GET",    "/api/v1/reports/runs/{id}/file",  "report",    "ncc.report.GetRunFile",         S_OVERSIGHT | NCC_ROLE_STAFF, S_AUDIT | GW_ROUTE_CSV_REPLY, GW_ROUTE_GENERIC,    "report.download",    NULL,       &s_report_file},
    {"GET",    "/api/v1/metrics/live",            "report",    "ncc.report.GetLiveMetrics",     S_OVERSIGHT | NCC_ROLE_STAFF, 0,                     GW_ROUTE_GENERIC,    NULL,                 NULL,       NULL},
    /* masters (R4, R5, R8): docs/masters.md */
    S_MASTER("departments",     "Department",     "Departments",      "department"),
    S_MASTER("directory",       "DirectoryEntry", "DirectoryEntries", "phonebook"),
    S_MASTER("categories",      "Category",       "Categories",       "category"),
    S_MASTER("reception-types", "ReceptionType",  "ReceptionTypes",   "reception_type"),
    S_MASTER("handling-types",  "HandlingType",   "HandlingTypes",    "handling_type"),
    S_MASTER("faq-classes",     "FaqClass",       "FaqClasses",       "faq_class"),
    /* ACD (R25): docs/routing.md */
    S_MASTER("skills",          "Skill",          "Skills",           "skill"),
    S_MASTER("queues",          "Queue",          "Queues",           "queue"),
    S_MASTER("routing-rules",   "RoutingRule",    "RoutingRules",     "routing_rule"),
    S_MASTER("announcements",   "Announcement",   "Announcements",    "announcement"),
    {"GET",    "/api/v1/routing",                 "directory", "ncc.directory.GetRouting",            S_OVERSIGHT, 0,                          GW_ROUTE_GENERIC,    NULL,                     NULL, NULL},
    {"GET",    "/api/v1/routing/resolve",         "directory", "ncc.directory.ResolveRoute",          S_OVERSIGHT, 0,                          GW_ROUTE_GENERIC,    NULL,                     NULL, NULL},
    {"GET",    "/api/v1/pbx/routing",             "directory", "ncc.directory.GetRouting",            S_READ,      S_SIGNED,                   GW_ROUTE_GENERIC,    NULL,                     NULL, NULL},
    {"GET",    "/api/v1/pbx/routing/resolve",     "directory", "ncc.directory.ResolveRoute",          S_READ,      S_SIGNED,                   GW_ROUTE_GENERIC,    NULL,                     NULL, NULL},
    {"GET",    "/api/v1/masters/scheduled",       "directory", "ncc.directory.ListScheduledChanges",  S_OVERSIGHT, 0,                          GW_ROUTE_GENERIC,    NULL,                     NULL, NULL},
    {"DELETE", "/api/v1/masters/scheduled/{id}",  "directory", "ncc.directory.CancelScheduledChange", S_ADMIN,     S_AUDIT,                    GW_ROUTE_GENERIC,    "master.schedule_cancel", NULL, NULL},
    {"GET",    "/api/v1/masters/propagation",     "directory", "ncc.directory.MasterPropagation",     S_OVERSIGHT, 0,                          GW_ROUTE_GENERIC,    NULL,                     NULL, NULL},
    {"GET",    "/api/v1/masters/{kind}/history",  "directory", "ncc.directory.ListMasterHistory",     S_OVERSIGHT, S_AUDIT,                    GW_ROUTE_GENERIC,    "master.history",         NULL, NULL},
    {NULL, NULL, NULL, NULL, 0, 0, GW_ROUTE_GENERIC, NULL, NULL, NULL},
};
#undef S_MASTER
#undef S_ADMIN
#undef S_OVERSIGHT
#undef S_READ
#undef S_PUBLIC
#undef S_AUDIT
#undef S_SIGNED
/* clang-format on */

/* The next segment of a path or pattern starting at *p (just after a '/'):
 * its start and length; *p moves past it and its trailing '/'. False at the
 * end. */
static bool s_next_segment(const char **p, const char **ret_start, size_t *ret_len, bool *ret_more)
{
    if (!*p)
        return false;
    const char *start = *p;
    const char *slash = strchr(start, '/');
    *ret_start = start;
    *ret_len = slash ? (size_t)(slash - start) : strlen(start);
    *ret_more = slash != NULL;
    *p = slash ? slash + 1 : NULL;
    return true;
}

static bool s_is_param(const char *segment, size_t len)
{
    return len >= 3 && segment[0] == '{' && segment[len - 1] == '}';
}

/* Matches one pattern against a path; params written into *match. */
static bool s_match(const char *pattern, const char *path, gw_route_match_t *match)
{
    if (pattern[0] != '/' || path[0] != '/')
        return false;
    const char *pp = pattern + 1, *sp = path + 1;
    match->param_count = 0;
    for (;;) {
        const char *pseg = NULL, *sseg = NULL;
        size_t plen = 0, slen = 0;
        bool pmore = false, smore = false;
        bool have_p = s_next_segment(&pp, &pseg, &plen, &pmore);
        bool have_s = s_next_segment(&sp, &sseg, &slen, &smore);
        if (!have_p || !have_s)
            return have_p == have_s;
        if (s_is_param(pseg, plen)) {
            if (slen == 0 || match->param_count >= GW_ROUTE_MAX_PARAMS)
                return false;
            gw_route_param_t *param = &match->params[match->param_count++];
            param->name = pseg + 1;
            param->name_len = plen - 2;
            param->value = sseg;
            param->value_len = slen;
        } else if (plen != slen || memcmp(pseg, sseg, plen) != 0) {
            return false;
        }
        if (pmore != smore)
            return false;
        if (!pmore)
            return true;
    }
}

static void s_allow_add(char *allow, size_t allow_len, const char *method)
{
    if (!allow || allow_len == 0)
        return;
    size_t used = strlen(allow);
    /* The same method twice would only come from a bad table; list it once. */
    if (strstr(allow, method))
        return;
    snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", method);
}

int gw_routes_find(const gw_route_t *table, const char *method, const char *path,
                   gw_route_match_t *ret_match, char *allow, size_t allow_len)
{
    bool path_known = false;
    gw_route_match_t match;
    if (allow && allow_len)
        allow[0] = '\0';
    for (const gw_route_t *route = table; route->method; route++) {
        if (!s_match(route->pattern, path, &match))
            continue;
        if (strcmp(route->method, method) == 0) {
            match.route = route;
            *ret_match = match;
            return 0;
        }
        path_known = true;
        s_allow_add(allow, allow_len, route->method);
    }
    return path_known ? -EOPNOTSUPP : -ENOENT;
}

const char *gw_route_param(const gw_route_match_t *match, const char *name, char *buf, size_t len)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i < match->param_count; i++) {
        const gw_route_param_t *param = &match->params[i];
        if (param->name_len != name_len || memcmp(param->name, name, name_len) != 0)
            continue;
        if (param->value_len >= len)
            return NULL;
        memcpy(buf, param->value, param->value_len);
        buf[param->value_len] = '\0';
        return buf;
    }
    return NULL;
}

/* True when {name} appears in pattern. */
static bool s_pattern_has_param(const char *pattern, const char *name, size_t name_len)
{
    for (const char *p = strchr(pattern, '{'); p; p = strchr(p + 1, '{')) {
        if (strncmp(p + 1, name, name_len) == 0 && p[1 + name_len] == '}')
            return true;
    }
    return false;
}

/* An audit action: 1 to 64 of [a-z0-9._] (what ncc-directory accepts). */
static bool s_action_ok(const char *action)
{
    size_t len = action ? strlen(action) : 0;
    if (len == 0 || len > 64)
        return false;
    for (const char *p = action; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_'))
            return false;
    return true;
}

/* The security columns agree with each other (routes.h, gw_routes_check). */
static bool s_security_ok(const gw_route_t *route)
{
    bool is_public = route->flags & GW_ROUTE_PUBLIC;
    bool open = route->flags & GW_ROUTE_OPEN;
    bool audit = route->flags & GW_ROUTE_AUDIT;
    if (!is_public && !(route->roles & NCC_ROLES_USERS))
        return false;
    if (open && !is_public)
        return false;
    if (audit != (route->action != NULL) || (audit && !s_action_ok(route->action)))
        return false;
    if (route->self_field && is_public)
        return false;
    bool resident = strncmp(route->pattern, "/api/v1/public/", 15) == 0 ||
                    strncmp(route->pattern, "/api/v1/pbx/", 12) == 0;
    if (resident && !open)
        return false;
    bool needs_session = route->kind == GW_ROUTE_LOGOUT || route->kind == GW_ROUTE_LOGOUT_ALL ||
                         route->kind == GW_ROUTE_ME || route->kind == GW_ROUTE_STREAM ||
                         route->kind == GW_ROUTE_FILE;
    /* A signed route is a machine's: public (no session) and open, and only
     * that; an open route under /api/v1/pbx/ must be signed. */
    bool is_signed = route->flags & GW_ROUTE_SIGNED;
    if (is_signed && (!is_public || !open || audit))
        return false;
    if (strncmp(route->pattern, "/api/v1/pbx/", 12) == 0 && !is_signed)
        return false;
    if ((needs_session && is_public) || (route->kind == GW_ROUTE_LOGIN && !is_public))
        return false;
    return true;
}

/* GW_ROUTE_RAW_BODY / GW_ROUTE_CSV_REPLY: one of them, with its field, and a
 * raw body only where there is a body. */
static bool s_raw_ok(const gw_route_t *route)
{
    bool raw_body = route->flags & GW_ROUTE_RAW_BODY;
    bool csv_reply = route->flags & GW_ROUTE_CSV_REPLY;
    if (!raw_body && !csv_reply)
        return route->raw == NULL;
    if (raw_body && csv_reply)
        return false;
    if (!route->raw || !route->raw->field || !route->raw->field[0] || route->raw->timeout_ms < 0)
        return false;
    if (raw_body && strcmp(route->method, "POST") != 0 && strcmp(route->method, "PUT") != 0 &&
        strcmp(route->method, "PATCH") != 0)
        return false;
    return route->kind == GW_ROUTE_GENERIC;
}

static bool s_line_ok(const gw_route_t *route)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    bool method_ok = false;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        method_ok = method_ok || strcmp(route->method, methods[i]) == 0;
    if (!method_ok || !route->pattern || strncmp(route->pattern, "/api/v1/", 8) != 0)
        return false;
    bool one_request = route->kind == GW_ROUTE_GENERIC || route->kind == GW_ROUTE_LOGIN ||
                       route->kind == GW_ROUTE_ME;
    if (one_request && (!route->service || !route->request_type))
        return false;
    /* Segments: non-empty; a param is {name} with [a-z0-9_] and unique. */
    const char *p = route->pattern + 1;
    const char *seg = NULL;
    size_t len = 0;
    bool more = false;
    size_t params = 0;
    while (s_next_segment(&p, &seg, &len, &more)) {
        if (len == 0)
            return false;
        bool has_brace = memchr(seg, '{', len) || memchr(seg, '}', len);
        if (!has_brace)
            continue;
        if (!s_is_param(seg, len) || ++params > GW_ROUTE_MAX_PARAMS)
            return false;
        for (size_t i = 1; i + 1 < len; i++) {
            char c = seg[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                return false;
        }
        /* Unique: the same {name} must not come again later in the pattern. */
        if (s_pattern_has_param(seg + len, seg + 1, len - 2))
            return false;
    }
    if (route->service && route->service[0] == '{') {
        size_t slen = strlen(route->service);
        if (slen < 3 || route->service[slen - 1] != '}' ||
            !s_pattern_has_param(route->pattern, route->service + 1, slen - 2))
            return false;
    }
    return s_security_ok(route) && s_raw_ok(route);
}

int gw_routes_check(const gw_route_t *table, size_t *ret_line)
{
    for (size_t i = 0; table[i].method; i++) {
        bool ok = s_line_ok(&table[i]);
        for (size_t j = 0; ok && j < i; j++)
            ok = !(strcmp(table[i].method, table[j].method) == 0 &&
                   strcmp(table[i].pattern, table[j].pattern) == 0);
        if (!ok) {
            if (ret_line)
                *ret_line = i;
            return -EINVAL;
        }
    }
    return 0;
}
