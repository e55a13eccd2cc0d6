/* files: the figures as CSV (the common writer, ncc/csv.h: UTF-8 with a BOM
 * or CP932) and as an XLSX workbook (libxlsxwriter): Japanese headings,
 * number formats, a summary sheet with a chart, one sheet per grouping, the
 * FAQ ranking and the zero-hit searches (docs/kpi.md "Files"). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xlsxwriter.h>

#include "ncc/csv.h"
#include "report.h"

/* The columns of a figures table after the key and the name. */
static const char *const s_headings[] = {
    "入電数",
    "うち電話",
    "応答数",
    "放棄呼数",
    "放棄率(%)",
    "SL内応答数",
    "サービスレベル(%)",
    "平均応答時間ASA(秒)",
    "通話時間合計(秒)",
    "平均通話時間(秒)",
    "平均後処理時間(秒)",
    "平均処理時間AHT(秒)",
    "転送数",
    "ワンストップ数",
    "ワンストップ率(%)",
    "アンケート回答数",
    "平均満足度",
    NULL,
};
#define S_COLUMNS 17

/* ---- CSV ------------------------------------------------------------------------------------- */

static int s_csv_row(ncc_csv_writer_t *w, const report_row_t *row)
{
    char v[S_COLUMNS][32];
    snprintf(v[0], 32, "%" PRId64, row->offered);
    snprintf(v[1], 32, "%" PRId64, row->calls_offered);
    snprintf(v[2], 32, "%" PRId64, row->answered);
    snprintf(v[3], 32, "%" PRId64, row->abandoned);
    snprintf(v[4], 32, "%.1f", row->abandon_rate * 100);
    snprintf(v[5], 32, "%" PRId64, row->within);
    snprintf(v[6], 32, "%.1f", row->service_level * 100);
    snprintf(v[7], 32, "%.1f", row->asa);
    snprintf(v[8], 32, "%" PRId64, row->talk_total);
    snprintf(v[9], 32, "%.1f", row->talk);
    snprintf(v[10], 32, "%.1f", row->acw);
    snprintf(v[11], 32, "%.1f", row->aht);
    snprintf(v[12], 32, "%" PRId64, row->transferred);
    snprintf(v[13], 32, "%" PRId64, row->one_stop);
    snprintf(v[14], 32, "%.1f", row->one_stop_rate * 100);
    snprintf(v[15], 32, "%" PRId64, row->surveys);
    snprintf(v[16], 32, "%.2f", row->satisfaction);
    const char *fields[S_COLUMNS + 2] = {row->key, row->label};
    for (int i = 0; i < S_COLUMNS; i++)
        fields[i + 2] = v[i];
    return ncc_csv_writer_row(w, fields, S_COLUMNS + 2);
}

int report_csv(const report_table_t *table, bool cp932, char **ret_data, size_t *ret_len)
{
    ncc_csv_writer_t *w = ncc_csv_writer_new(
        cp932 ? NCC_CSV_WRITE_CP932 | NCC_CSV_WRITE_CP932_REPLACE : NCC_CSV_WRITE_BOM, NULL, NULL);
    if (!w)
        return -ENOMEM;
    const char *head[S_COLUMNS + 2] = {report_group_key_ja[table->group], "名称"};
    for (int i = 0; i < S_COLUMNS; i++)
        head[i + 2] = s_headings[i];
    int rc = ncc_csv_writer_row(w, head, S_COLUMNS + 2);
    for (size_t i = 0; rc == 0 && i < table->n_rows; i++)
        rc = s_csv_row(w, &table->rows[i]);
    if (rc == 0)
        rc = s_csv_row(w, &table->total);
    if (rc == 0) {
        *ret_data = ncc_csv_writer_take(w, ret_len);
        rc = *ret_data ? 0 : -ENOMEM;
    }
    ncc_csv_writer_destroy(&w);
    return rc;
}

/* ---- XLSX ------------------------------------------------------------------------------------ */

typedef struct {
    lxw_format *head, *count, *rate, *seconds, *duration, *score, *title, *text, *bold_count;
} s_formats_t;

