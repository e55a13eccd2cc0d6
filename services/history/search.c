/* search: the in-memory keyword index of interaction records and the thread
 * that keeps it (search.h; docs/history.md "Search"). */
#include "search.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <utf8proc.h>

#include "history.pb-c.h"
#include "ncc/db.h"
#include "ncc/log.h"

#define S_FIELD_INQUIRY  1u
#define S_FIELD_RESPONSE 2u
#define S_FIELD_SUMMARY  4u
#define S_ALIVE          1u
#define S_FETCH_ROWS     5000 /* rows per FETCH of a full build (the FETCH text says it too) */
#define S_MAX_HEAP       (100000 + 5000) /* deepest page: offset + limit */
#define S_REBUILD_DEAD   100000          /* rebuild when this many ordinals are dead ... */
#define S_PRUNE_CHECK_US                                                                           \
    (10 * 1000000) /* how often to check that the outbox still holds the cursor */

/* ---- normalisation --------------------------------------------------------------- */

typedef struct {
    uint32_t *cp; /* code points; 0 separates words */
    size_t n, cap;
} s_cps_t;

static int s_cps_push(s_cps_t *c, uint32_t v)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        uint32_t *grown = realloc(c->cp, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        c->cp = grown;
        c->cap = cap;
    }
    c->cp[c->n++] = v;
    return 0;
}

/* Letters, marks and digits make words; everything else separates them. */
static bool s_is_word(utf8proc_int32_t cp)
{
    utf8proc_category_t category = utf8proc_category(cp);
    return category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_NO;
}

/* Katakana to hiragana: the two blocks are laid out in parallel (U+30A1 ァ ..
 * U+30F6 ヶ and the iteration marks ヽ ヾ are U+3041 .. U+3096, ゝ ゞ plus
 * 0x60). Katakana without a hiragana twin (ヷ .. ヺ, ー) stay. */
static uint32_t s_fold_kana(uint32_t cp)
{
    if ((cp >= 0x30A1 && cp <= 0x30F6) || cp == 0x30FD || cp == 0x30FE)
        return cp - 0x60;
    return cp;
}

/* `len` bytes of UTF-8 to normalised code points in *out (emptied first):
 * NFKC with case folding and default-ignorable characters removed (utf8proc),
 * katakana folded, words separated by a single 0. 0, -EILSEQ, -ENOMEM. */
/* The fast path of the normalisation: text made only of the characters
 * below, most records' text, is normalised here without a library call, to
 * exactly what utf8proc gives (tests/unit cannot see this file, so
 * docs/history.md tells how it was checked: every character of these ranges,
 * alone and between letters, against the utf8proc path). Anything else
 * (half-width kana, combining marks, compatibility characters) takes
 * utf8proc:
 *   - ASCII, letters folded to lower case;
 *   - the full-width forms of ASCII U+FF01..FF5E (NFKC gives the ASCII
 *     character) and the ideographic space U+3000;
 *   - CJK punctuation U+3001, U+3002, U+3008..U+3011, U+301C, U+30FB, the
 *     general punctuation U+2010..U+2016 and U+2018..U+2026, U+203B and the
 *     geometric shapes U+25A0..U+25FF (separators either way);
 *   - hiragana U+3041..U+3096, katakana U+30A1..U+30FA (folded), U+30FC and
 *     the CJK ideographs U+4E00..U+9FFF (NFKC leaves them). */
static bool s_stable(uint32_t cp)
{
    return cp < 0x80 || (cp >= 0xFF01 && cp <= 0xFF5E) || cp == 0x3000 || cp == 0x3001 ||
           cp == 0x3002 || (cp >= 0x3008 && cp <= 0x3011) || cp == 0x301C || cp == 0x30FB ||
           (cp >= 0x2010 && cp <= 0x2016) || (cp >= 0x2018 && cp <= 0x2026) || cp == 0x203B ||
           (cp >= 0x25A0 && cp <= 0x25FF) || (cp >= 0x3041 && cp <= 0x3096) ||
           (cp >= 0x30A1 && cp <= 0x30FA) || cp == 0x30FC || (cp >= 0x4E00 && cp <= 0x9FFF);
}

