/* faq_report: what ncc-faq tells ncc-report about searches (docs/kpi.md
 * "FAQ usage"): one ncc.faq.FaqSearched event per search answered. */
#ifndef FAQ_REPORT_H
#define FAQ_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "faq.h"

/* Adds FaqSearched for the search `q` that found `count` hits (`hits` best
 * first, borrowed) to the outbox (published by the frame's periodic flush).
 * Never fails the search: a problem is logged and the event skipped. */
void faq_report_searched(faq_t *self, const char *q, const faq_hit_t *hits, size_t count,
                         bool public_request);

#endif
