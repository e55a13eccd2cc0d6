/* page: small HTML pages built in memory (page.h). */
#include "page.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_page_add(gw_page_t *p, const char *text, size_t len)
{
    if (p->failed)
        return;
    if (p->len + len + 1 > p->cap) {
        size_t cap = (p->cap + len + 1) * 2;
        char *grown = realloc(p->data, cap);
        if (!grown) {
            p->failed = true;
            return;
        }
        p->data = grown;
        p->cap = cap;
    }
    memcpy(p->data + p->len, text, len);
    p->len += len;
    p->data[p->len] = '\0';
}

void gw_page_puts(gw_page_t *p, const char *text)
{
    gw_page_add(p, text, strlen(text));
}

void gw_page_addf(gw_page_t *p, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        gw_page_add(p, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

void gw_page_text(gw_page_t *p, const char *text, gw_page_newlines_t newlines)
{
    for (const char *c = text ? text : ""; *c; c++) {
        switch (*c) {
        case '&':
            gw_page_add(p, "&amp;", 5);
            break;
        case '<':
            gw_page_add(p, "&lt;", 4);
            break;
        case '>':
            gw_page_add(p, "&gt;", 4);
            break;
        case '"':
            gw_page_add(p, "&quot;", 6);
            break;
        case '\'':
            gw_page_add(p, "&#39;", 5);
            break;
        case '\r':
            if (newlines == GW_PAGE_NL_KEEP)
                gw_page_add(p, c, 1);
            break;
        case '\n':
            if (newlines == GW_PAGE_NL_BR)
                gw_page_add(p, "<br>\n", 5);
            else if (newlines == GW_PAGE_NL_SPACE)
                gw_page_add(p, " ", 1);
            else
                gw_page_add(p, c, 1);
            break;
        default:
            gw_page_add(p, c, 1);
        }
    }
}

int gw_page_send(struct mg_connection *conn, int status, gw_page_t *p, const char *extra_name,
                 const char *extra_value)
{
    gw_page_puts(p, "</main>\n</body>\n</html>\n");
    if (p->failed) {
        free(p->data);
        return gw_http_send_error(conn, 500, "internal", NULL, "out of memory");
    }
    int rc = gw_http_send(conn, status, "text/html; charset=utf-8", p->data, p->len, extra_name,
                          extra_value);
    free(p->data);
    return rc;
}
