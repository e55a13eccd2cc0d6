/* masters_kinds: the table of master kinds (data), the checks of single
 * values, and the small helpers the masters files share: text buffers, the
 * SQL fragments made from a kind, and error lists (masters.h). */
#include "masters.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the kinds -------------------------------------------------------------------- */

/* clang-format off */
/*  name              type               req    max  ref            search filter unique */
static const masters_column_t s_departments[] = {
    {"code",          MASTERS_CODE,      true,  32,  NULL,          true,  false, false},
    {"name",          MASTERS_TEXT,      true,  100, NULL,          true,  false, false},
    {"parent_code",   MASTERS_REF,       false, 32,  "departments", false, true,  false},
    {"phone",         MASTERS_PHONE,     false, 32,  NULL,          true,  false, false},
    {"active",        MASTERS_BOOL,      false, 0,   NULL,          false, false, false},
};
static const masters_column_t s_directory[] = {
    {"code",            MASTERS_CODE,    true,  32,  NULL,          true,  false, false},
    {"department_code", MASTERS_REF,     true,  32,  "departments", false, true,  false},
    {"section",         MASTERS_TEXT,    false, 100, NULL,          true,  false, false},
    {"name",            MASTERS_TEXT,    true,  100, NULL,          true,  false, false},
    {"phone",           MASTERS_PHONE,   true,  32,  NULL,          true,  false, false},
    {"hours",           MASTERS_TEXT,    false, 100, NULL,          false, false, false},
    {"active",          MASTERS_BOOL,    false, 0,   NULL,          false, false, false},
};
static const masters_column_t s_choices[] = {
    {"code",          MASTERS_CODE,      true,  32,  NULL,          true,  false, false},
    {"name",          MASTERS_TEXT,      true,  100, NULL,          true,  false, false},
    {"sort_order",    MASTERS_INT,       false, 8,   NULL,          false, false, false},
    {"active",        MASTERS_BOOL,      false, 0,   NULL,          false, false, false},
};
static const masters_column_t s_faq_classes[] = {
    {"code",            MASTERS_CODE,    true,  32,  NULL,          true,  false, false},
    {"name",            MASTERS_TEXT,    true,  100, NULL,          true,  false, false},
    {"parent_code",     MASTERS_REF,     false, 32,  "faq-classes", false, true,  false},
    {"department_code", MASTERS_REF,     false, 32,  "departments", false, true,  false},
    {"sort_order",      MASTERS_INT,     false, 8,   NULL,          false, false, false},
    {"active",          MASTERS_BOOL,    false, 0,   NULL,          false, false, false},
};
static const masters_column_t s_users[] = {
    {"login",         MASTERS_LOGIN,     true,  64,  NULL,          true,  false, false},
    {"name",          MASTERS_TEXT,      true,  200, NULL,          true,  false, false},
    {"roles",         MASTERS_ROLES,     true,  64,  NULL,          false, false, false},
    {"extension",     MASTERS_EXTENSION, false, 32,  NULL,          true,  false, true},
    {"skills",        MASTERS_CODES,     false, 200, "skills",      false, false, false},
    {"active",        MASTERS_BOOL,      false, 0,   NULL,          false, false, false},
};
/* ACD (R25, docs/routing.md) */
static const masters_column_t s_queues[] = {
    {"code",             MASTERS_CODE,   true,  32,  NULL,          true,  false, false},
    {"name",             MASTERS_TEXT,   true,  100, NULL,          true,  false, false},
    {"department_code",  MASTERS_REF,    false, 32,  "departments", false, true,  false},
    {"skills",           MASTERS_CODES,  false, 200, "skills",      false, false, false},
    {"priority",         MASTERS_INT,    false, 8,   NULL,          false, false, false},
    {"max_wait_seconds", MASTERS_INT,    false, 8,   NULL,          false, false, false},
    {"overflow_code",    MASTERS_REF,    false, 32,  "queues",      false, true,  false},
    {"distribution",     MASTERS_WORD,   false, 32,  "longest_idle round_robin fewest_calls ring_all", false, true, false},
    {"active",           MASTERS_BOOL,   false, 0,   NULL,          false, false, false},
};
static const masters_column_t s_announcements[] = {
    {"code",             MASTERS_CODE,   true,  32,  NULL,          true,  false, false},
    {"name",             MASTERS_TEXT,   true,  100, NULL,          true,  false, false},
    {"text_ja",          MASTERS_TEXT,   false, 500, NULL,          true,  false, false},
    {"text_en",          MASTERS_TEXT,   false, 500, NULL,          false, false, false},
    {"active",           MASTERS_BOOL,   false, 0,   NULL,          false, false, false},
};
static const masters_column_t s_routing_rules[] = {
    {"code",             MASTERS_CODE,   true,  32,  NULL,          true,  false, false},
    {"name",             MASTERS_TEXT,   true,  100, NULL,          true,  false, false},
    {"priority",         MASTERS_INT,    false, 8,   NULL,          false, false, false},
    {"called_number",    MASTERS_PHONE,  false, 32,  NULL,          true,  false, false},
    {"ivr_choice",       MASTERS_PHONE,  false, 16,  NULL,          false, false, false},
    {"weekdays",         MASTERS_DAYS,   false, 40,  NULL,          false, false, false},
    {"hours",            MASTERS_HOURS,  false, 11,  NULL,          false, false, false},
    {"queue_code",       MASTERS_REF,    true,  32,  "queues",      false, true,  false},
    {"skills",           MASTERS_CODES,  false, 200, "skills",      false, false, false},
    {"active",           MASTERS_BOOL,   false, 0,   NULL,          false, false, false},
};
/* clang-format on */