/* One row of figures at `r` (the key and name first). */
static void s_xlsx_row(lxw_worksheet *ws, lxw_row_t r, const report_row_t *row,
                       const s_formats_t *f)
{
    worksheet_write_string(ws, r, 0, row->key, f->text);
    worksheet_write_string(ws, r, 1, row->label, f->text);
    lxw_col_t c = 2;
    worksheet_write_number(ws, r, c++, (double)row->offered, f->count);
    worksheet_write_number(ws, r, c++, (double)row->calls_offered, f->count);
    worksheet_write_number(ws, r, c++, (double)row->answered, f->count);
    worksheet_write_number(ws, r, c++, (double)row->abandoned, f->count);
    worksheet_write_number(ws, r, c++, row->abandon_rate, f->rate);
    worksheet_write_number(ws, r, c++, (double)row->within, f->count);
    worksheet_write_number(ws, r, c++, row->service_level, f->rate);
    worksheet_write_number(ws, r, c++, row->asa, f->seconds);
    worksheet_write_number(ws, r, c++, (double)row->talk_total / 86400.0, f->duration);
    worksheet_write_number(ws, r, c++, row->talk, f->seconds);
    worksheet_write_number(ws, r, c++, row->acw, f->seconds);
    worksheet_write_number(ws, r, c++, row->aht, f->seconds);
    worksheet_write_number(ws, r, c++, (double)row->transferred, f->count);
    worksheet_write_number(ws, r, c++, (double)row->one_stop, f->count);
    worksheet_write_number(ws, r, c++, row->one_stop_rate, f->rate);
    worksheet_write_number(ws, r, c++, (double)row->surveys, f->count);
    worksheet_write_number(ws, r, c++, row->satisfaction, f->score);
}

/* A grouping's sheet: headings, rows, the total. */
static void s_xlsx_table(lxw_worksheet *ws, const report_table_t *t, const s_formats_t *f)
{
    worksheet_write_string(ws, 0, 0, report_group_key_ja[t->group], f->head);
    worksheet_write_string(ws, 0, 1, "名称", f->head);
    for (int i = 0; i < S_COLUMNS; i++) {
        const char *h = s_headings[i];
        /* in the workbook rates are percentages and the talk total a duration */
        if (strcmp(h, "放棄率(%)") == 0)
            h = "放棄率";
        else if (strcmp(h, "サービスレベル(%)") == 0)
            h = "サービスレベル";
        else if (strcmp(h, "ワンストップ率(%)") == 0)
            h = "ワンストップ率";
        else if (strcmp(h, "通話時間合計(秒)") == 0)
            h = "通話時間合計";
        worksheet_write_string(ws, 0, (lxw_col_t)(i + 2), h, f->head);
    }
    worksheet_set_column(ws, 0, 1, 14, NULL);
    worksheet_set_column(ws, 2, S_COLUMNS + 1, 12, NULL);
    worksheet_freeze_panes(ws, 1, 2);
    lxw_row_t r = 1;
    for (size_t i = 0; i < t->n_rows; i++)
        s_xlsx_row(ws, r++, &t->rows[i], f);
    s_xlsx_row(ws, r, &t->total, f);
}

