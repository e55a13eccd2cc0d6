/* search: the keyword search of interaction records (R32; docs/history.md,
 * decision D-history-search in docs/decisions.md).
 *
 * Each copy of ncc-history holds an in-memory inverted index of the
 * records' inquiry, response and summary: the text is normalised once
 * (utf8proc NFKC + case folding, katakana folded to hiragana), cut into
 * words at anything that is not a letter, mark or digit, and every
 * character (unigram) and pair of neighbouring characters (bigram) of a word
 * is a key with a posting list (record ordinals, delta-coded, with the
 * fields it was found in). A query word of one character reads one
 * unigram list; a longer one intersects its bigram lists. The index also
 * holds the filterable and sortable fields of every record, so a search
 * with filters, a count and a top-k sort never touches PostgreSQL.
 *
 * PostgreSQL stays the system of record: the index is built from it by a
 * thread of its own (its own connection) at start, then follows the
 * history outbox (ncc.history.RecordChanged, RecordsPurged), whose
 * sequence numbers are gapless and in commit order (docs/bus.md), so
 * every copy sees every change of every copy within its poll period.
 *
 * Threads: history_search_new starts the indexer thread; history_search_run
 * and history_search_status are called from the service loop; the index is
 * guarded by a read-write lock (a search reads, a batch of changes writes). */
#ifndef HISTORY_SEARCH_H
#define HISTORY_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct history_search history_search_t;

/* Starts the indexer on the database `conninfo` (copied; schema "history"),
 * polling the outbox every poll_ms. NULL on allocation failure or when the
 * thread cannot start. The first build runs in the background: until it is
 * done history_search_run answers -EAGAIN. */
history_search_t *history_search_new(const char *conninfo, int poll_ms);

/* Stops the thread and frees the index. Accepts NULL; nulls *self_p. */
void history_search_destroy(history_search_t **self_p);

/* Asks the indexer to look at the outbox now (after a commit that added
 * events). Any thread. */
void history_search_wake(history_search_t *self);

/* Waits (at most timeout_ms) until the index includes the outbox up to
 * sequence number `cursor` (the outbox_state.last_seq of a change this
 * caller has seen committed): a list answered from the index then shows every
 * change flushed before it. True when it does (or did already). Loop thread. */
bool history_search_wait(history_search_t *self, int64_t cursor, int timeout_ms);

/* What a list or an export asks of the index. Strings borrowed. */
typedef enum {
    HISTORY_SORT_RELEVANCE,
    HISTORY_SORT_STARTED_AT,
    HISTORY_SORT_ID,
    HISTORY_SORT_STATUS,
    HISTORY_SORT_CHANNEL,
    HISTORY_SORT_OPERATOR_ID,
    HISTORY_SORT_DEPARTMENT_ID,
    HISTORY_SORT_CATEGORY,
    HISTORY_SORT_RECEPTION_TYPE,
    HISTORY_SORT_HANDLING_TYPE,
    HISTORY_SORT_FISCAL_YEAR,
    HISTORY_SORT_NONE, /* not held by the index: every match is returned (ids), unsorted */
} history_sort_t;

typedef struct {
    const char *q;         /* the words; NULL or none: every record */
    bool has_from, has_to; /* period on started_at (Unix microseconds, both inclusive) */
    int64_t from_us, to_us;
    unsigned status_mask;  /* bits of history_status_bit(); 0: any */
    unsigned channel_mask; /* bits of history_channel_bit(); 0: any */
    const char *department_id, *category, *reception_type, *handling_type; /* NULL: any */
    bool has_operator;
    int64_t operator_id;
    int fiscal_year;         /* 0: any */
    const int64_t *only_ids; /* when not NULL: only these records (n_only_ids) */
    size_t n_only_ids;
    history_sort_t sort;
    bool descending;
    size_t offset, limit; /* the page (ignored with HISTORY_SORT_NONE) */
    bool has_after;       /* export: only records after (after_started_s, after_id) in
                             ascending started_at, id order (sort must be STARTED_AT asc) */
    int64_t after_started_us, after_id;
} history_query_t;

/* Status and channel bits for the masks (0 for an unknown name). */
unsigned history_status_bit(const char *status);
unsigned history_channel_bit(const char *channel);

/* Runs `query`: the record ids of the page (or every match with
 * HISTORY_SORT_NONE) into *ret_ids (caller frees; may be NULL when none),
 * their number in *ret_n and the number of matches in *ret_total. 0;
 * -EAGAIN while the index is not built yet; -ENODATA when q holds no
 * letter or digit (the caller treats it as no q); -ENOMEM. */
int history_search_run(history_search_t *self, const history_query_t *query, int64_t **ret_ids,
                       size_t *ret_n, int64_t *ret_total);

/* For /metrics and the bench. */
typedef struct {
    bool ready;       /* the first build is done */
    int64_t records;  /* live records indexed */
    int64_t dead;     /* ordinals of changed or deleted records not yet rebuilt away */
    int64_t keys;     /* distinct unigrams and bigrams */
    int64_t postings; /* entries in all lists */
    int64_t bytes;    /* memory of lists, keys and record fields */
    int64_t cursor;   /* the outbox sequence number applied */
    int64_t build_ms; /* the last full build */
    int64_t builds;   /* full builds so far */
} history_search_status_t;
void history_search_status(history_search_t *self, history_search_status_t *ret_status);

/* Normalises `text` as the index does (NFKC, case folding, katakana to
 * hiragana) into UTF-8 (caller frees), words separated by one space.
 * NULL on invalid UTF-8 or allocation failure. (Tests, the database search
 * used before the index is ready.) */
char *history_search_normalise(const char *text);

#endif
