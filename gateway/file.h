/* file: an answer that is a file made of parts on the bus (a call's
 * recording): GW_ROUTE_FILE routes (routes.h). The first part's reply names
 * the content type, the whole size and the parts; the gateway writes the
 * headers, then every part as it comes, never holding more than one part. */
#ifndef GW_FILE_H
#define GW_FILE_H

#include "api.h"
#include "http.h"

/* Serves the route's file for the (signed-in, allowed) request: asks part 0
 * of request type route->request_type with the path's params, then the
 * others. An audited route is audited once, before the first byte (a refusal
 * is audited with its status). Returns the HTTP status. */
int gw_file_serve(gw_api_t *api, gw_request_t *req);

#endif