int report_xlsx(ncc_db_t *db, const report_period_t *period, int sl_seconds,
                const ncc_masters_cache_t *masters, const char *path)
{
    report_table_t tables[7];
    size_t n_tables = 0;
    report_extras_t extras = {0};
    int rc = 0;
    if (report_tables_load_all(db, period, sl_seconds, tables) < 0) {
        rc = -EIO;
        goto out;
    }
    n_tables = 7;
    for (size_t i = 0; i < n_tables; i++)
        report_table_name(&tables[i], masters);
    if (report_extras_load(db, period, 100, &extras) < 0) {
        rc = -EIO;
        goto out;
    }
    lxw_workbook_options options = {.constant_memory = LXW_FALSE, .tmpdir = NULL};
    lxw_workbook *wb = workbook_new_opt(path, &options);
    if (!wb) {
        rc = -EACCES;
        goto out;
    }
    workbook_set_properties(
        wb, &(lxw_doc_properties){.title = "ncc 応対実績レポート", .author = "ncc-report"});
    s_formats_t f;
    f.head = workbook_add_format(wb);
    format_set_bold(f.head);
    format_set_bg_color(f.head, 0xDDEBF7);
    format_set_border(f.head, LXW_BORDER_THIN);
    format_set_text_wrap(f.head);
    f.title = workbook_add_format(wb);
    format_set_bold(f.title);
    format_set_font_size(f.title, 14);
    f.text = workbook_add_format(wb);
    format_set_num_format(f.text, "@");
    f.count = workbook_add_format(wb);
    format_set_num_format(f.count, "#,##0");
    f.bold_count = workbook_add_format(wb);
    format_set_num_format(f.bold_count, "#,##0");
    format_set_bold(f.bold_count);
    f.rate = workbook_add_format(wb);
    format_set_num_format(f.rate, "0.0%");
    f.seconds = workbook_add_format(wb);
    format_set_num_format(f.seconds, "#,##0.0");
    f.duration = workbook_add_format(wb);
    format_set_num_format(f.duration, "[h]:mm:ss");
    f.score = workbook_add_format(wb);
    format_set_num_format(f.score, "0.00");

    /* the summary first */
    lxw_worksheet *summary = workbook_add_worksheet(wb, "サマリー");
    const report_row_t *t = &tables[0].total;
    worksheet_write_string(summary, 0, 0, "応対実績レポート", f.title);
    worksheet_write_string(summary, 1, 0, "期間", f.head);
    worksheet_write_string(summary, 1, 1, period->name, NULL);
    worksheet_write_string(summary, 2, 0, "サービスレベル基準(秒)", f.head);
    worksheet_write_number(summary, 2, 1, sl_seconds, f.count);
    struct {
        const char *name;
        double value;
        lxw_format *format;
    } items[] = {
        {"入電数", (double)t->offered, f.count},
        {"うち電話", (double)t->calls_offered, f.count},
        {"応答数", (double)t->answered, f.count},
        {"放棄呼数", (double)t->abandoned, f.count},
        {"放棄率", t->abandon_rate, f.rate},
        {"サービスレベル", t->service_level, f.rate},
        {"平均応答時間ASA(秒)", t->asa, f.seconds},
        {"通話時間合計", (double)t->talk_total / 86400.0, f.duration},
        {"平均通話時間(秒)", t->talk, f.seconds},
        {"平均後処理時間(秒)", t->acw, f.seconds},
        {"平均処理時間AHT(秒)", t->aht, f.seconds},
        {"転送数", (double)t->transferred, f.count},
        {"ワンストップ率", t->one_stop_rate, f.rate},
        {"アンケート回答数", (double)extras.answers, f.count},
        {"平均満足度(1-5)", extras.average, f.score},
        {"FAQ検索数", (double)extras.searches, f.count},
        {"FAQゼロ件検索数", (double)extras.zero_searches, f.count},
    };
    lxw_row_t r = 4;
    worksheet_write_string(summary, r, 0, "指標", f.head);
    worksheet_write_string(summary, r++, 1, "値", f.head);
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++, r++) {
        worksheet_write_string(summary, r, 0, items[i].name, NULL);
        worksheet_write_number(summary, r, 1, items[i].value, items[i].format);
    }
    worksheet_set_column(summary, 0, 0, 26, NULL);
    worksheet_set_column(summary, 1, 1, 16, NULL);

    /* one sheet per grouping */
    for (size_t i = 0; i < n_tables; i++) {
        lxw_worksheet *ws = workbook_add_worksheet(wb, report_group_ja[i]);
        s_xlsx_table(ws, &tables[i], &f);
    }
    /* the chart: by day (offered, answered, abandoned) from the day sheet */
    const report_table_t *days = &tables[1];
    if (days->n_rows > 0) {
        lxw_chart *chart = workbook_add_chart(wb, LXW_CHART_COLUMN);
        const char *sheet = report_group_ja[1];
        lxw_row_t last = (lxw_row_t)days->n_rows;
        static const struct {
            lxw_col_t col;
            const char *name;
        } series[] = {{2, "入電数"}, {4, "応答数"}, {5, "放棄呼数"}};
        for (size_t s = 0; s < 3; s++) {
            lxw_chart_series *cs = chart_add_series(chart, NULL, NULL);
            chart_series_set_categories(cs, sheet, 1, 0, last, 0);
            chart_series_set_values(cs, sheet, 1, series[s].col, last, series[s].col);
            chart_series_set_name(cs, series[s].name);
        }
        chart_title_set_name(chart, "日別の入電・応答・放棄");
        chart_axis_set_name(chart->y_axis, "件数");
        worksheet_insert_chart(summary, 4, 3, chart);
    }
    /* FAQ usage and zero-hit searches */
    lxw_worksheet *faq = workbook_add_worksheet(wb, "FAQ利用ランキング");
    const char *faq_head[] = {"順位", "FAQ番号", "質問", "応対履歴での利用件数", "検索で表示"};
    for (lxw_col_t c = 0; c < 5; c++)
        worksheet_write_string(faq, 0, c, faq_head[c], f.head);
    for (size_t i = 0; i < extras.n_faqs; i++) {
        lxw_row_t row = (lxw_row_t)i + 1;
        worksheet_write_number(faq, row, 0, (double)(i + 1), f.count);
        worksheet_write_number(faq, row, 1, (double)extras.faqs[i].number, NULL);
        worksheet_write_string(faq, row, 2, extras.faqs[i].question, NULL);
        worksheet_write_number(faq, row, 3, (double)extras.faqs[i].used, f.count);
        worksheet_write_number(faq, row, 4, (double)extras.faqs[i].shown, f.count);
    }
    worksheet_set_column(faq, 2, 2, 50, NULL);
    worksheet_set_column(faq, 3, 4, 16, NULL);
    lxw_worksheet *zero = workbook_add_worksheet(wb, "ゼロ件検索");
    const char *zero_head[] = {"検索語", "回数", "うち住民", "最終検索日時"};
    for (lxw_col_t c = 0; c < 4; c++)
        worksheet_write_string(zero, 0, c, zero_head[c], f.head);
    for (size_t i = 0; i < extras.n_zeros; i++) {
        lxw_row_t row = (lxw_row_t)i + 1;
        worksheet_write_string(zero, row, 0, extras.zeros[i].query, f.text);
        worksheet_write_number(zero, row, 1, (double)extras.zeros[i].count, f.count);
        worksheet_write_number(zero, row, 2, (double)extras.zeros[i].public_count, f.count);
        worksheet_write_string(zero, row, 3, extras.zeros[i].last_at, NULL);
    }
    worksheet_set_column(zero, 0, 0, 30, NULL);
    worksheet_set_column(zero, 3, 3, 26, NULL);
    lxw_worksheet *sat = workbook_add_worksheet(wb, "満足度");
    worksheet_write_string(sat, 0, 0, "満足度", f.head);
    worksheet_write_string(sat, 0, 1, "回答数", f.head);
    for (int i = 0; i < 5; i++) {
        worksheet_write_number(sat, (lxw_row_t)i + 1, 0, i + 1, NULL);
        worksheet_write_number(sat, (lxw_row_t)i + 1, 1, (double)extras.by_score[i], f.count);
    }
    worksheet_write_string(sat, 6, 0, "合計", NULL);
    worksheet_write_number(sat, 6, 1, (double)extras.answers, f.bold_count);
    worksheet_write_string(sat, 7, 0, "平均", NULL);
    worksheet_write_number(sat, 7, 1, extras.average, f.score);
    worksheet_write_string(sat, 8, 0, "解決した", NULL);
    worksheet_write_number(sat, 8, 1, (double)extras.resolved, f.count);
    if (workbook_close(wb) != LXW_NO_ERROR)
        rc = -EACCES;
out:
    for (size_t i = 0; i < n_tables; i++)
        report_table_clear(&tables[i]);
    report_extras_clear(&extras);
    return rc;
}

int report_xlsx_bytes(ncc_db_t *db, const report_period_t *period, int sl_seconds,
                      const ncc_masters_cache_t *masters, uint8_t **ret_data, size_t *ret_len)
{
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/ncc-report-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -EACCES;
    close(fd);
    int rc = report_xlsx(db, period, sl_seconds, masters, path);
    if (rc == 0) {
        rc = -EACCES;
        FILE *file = fopen(path, "rb");
        struct stat st;
        if (file && fstat(fileno(file), &st) == 0 && st.st_size > 0) {
            uint8_t *data = malloc((size_t)st.st_size);
            if (data && fread(data, 1, (size_t)st.st_size, file) == (size_t)st.st_size) {
                *ret_data = data;
                *ret_len = (size_t)st.st_size;
                rc = 0;
            } else {
                free(data);
            }
        }
        if (file)
            fclose(file);
    }
    unlink(path);
    return rc;
}
