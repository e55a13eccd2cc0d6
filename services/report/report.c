/* report: the service object and the requests of the reports API
 * (API.md "Reports", docs/api.md): GetKpi, ExportKpiCsv, ExportKpiXlsx,
 * ListRuns, GetRunFile. The figures come from report's own tables only. */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncc/log.h"
#include "ncc/roles.h"

#define S_READERS (NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN | NCC_ROLE_STAFF)

static void s_db_error(report_t *self, ncc_reply_t *reply, const char *what)
{
    ncc_error("db.error", "%s: %s", what, ncc_db_error(self->db));
    ncc_reply_error(reply, 503, "service_unavailable", NULL, "the database is unreachable");
}

/* The period and group of a request, or false with the 400 answered. */
static bool s_period(report_t *self, ncc_reply_t *reply, const char *from, const char *to,
                     report_period_t *ret)
{
    const char *field = NULL;
    char err[160] = "";
    int rc = report_period_parse(self->db, from, to, self->settings->max_days, ret, &field, err,
                                 sizeof err);
    if (rc == -EINVAL) {
        ncc_reply_error(reply, 400, "invalid_field", field, "%s", err);
        return false;
    }
    if (rc < 0) {
        s_db_error(self, reply, "period");
        return false;
    }
    return true;
}

static bool s_group(ncc_reply_t *reply, const char *group, int *ret)
{
    *ret = report_group_index(group);
    if (*ret < 0) {
        ncc_reply_error(reply, 400, "invalid_field", "group",
                        "group is one of hour, day, month, department, category, operator, "
                        "channel");
        return false;
    }
    return true;
}

/* ---- GET /api/v1/reports/kpi ------------------------------------------------------------------
 */

static void s_on_kpi(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    report_t *self = arg;
    const Ncc__Report__GetKpi *m = (const Ncc__Report__GetKpi *)request->message;
    report_period_t period;
    int group;
    if (!s_group(reply, m->group, &group) || !s_period(self, reply, m->from, m->to, &period))
        return;
    report_table_t table;
    report_extras_t extras;
    if (report_table_load(self->db, &period, group, self->settings->service_level_seconds, &table) <
        0) {
        s_db_error(self, reply, "kpi");
        return;
    }
    report_table_name(&table, self->masters);
    if (report_extras_load(self->db, &period, 20, &extras) < 0) {
        report_table_clear(&table);
        s_db_error(self, reply, "kpi extras");
        return;
    }
    Ncc__Report__KpiReport out = NCC__REPORT__KPI_REPORT__INIT;
    out.from = period.from;
    out.to = period.to;
    out.group = (char *)report_groups[group];
    out.has_service_level_seconds = true;
    out.service_level_seconds = self->settings->service_level_seconds;
    Ncc__Report__KpiRow *rows = calloc(table.n_rows + 1, sizeof *rows);
    Ncc__Report__KpiRow **row_ptrs = calloc(table.n_rows + 1, sizeof *row_ptrs);
    Ncc__Report__FaqUsage *faqs = calloc(extras.n_faqs + 1, sizeof *faqs);
    Ncc__Report__FaqUsage **faq_ptrs = calloc(extras.n_faqs + 1, sizeof *faq_ptrs);
    Ncc__Report__ZeroHitSearch *zeros = calloc(extras.n_zeros + 1, sizeof *zeros);
    Ncc__Report__ZeroHitSearch **zero_ptrs = calloc(extras.n_zeros + 1, sizeof *zero_ptrs);
    if (!rows || !row_ptrs || !faqs || !faq_ptrs || !zeros || !zero_ptrs) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < table.n_rows; i++) {
        report_row_to_pb(&table.rows[i], &rows[i]);
        row_ptrs[i] = &rows[i];
    }
    out.n_rows = table.n_rows;
    out.rows = row_ptrs;
    Ncc__Report__KpiRow total;
    report_row_to_pb(&table.total, &total);
    out.total = &total;
    for (size_t i = 0; i < extras.n_faqs; i++) {
        ncc__report__faq_usage__init(&faqs[i]);
        faqs[i].has_number = faqs[i].has_used = faqs[i].has_shown = true;
        faqs[i].number = extras.faqs[i].number;
        faqs[i].used = extras.faqs[i].used;
        faqs[i].shown = extras.faqs[i].shown;
        faqs[i].question = extras.faqs[i].question;
        faq_ptrs[i] = &faqs[i];
    }
    out.n_faq_ranking = extras.n_faqs;
    out.faq_ranking = faq_ptrs;
    for (size_t i = 0; i < extras.n_zeros; i++) {
        ncc__report__zero_hit_search__init(&zeros[i]);
        zeros[i].query = extras.zeros[i].query;
        zeros[i].has_count = zeros[i].has_public_count = true;
        zeros[i].count = extras.zeros[i].count;
        zeros[i].public_count = extras.zeros[i].public_count;
        zeros[i].last_at = extras.zeros[i].last_at;
        zero_ptrs[i] = &zeros[i];
    }
    out.n_zero_hits = extras.n_zeros;
    out.zero_hits = zero_ptrs;
    out.has_faq_searches = out.has_faq_zero_hit_searches = true;
    out.faq_searches = extras.searches;
    out.faq_zero_hit_searches = extras.zero_searches;
    Ncc__Report__Satisfaction sat = NCC__REPORT__SATISFACTION__INIT;
    sat.has_answers = sat.has_average = sat.has_resolved = true;
    sat.answers = extras.answers;
    sat.average = extras.average;
    sat.resolved = extras.resolved;
    sat.n_by_score = 5;
    sat.by_score = extras.by_score;
    out.satisfaction = &sat;
    ncc_reply_message(reply, &out.base);
