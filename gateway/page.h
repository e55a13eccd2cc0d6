/* page: small HTML pages built in memory (the public FAQ pages, the survey):
 * text appended, escaped on the way, sent with the gateway's headers. */
#ifndef GW_PAGE_H
#define GW_PAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

typedef struct {
    char *data;
    size_t len, cap;
    bool failed; /* out of memory: the page is answered with 500 */
} gw_page_t;

/* What a line break in escaped text becomes. */
typedef enum {
    GW_PAGE_NL_KEEP,  /* as it is */
    GW_PAGE_NL_SPACE, /* a space (CR dropped) */
    GW_PAGE_NL_BR,    /* <br> (CR dropped) */
} gw_page_newlines_t;

void gw_page_add(gw_page_t *p, const char *text, size_t len);
void gw_page_puts(gw_page_t *p, const char *text);
/* Formatted (at most 511 bytes). */
void gw_page_addf(gw_page_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Text as HTML: & < > " ' escaped. */
void gw_page_text(gw_page_t *p, const char *text, gw_page_newlines_t newlines);

/* Closes </main></body></html>, sends the page as text/html with `status`
 * (and one extra header, name NULL for none) and frees it; 500 when it ran
 * out of memory. Returns the status sent. */
int gw_page_send(struct mg_connection *conn, int status, gw_page_t *p, const char *extra_name,
                 const char *extra_value);

#endif