/* The fast path: 1 when done, 0 when the text needs utf8proc, or -ENOMEM. */
static int s_normalise_stable(const char *text, size_t len, s_cps_t *out)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    bool in_word = false;
    while (p < end) {
        uint32_t cp;
        if (p[0] < 0x80) {
            cp = p[0];
            p++;
        } else if ((p[0] & 0xF0) == 0xE0 && end - p >= 3 && (p[1] & 0xC0) == 0x80 &&
                   (p[2] & 0xC0) == 0x80) {
            cp = (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
            p += 3;
        } else {
            return 0;
        }
        if (!s_stable(cp))
            return 0;
        if (cp >= 0xFF01 && cp <= 0xFF5E)
            cp -= 0xFEE0; /* the ASCII character */
        bool word = cp < 0x80 ? (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
                                    (cp >= 'A' && cp <= 'Z')
                              : (cp >= 0x3041 && cp <= 0x3096) || (cp >= 0x30A1 && cp <= 0x30FA) ||
                                    cp == 0x30FC || (cp >= 0x4E00 && cp <= 0x9FFF);
        if (word) {
            if (cp >= 'A' && cp <= 'Z')
                cp += 'a' - 'A';
            if (s_cps_push(out, s_fold_kana(cp)) < 0)
                return -ENOMEM;
            in_word = true;
        } else if (in_word) {
            if (s_cps_push(out, 0) < 0)
                return -ENOMEM;
            in_word = false;
        }
    }
    if (out->n > 0 && out->cp[out->n - 1] == 0)
        out->n--;
    return 1;
}

static int s_normalise(const char *text, size_t len, s_cps_t *out)
{
    out->n = 0;
    if (len == 0)
        return 0;
    int fast = s_normalise_stable(text, len, out);
    if (fast != 0)
        return fast < 0 ? fast : 0;
    out->n = 0;
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n = utf8proc_map(
        (const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &mapped,
        UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    if (n < 0)
        return n == UTF8PROC_ERROR_NOMEM ? -ENOMEM : -EILSEQ;
    int rc = 0;
    bool in_word = false;
    for (utf8proc_ssize_t i = 0; i < n && rc == 0;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(mapped + i, n - i, &cp);
        if (k <= 0)
            break;
        i += k;
        if (cp > 0 && s_is_word(cp)) {
            rc = s_cps_push(out, s_fold_kana((uint32_t)cp));
            in_word = true;
        } else if (in_word) {
            rc = s_cps_push(out, 0);
            in_word = false;
        }
    }
    free(mapped);
    if (rc == 0 && out->n > 0 && out->cp[out->n - 1] == 0)
        out->n--;
    return rc;
}

char *history_search_normalise(const char *text)
{
    s_cps_t cps = {0};
    char *out = NULL;
    if (!text || s_normalise(text, strlen(text), &cps) < 0)
        goto done;
    out = malloc(cps.n * 4 + 1);
    if (!out)
        goto done;
    size_t len = 0;
    for (size_t i = 0; i < cps.n; i++) {
        if (cps.cp[i] == 0) {
            out[len++] = ' ';
            continue;
        }
        utf8proc_ssize_t k =
            utf8proc_encode_char((utf8proc_int32_t)cps.cp[i], (utf8proc_uint8_t *)out + len);
        len += (size_t)(k > 0 ? k : 0);
    }
    out[len] = '\0';
done:
    free(cps.cp);
    return out;
}

/* ---- keys ------------------------------------------------------------------------- */

/* A unigram is (c << 21), a bigram (c1 << 21 | c2): code points fit in 21
 * bits and are never 0, so keys are never 0 and never collide. */
static inline uint64_t s_key(uint32_t c1, uint32_t c2)
{
    return (uint64_t)c1 << 21 | c2;
}

static inline size_t s_hash64(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    key *= 0xc4ceb9fe1a85ec53ULL;
    key ^= key >> 33;
    return (size_t)key;
}

/* The keys of one record with the fields they were found in. */
typedef struct {
    uint64_t *keys;
    uint8_t *masks;
    size_t n, cap;  /* n pairs in keys/masks; cap: size of the hash below */
    uint32_t *slot; /* open addressing: index + 1 into keys, 0 empty */
    size_t slot_cap;
} s_grams_t;

static void s_grams_free(s_grams_t *g)
{
    free(g->keys);
    free(g->masks);
    free(g->slot);
    memset(g, 0, sizeof *g);
}

/* Room for `more` keys. */
static int s_grams_reserve(s_grams_t *g, size_t more)
{
    size_t need = g->n + more;
    if (need > g->cap) {
        size_t cap = g->cap ? g->cap : 256;
        while (cap < need)
            cap *= 2;
        uint64_t *keys = realloc(g->keys, cap * sizeof *keys);
        if (!keys)
            return -ENOMEM;
        g->keys = keys;
        uint8_t *masks = realloc(g->masks, cap);
        if (!masks)
            return -ENOMEM;
        g->masks = masks;
        g->cap = cap;
    }
    if (need * 2 > g->slot_cap) {
        size_t cap = g->slot_cap ? g->slot_cap : 512;
        while (cap < need * 2)
            cap *= 2;
        uint32_t *slot = calloc(cap, sizeof *slot);
        if (!slot)
            return -ENOMEM;
        for (size_t i = 0; i < g->n; i++) {
            size_t h = s_hash64(g->keys[i]) & (cap - 1);
            while (slot[h])
                h = (h + 1) & (cap - 1);
            slot[h] = (uint32_t)i + 1;
        }
        free(g->slot);
        g->slot = slot;
        g->slot_cap = cap;
    }
    return 0;
}

static void s_grams_add(s_grams_t *g, uint64_t key, uint8_t mask)
{
    size_t h = s_hash64(key) & (g->slot_cap - 1);
    while (g->slot[h]) {
        uint32_t i = g->slot[h] - 1;
        if (g->keys[i] == key) {
            g->masks[i] |= mask;
            return;
        }
        h = (h + 1) & (g->slot_cap - 1);
    }
    g->keys[g->n] = key;
    g->masks[g->n] = mask;
    g->slot[h] = (uint32_t)++g->n;
}

/* Empties g for the next record (keeps its memory). */
static void s_grams_clear(s_grams_t *g)
{
    if (g->slot)
        memset(g->slot, 0, g->slot_cap * sizeof *g->slot);
    g->n = 0;
}

/* Adds the keys of one field. */
static int s_grams_field(s_grams_t *g, const s_cps_t *cps, uint8_t mask)
{
    if (s_grams_reserve(g, cps->n * 2) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < cps->n; i++) {
        uint32_t c = cps->cp[i];
        if (c == 0)
            continue;
        s_grams_add(g, s_key(c, 0), mask);
        if (i + 1 < cps->n && cps->cp[i + 1] != 0)
            s_grams_add(g, s_key(c, cps->cp[i + 1]), mask);
    }
    return 0;
}

/* ---- the index ---------------------------------------------------------------------- */

typedef struct {
    uint8_t *buf; /* varint((ordinal - previous) << 3 | fields), ordinals ascending */
    uint32_t len, cap;
    uint32_t last;  /* the last ordinal appended */
    uint32_t count; /* entries */
} s_list_t;

/* One record as the index holds it (what a change brings). */
typedef struct {
    int64_t id;
    int64_t started_us;
    int64_t operator_id;
    uint8_t status, channel;
    char department_id[33], category[33], reception_type[33], handling_type[33];
    uint64_t text_hash;
    s_grams_t grams; /* filled only when the text must be indexed */
} s_rec_t;

typedef struct {
    /* key -> list */
    uint64_t *keys;
    uint32_t *key_list; /* list index + 1; 0: empty slot */
    size_t key_cap, key_count;
    s_list_t *lists;
    size_t list_count, list_cap;
    /* records by ordinal (1 .. n; 0 unused) */
    size_t n, cap;
    int64_t *record_id, *started_us, *operator_id;
    uint64_t *text_hash;
    uint8_t *status, *channel, *flags;
    uint16_t *department, *category, *reception, *handling;
    int16_t *fiscal_year;
    /* record id -> ordinal (0: none now) */
    int64_t *id_keys;
    uint32_t *id_ords;
    size_t id_cap, id_count;
    /* interned codes (0 is "") */
    char **codes;
    size_t code_count, code_cap;
    uint32_t *code_slot; /* index + 1 */
    size_t code_slot_cap;
    int64_t live, dead, postings;
} s_index_t;

static void s_index_free(s_index_t **self_p)
{
    s_index_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->list_count; i++)
        free(self->lists[i].buf);
    free(self->lists);
    free(self->keys);
    free(self->key_list);
    free(self->record_id);
    free(self->started_us);
    free(self->operator_id);
    free(self->text_hash);
    free(self->status);
    free(self->channel);
    free(self->flags);
    free(self->department);
    free(self->category);
    free(self->reception);
    free(self->handling);
    free(self->fiscal_year);
    free(self->id_keys);
    free(self->id_ords);
    for (size_t i = 0; self->codes && i < self->code_count; i++)
        free(self->codes[i]);
    free(self->codes);
    free(self->code_slot);
    free(self);
    *self_p = NULL;
}

static size_t s_hash_text(const char *text)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)h;
}

/* The interned index of `code`, added when `add`; -1 when absent (or no memory). */
static int s_code(s_index_t *self, const char *code, bool add)
{
    if (!code || !*code)
        return 0;
    if (self->code_slot_cap == 0 || (add && (self->code_count + 1) * 2 > self->code_slot_cap)) {
        if (!add)
            return -1;
        size_t cap = self->code_slot_cap ? self->code_slot_cap * 2 : 256;
        uint32_t *slot = calloc(cap, sizeof *slot);
        if (!slot)
            return -1;
        for (size_t i = 1; i < self->code_count; i++) {
            size_t h = s_hash_text(self->codes[i]) & (cap - 1);
            while (slot[h])
                h = (h + 1) & (cap - 1);
            slot[h] = (uint32_t)i + 1;
        }
        free(self->code_slot);
        self->code_slot = slot;
        self->code_slot_cap = cap;
    }
    size_t h = s_hash_text(code) & (self->code_slot_cap - 1);
    while (self->code_slot[h]) {
        uint32_t i = self->code_slot[h] - 1;
        if (strcmp(self->codes[i], code) == 0)
            return (int)i;
        h = (h + 1) & (self->code_slot_cap - 1);
    }
    if (!add || self->code_count >= UINT16_MAX)
        return -1;
    if (self->code_count == self->code_cap) {
        size_t cap = self->code_cap ? self->code_cap * 2 : 64;
        char **codes = realloc(self->codes, cap * sizeof *codes);
        if (!codes)
            return -1;
        self->codes = codes;
        self->code_cap = cap;
    }
    char *copy = strdup(code);
    if (!copy)
        return -1;
    self->codes[self->code_count] = copy;
    self->code_slot[h] = (uint32_t)self->code_count + 1;
    return (int)self->code_count++;
}