out:
    free(rows);
    free(row_ptrs);
    free(faqs);
    free(faq_ptrs);
    free(zeros);
    free(zero_ptrs);
    report_table_clear(&table);
    report_extras_clear(&extras);
}

/* ---- GET /api/v1/reports/export.csv -----------------------------------------------------------
 */

/* The figures of a period are a few thousand rows at most (hours of 400 days
 * by hour of day are 24): the file is one page of the gateway's stream. */
static void s_on_csv(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    report_t *self = arg;
    const Ncc__Report__ExportKpiCsv *m = (const Ncc__Report__ExportKpiCsv *)request->message;
    const char *encoding = m->encoding && *m->encoding ? m->encoding : "utf-8";
    bool cp932 = strcmp(encoding, "shift_jis") == 0;
    if (!cp932 && strcmp(encoding, "utf-8") != 0) {
        ncc_reply_error(reply, 400, "invalid_field", "encoding", "encoding is utf-8 or shift_jis");
        return;
    }
    report_period_t period;
    int group;
    if (!s_group(reply, m->group, &group) || !s_period(self, reply, m->from, m->to, &period))
        return;
    Ncc__Report__KpiCsvPage page = NCC__REPORT__KPI_CSV_PAGE__INIT;
    char filename[96];
    snprintf(filename, sizeof filename, "kpi_%s_%s.csv", report_groups[group], period.name);
    page.filename = filename;
    page.encoding = (char *)encoding;
    page.cursor = "";
    page.has_done = true;
    page.done = true;
    if (m->cursor && *m->cursor) { /* the stream asks once more after the only page */
        page.has_csv = true;
        ncc_reply_message(reply, &page.base);
        return;
    }
    report_table_t table;
    if (report_table_load(self->db, &period, group, self->settings->service_level_seconds, &table) <
        0) {
        s_db_error(self, reply, "kpi csv");
        return;
    }
    report_table_name(&table, self->masters);
    char *data = NULL;
    size_t len = 0;
    int rc = report_csv(&table, cp932, &data, &len);
    if (rc < 0) {
        ncc_reply_error(reply, 500, "internal", NULL, "the CSV could not be written");
    } else {
        page.has_csv = page.has_rows = true;
        page.csv.data = (uint8_t *)data;
        page.csv.len = len;
        page.rows = (int64_t)table.n_rows + 1;
        ncc_reply_message(reply, &page.base);
    }
    free(data);
    report_table_clear(&table);
}

/* ---- GET /api/v1/reports/export.xlsx ----------------------------------------------------------
 */

static void s_on_xlsx(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    report_t *self = arg;
    const Ncc__Report__ExportKpiXlsx *m = (const Ncc__Report__ExportKpiXlsx *)request->message;
    report_period_t period;
    if (!s_period(self, reply, m->from, m->to, &period))
        return;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = report_xlsx_bytes(self->db, &period, self->settings->service_level_seconds,
                               self->masters, &data, &len);
    if (rc == -EIO) {
        s_db_error(self, reply, "kpi xlsx");
        return;
    }
    if (rc < 0) {
        ncc_reply_error(reply, 500, "internal", NULL, "the workbook could not be written");
        return;
    }
    char filename[96];
    snprintf(filename, sizeof filename, "kpi_%s.xlsx", period.name);
    Ncc__Report__ReportFile file = NCC__REPORT__REPORT_FILE__INIT;
    file.has_data = true;
    file.data.data = data;
    file.data.len = len;
    file.filename = filename;
    file.encoding = "xlsx";
    ncc_reply_message(reply, &file.base);
    free(data);
}

/* ---- runs -------------------------------------------------------------------------------------
 */

#define S_TIME(col)                                                                                \
    "to_char(" col " AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+09:00\"')"