#define S_COLUMNS(array) array, sizeof array / sizeof array[0]
#define S_MESSAGES(item, list, plural, single)                                                     \
    &ncc__directory__##item##__descriptor, &ncc__directory__##list##__descriptor,                  \
        &ncc__directory__list_##plural##__descriptor, &ncc__directory__get_##single##__descriptor, \
        &ncc__directory__create_##single##__descriptor,                                            \
        &ncc__directory__update_##single##__descriptor,                                            \
        &ncc__directory__delete_##single##__descriptor,                                            \
        &ncc__directory__import_##plural##__descriptor,                                            \
        &ncc__directory__export_##plural##__descriptor

const masters_kind_t masters_kinds[] = {
    {"departments", "department", "departments", false, true, S_COLUMNS(s_departments),
     S_MESSAGES(department, department_list, departments, department)},
    {"directory", "phone book entry", "directory_entries", false, true, S_COLUMNS(s_directory),
     S_MESSAGES(directory_entry, directory_entry_list, directory_entries, directory_entry)},
    {"categories", "category", "categories", false, true, S_COLUMNS(s_choices),
     S_MESSAGES(category, category_list, categories, category)},
    {"reception-types", "reception type", "reception_types", false, true, S_COLUMNS(s_choices),
     S_MESSAGES(choice, choice_list, reception_types, reception_type)},
    {"handling-types", "handling type", "handling_types", false, true, S_COLUMNS(s_choices),
     S_MESSAGES(choice, choice_list, handling_types, handling_type)},
    {"faq-classes", "FAQ class", "faq_classes", false, true, S_COLUMNS(s_faq_classes),
     S_MESSAGES(faq_class, faq_class_list, faq_classes, faq_class)},
    {"skills", "skill", "skills", false, true, S_COLUMNS(s_choices),
     S_MESSAGES(choice, choice_list, skills, skill)},
    {"queues", "queue", "queues", false, true, S_COLUMNS(s_queues),
     S_MESSAGES(queue, queue_list, queues, queue)},
    {"routing-rules", "routing rule", "routing_rules", false, true, S_COLUMNS(s_routing_rules),
     S_MESSAGES(routing_rule, routing_rule_list, routing_rules, routing_rule)},
    {"announcements", "announcement", "announcements", false, true, S_COLUMNS(s_announcements),
     S_MESSAGES(announcement, announcement_list, announcements, announcement)},
    /* Users: list, get, create, update and retire are users.c's (passwords,
     * TOTP, the last administrator); CSV and history come from here. */
    {"users", "user", "users", true, false, S_COLUMNS(s_users), &ncc__directory__user__descriptor,
     &ncc__directory__user_list__descriptor, NULL, NULL, NULL, NULL, NULL,
     &ncc__directory__import_users__descriptor, &ncc__directory__export_users__descriptor},
    {NULL, NULL, NULL, false, false, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

const masters_kind_t *masters_kind_find(const char *name)
{
    for (const masters_kind_t *kind = masters_kinds; name && kind->name; kind++)
        if (strcmp(kind->name, name) == 0)
            return kind;
    return NULL;
}

const masters_column_t *masters_column_find(const masters_kind_t *kind, const char *name)
{
    for (size_t i = 0; name && i < kind->n_columns; i++)
        if (strcmp(kind->columns[i].name, name) == 0)
            return &kind->columns[i];
    return NULL;
}

const char *masters_sql_type(const masters_column_t *column)
{
    switch (column->type) {
    case MASTERS_INT:
        return "integer";
    case MASTERS_BOOL:
        return "boolean";
    case MASTERS_ROLES:
        return "text[]";
    default:
        return "text";
    }
}

/* ---- values ----------------------------------------------------------------------- */

/* Code points of well-formed UTF-8 without control characters, or -1. */
static long s_chars(const char *text)
{
    if (!directory_text_ok(text, SIZE_MAX))
        return -1;
    long n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

/* `in` without the spaces and tabs around it, into buf; NULL when too long. */
static const char *s_trim(const char *in, char *buf, size_t len)
{
    while (*in == ' ' || *in == '\t')
        in++;
    size_t n = strlen(in);
    while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\t'))
        n--;
    if (n >= len)
        return NULL;
    memcpy(buf, in, n);
    buf[n] = '\0';
    return buf;
}

static bool s_all_of(const char *text, const char *allowed, bool alnum)
{
    for (const char *p = text; *p; p++) {
        char c = *p;
        bool ok = (alnum && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) ||
                  (c >= '0' && c <= '9') || (c && strchr(allowed, c));
        if (!ok)
            return false;
    }
    return true;
}

/* Roles "operator admin" / "operator,admin" -> "{operator,admin}" in buf. */
static const char *s_roles(const char *in, char *buf, size_t len)
{
    char copy[128], *names[8];
    size_t n = 0;
    if (strlen(in) >= sizeof copy)
        return "roles are too long";
    snprintf(copy, sizeof copy, "%s", in);
    for (char *p = copy; *p;) {
        p += strspn(p, " ,\t");
        if (!*p)
            break;
        if (n == sizeof names / sizeof names[0])
            return "too many roles";
        names[n++] = p;
        p += strcspn(p, " ,\t");
        if (*p)
            *p++ = '\0';
    }
    char list[64];
    if (n == 0 || !directory_roles_format(names, n, buf, len, list, sizeof list))
        return "roles must hold at least one of operator, supervisor, admin, staff "
               "(separated by spaces)";
    return NULL;
}

#define S_LIST_MAX 16 /* codes in a MASTERS_CODES value */

/* Codes "tax, pension tax" -> "tax pension" in buf (each once, as given). */
static const char *s_codes(const char *in, char *buf, size_t len)
{
    size_t used = 0, n = 0;
    buf[0] = '\0';
    for (const char *p = in; *p;) {
        p += strspn(p, " ,\t");
        size_t word = strcspn(p, " ,\t");
        if (word == 0)
            break;
        if (word > 32)
            return "a code in the list is longer than 32 characters";
        char code[33];
        memcpy(code, p, word);
        code[word] = '\0';
        p += word;
        if (!s_all_of(code, "._-", true))
            return "a code is made of A-Z a-z 0-9 . _ - only (codes separated by spaces)";
        /* already listed? */
        bool seen = false;
        for (const char *q = buf; *q && !seen;) {
            size_t qlen = strcspn(q, " ");
            seen = qlen == word && memcmp(q, code, word) == 0;
            q += qlen + (q[qlen] == ' ');
        }
        if (seen)
            continue;
        if (++n > S_LIST_MAX)
            return "at most 16 codes may be listed";
        if (used + word + 2 > len)
            return "the list is too long";
        used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? " " : "", code);
    }
    return NULL;
}

/* Days "fri,mon 月" -> "mon fri" in buf (week order). */
static const char *s_days(const char *in, char *buf, size_t len)
{
    static const char *const names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    static const char *const kanji[7] = {"月", "火", "水", "木", "金", "土", "日"};
    bool on[7] = {false};
    for (const char *p = in; *p;) {
        p += strspn(p, " ,\t");
        size_t word = strcspn(p, " ,\t");
        if (word == 0)
            break;
        int day = -1;
        for (int d = 0; d < 7 && day < 0; d++)
            if ((word == 3 && strncasecmp(p, names[d], 3) == 0) ||
                (word == strlen(kanji[d]) && memcmp(p, kanji[d], word) == 0))
                day = d;
        if (day < 0)
            return "days are mon tue wed thu fri sat sun (or 月 火 水 木 金 土 日), separated "
                   "by spaces";
        on[day] = true;
        p += word;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < 7; d++)
        if (on[d] && used + 5 <= len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? " " : "", names[d]);
    return NULL;
}

/* "8:30-17:15" -> "08:30-17:15" in buf. */
static const char *s_hours(const char *in, char *buf, size_t len)
{
    static const char *const why = "hours are a range HH:MM-HH:MM (e.g. 08:30-17:15), the start "
                                   "before the end, the end at most 24:00";
    unsigned h1, m1, h2, m2;
    int end = 0;
    if (sscanf(in, "%2u:%2u-%2u:%2u%n", &h1, &m1, &h2, &m2, &end) != 4 || in[end] != '\0' ||
        strchr(in, ' ') || strchr(in, '+'))
        return why;
    unsigned from = h1 * 60 + m1, to = h2 * 60 + m2;
    if (m1 > 59 || m2 > 59 || h1 > 23 || to > 24 * 60 || from >= to)
        return why;
    snprintf(buf, len, "%02u:%02u-%02u:%02u", h1, m1, h2, m2);
    return NULL;
}

const char *masters_value_check(const masters_column_t *column, const char *in, char *buf,
                                size_t len, const char **ret_value)
{
    static const char *const s_true = "true", *const s_false = "false", *const s_zero = "0";
    const char *value = in ? in : "";
    if (column->type != MASTERS_TEXT) {
        value = s_trim(value, buf, len);
        if (!value)
            return "the value is too long";
    }
    long chars = s_chars(value);
    if (chars < 0)
        return "the value must be text without control characters";
    if (chars == 0) {
        if (column->required)
            return "a value is required";
        switch (column->type) {
        case MASTERS_REF:
        case MASTERS_EXTENSION:
            *ret_value = NULL;
            return NULL;
        case MASTERS_BOOL:
            *ret_value = s_true;
            return NULL;
        case MASTERS_INT:
            *ret_value = s_zero;
            return NULL;
        case MASTERS_WORD:
            snprintf(buf, len, "%.*s", (int)strcspn(column->ref, " "), column->ref);
            *ret_value = buf;
            return NULL;
        default:
            *ret_value = "";
            return NULL;
        }
    }
    if (column->max_chars && (unsigned long)chars > column->max_chars) {
        switch (column->type) {
        case MASTERS_TEXT:
            return "the text is too long (see docs/masters.md for the limits)";
        default:
            return "the value is too long";
        }
    }
    switch (column->type) {
    case MASTERS_CODE:
    case MASTERS_REF:
        if (!s_all_of(value, "._-", true))
            return "a code is made of A-Z a-z 0-9 . _ - only";
        break;
    case MASTERS_LOGIN:
        if (!s_all_of(value, "._@-", true))
            return "a login is made of A-Z a-z 0-9 . _ @ - only";
        break;
    case MASTERS_PHONE:
        if (!s_all_of(value, "+-()#* ", false))
            return "a phone number is made of half-width 0-9 + - ( ) # * and spaces";
        break;
    case MASTERS_EXTENSION:
        if (!s_all_of(value, "*#+-", false))
            return "an extension is made of 0-9 * # + - only";
        break;
    case MASTERS_INT: {
        char *end = NULL;
        errno = 0;
        long number = strtol(value, &end, 10);
        if (errno || !end || *end || number < -1000000 || number > 1000000)
            return "a whole number between -1000000 and 1000000 is expected";
        break;
    }
    case MASTERS_BOOL:
        if (strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0 ||
            strcasecmp(value, "yes") == 0) {
            value = s_true;
        } else if (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0 ||
                   strcasecmp(value, "no") == 0) {
            value = s_false;
        } else {
            return "true or false is expected";
        }
        break;
    case MASTERS_ROLES: {
        char roles[64];
        const char *why = s_roles(value, roles, sizeof roles);
        if (why)
            return why;
        snprintf(buf, len, "%s", roles);
        value = buf;
        break;
    }
    case MASTERS_CODES:
    case MASTERS_DAYS:
    case MASTERS_HOURS: {
        char list[256];
        const char *why = column->type == MASTERS_CODES  ? s_codes(value, list, sizeof list)
                          : column->type == MASTERS_DAYS ? s_days(value, list, sizeof list)
                                                         : s_hours(value, list, sizeof list);
        if (why)
            return why;
        snprintf(buf, len, "%s", list);
        value = buf;
        break;
    }
    case MASTERS_WORD: {
        size_t n = strlen(value);
        bool found = false;
        for (const char *w = column->ref; *w && !found;) {
            size_t wl = strcspn(w, " ");
            found = wl == n && strncmp(w, value, n) == 0;
            w += wl + (w[wl] == ' ');
        }
        if (!found) {
            static char why[160];
            snprintf(why, sizeof why, "one of %s is expected", column->ref);
            return why;
        }
        break;
    }
    case MASTERS_TEXT:
        break;
    }
    *ret_value = value;
    return NULL;
}

/* ---- text buffers ------------------------------------------------------------------- */

static bool s_reserve(masters_buf_t *buf, size_t more)
{
    if (buf->failed)
        return false;
    if (buf->len + more + 1 <= buf->cap)
        return true;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->len + more + 1)
        cap *= 2;
    char *grown = realloc(buf->data, cap);
    if (!grown) {
        buf->failed = true;
        return false;
    }
    buf->data = grown;
    buf->cap = cap;
    return true;
}

void masters_buf_addn(masters_buf_t *buf, const char *text, size_t len)
{
    if (!s_reserve(buf, len))
        return;
    memcpy(buf->data + buf->len, text, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

void masters_buf_add(masters_buf_t *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !s_reserve(buf, (size_t)n)) {
        buf->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
}

void masters_buf_free(masters_buf_t *buf)
{
    free(buf->data);
    memset(buf, 0, sizeof *buf);
}

/* ---- SQL fragments ---------------------------------------------------------------------- */

void masters_sql_key(masters_buf_t *buf, const masters_kind_t *kind, const char *alias)
{
    if (kind->nocase_key)
        masters_buf_add(buf, "lower(%s.%s)", alias, masters_key(kind)->name);
    else
        masters_buf_add(buf, "%s.%s", alias, masters_key(kind)->name);
}

void masters_sql_values(masters_buf_t *buf, const masters_kind_t *kind, const char *alias)
{
    masters_buf_add(buf, "jsonb_build_object('id', %s.id", alias);
    for (size_t i = 0; i < kind->n_columns; i++)
        masters_buf_add(buf, ", '%s', %s.%s", kind->columns[i].name, alias, kind->columns[i].name);
    masters_buf_add(buf, ", 'version', %s.version)", alias);
}

void masters_sql_item(masters_buf_t *buf, const masters_kind_t *kind, const char *alias)
{
    masters_buf_add(buf, "(");
    masters_sql_values(buf, kind, alias);
    masters_buf_add(buf,
                    " || jsonb_build_object('created_at', to_char(%s.created_at AT TIME ZONE "
                    "'Asia/Tokyo', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+09:00\"'), 'updated_at', "
                    "to_char(%s.updated_at AT TIME ZONE 'Asia/Tokyo', "
                    "'YYYY-MM-DD\"T\"HH24:MI:SS\"+09:00\"')))",
                    alias, alias);
}

/* ---- errors ----------------------------------------------------------------------------- */

void masters_errors_add(masters_errors_t *errors, size_t line, const char *field, const char *fmt,
                        ...)
{
    errors->total++;
    if (errors->count >= MASTERS_ERRORS_KEPT)
        return;
    if (errors->count == errors->cap) {
        size_t cap = errors->cap ? errors->cap * 2 : 16;
        masters_error_t *grown = realloc(errors->items, cap * sizeof *grown);
        if (!grown) {
            errors->failed = true;
            return;
        }
        errors->items = grown;
        errors->cap = cap;
    }
    masters_error_t *error = &errors->items[errors->count++];
    error->line = line;
    error->seq = errors->count;
    error->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error->message, sizeof error->message, fmt, ap);
    va_end(ap);
}

static int s_error_order(const void *a, const void *b)
{
    const masters_error_t *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void masters_errors_sort(masters_errors_t *errors)
{
    if (errors->count > 1)
        qsort(errors->items, errors->count, sizeof errors->items[0], s_error_order);
}

void masters_errors_free(masters_errors_t *errors)
{
    free(errors->items);
    memset(errors, 0, sizeof *errors);
}