static s_index_t *s_index_new(void)
{
    s_index_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->codes = calloc(64, sizeof *self->codes);
    self->codes[0] = self->codes ? strdup("") : NULL; /* code 0 is "" */
    if (!self->codes || !self->codes[0]) {
        s_index_free(&self);
        return NULL;
    }
    self->code_count = 1;
    self->code_cap = 64;
    return self;
}

/* The list of `key`, made when `add`; NULL when absent (or no memory). */
static s_list_t *s_list(s_index_t *self, uint64_t key, bool add)
{
    if (self->key_cap == 0 || (add && (self->key_count + 1) * 2 > self->key_cap)) {
        if (!add)
            return NULL;
        size_t cap = self->key_cap ? self->key_cap * 2 : 1u << 16;
        uint64_t *keys = calloc(cap, sizeof *keys);
        uint32_t *lists = calloc(cap, sizeof *lists);
        if (!keys || !lists) {
            free(keys);
            free(lists);
            return NULL;
        }
        for (size_t i = 0; i < self->key_cap; i++) {
            if (!self->key_list[i])
                continue;
            size_t h = s_hash64(self->keys[i]) & (cap - 1);
            while (lists[h])
                h = (h + 1) & (cap - 1);
            keys[h] = self->keys[i];
            lists[h] = self->key_list[i];
        }
        free(self->keys);
        free(self->key_list);
        self->keys = keys;
        self->key_list = lists;
        self->key_cap = cap;
    }
    size_t h = s_hash64(key) & (self->key_cap - 1);
    while (self->key_list[h]) {
        if (self->keys[h] == key)
            return &self->lists[self->key_list[h] - 1];
        h = (h + 1) & (self->key_cap - 1);
    }
    if (!add)
        return NULL;
    if (self->list_count == self->list_cap) {
        size_t cap = self->list_cap ? self->list_cap * 2 : 1u << 16;
        s_list_t *grown = realloc(self->lists, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->lists = grown;
        self->list_cap = cap;
    }
    s_list_t *list = &self->lists[self->list_count];
    memset(list, 0, sizeof *list);
    self->keys[h] = key;
    self->key_list[h] = (uint32_t)++self->list_count;
    self->key_count++;
    return list;
}

static int s_list_append(s_list_t *list, uint32_t ordinal, uint8_t mask)
{
    if (list->len + 10 > list->cap) {
        uint32_t cap = list->cap ? list->cap + list->cap / 2 + 16 : 8;
        uint8_t *grown = realloc(list->buf, cap);
        if (!grown)
            return -ENOMEM;
        list->buf = grown;
        list->cap = cap;
    }
    uint64_t v = (uint64_t)(ordinal - list->last) << 3 | (mask & 7u);
    while (v >= 0x80) {
        list->buf[list->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    list->buf[list->len++] = (uint8_t)v;
    list->last = ordinal;
    list->count++;
    return 0;
}

/* Room for ordinal `n`. */
static int s_index_reserve(s_index_t *self, size_t n)
{
    if (n < self->cap)
        return 0;
    size_t cap = self->cap ? self->cap * 2 : 4096;
    while (cap <= n)
        cap *= 2;
#define S_GROW(field)                                                                              \
    do {                                                                                           \
        void *grown = realloc(self->field, cap * sizeof *self->field);                             \
        if (!grown)                                                                                \
            return -ENOMEM;                                                                        \
        self->field = grown;                                                                       \
    } while (0)
    S_GROW(record_id);
    S_GROW(started_us);
    S_GROW(operator_id);
    S_GROW(text_hash);
    S_GROW(status);
    S_GROW(channel);
    S_GROW(flags);
    S_GROW(department);
    S_GROW(category);
    S_GROW(reception);
    S_GROW(handling);
    S_GROW(fiscal_year);
#undef S_GROW
    self->cap = cap;
    return 0;
}

/* The slot of record id `id` in the id map (its key is id or the slot is empty). */
static size_t s_id_slot(const s_index_t *self, int64_t id)
{
    size_t h = s_hash64((uint64_t)id) & (self->id_cap - 1);
    while (self->id_keys[h] && self->id_keys[h] != id)
        h = (h + 1) & (self->id_cap - 1);
    return h;
}

static uint32_t s_ordinal_of(const s_index_t *self, int64_t id)
{
    if (self->id_cap == 0)
        return 0;
    size_t h = s_id_slot(self, id);
    return self->id_keys[h] == id ? self->id_ords[h] : 0;
}

static int s_set_ordinal(s_index_t *self, int64_t id, uint32_t ordinal)
{
    if ((self->id_count + 1) * 2 > self->id_cap) {
        size_t cap = self->id_cap ? self->id_cap * 2 : 4096;
        int64_t *keys = calloc(cap, sizeof *keys);
        uint32_t *ords = calloc(cap, sizeof *ords);
        if (!keys || !ords) {
            free(keys);
            free(ords);
            return -ENOMEM;
        }
        for (size_t i = 0; i < self->id_cap; i++) {
            if (!self->id_keys[i])
                continue;
            size_t h = s_hash64((uint64_t)self->id_keys[i]) & (cap - 1);
            while (keys[h])
                h = (h + 1) & (cap - 1);
            keys[h] = self->id_keys[i];
            ords[h] = self->id_ords[i];
        }
        free(self->id_keys);
        free(self->id_ords);
        self->id_keys = keys;
        self->id_ords = ords;
        self->id_cap = cap;
    }
    size_t h = s_id_slot(self, id);
    if (!self->id_keys[h]) {
        self->id_keys[h] = id;
        self->id_count++;
    }
    self->id_ords[h] = ordinal;
    return 0;
}

/* The fiscal year (April-March, Asia/Tokyo) of a time in Unix microseconds. */
static int16_t s_fiscal_year(int64_t started_us)
{
    time_t t = (time_t)(started_us / 1000000) + 9 * 3600;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return 0;
    int year = tm.tm_year + 1900;
    return (int16_t)(tm.tm_mon >= 3 ? year : year - 1);
}

/* Sets the filterable fields of `ordinal` from rec. */
static int s_index_set_fields(s_index_t *self, uint32_t ordinal, const s_rec_t *rec)
{
    int d = s_code(self, rec->department_id, true), c = s_code(self, rec->category, true);
    int r = s_code(self, rec->reception_type, true), h = s_code(self, rec->handling_type, true);
    if (d < 0 || c < 0 || r < 0 || h < 0)
        return -ENOMEM;
    self->record_id[ordinal] = rec->id;
    self->started_us[ordinal] = rec->started_us;
    self->operator_id[ordinal] = rec->operator_id;
    self->text_hash[ordinal] = rec->text_hash;
    self->status[ordinal] = rec->status;
    self->channel[ordinal] = rec->channel;
    self->department[ordinal] = (uint16_t)d;
    self->category[ordinal] = (uint16_t)c;
    self->reception[ordinal] = (uint16_t)r;
    self->handling[ordinal] = (uint16_t)h;
    self->fiscal_year[ordinal] = s_fiscal_year(rec->started_us);
    return 0;
}

static void s_index_kill(s_index_t *self, uint32_t ordinal)
{
    if (ordinal && (self->flags[ordinal] & S_ALIVE)) {
        self->flags[ordinal] &= (uint8_t)~S_ALIVE;
        self->live--;
        self->dead++;
    }
}

/* Adds or changes one record (rec->grams filled when its text is new). */
static int s_index_put(s_index_t *self, const s_rec_t *rec)
{
    uint32_t old = s_ordinal_of(self, rec->id);
    if (old && (self->flags[old] & S_ALIVE) && self->text_hash[old] == rec->text_hash)
        return s_index_set_fields(self, old, rec); /* same text: the fields change in place */
    if (self->n + 1 >= UINT32_MAX)
        return -ENOSPC;
    uint32_t ordinal = (uint32_t)self->n + 1;
    if (s_index_reserve(self, ordinal) < 0 || s_index_set_fields(self, ordinal, rec) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < rec->grams.n; i++) {
        s_list_t *list = s_list(self, rec->grams.keys[i], true);
        if (!list || s_list_append(list, ordinal, rec->grams.masks[i]) < 0)
            return -ENOMEM;
    }
    self->postings += (int64_t)rec->grams.n;
    self->flags[ordinal] = S_ALIVE;
    self->n = ordinal;
    self->live++;
    s_index_kill(self, old);
    return s_set_ordinal(self, rec->id, ordinal);
}

static void s_index_remove(s_index_t *self, int64_t id)
{
    uint32_t ordinal = s_ordinal_of(self, id);
    if (ordinal) {
        s_index_kill(self, ordinal);
        s_set_ordinal(self, id, 0);
    }
}

/* Gives back the slack of the lists after a full build. */
static void s_index_trim(s_index_t *self)
{
    for (size_t i = 0; i < self->list_count; i++) {
        s_list_t *list = &self->lists[i];
        if (list->cap > list->len + 10) {
            uint8_t *shrunk = realloc(list->buf, list->len + 10);
            if (shrunk) {
                list->buf = shrunk;
                list->cap = list->len + 10;
            }
        }
    }
}

static int64_t s_index_bytes(const s_index_t *self)
{
    int64_t bytes = (int64_t)(self->key_cap * (sizeof *self->keys + sizeof *self->key_list) +
                              self->list_cap * sizeof *self->lists +
                              self->id_cap * (sizeof *self->id_keys + sizeof *self->id_ords) +
                              self->cap * (8 * 4 + 3 + 2 * 5));
    for (size_t i = 0; i < self->list_count; i++)
        bytes += self->lists[i].cap;
    return bytes;
}

/* ---- queries -------------------------------------------------------------------------- */

unsigned history_status_bit(const char *status)
{
    static const char *const names[] = {"open", "in_progress", "closed"};
    for (unsigned i = 0; status && i < 3; i++)
        if (strcmp(status, names[i]) == 0)
            return 1u << (i + 1);
    return 0;
}

unsigned history_channel_bit(const char *channel)
{
    static const char *const names[] = {"phone", "sms", "form", "chat", "line", "visit"};
    for (unsigned i = 0; channel && i < 6; i++)
        if (strcmp(channel, names[i]) == 0)
            return 1u << (i + 1);
    return 0;
}

/* The stored number (1..) of a status or channel bit. */
static uint8_t s_bit_number(unsigned bit)
{
    uint8_t n = 0;
    while (bit > 1) {
        bit >>= 1;
        n++;
    }
    return n;
}

/* Alphabetical ranks (as PostgreSQL sorts the text) of the status and
 * channel numbers. */
static const int s_status_rank[4] = {0, 3, 2, 1};           /* closed < in_progress < open */
static const int s_channel_rank[7] = {0, 4, 5, 2, 1, 3, 6}; /* chat form line phone sms visit */

typedef struct {
    const uint8_t *p, *end;
    uint32_t doc;
    uint8_t mask;
    uint32_t count;
} s_iter_t;

static inline bool s_iter_next(s_iter_t *it)
{
    if (it->p >= it->end) {
        it->doc = UINT32_MAX;
        return false;
    }
    uint64_t v = 0;
    int shift = 0;
    uint8_t b;
    do {
        b = *it->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while ((b & 0x80) && it->p < it->end);
    it->doc += (uint32_t)(v >> 3);
    it->mask = (uint8_t)(v & 7);
    return true;
}

/* Relevance of a match by field: the inquiry says most, then the summary. */
static inline int s_weight(uint8_t mask)
{
    return (mask & S_FIELD_INQUIRY ? 3 : 0) + (mask & S_FIELD_SUMMARY ? 2 : 0) +
           (mask & S_FIELD_RESPONSE ? 1 : 0);
}

typedef struct {
    int64_t k1, k2, k3; /* larger is better, compared in this order */
    uint32_t doc;
} s_hit_t;

static inline bool s_hit_less(const s_hit_t *a, const s_hit_t *b)
{
    if (a->k1 != b->k1)
        return a->k1 < b->k1;
    if (a->k2 != b->k2)
        return a->k2 < b->k2;
    return a->k3 < b->k3;
}

/* A min-heap of the best `cap` hits. */
typedef struct {
    s_hit_t *items;
    size_t n, cap;
} s_heap_t;

static void s_heap_push(s_heap_t *heap, const s_hit_t *hit)
{
    if (heap->cap == 0)
        return;
    size_t i;
    if (heap->n < heap->cap) {
        i = heap->n++;
        while (i > 0) {
            size_t parent = (i - 1) / 2;
            if (!s_hit_less(hit, &heap->items[parent]))
                break;
            heap->items[i] = heap->items[parent];
            i = parent;
        }
        heap->items[i] = *hit;
        return;
    }
    if (!s_hit_less(&heap->items[0], hit))
        return;
    i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        const s_hit_t *best_hit = hit;
        if (l < heap->n && s_hit_less(&heap->items[l], best_hit)) {
            best = l;
            best_hit = &heap->items[l];
        }
        if (r < heap->n && s_hit_less(&heap->items[r], best_hit))
            best = r;
        if (best == i)
            break;
        heap->items[i] = heap->items[best];
        i = best;
    }
    heap->items[i] = *hit;
}

static int s_hit_cmp_desc(const void *a, const void *b)
{
    const s_hit_t *x = a, *y = b;
    return s_hit_less(x, y) ? 1 : s_hit_less(y, x) ? -1 : 0;
}

/* The query's words as keys: one unigram for a word of one character, its
 * bigrams for a longer word. 0 with *ret_keys (caller frees), -ENODATA when
 * there is no word, -ENOMEM, -EILSEQ. */
static int s_query_keys(const char *q, uint64_t **ret_keys, size_t *ret_n)
{
    s_cps_t cps = {0};
    int rc = s_normalise(q, strlen(q), &cps);
    uint64_t *keys = NULL;
    size_t n = 0;
    if (rc < 0)
        goto out;
    keys = malloc((cps.n + 1) * sizeof *keys);
    if (!keys) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < cps.n; i++) {
        if (cps.cp[i] == 0)
            continue;
        bool alone = (i == 0 || cps.cp[i - 1] == 0) && (i + 1 == cps.n || cps.cp[i + 1] == 0);
        uint64_t key = 0;
        if (alone)
            key = s_key(cps.cp[i], 0);
        else if (i + 1 < cps.n && cps.cp[i + 1] != 0)
            key = s_key(cps.cp[i], cps.cp[i + 1]);
        if (!key)
            continue;
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++)
            seen = keys[j] == key;
        if (!seen)
            keys[n++] = key;
    }
    if (n == 0) {
        rc = -ENODATA;
        goto out;
    }
    *ret_keys = keys;
    *ret_n = n;
    keys = NULL;
out:
    free(keys);
    free(cps.cp);
    return rc;
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Ranks of the interned codes in alphabetical order (caller frees). */
static int *s_code_ranks(const s_index_t *self)
{
    size_t n = self->code_count;
    uint32_t *order = malloc((n ? n : 1) * sizeof *order);
    int *rank = malloc((n ? n : 1) * sizeof *rank);
    if (!order || !rank) {
        free(order);
        free(rank);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    /* insertion sort: there are few codes (departments, categories, types) */
    for (size_t i = 1; i < n; i++) {
        uint32_t v = order[i];
        size_t j = i;
        while (j > 0 && strcmp(self->codes[order[j - 1]], self->codes[v]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    for (size_t i = 0; i < n; i++)
        rank[order[i]] = (int)i;
    free(order);
    return rank;
}

/* The search itself, under the read lock. */
static int s_index_query(const s_index_t *self, const history_query_t *q, int64_t **ret_ids,
                         size_t *ret_n, int64_t *ret_total)
{
    int rc = 0;
    uint64_t *keys = NULL;
    size_t n_keys = 0;
    s_iter_t *its = NULL;
    uint32_t *only = NULL;
    size_t n_only = 0;
    int *ranks = NULL;
    s_heap_t heap = {0};
    int64_t *all = NULL;
    size_t n_all = 0, cap_all = 0;
    uint32_t *matches = NULL; /* sorted queries: the matching ordinals, in ordinal order */
    uint16_t *scores = NULL;  /* and their relevance */
    size_t n_matches = 0, cap_matches = 0;
    int64_t total = 0;

    if (q->q && *q->q) {
        rc = s_query_keys(q->q, &keys, &n_keys);
        if (rc < 0)
            goto out;
    }
    /* Filters on codes: a code the index never saw matches nothing. */
    int want_department = -1, want_category = -1, want_reception = -1, want_handling = -1;
    bool nothing = false;
#define S_WANT(var, text)                                                                          \
    if (text) {                                                                                    \
        var = s_code((s_index_t *)self, text, false);                                              \
        nothing = nothing || var < 0;                                                              \
    }
    S_WANT(want_department, q->department_id);
    S_WANT(want_category, q->category);
    S_WANT(want_reception, q->reception_type);
    S_WANT(want_handling, q->handling_type);
#undef S_WANT

    its = calloc(n_keys ? n_keys : 1, sizeof *its);
    if (!its) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_keys && !nothing; i++) {
        const s_list_t *list = s_list((s_index_t *)self, keys[i], false);
        if (!list) {
            nothing = true;
            break;
        }
        its[i] = (s_iter_t){.p = list->buf, .end = list->buf + list->len, .count = list->count};
    }
    if (q->only_ids) {
        only = malloc((q->n_only_ids ? q->n_only_ids : 1) * sizeof *only);
        if (!only) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < q->n_only_ids; i++) {
            uint32_t ordinal = s_ordinal_of(self, q->only_ids[i]);
            if (ordinal)
                only[n_only++] = ordinal;
        }
        qsort(only, n_only, sizeof *only, s_cmp_u32);
    }
    bool sorted = q->sort != HISTORY_SORT_NONE;
    if (sorted) {
        size_t want = q->offset + q->limit;
        heap.cap = want > S_MAX_HEAP ? S_MAX_HEAP : want;
        heap.items = malloc((heap.cap ? heap.cap : 1) * sizeof *heap.items);
        if (!heap.items) {
            rc = -ENOMEM;
            goto out;
        }
    }
    if (q->sort == HISTORY_SORT_DEPARTMENT_ID || q->sort == HISTORY_SORT_CATEGORY ||
        q->sort == HISTORY_SORT_RECEPTION_TYPE || q->sort == HISTORY_SORT_HANDLING_TYPE) {
        ranks = s_code_ranks(self);
        if (!ranks) {
            rc = -ENOMEM;
            goto out;
        }
    }
    /* Put the shortest list first: it drives the intersection. */
    for (size_t i = 1; i < n_keys; i++)
        for (size_t j = i; j > 0 && its[j].count < its[j - 1].count; j--) {
            s_iter_t t = its[j];
            its[j] = its[j - 1];
            its[j - 1] = t;
        }

    size_t only_pos = 0;
    uint32_t range_doc = 0;
    bool exhausted = false;
    while (!nothing) {
        /* The next candidate ordinal and its score. */
        uint32_t doc;
        int score = 0;
        if (only) {
            if (only_pos == n_only)
                break;
            doc = only[only_pos++];
        } else if (n_keys > 0) {
            if (!s_iter_next(&its[0]))
                break;
            doc = its[0].doc;
            score = s_weight(its[0].mask);
        } else {
            if (++range_doc > self->n)
                break;
            doc = range_doc;
        }
        bool match = true;
        for (size_t i = only ? 0 : 1; i < n_keys && match; i++) {
            while (its[i].doc < doc && s_iter_next(&its[i]))
                ;
            if (its[i].doc == UINT32_MAX || its[i].doc < doc) {
                exhausted = true; /* no later candidate can be in this list either */
                break;
            }
            match = its[i].doc == doc;
            if (match)
                score += s_weight(its[i].mask);
        }
        if (exhausted)
            break;
        if (!match || !(self->flags[doc] & S_ALIVE))
            continue;
        int64_t started = self->started_us[doc];
        if ((q->has_from && started < q->from_us) || (q->has_to && started > q->to_us))
            continue;
        if ((q->status_mask && !(q->status_mask & (1u << self->status[doc]))) ||
            (q->channel_mask && !(q->channel_mask & (1u << self->channel[doc]))))
            continue;
        if ((want_department >= 0 && self->department[doc] != want_department) ||
            (want_category >= 0 && self->category[doc] != want_category) ||
            (want_reception >= 0 && self->reception[doc] != want_reception) ||
            (want_handling >= 0 && self->handling[doc] != want_handling))
            continue;
        if ((q->has_operator && self->operator_id[doc] != q->operator_id) ||
            (q->fiscal_year && self->fiscal_year[doc] != q->fiscal_year))
            continue;
        int64_t id = self->record_id[doc];
        if (q->has_after && (started < q->after_started_us ||
                             (started == q->after_started_us && id <= q->after_id)))
            continue;
        total++;
        if (!sorted) {
            if (n_all == cap_all) {
                size_t cap = cap_all ? cap_all * 2 : 1024;
                int64_t *grown = realloc(all, cap * sizeof *grown);
                if (!grown) {
                    rc = -ENOMEM;
                    goto out;
                }
                all = grown;
                cap_all = cap;
            }
            all[n_all++] = id;
            continue;
        }
        /* Kept for the sort below (sorting as they come would sift the heap for every match:
         * ordinals follow started_at, the usual sort). */
        if (n_matches == cap_matches) {
            size_t cap = cap_matches ? cap_matches * 2 : 4096;
            uint32_t *grown = realloc(matches, cap * sizeof *grown);
            uint16_t *grown_scores = grown ? realloc(scores, cap * sizeof *grown_scores) : NULL;
            if (grown)
                matches = grown;
            if (!grown || !grown_scores) {
                rc = -ENOMEM;
                goto out;
            }
            scores = grown_scores;
            cap_matches = cap;
        }
        matches[n_matches] = doc;
        scores[n_matches++] = (uint16_t)(score > UINT16_MAX ? UINT16_MAX : score);
    }

    /* The top of the sort: matches taken newest first for a descending sort (or relevance),
     * oldest first for an ascending one, so that after the first page-full most are refused
     * by the heap's smallest at once. */
    for (size_t i = 0; sorted && i < n_matches; i++) {
        bool newest_first = q->descending || q->sort == HISTORY_SORT_RELEVANCE;
        size_t m = newest_first ? n_matches - 1 - i : i;
        uint32_t doc = matches[m];
        int64_t started = self->started_us[doc], id = self->record_id[doc];
        int score = scores[m];
        s_hit_t hit = {.doc = doc, .k2 = id};
        switch (q->sort) {
        case HISTORY_SORT_RELEVANCE:
            hit.k1 = score;
            hit.k2 = started;
            hit.k3 = id;
            break;
        case HISTORY_SORT_STARTED_AT:
            hit.k1 = started;
            break;
        case HISTORY_SORT_ID:
            hit.k1 = id;
            break;
        case HISTORY_SORT_STATUS:
            hit.k1 = s_status_rank[self->status[doc] & 3];
            break;
        case HISTORY_SORT_CHANNEL:
            hit.k1 = s_channel_rank[self->channel[doc] % 7];
            break;
        case HISTORY_SORT_OPERATOR_ID:
            hit.k1 = self->operator_id[doc];
            break;
        case HISTORY_SORT_DEPARTMENT_ID:
            hit.k1 = ranks[self->department[doc]];
            break;
        case HISTORY_SORT_CATEGORY:
            hit.k1 = ranks[self->category[doc]];
            break;
        case HISTORY_SORT_RECEPTION_TYPE:
            hit.k1 = ranks[self->reception[doc]];
            break;
        case HISTORY_SORT_HANDLING_TYPE:
            hit.k1 = ranks[self->handling[doc]];
            break;
        case HISTORY_SORT_FISCAL_YEAR:
            hit.k1 = self->fiscal_year[doc];
            break;
        case HISTORY_SORT_NONE:
            break;
        }
        if (!q->descending && q->sort != HISTORY_SORT_RELEVANCE) {
            hit.k1 = -hit.k1;
            hit.k2 = -hit.k2;
        }
        s_heap_push(&heap, &hit);
    }

    if (sorted) {
        qsort(heap.items, heap.n, sizeof *heap.items, s_hit_cmp_desc);
        size_t from = q->offset < heap.n ? q->offset : heap.n;
        size_t count = heap.n - from < q->limit ? heap.n - from : q->limit;
        all = malloc((count ? count : 1) * sizeof *all);
        if (!all) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < count; i++)
            all[i] = self->record_id[heap.items[from + i].doc];
        n_all = count;
    }
    *ret_ids = all;
    *ret_n = n_all;
    *ret_total = total;
    all = NULL;
out:
    free(all);
    free(keys);
    free(its);
    free(only);
    free(ranks);
    free(heap.items);
    free(matches);
    free(scores);
    return rc;
}

/* ---- the indexer thread -------------------------------------------------------------- */

struct history_search {
    char *conninfo; /* owned */
    int poll_ms;    /* outbox poll period */
    pthread_t thread;
    bool started;          /* the thread runs */
    atomic_bool stop;      /* destroy asks it to end */
    int wake[2];           /* a byte on wake[1] makes the thread poll now */
    pthread_rwlock_t lock; /* guards index */
    s_index_t *index;      /* NULL until the first build */
    ncc_db_t *db;          /* the thread's connection */
    int64_t cursor;        /* outbox seq applied (thread) */
    bool rebuild;          /* the thread should build anew */
    int64_t last_prune_check_us;
    s_grams_t scratch; /* thread */
    s_cps_t cps;       /* thread */
    atomic_llong stat_cursor, stat_build_ms, stat_builds;
    pthread_mutex_t moved_lock; /* with moved: the cursor moved (history_search_wait) */
    pthread_cond_t moved;
};

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The index now includes the outbox up to `cursor`: tell the waiters. */
static void s_moved(history_search_t *self, int64_t cursor)
{
    pthread_mutex_lock(&self->moved_lock);
    atomic_store(&self->stat_cursor, cursor);
    pthread_cond_broadcast(&self->moved);
    pthread_mutex_unlock(&self->moved_lock);
}

/* Columns of a record as the index reads them (s_rec_from_row). */
#define S_REC_COLUMNS                                                                              \
    "id, (extract(epoch from started_at) * 1000000)::bigint, status, channel, operator_id, "       \
    "department_id, category, reception_type, handling_type, inquiry, response, summary"

static void s_copy_code(char *out, const char *text)
{
    snprintf(out, 33, "%s", text ? text : "");
}

/* Fills rec from row `row` of S_REC_COLUMNS, with its keys when `grams`. */
static int s_rec_from_row(history_search_t *self, PGresult *res, int row, s_rec_t *rec)
{
    rec->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    rec->started_us = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    rec->status = s_bit_number(history_status_bit(PQgetvalue(res, row, 2)));
    rec->channel = s_bit_number(history_channel_bit(PQgetvalue(res, row, 3)));
    rec->operator_id = strtoll(PQgetvalue(res, row, 4), NULL, 10);
    s_copy_code(rec->department_id, PQgetvalue(res, row, 5));
    s_copy_code(rec->category, PQgetvalue(res, row, 6));
    s_copy_code(rec->reception_type, PQgetvalue(res, row, 7));
    s_copy_code(rec->handling_type, PQgetvalue(res, row, 8));
    static const uint8_t fields[3] = {S_FIELD_INQUIRY, S_FIELD_RESPONSE, S_FIELD_SUMMARY};
    uint64_t h = 1469598103934665603ULL;
    s_grams_clear(&rec->grams);
    for (int f = 0; f < 3; f++) {
        const char *text = PQgetvalue(res, row, 9 + f);
        int len = PQgetlength(res, row, 9 + f);
        for (int i = 0; i < len; i++)
            h = (h ^ (unsigned char)text[i]) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
        if (s_normalise(text, (size_t)len, &self->cps) < 0)
            continue; /* not UTF-8 (never from the API): not searchable */
        if (s_grams_field(&rec->grams, &self->cps, fields[f]) < 0)
            return -ENOMEM;
    }
    rec->text_hash = h;
    return 0;
}

/* A full build from a snapshot: the records, and the outbox position they
 * include. 0 with *ret_index, or a negative errno. */
static int s_build(history_search_t *self, s_index_t **ret_index, int64_t *ret_cursor)
{
    int64_t started = s_now_us();
    s_index_t *index = s_index_new();
    if (!index)
        return -ENOMEM;
    int rc = -EIO;
    PGresult *res = NULL;
    s_rec_t rec = {0};
    if (ncc_db_run(self->db, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL) < 0)
        goto out;
    res = ncc_db_exec(self->db, "SELECT last_seq FROM outbox_state WHERE id = 1", 0, NULL, NULL);
    if (!res)
        goto out;
    int64_t cursor = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    res = NULL;
    if (ncc_db_run(self->db,
                   "DECLARE history_index NO SCROLL CURSOR FOR SELECT " S_REC_COLUMNS
                   " FROM records ORDER BY started_at, id",
                   0, NULL) < 0)
        goto out;
    for (;;) {
        if (atomic_load(&self->stop)) {
            rc = -ECANCELED;
            goto out;
        }
        res = ncc_db_exec(self->db, "FETCH 5000 FROM history_index", 0, NULL, NULL);
        if (!res)
            goto out;
        int rows = PQntuples(res);
        for (int i = 0; i < rows; i++) {
            if (s_rec_from_row(self, res, i, &rec) < 0 || s_index_put(index, &rec) < 0) {
                rc = -ENOMEM;
                goto out;
            }
        }
        PQclear(res);
        res = NULL;
        if (rows < S_FETCH_ROWS)
            break;
    }
    ncc_db_run(self->db, "COMMIT", 0, NULL);
    s_index_trim(index);
    *ret_index = index;
    index = NULL;
    *ret_cursor = cursor;
    int64_t ms = (s_now_us() - started) / 1000;
    atomic_store(&self->stat_build_ms, ms);
    atomic_fetch_add(&self->stat_builds, 1);
    ncc_info("search.built", "%" PRId64 " records indexed in %" PRId64 " ms (%zu keys)",
             (*ret_index)->live, ms, (*ret_index)->key_count);
    rc = 0;
out:
    if (res)
        PQclear(res);
    if (rc < 0)
        ncc_db_rollback(self->db);
    s_grams_free(&rec.grams);
    s_index_free(&index);
    return rc;
}

/* bytea in PostgreSQL's text form ("\x0a1b...") into bytes (caller frees). */
static uint8_t *s_unhex(const char *text, size_t *ret_len)
{
    if (strncmp(text, "\\x", 2) != 0)
        return NULL;
    text += 2;
    size_t n = strlen(text) / 2;
    uint8_t *out = malloc(n ? n : 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(text + 2 * i, "%2x", &v) != 1) {
            free(out);
            return NULL;
        }
        out[i] = (uint8_t)v;
    }
    *ret_len = n;
    return out;
}

/* Applies what the outbox says since the cursor. 1 when something was
 * applied, 0 when nothing was new, -EIO. */
static int s_follow(history_search_t *self)
{
    char cursor_text[24];
    snprintf(cursor_text, sizeof cursor_text, "%" PRId64, self->cursor);
    const char *params[] = {cursor_text};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT seq, type, payload FROM outbox WHERE seq > $1::bigint "
                                "ORDER BY seq LIMIT 2000",
                                1, params, NULL);
    if (!res)
        return -EIO;
    int rows = PQntuples(res);
    if (rows == 0) {
        PQclear(res);
        return 0;
    }
    /* Which records changed, and what was purged. */
    size_t cap = (size_t)rows * 24 + 4;
    char *ids = malloc(cap);
    int64_t last = self->cursor, purge_before = 0;
    bool erased = false;
    size_t used = 0;
    if (!ids) {
        PQclear(res);
        return -EIO;
    }
    used += (size_t)snprintf(ids, cap, "{");
    for (int i = 0; i < rows; i++) {
        last = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        const char *type = PQgetvalue(res, i, 1);
        size_t len = 0;
        uint8_t *payload = s_unhex(PQgetvalue(res, i, 2), &len);
        if (!payload)
            continue;
        if (strcmp(type, "ncc.history.RecordChanged") == 0) {
            Ncc__History__RecordChanged *m =
                ncc__history__record_changed__unpack(NULL, len, payload);
            if (m && m->has_record_id)
                used += (size_t)snprintf(ids + used, cap - used, "%s%" PRId64, used > 1 ? "," : "",
                                         m->record_id);
            if (m)
                ncc__history__record_changed__free_unpacked(m, NULL);
        } else if (strcmp(type, "ncc.history.RecordsPurged") == 0) {
            Ncc__History__RecordsPurged *m =
                ncc__history__records_purged__unpack(NULL, len, payload);
            if (m && m->has_erased && m->erased)
                erased = true;
            if (m && m->has_before_fiscal_year && m->before_fiscal_year > purge_before)
                purge_before = m->before_fiscal_year;
            if (m)
                ncc__history__records_purged__free_unpacked(m, NULL);
        }
        free(payload);
    }
    PQclear(res);
    snprintf(ids + used, cap - used, "}");

    int rc = 1;
    if (erased || purge_before) {
        pthread_rwlock_wrlock(&self->lock);
        s_index_t *index = self->index;
        for (size_t o = 1; index && o <= index->n; o++)
            if (erased || index->fiscal_year[o] < purge_before)
                s_index_kill(index, (uint32_t)o);
        pthread_rwlock_unlock(&self->lock);
    }
    if (used > 1) {
        const char *p[] = {ids};
        res = ncc_db_exec(self->db,
                          "SELECT " S_REC_COLUMNS " FROM records WHERE id = ANY($1::bigint[])", 1,
                          p, NULL);
        if (!res) {
            free(ids);
            return -EIO;
        }
        /* Keys are made outside the lock; the lock is held only to put them. */
        int n = PQntuples(res);
        s_rec_t *recs = calloc((size_t)(n ? n : 1), sizeof *recs);
        for (int i = 0; recs && i < n; i++)
            if (s_rec_from_row(self, res, i, &recs[i]) < 0)
                rc = -ENOMEM;
        pthread_rwlock_wrlock(&self->lock);
        s_index_t *index = self->index;
        /* Records that are gone were deleted: every id asked, not found. */
        for (const char *p2 = ids + 1; index && *p2 && *p2 != '}';) {
            int64_t id = strtoll(p2, NULL, 10);
            bool found = false;
            for (int i = 0; i < n && !found; i++)
                found = recs && recs[i].id == id;
            if (!found)
                s_index_remove(index, id);
            p2 += strcspn(p2, ",}");
            if (*p2 == ',')
                p2++;
        }
        for (int i = 0; index && recs && i < n && rc > 0; i++)
            if (s_index_put(index, &recs[i]) < 0)
                rc = -ENOMEM;
        bool too_dead = index && index->dead > S_REBUILD_DEAD && index->dead > index->live / 2;
        pthread_rwlock_unlock(&self->lock);
        if (too_dead)
            self->rebuild = true;
        for (int i = 0; recs && i < n; i++)
            s_grams_free(&recs[i].grams);
        free(recs);
        PQclear(res);
        if (!recs)
            rc = -ENOMEM;
    }
    free(ids);
    if (rc < 0) {
        /* Out of memory half-way: the index may miss part of the batch; build anew. */
        self->rebuild = true;
        return rc;
    }
    self->cursor = last;
    s_moved(self, last);
    return 1;
}

/* The outbox still holds every event after the cursor (rows are pruned
 * after NCC_OUTBOX_RETENTION_HOURS): false means a build is needed. */
static bool s_cursor_held(history_search_t *self)
{
    PGresult *res =
        ncc_db_exec(self->db, "SELECT min(seq) FROM outbox WHERE seq IS NOT NULL", 0, NULL, NULL);
    if (!res)
        return true; /* cannot tell now: the next check will */
    bool held =
        PQgetisnull(res, 0, 0) || strtoll(PQgetvalue(res, 0, 0), NULL, 10) <= self->cursor + 1;
    PQclear(res);
    return held;
}

static void *s_thread(void *arg)
{
    history_search_t *self = arg;
    int backoff_ms = 100;
    while (!atomic_load(&self->stop)) {
        int wait_ms = self->poll_ms;
        if (!ncc_db_ready(self->db) && ncc_db_connect(self->db) < 0) {
            wait_ms = backoff_ms;
            backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
        } else if (!self->index || self->rebuild) {
            s_index_t *index = NULL;
            int64_t cursor = 0;
            int rc = s_build(self, &index, &cursor);
            if (rc == 0) {
                pthread_rwlock_wrlock(&self->lock);
                s_index_t *old = self->index;
                self->index = index;
                pthread_rwlock_unlock(&self->lock);
                s_index_free(&old);
                self->cursor = cursor;
                s_moved(self, cursor);
                self->rebuild = false;
                backoff_ms = 100;
                continue;
            }
            if (rc != -ECANCELED)
                ncc_warn("search.build_failed", "the search index could not be built: %s",
                         rc == -ENOMEM ? "out of memory" : ncc_db_error(self->db));
            wait_ms = backoff_ms;
            backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
        } else {
            int rc;
            while ((rc = s_follow(self)) > 0 && !atomic_load(&self->stop))
                ; /* drain what is waiting */
            if (rc < 0 && rc != -ENOMEM)
                ncc_warn("search.follow_failed", "%s", ncc_db_error(self->db));
            int64_t now = s_now_us();
            if (now - self->last_prune_check_us > S_PRUNE_CHECK_US) {
                self->last_prune_check_us = now;
                if (!s_cursor_held(self)) {
                    ncc_warn("search.behind",
                             "the outbox no longer holds the events after %" PRId64
                             ": building the index anew",
                             self->cursor);
                    self->rebuild = true;
                }
            }
            if (self->rebuild)
                continue;
        }
        struct pollfd pfd = {.fd = self->wake[0], .events = POLLIN};
        if (poll(&pfd, 1, wait_ms) > 0) {
            char drain[64];
            while (read(self->wake[0], drain, sizeof drain) > 0)
                ;
        }
    }
    return NULL;
}

history_search_t *history_search_new(const char *conninfo, int poll_ms)
{
    history_search_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->wake[0] = self->wake[1] = -1;
    self->poll_ms = poll_ms > 0 ? poll_ms : 100;
    self->conninfo = strdup(conninfo ? conninfo : "");
    if (!self->conninfo || pthread_rwlock_init(&self->lock, NULL) != 0)
        goto fail;
    pthread_mutex_init(&self->moved_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->moved, &attr);
    pthread_condattr_destroy(&attr);
    if (pipe(self->wake) < 0)
        goto fail;
    for (int i = 0; i < 2; i++) {
        int flags = fcntl(self->wake[i], F_GETFL);
        fcntl(self->wake[i], F_SETFL, flags | O_NONBLOCK);
    }
    self->db = ncc_db_new(self->conninfo, "history");
    if (!self->db)
        goto fail;
    if (pthread_create(&self->thread, NULL, s_thread, self) != 0)
        goto fail;
    self->started = true;
    return self;
fail:
    history_search_destroy(&self);
    return NULL;
}

void history_search_destroy(history_search_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    history_search_t *self = *self_p;
    atomic_store(&self->stop, true);
    if (self->started) {
        history_search_wake(self);
        pthread_join(self->thread, NULL);
    }
    s_index_free(&self->index);
    ncc_db_destroy(&self->db);
    s_grams_free(&self->scratch);
    free(self->cps.cp);
    if (self->wake[0] >= 0)
        close(self->wake[0]);
    if (self->wake[1] >= 0)
        close(self->wake[1]);
    pthread_rwlock_destroy(&self->lock);
    pthread_mutex_destroy(&self->moved_lock);
    pthread_cond_destroy(&self->moved);
    free(self->conninfo);
    free(self);
    *self_p = NULL;
}

void history_search_wake(history_search_t *self)
{
    if (self && self->wake[1] >= 0) {
        ssize_t n = write(self->wake[1], "w", 1);
        (void)n; /* a full pipe already says "poll now" */
    }
}

bool history_search_wait(history_search_t *self, int64_t cursor, int timeout_ms)
{
    if (atomic_load(&self->stat_builds) == 0)
        return false; /* not built yet */
    if (atomic_load(&self->stat_cursor) >= cursor)
        return true;
    history_search_wake(self);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&self->moved_lock);
    int rc = 0;
    while (atomic_load(&self->stat_cursor) < cursor && rc == 0)
        rc = pthread_cond_timedwait(&self->moved, &self->moved_lock, &deadline);
    bool caught_up = atomic_load(&self->stat_cursor) >= cursor;
    pthread_mutex_unlock(&self->moved_lock);
    return caught_up;
}

int history_search_run(history_search_t *self, const history_query_t *query, int64_t **ret_ids,
                       size_t *ret_n, int64_t *ret_total)
{
    *ret_ids = NULL;
    *ret_n = 0;
    *ret_total = 0;
    pthread_rwlock_rdlock(&self->lock);
    int rc = self->index ? s_index_query(self->index, query, ret_ids, ret_n, ret_total) : -EAGAIN;
    pthread_rwlock_unlock(&self->lock);
    return rc;
}

void history_search_status(history_search_t *self, history_search_status_t *ret_status)
{
    memset(ret_status, 0, sizeof *ret_status);
    pthread_rwlock_rdlock(&self->lock);
    const s_index_t *index = self->index;
    if (index) {
        ret_status->ready = true;
        ret_status->records = index->live;
        ret_status->dead = index->dead;
        ret_status->keys = (int64_t)index->key_count;
        ret_status->postings = index->postings;
        ret_status->bytes = s_index_bytes(index);
    }
    pthread_rwlock_unlock(&self->lock);
    ret_status->cursor = atomic_load(&self->stat_cursor);
    ret_status->build_ms = atomic_load(&self->stat_build_ms);
    ret_status->builds = atomic_load(&self->stat_builds);
}
