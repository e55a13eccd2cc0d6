/* export: streamed CSV answers (routes with GW_ROUTE_CSV_STREAM, e.g.
 * GET /api/v1/records/export.csv; docs/history.md "CSV export"). The file
 * is asked of the service page by page over the bus (the request's `cursor`
 * string field; the reply's `csv` bytes, `cursor`, `done`, `encoding`,
 * `filename` and, when set, `export_id`) and written to the client as HTTP
 * chunks as the pages come, so neither the gateway nor the service ever
 * holds the whole file. An audited route is audited once the first page is
 * in hand, before the first byte is sent (no audit, no file: 503); a failure
 * after that cuts the connection without the last chunk, so the client sees
 * an incomplete download rather than a short file. */
#ifndef GW_EXPORT_H
#define GW_EXPORT_H

#include "api.h"
#include "http.h"

/* Answers the request (route req->match->route, signed-in user) and returns
 * the HTTP status (200 once the file has started). */
int gw_export_stream(gw_api_t *api, gw_request_t *req);

#endif
