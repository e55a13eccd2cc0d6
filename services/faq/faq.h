/* faq: the service object of ncc-faq and what its handler files share.
 * faq.c: the object, the search index's life, FAQ CRUD, versions,
 * approval; faq_csv.c: CSV import and export; faq_extra.c: synonyms,
 * suggestions, the zero-hit log and the residents' requests; faq_review.c:
 * department reviewers (who may approve). docs/faq.md. */
#ifndef FAQ_H
#define FAQ_H

#include <stdbool.h>
#include <stdint.h>

#include "faq.pb-c.h"
#include "faq_search.h"
#include "ncc/masters_cache.h"
#include "ncc/service.h"

/* Settings (main.c's table; docs/configuration.md). */
typedef struct {
    char *mecab_dicdir;   /* NCC_FAQ_MECAB_DICDIR */
    int votes_per_minute; /* NCC_FAQ_VOTES_PER_MINUTE: per address and copy */
    int index_check_ms;   /* NCC_FAQ_INDEX_CHECK_MS */
    int click_days;       /* NCC_FAQ_CLICK_DAYS: older clicks are not loaded */
} faq_settings_t;

typedef struct {
    ncc_service_t *service; /* borrowed */
    ncc_db_t *db;           /* borrowed from the service */
    const faq_settings_t *settings;
    ncc_masters_cache_t *masters; /* departments, faq-classes */
    faq_analyzer_t *analyzer;
    faq_index_t *index;     /* NULL until the first build */
    int64_t index_revision; /* index_state.revision the index was built from */
    zhashx_t *logins;       /* user id text -> login (char *) */
    zhashx_t *rate;         /* address -> s_rate_t (faq_extra.c) */
    zhashx_t *views;        /* FAQ number text -> views not yet stored (int64_t *; faq_extra.c) */
    zhashx_t *click_ids;    /* ids (text) of the recent clicks the index holds (faq_clicks.c) */
} faq_t;

/* Limits of the fields (characters). */
#define FAQ_QUESTION_MAX 500
#define FAQ_ANSWER_MAX   20000
#define FAQ_KEYWORDS_MAX 1000
#define FAQ_CATEGORY_MAX 100
#define FAQ_QUERY_MAX    1000
#define FAQ_TEXT_MAX     10000 /* suggestions: conversation text */

/* Columns of an FAQ row, in the order faq_from_row reads them. */
#define FAQ_RFC3339(col)                                                                           \
    "to_char(" col " AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+09:00\"')"
#define FAQ_COLUMNS                                                                                \
    "id, number, question, answer, coalesce(department_id, 0), department_code, category, "        \
    "visibility, keywords, status, version, views, helpful, not_helpful, " FAQ_RFC3339(            \
        "updated_at") ", approved_by, " FAQ_RFC3339("approved_at") ", " FAQ_RFC3339("created_at") ", updated_by"

faq_t *faq_new(ncc_service_t *service, const faq_settings_t *settings);
void faq_destroy(faq_t **self_p);

/* Fills *out from row `row` of FAQ_COLUMNS (strings borrowed from res). */
void faq_from_row(faq_t *self, const PGresult *res, int row, Ncc__Faq__Faq *out);

/* Logs the database error, rolls back, answers 503 or 500. */
void faq_reply_db_error(faq_t *self, ncc_reply_t *reply, const char *what);

/* NULL when `text` is acceptable (at most max_chars characters, no control
 * characters; with multiline also TAB, LF, CR), else why (a sentence). */
const char *faq_text_problem(const char *text, size_t max_chars, bool multiline);

/* The login of the request's actor (a user id asked of ncc-directory once,
 * then kept), into buf; "" for an anonymous request. */
const char *faq_actor_login(faq_t *self, const ncc_request_t *request, char *buf, size_t len);

/* Moves the number sequence past every number in use (after an insert,
 * inside its transaction), so a deleted FAQ's number is never given again. */
int faq_numbers_follow(faq_t *self);

/* Marks the search index stale for every copy (inside a transaction). 0 or -EIO. */
int faq_touch_index(faq_t *self);

/* Rebuilds the search index now (on the loop). 0 or a negative errno. */
int faq_index_rebuild(faq_t *self);

/* Resolves a department code through the masters cache: 0 and *ret_id (0
 * when the cache does not hold departments yet), -ENOENT when the cache
 * holds departments but not this one. */
int faq_department_id(faq_t *self, const char *code, int64_t *ret_id);

/* Registers the handlers of faq_csv.c, faq_extra.c and faq_clicks.c. */
void faq_csv_register(faq_t *self);
void faq_extra_register(faq_t *self);
void faq_clicks_register(faq_t *self);
/* Frees what faq_clicks.c keeps. */
void faq_clicks_stop(faq_t *self);

/* Learning from operators (faq_clicks.c): adds the stored clicks (not older
 * than NCC_FAQ_CLICK_DAYS, counted per FAQ and words) to `index`, a new
 * index not finished yet, and remembers the recent ones so that
 * faq_clicks_follow does not count them twice. 0, -EIO or -ENOMEM. */
int faq_clicks_load(faq_t *self, faq_index_t *index);
/* Adds to the live index the clicks stored since (by any copy) that it does
 * not hold yet. Run by the index check when no rebuild is needed. */
void faq_clicks_follow(faq_t *self);
/* Stores the views counted since the last second's flush and frees their table. */
void faq_views_stop(faq_t *self);

/* The page and per_page of a list request (defaults 1 and 50, per_page at most 500). */
void faq_paging(bool has_page, int32_t page, bool has_per_page, int32_t per_page,
                int64_t *ret_offset, int64_t *ret_limit);

/* Ranked search shared by the list, suggestions and the public list:
 * *ret_hits (caller frees) best first. 0 or a negative errno. */
int faq_search(faq_t *self, const faq_query_t *query, faq_hit_t **ret_hits, size_t *ret_count);

/* Answers an FaqList of the rows with these ids in this order (hits[offset ..
 * offset+limit)), total = count; public_view leaves out internal fields. */
void faq_reply_hits(faq_t *self, ncc_reply_t *reply, const faq_hit_t *hits, size_t count,
                    int64_t offset, int64_t limit, bool public_view);

/* Logs a search that found nothing. */
void faq_log_zero_hit(faq_t *self, const char *q, bool public_request);

/* Department reviewers (faq_review.c, docs/faq.md "States"). Registers
 * ListFaqReviewers, PutFaqReviewers and DeleteFaqReviewers. */
void faq_review_register(faq_t *self);
/* May the request's actor approve FAQ `id` (locked in the open transaction)?
 * 0 when so; otherwise answers (403 naming the department, or the database
 * error), rolls back and returns -EPERM (-EIO, -ENOENT). */
int faq_review_check_approver(faq_t *self, const ncc_request_t *request, ncc_reply_t *reply,
                              int64_t id);
/* True when the actor is staff reviewing the department of FAQ `id` and the
 * FAQ is a draft or in review: they may read it. */
bool faq_review_may_read(faq_t *self, const ncc_request_t *request, int64_t id);
/* A staff actor's list of drafts or FAQs in review (m->status, no words):
 * those of the departments they review (none when they review none).
 * True when it answered; false when the request is not such a list. */
bool faq_review_list(faq_t *self, const ncc_request_t *request, const Ncc__Faq__ListFaqs *m,
                     int64_t department_id, int64_t offset, int64_t limit, ncc_reply_t *reply);

#endif
