/* live: the floor as it is now (R39; docs/push.md "metrics.live"): calls
 * waiting, in progress, operators talking or in after-call work, and today so
 * far. Pushed to supervisors and admins every NCC_REPORT_LIVE_MS (1 s), and
 * within NCC_REPORT_LIVE_CHECK_MS of a change; answered to
 * GET /api/v1/metrics/live. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ncc/json.h"
#include "ncc/log.h"
#include "ncc/push.h"
#include "ncc/roles.h"
#include "report.h"

typedef struct {
    char at[40];
    int64_t waiting, in_progress, talking, acw;
    report_table_t today;
} s_live_t;

/* A call still ringing after this long, or in progress after this long, is
 * one whose end the PBX never sent: it is not counted as live. */
#define S_LIVE_SQL                                                                                 \
    "SELECT count(*) FILTER (WHERE answered_at IS NULL AND at > now() - interval '2 hours'), "     \
    "count(*) FILTER (WHERE answered_at IS NOT NULL AND ended_at IS NULL AND answered_at > now() " \
    "- interval '12 hours'), "                                                                     \
    "count(DISTINCT operator_id) FILTER (WHERE answered_at IS NOT NULL AND ended_at IS NULL AND "  \
    "answered_at > now() - interval '12 hours' AND operator_id <> 0), "                            \
    "to_char(now() AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+09:00\"'), "         \
    "to_char(now() AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD') "                                      \
    "FROM contacts WHERE is_call AND ended_at IS NULL AND at > now() - interval '12 hours' AND "   \
    "at < now() + interval '1 hour'"

#define S_ACW_SQL                                                                                  \
    "SELECT count(DISTINCT operator_id) FROM contacts c WHERE at > now() - interval '13 hours' "   \
    "AND at < now() + interval '1 hour' AND is_call AND operator_id <> 0 AND "                     \
    "ended_at > now() - interval '30 minutes' AND answered_at IS NOT NULL AND wrapup_ended_at IS " \
    "NULL AND record_status <> 'closed' AND NOT EXISTS (SELECT 1 FROM contacts b WHERE "           \
    "b.operator_id = c.operator_id AND b.is_call AND b.ended_at IS NULL AND b.at > now() - "       \
    "interval '12 hours' AND b.at < now() + interval '1 hour' AND b.answered_at IS NOT NULL)"

static int s_live_load(report_t *self, s_live_t *out)
{
    memset(out, 0, sizeof *out);
    PGresult *res = ncc_db_exec(self->db, S_LIVE_SQL, 0, NULL, NULL);
    if (!res)
        return -EIO;
    out->waiting = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out->in_progress = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    out->talking = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    snprintf(out->at, sizeof out->at, "%s", PQgetvalue(res, 0, 3));
    char today[16];
    snprintf(today, sizeof today, "%s", PQgetvalue(res, 0, 4));
    PQclear(res);
    res = ncc_db_exec(self->db, S_ACW_SQL, 0, NULL, NULL);
    if (!res)
        return -EIO;
    out->acw = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    report_period_t period;
    const char *field = NULL;
    char err[160];
    if (report_period_parse(self->db, today, today, 1, &period, &field, err, sizeof err) < 0)
        return -EIO;
    /* one scan of today, grouped by channel: the total is what the push carries */
    if (report_table_load(self->db, &period, 6, self->settings->service_level_seconds,
                          &out->today) < 0)
        return -EIO;
    return 0;
}

/* The figures as the message (strings borrowed from live). */
static void s_live_pb(s_live_t *live, Ncc__Report__LiveMetrics *out,
                      Ncc__Report__OperatorStates *ops, Ncc__Report__KpiRow *today)
{
    ncc__report__live_metrics__init(out);
    ncc__report__operator_states__init(ops);
    out->at = live->at;
    out->has_waiting = out->has_in_progress = true;
    out->waiting = live->waiting;
    out->in_progress = live->in_progress;
    ops->has_talking = ops->has_after_call_work = true;
    ops->talking = live->talking;
    ops->after_call_work = live->acw;
    out->operators = ops;
    report_row_to_pb(&live->today.total, today);
    today->key = "today";
    out->today = today;
}

static void s_on_get(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    report_t *self = arg;
    (void)request;
    s_live_t live;
    if (s_live_load(self, &live) < 0) {
        report_table_clear(&live.today);
        ncc_error("db.error", "live figures: %s", ncc_db_error(self->db));
        ncc_reply_error(reply, 503, "service_unavailable", NULL, "the database is unreachable");
        return;
    }
    Ncc__Report__LiveMetrics out;
    Ncc__Report__OperatorStates ops;
    Ncc__Report__KpiRow today;
    s_live_pb(&live, &out, &ops, &today);
    ncc_reply_message(reply, &out.base);
    report_table_clear(&live.today);
}

static void s_tick(void *arg)
{
    report_t *self = arg;
    int64_t now = ncc_bus_now_us();
    bool due = now - self->live_last_us >= (int64_t)self->settings->live_ms * 1000;
    if (!due && !self->live_dirty)
        return;
    if (!self->live_dirty) {
        /* The timer's push: one copy of ncc-report a period, the one that moves the row
         * (a change, live_dirty, is pushed by the copy that applied it). */
        char period[24];
        snprintf(period, sizeof period, "%d", self->settings->live_ms * 4 / 5);
        const char *params[] = {period};
        PGresult *res = ncc_db_exec(self->db,
                                    "UPDATE live_push SET pushed_at = now() WHERE id = 1 AND "
                                    "pushed_at < now() - $1::int * interval '1 millisecond' "
                                    "RETURNING 1",
                                    1, params, NULL);
        bool mine = res && PQntuples(res) == 1;
        if (res)
            PQclear(res);
        if (!mine) {
            self->live_last_us = now; /* another copy pushed this period */
            return;
        }
    }
    self->live_dirty = false;
    s_live_t live;
    if (s_live_load(self, &live) < 0) {
        report_table_clear(&live.today);
        ncc_warn("live.failed", "the live figures were not computed: %s", ncc_db_error(self->db));
        return;
    }
    Ncc__Report__LiveMetrics out;
    Ncc__Report__OperatorStates ops;
    Ncc__Report__KpiRow today;
    s_live_pb(&live, &out, &ops, &today);
    cJSON *data = ncc_pb_to_json(&out.base);
    report_table_clear(&live.today);
    if (!data)
        return;
    cJSON_AddNumberToObject(data, "service_level_seconds", self->settings->service_level_seconds);
    self->live_last_us = now;
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    if (ncc_push_add(self->db, &ctx, 0, "supervisor,admin", "metrics.live", data) < 0)
        ncc_warn("live.push_failed", "the live figures were not pushed: %s",
                 ncc_db_error(self->db));
    else if (ncc_publisher_flush(ncc_service_publisher(self->service)) < 0)
        ncc_warn("outbox.flush_failed", "%s", ncc_db_error(self->db));
    cJSON_Delete(data);
}

int report_live_register(report_t *self)
{
    if (ncc_service_on(self->service, &ncc__report__get_live_metrics__descriptor,
                       NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN | NCC_ROLE_STAFF, s_on_get, self) < 0 ||
        ncc_service_every(self->service, self->settings->live_check_ms, s_tick, self) < 0)
        return -ENOMEM;
    return 0;
}