static void s_on_runs(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    report_t *self = arg;
    const Ncc__Report__ListRuns *m = (const Ncc__Report__ListRuns *)request->message;
    int page = m->has_page && m->page > 0 ? m->page : 1;
    int per_page = m->has_per_page && m->per_page > 0 ? m->per_page : 50;
    if (per_page > 500)
        per_page = 500;
    if (page > 100000) {
        ncc_reply_error(reply, 400, "invalid_field", "page", "page is at most 100000");
        return;
    }
    char off[24], lim[16];
    snprintf(off, sizeof off, "%" PRId64, (int64_t)(page - 1) * per_page);
    snprintf(lim, sizeof lim, "%d", per_page);
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT id, kind, period, format, out, status, exit_code, error, bytes, " S_TIME(
            "started_at") ", " S_TIME("finished_at") ", sha256, count(*) OVER () FROM runs "
                                                     "ORDER BY finished_at DESC, id DESC OFFSET "
                                                     "$1::bigint LIMIT $2::int",
        2, (const char *[]){off, lim}, NULL);
    if (!res) {
        s_db_error(self, reply, "runs");
        return;
    }
    int n = PQntuples(res);
    Ncc__Report__Run *items = calloc((size_t)n + 1, sizeof *items);
    Ncc__Report__Run **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    if (!items || !ptrs) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
    } else {
        for (int r = 0; r < n; r++) {
            Ncc__Report__Run *run = &items[r];
            ncc__report__run__init(run);
            run->has_id = run->has_exit_code = run->has_bytes = true;
            run->id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
            run->kind = PQgetvalue(res, r, 1);
            run->period = PQgetvalue(res, r, 2);
            run->format = PQgetvalue(res, r, 3);
            run->out = PQgetvalue(res, r, 4);
            run->status = PQgetvalue(res, r, 5);
            run->exit_code = (int32_t)strtol(PQgetvalue(res, r, 6), NULL, 10);
            run->error = PQgetvalue(res, r, 7);
            run->bytes = strtoll(PQgetvalue(res, r, 8), NULL, 10);
            run->started_at = PQgetvalue(res, r, 9);
            run->finished_at = PQgetvalue(res, r, 10);
            run->sha256 = PQgetvalue(res, r, 11);
            ptrs[r] = run;
        }
        Ncc__Report__RunList list = NCC__REPORT__RUN_LIST__INIT;
        list.n_items = (size_t)n;
        list.items = ptrs;
        list.has_total = true;
        list.total = n > 0 ? strtoll(PQgetvalue(res, 0, 12), NULL, 10) : 0;
        ncc_reply_message(reply, &list.base);
    }
    free(items);
    free(ptrs);
    PQclear(res);
}

static void s_on_run_file(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    report_t *self = arg;
    const Ncc__Report__GetRunFile *m = (const Ncc__Report__GetRunFile *)request->message;
    if (!m->has_id || m->id <= 0) {
        ncc_reply_error(reply, 404, "not_found", "id", "no such run");
        return;
    }
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, m->id);
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT content, format, kind, period FROM runs WHERE id = "
                                "$1::bigint AND status = 'ok' AND content IS NOT NULL",
                                1, (const char *[]){id}, NULL);
    if (!res) {
        s_db_error(self, reply, "run file");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_reply_error(reply, 404, "not_found", "id", "no file of run %s", id);
        return;
    }
    size_t len = 0;
    unsigned char *data = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &len);
    char filename[96];
    snprintf(filename, sizeof filename, "report_%s_%s.%s", PQgetvalue(res, 0, 2),
             PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 1));
    bool xlsx = strcmp(PQgetvalue(res, 0, 1), "xlsx") == 0;
    PQclear(res);
    if (!data) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    Ncc__Report__ReportFile file = NCC__REPORT__REPORT_FILE__INIT;
    file.has_data = true;
    file.data.data = data;
    file.data.len = len;
    file.filename = filename;
    file.encoding = xlsx ? "xlsx" : "utf-8";
    ncc_reply_message(reply, &file.base);
    PQfreemem(data);
}

/* ---- the service ------------------------------------------------------------------------------
 */

report_t *report_new(ncc_service_t *service, const report_settings_t *settings)
{
    report_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->service = service;
    self->db = ncc_service_db(service);
    self->settings = settings;
    static const char *const kinds[] = {"departments", "categories", NULL};
    self->masters = ncc_masters_cache_new(service, kinds);
    if (!self->masters || report_facts_register(self) < 0 || report_live_register(self) < 0 ||
        ncc_service_on(service, &ncc__report__get_kpi__descriptor, S_READERS, s_on_kpi, self) < 0 ||
        ncc_service_on(service, &ncc__report__export_kpi_csv__descriptor, S_READERS, s_on_csv,
                       self) < 0 ||
        ncc_service_on(service, &ncc__report__export_kpi_xlsx__descriptor, S_READERS, s_on_xlsx,
                       self) < 0 ||
        ncc_service_on(service, &ncc__report__list_runs__descriptor, S_READERS, s_on_runs, self) <
            0 ||
        ncc_service_on(service, &ncc__report__get_run_file__descriptor, S_READERS, s_on_run_file,
                       self) < 0) {
        ncc_error("report.setup_failed", "cannot register the handlers");
        report_destroy(&self);
        return NULL;
    }
    return self;
}

void report_destroy(report_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_masters_cache_destroy(&(*self_p)->masters);
    free(*self_p);
    *self_p = NULL;
}
