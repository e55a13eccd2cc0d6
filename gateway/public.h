/* public: the residents' FAQ pages /faq, /faq/{number} and the vote form
 * (R50, docs/faq.md), outside /api/v1 and outside the staff allow-list. */
#ifndef GW_PUBLIC_H
#define GW_PUBLIC_H

#include <civetweb.h>

#include "api.h"

/* civetweb request handler for /faq and below; cbdata is the gw_api_t. */
int gw_public_faq(struct mg_connection *conn, void *cbdata);

#endif
