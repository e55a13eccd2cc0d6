/* record_form: the record form setting (R3, R38): which fields the operator's
 * form for an interaction record (応対履歴) shows, in what order, with what
 * labels, which are required, where their choices come from, and the
 * statuses of a record with their allowed transitions. Administrators change
 * it (UpdateRecordForm, admin only, optimistic version); every user role and
 * every daemon reads it (GetRecordForm); every change keeps its before and
 * after (ListRecordFormHistory) and is announced as RecordFormChanged through
 * the outbox in the transaction of the change, so ncc-history and the
 * browsers follow it live. The rules a definition must keep are in
 * s_validate and docs/record-form.md; tables in sql/004_record_form.sql,
 * messages in proto/settings.proto. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "masters.h"
#include "ncc/json.h"
#include "ncc/roles.h"
#include "settings.pb-c.h"

#define S_MAX_FIELDS         60
#define S_MAX_STATUSES       20
#define S_MAX_OPTIONS        200
#define S_MAX_NEXT           20
#define S_LABEL_MAX_CHARS    60
#define S_TEXT_MAX_CHARS     200   /* max_length of a text field at most */
#define S_TEXTAREA_MAX_CHARS 10000 /* max_length of a textarea at most */
#define S_CODE_MAX_BYTES     32
#define S_PROBLEMS_KEPT      100
#define S_HISTORY_PER_PAGE   20
#define S_HISTORY_MAX        100

/* ---- the rules ------------------------------------------------------------------ */

/* The types a field may have. */
static const char *const s_types[] = {"text", "textarea", "choice",  "number",
                                      "date", "datetime", "faq_ids", NULL};

/* The master kinds a choice field may take its values from (docs/masters.md). */
static const char *const s_lists[] = {
    "reception-types", "handling-types", "categories", "departments",
    "directory",       "faq-classes",    NULL};

/* The channels of API.md: the only codes the built-in `channel` may offer. */
static const char *const s_channels[] = {"phone", "sms", "form", "chat", "line", "visit", NULL};

/* Record fields that are kept by ncc-history itself, never form fields
 * (`status` is governed by the statuses list). */
static const char *const s_reserved[] = {"id",         "status",  "created_at",
                                         "updated_at", "version", NULL};

/* A record field of API.md that the form may show. */
typedef struct {
    const char *name;
    const char *type;    /* its type; "text" and "textarea" stand for either */
    const char *choices; /* choice: the master kind its values come from; NULL: own options */
    bool system;         /* filled in by the system (shown read-only): never required */
    bool kept;           /* every record needs it: on the form, visible and required */
} s_builtin_t;

static const s_builtin_t s_builtins[] = {
    {"receipt_id", "text", NULL, true, false},
    {"call_id", "text", NULL, true, false},
    {"channel", "choice", NULL, false, false},
    {"operator_id", "text", NULL, true, false},
    {"operator_name", "text", NULL, true, false},
    {"started_at", "datetime", NULL, false, true},
    {"ended_at", "datetime", NULL, false, false},
    {"wrapup_ended_at", "datetime", NULL, false, false},
    {"reception_type", "choice", "reception-types", false, false},
    {"department_id", "choice", "departments", false, false},
    {"handling_type", "choice", "handling-types", false, false},
    {"faq_ids", "faq_ids", NULL, false, false},
    {"category", "choice", "categories", false, false},
    {"inquiry", "textarea", NULL, false, true},
    {"response", "textarea", NULL, false, false},
    {"transfer_to", "choice", "directory", false, false},
    {"summary", "textarea", NULL, true, false},
};
#define S_BUILTINS (sizeof s_builtins / sizeof s_builtins[0])

static bool s_in(const char *const *list, const char *name)
{
    for (size_t i = 0; name && list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

static const s_builtin_t *s_builtin(const char *name)
{
    for (size_t i = 0; name && i < S_BUILTINS; i++)
        if (strcmp(s_builtins[i].name, name) == 0)
            return &s_builtins[i];
    return NULL;
}

static bool s_textual(const char *type)
{
    return type && (strcmp(type, "text") == 0 || strcmp(type, "textarea") == 0);
}

/* x_ followed by 1 to 30 of a-z 0-9 _. */
static bool s_custom_name(const char *name)
{
    size_t len = strlen(name);
    if (len < 3 || len > 32 || name[0] != 'x' || name[1] != '_')
        return false;
    for (const char *p = name + 2; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* A status code: [a-z][a-z0-9_]{0,31}. */
static bool s_status_code(const char *code)
{
    size_t len = strlen(code);
    if (len < 1 || len > S_CODE_MAX_BYTES || code[0] < 'a' || code[0] > 'z')
        return false;
    for (const char *p = code; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* An option code: 1 to 32 of A-Z a-z 0-9 . _ - (as the masters' codes). */
static bool s_option_code(const char *code)
{
    size_t len = strlen(code);
    if (len < 1 || len > S_CODE_MAX_BYTES)
        return false;
    for (const char *p = code; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Characters (code points) of valid UTF-8. */
static size_t s_chars(const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

/* ---- problems ------------------------------------------------------------------- */

typedef struct {
    char field[128];
    char message[240];
} s_problem_t;

typedef struct {
    s_problem_t *items; /* S_PROBLEMS_KEPT of them */
    size_t count;       /* kept */
    size_t total;       /* found */
} s_problems_t;

static void s_problem(s_problems_t *problems, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_problem(s_problems_t *problems, const char *field, const char *fmt, ...)
{
    problems->total++;
    if (problems->count == S_PROBLEMS_KEPT)
        return;
    s_problem_t *p = &problems->items[problems->count++];
    snprintf(p->field, sizeof p->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof p->message, fmt, ap);
    va_end(ap);
}

/* A label: label_ja required, label_en optional, each at most
 * S_LABEL_MAX_CHARS characters of text without control characters. */
static void s_check_label(s_problems_t *problems, const char *base, const char *name,
                          const char *text, bool required)
{
    char path[128];
    snprintf(path, sizeof path, "%s.%s", base, name);
    if (!text || !*text) {
        if (required)
            s_problem(problems, path, "%s: a label is required", path);
        return;
    }
    if (!directory_text_ok(text, 4 * S_LABEL_MAX_CHARS) || s_chars(text) > S_LABEL_MAX_CHARS)
        s_problem(problems, path, "%s: at most %d characters, without control characters", path,
                  S_LABEL_MAX_CHARS);
}

/* The list of a choice field (choices or options), or a list where none
 * belongs. */
static void s_check_list(s_problems_t *problems, const char *base,
                         const Ncc__Directory__RecordFormField *field, const s_builtin_t *builtin)
{
    char path[128];
    bool choice = field->type && strcmp(field->type, "choice") == 0;
    bool has_kind = field->choices && *field->choices;
    if (!choice) {
        if (has_kind) {
            snprintf(path, sizeof path, "%s.choices", base);
            s_problem(problems, path, "%s: only a choice field has a list", path);
        }
        if (field->n_options > 0) {
            snprintf(path, sizeof path, "%s.options", base);
            s_problem(problems, path, "%s: only a choice field has a list", path);
        }
        return;
    }
    if (has_kind && field->n_options > 0) {
        snprintf(path, sizeof path, "%s.options", base);
        s_problem(problems, path, "%s: give either choices (a master) or options, not both", path);
        return;
    }
    if (!has_kind && field->n_options == 0) {
        snprintf(path, sizeof path, "%s.choices", base);
        s_problem(problems, path,
                  "%s: a choice field needs a list: choices (reception-types, handling-types, "
                  "categories, departments, directory, faq-classes) or options",
                  path);
        return;
    }
    if (has_kind) {
        snprintf(path, sizeof path, "%s.choices", base);
        if (!s_in(s_lists, field->choices))
            s_problem(problems, path,
                      "%s: unknown list: one of reception-types, handling-types, categories, "
                      "departments, directory, faq-classes",
                      path);
        else if (builtin && !builtin->choices)
            s_problem(problems, path, "%s: %s has options of its own, not a master", path,
                      builtin->name);
        else if (builtin && strcmp(builtin->choices, field->choices) != 0)
            s_problem(problems, path, "%s: %s takes its values from %s", path, builtin->name,
                      builtin->choices);
        return;
    }
    snprintf(path, sizeof path, "%s.options", base);
    if (builtin && builtin->choices) {
        s_problem(problems, path, "%s: %s takes its values from %s (choices)", path, builtin->name,
                  builtin->choices);
        return;
    }
    if (field->n_options > S_MAX_OPTIONS) {
        s_problem(problems, path, "%s: at most %d options", path, S_MAX_OPTIONS);
        return;
    }
    for (size_t k = 0; k < field->n_options; k++) {
        const Ncc__Directory__RecordFormOption *option = field->options[k];
        char item[160], code_path[192];
        snprintf(item, sizeof item, "%s[%zu]", path, k);
        snprintf(code_path, sizeof code_path, "%s.code", item);
        const char *code = option->code ? option->code : "";
        if (!s_option_code(code)) {
            s_problem(problems, code_path, "%s: 1 to 32 of A-Z a-z 0-9 . _ -", code_path);
        } else if (builtin && !s_in(s_channels, code)) {
            s_problem(problems, code_path,
                      "%s: %s offers only phone, sms, form, chat, line and visit", code_path,
                      builtin->name);
        } else {
            for (size_t j = 0; j < k; j++) {
                if (field->options[j]->code && strcmp(field->options[j]->code, code) == 0) {
                    s_problem(problems, code_path, "%s: the code %s is also %s[%zu]", code_path,
                              code, path, j);
                    break;
                }
            }
        }
        s_check_label(problems, item, "label_ja", option->label_ja, true);
        s_check_label(problems, item, "label_en", option->label_en, false);
    }
}

static void s_check_field(s_problems_t *problems, const Ncc__Directory__RecordFormDefinition *def,
                          size_t i)
{
    const Ncc__Directory__RecordFormField *field = def->fields[i];
    char base[64], path[128];
    snprintf(base, sizeof base, "definition.fields[%zu]", i);

    /* The name: a record field of API.md or x_..., once. */
    snprintf(path, sizeof path, "%s.name", base);
    const char *name = field->name ? field->name : "";
    const s_builtin_t *builtin = s_builtin(name);
    if (!*name) {
        s_problem(problems, path, "%s: a name is required", path);
    } else if (s_in(s_reserved, name)) {
        s_problem(problems, path, "%s: %s is kept by the system and is not a form field%s", path,
                  name,
                  strcmp(name, "status") == 0 ? " (the statuses are in definition.statuses)" : "");
    } else if (!builtin && !s_custom_name(name)) {
        s_problem(problems, path,
                  "%s: not a record field; a field of your own is named x_ followed by 1 to 30 "
                  "of a-z 0-9 _",
                  path);
    } else {
        for (size_t j = 0; j < i; j++) {
            if (def->fields[j]->name && strcmp(def->fields[j]->name, name) == 0) {
                s_problem(problems, path, "%s: %s is also definition.fields[%zu]", path, name, j);
                break;
            }
        }
    }

    s_check_label(problems, base, "label_ja", field->label_ja, true);
    s_check_label(problems, base, "label_en", field->label_en, false);

    /* The type: one of s_types; a built-in keeps its own. */
    snprintf(path, sizeof path, "%s.type", base);
    const char *type = field->type;
    bool type_ok = type && s_in(s_types, type);
    if (!type_ok) {
        s_problem(problems, path,
                  "%s: one of text, textarea, choice, number, date, datetime, faq_ids", path);
    } else if (builtin && !(strcmp(builtin->type, type) == 0 ||
                            (s_textual(builtin->type) && s_textual(type)))) {
        s_problem(problems, path, "%s: %s is a %s field", path, builtin->name,
                  s_textual(builtin->type) ? "text or textarea" : builtin->type);
        type_ok = false;
    }

    /* max_length: text and textarea only. */
    if (field->has_max_length) {
        snprintf(path, sizeof path, "%s.max_length", base);
        int limit = type && strcmp(type, "textarea") == 0 ? S_TEXTAREA_MAX_CHARS : S_TEXT_MAX_CHARS;
        if (!s_textual(type))
            s_problem(problems, path, "%s: only text and textarea fields have a max_length", path);
        else if (field->max_length < 1 || field->max_length > limit)
            s_problem(problems, path, "%s: between 1 and %d for a %s field", path, limit, type);
    }

    if (type_ok)
        s_check_list(problems, base, field, builtin);

    /* Required and visible. */
    bool visible = !field->has_visible || field->visible;
    bool required = field->has_required && field->required;
    if (builtin && builtin->kept && !visible) {
        snprintf(path, sizeof path, "%s.visible", base);
        s_problem(problems, path, "%s: %s must stay visible: every record needs it", path, name);
    } else if (builtin && builtin->kept && !required) {
        snprintf(path, sizeof path, "%s.required", base);
        s_problem(problems, path, "%s: %s must stay required: every record needs it", path, name);
    } else if (builtin && builtin->system && required) {
        snprintf(path, sizeof path, "%s.required", base);
        s_problem(problems, path, "%s: %s is filled in by the system: it cannot be required", path,
                  name);
    } else if (required && !visible) {
        snprintf(path, sizeof path, "%s.visible", base);
        s_problem(problems, path, "%s: a required field must be visible", path);
    }
}

static int s_status_index(const Ncc__Directory__RecordFormDefinition *def, const char *code)
{
    for (size_t j = 0; code && j < def->n_statuses; j++)
        if (def->statuses[j]->code && strcmp(def->statuses[j]->code, code) == 0)
            return (int)j;
    return -1;
}

static void s_check_statuses(s_problems_t *problems,
                             const Ncc__Directory__RecordFormDefinition *def)
{
    char base[64], path[128];
    size_t n = def->n_statuses;
    if (n == 0) {
        s_problem(problems, "definition.statuses", "definition.statuses: at least one status");
        return;
    }
    if (n > S_MAX_STATUSES) {
        s_problem(problems, "definition.statuses", "definition.statuses: at most %d statuses",
                  S_MAX_STATUSES);
        return;
    }
    size_t before = problems->total;
    int initial = -1, finals = 0;
    for (size_t j = 0; j < n; j++) {
        const Ncc__Directory__RecordFormStatus *status = def->statuses[j];
        snprintf(base, sizeof base, "definition.statuses[%zu]", j);
        snprintf(path, sizeof path, "%s.code", base);
        const char *code = status->code ? status->code : "";
        if (!s_status_code(code)) {
            s_problem(problems, path, "%s: 1 to 32 of a-z 0-9 _, starting with a letter", path);
        } else {
            int first = s_status_index(def, code);
            if (first >= 0 && (size_t)first < j)
                s_problem(problems, path, "%s: %s is also definition.statuses[%d]", path, code,
                          first);
        }
        s_check_label(problems, base, "label_ja", status->label_ja, true);
        s_check_label(problems, base, "label_en", status->label_en, false);
        bool is_initial = status->has_initial && status->initial;
        bool is_final = status->has_final && status->final;
        if (is_initial) {
            if (initial >= 0) {
                snprintf(path, sizeof path, "%s.initial", base);
                s_problem(problems, path,
                          "%s: exactly one status is initial, and definition.statuses[%d] is", path,
                          initial);
            } else {
                initial = (int)j;
            }
            if (is_final) {
                snprintf(path, sizeof path, "%s.final", base);
                s_problem(problems, path, "%s: the initial status cannot also be final", path);
            }
        }
        if (is_final)
            finals++;
        if (status->n_next > S_MAX_NEXT) {
            snprintf(path, sizeof path, "%s.next", base);
            s_problem(problems, path, "%s: at most %d next statuses", path, S_MAX_NEXT);
            continue;
        }
        for (size_t k = 0; k < status->n_next; k++) {
            snprintf(path, sizeof path, "%s.next[%zu]", base, k);
            const char *next = status->next[k] ? status->next[k] : "";
            if (s_status_index(def, next) < 0)
                s_problem(problems, path, "%s: no status has the code %s", path, next);
            else if (strcmp(next, code) == 0)
                s_problem(problems, path, "%s: a status cannot lead to itself", path);
            else
                for (size_t l = 0; l < k; l++)
                    if (status->next[l] && strcmp(status->next[l], next) == 0) {
                        s_problem(problems, path, "%s: %s is listed twice", path, next);
                        break;
                    }
        }
        if (!is_final && status->n_next == 0) {
            snprintf(path, sizeof path, "%s.next", base);
            s_problem(problems, path,
                      "%s: a status that is not final needs at least one next status", path);
        }
    }
    if (initial < 0)
        s_problem(problems, "definition.statuses",
                  "definition.statuses: exactly one status must be initial (a new record starts "
                  "there); none is");
    if (finals == 0)
        s_problem(problems, "definition.statuses",
                  "definition.statuses: at least one status must be final (a record is complete "
                  "there)");
    if (initial < 0 || problems->total != before)
        return;
    /* Every status can be reached from the initial one. */
    bool reached[S_MAX_STATUSES] = {false};
    size_t queue[S_MAX_STATUSES], head = 0, tail = 0;
    reached[initial] = true;
    queue[tail++] = (size_t)initial;
    while (head < tail) {
        const Ncc__Directory__RecordFormStatus *status = def->statuses[queue[head++]];
        for (size_t k = 0; k < status->n_next; k++) {
            int to = s_status_index(def, status->next[k]);
            if (to >= 0 && !reached[to]) {
                reached[to] = true;
                queue[tail++] = (size_t)to;
            }
        }
    }
    for (size_t j = 0; j < n; j++) {
        if (reached[j])
            continue;
        snprintf(path, sizeof path, "definition.statuses[%zu]", j);
        s_problem(problems, path, "%s: %s cannot be reached from the initial status %s", path,
                  def->statuses[j]->code, def->statuses[initial]->code);
    }
}

/* Checks a definition against every rule (docs/record-form.md). */
static void s_validate(const Ncc__Directory__RecordFormDefinition *def, s_problems_t *problems)
{
    if (def->n_fields == 0) {
        s_problem(problems, "definition.fields", "definition.fields: the form needs fields");
    } else if (def->n_fields > S_MAX_FIELDS) {
        s_problem(problems, "definition.fields", "definition.fields: at most %d fields",
                  S_MAX_FIELDS);
    } else {
        for (size_t i = 0; i < def->n_fields; i++)
            s_check_field(problems, def, i);
        for (size_t b = 0; b < S_BUILTINS; b++) {
            if (!s_builtins[b].kept)
                continue;
            bool present = false;
            for (size_t i = 0; i < def->n_fields && !present; i++)
                present =
                    def->fields[i]->name && strcmp(def->fields[i]->name, s_builtins[b].name) == 0;
            if (!present)
                s_problem(problems, "definition.fields",
                          "definition.fields: %s must be on the form: every record needs it",
                          s_builtins[b].name);
        }
    }
    s_check_statuses(problems, def);
}

/* ---- storage ---------------------------------------------------------------------- */

/* Drops member `name` of `object` when it is an empty array: the stored
 * JSON does not depend on how the converter writes empty lists, so an
 * unchanged definition compares equal. */
static void s_drop_empty(cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    if (cJSON_IsArray(item) && cJSON_GetArraySize(item) == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(object, name);
}

/* The definition as stored: its JSON with every flag written out (visible
 * true, required, initial and final false where absent) and no empty lists.
 * Caller frees; NULL when out of memory. */
static char *s_canonical(const Ncc__Directory__RecordFormDefinition *def)
{
    cJSON *json = ncc_pb_to_json(&def->base);
    if (!json)
        return NULL;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(json, "fields"))
    {
        cJSON *field = (cJSON *)item;
        if (!cJSON_GetObjectItemCaseSensitive(field, "required"))
            cJSON_AddBoolToObject(field, "required", false);
        if (!cJSON_GetObjectItemCaseSensitive(field, "visible"))
            cJSON_AddBoolToObject(field, "visible", true);
        s_drop_empty(field, "options");
    }
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(json, "statuses"))
    {
        cJSON *status = (cJSON *)item;
        if (!cJSON_GetObjectItemCaseSensitive(status, "initial"))
            cJSON_AddBoolToObject(status, "initial", false);
        if (!cJSON_GetObjectItemCaseSensitive(status, "final"))
            cJSON_AddBoolToObject(status, "final", false);
        s_drop_empty(status, "next");
    }
    char *text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    return text;
}

/* The stored definition (JSON text) as a message (caller frees), or NULL
 * after logging: only an owner's hand edit could make it unreadable. */
static Ncc__Directory__RecordFormDefinition *s_definition_parse(const char *text)
{
    ProtobufCMessage *message = NULL;
    ncc_json_error_t err;
    if (ncc_json_parse_pb(&ncc__directory__record_form_definition__descriptor, text, strlen(text),
                          0, &message, &err) < 0) {
        ncc_error("record_form.unreadable", "the stored record form does not read: %s (%s)",
                  err.message, err.field);
        return NULL;
    }
    return (Ncc__Directory__RecordFormDefinition *)message;
}

/* Answers the current record form (outside a transaction, or inside one
 * before its commit: the caller's view). */
static void s_reply_form(directory_t *dir, ncc_reply_t *reply)
{
    PGresult *res = ncc_db_exec(dir->db,
                                "SELECT definition::text, version, " DIRECTORY_RFC3339(
                                    "updated_at") ", updated_by FROM record_form",
                                0, NULL, NULL);
    if (!res) {
        directory_reply_db_error(dir, reply, "read the record form");
        return;
    }
    Ncc__Directory__RecordFormDefinition *def =
        PQntuples(res) == 1 ? s_definition_parse(PQgetvalue(res, 0, 0)) : NULL;
    if (!def) {
        if (PQntuples(res) != 1)
            ncc_error("record_form.missing", "directory.record_form holds %d rows, not 1",
                      PQntuples(res));
        ncc_reply_error(reply, 500, "internal", NULL, "the record form cannot be read");
    } else {
        Ncc__Directory__RecordForm form = NCC__DIRECTORY__RECORD_FORM__INIT;
        form.has_version = true;
        form.version = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        form.definition = def;
        form.updated_at = PQgetvalue(res, 0, 2);
        form.updated_by = PQgetvalue(res, 0, 3);
        ncc_reply_message(reply, &form.base);
    }
    protobuf_c_message_free_unpacked(def ? &def->base : NULL, NULL);
    PQclear(res);
}

/* Answers the problems found (422, nothing changed). */
static void s_reply_problems(ncc_reply_t *reply, const s_problems_t *problems)
{
    Ncc__Directory__ApiError items[S_PROBLEMS_KEPT], *pointers[S_PROBLEMS_KEPT];
    for (size_t i = 0; i < problems->count; i++) {
        ncc__directory__api_error__init(&items[i]);
        items[i].code = "invalid_field";
        items[i].field = problems->items[i].field;
        items[i].message = problems->items[i].message;
        pointers[i] = &items[i];
    }
    char message[400];
    snprintf(message, sizeof message, "%s%s", problems->items[0].message,
             problems->total > 1 ? " (and more problems: see errors)" : "");
    Ncc__Directory__ApiError first = NCC__DIRECTORY__API_ERROR__INIT;
    first.code = "invalid_field";
    first.field = problems->items[0].field;
    first.message = message;
    Ncc__Directory__RecordFormRefusal refusal = NCC__DIRECTORY__RECORD_FORM_REFUSAL__INIT;
    refusal.has_http_status = true;
    refusal.http_status = 422;
    refusal.error = &first;
    refusal.n_errors = problems->count;
    refusal.errors = pointers;
    ncc_reply_message(reply, &refusal.base);
}

/* ---- handlers ----------------------------------------------------------------------- */

static void s_on_get(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    (void)request;
    s_reply_form(arg, reply);
}

/* Inside the transaction: announces the form `canonical` at `version` as
 * RecordFormChanged (the outbox). 0 or -EIO. */
static int s_announce(directory_t *dir, const ncc_request_t *request, const char *canonical,
                      int64_t version, const char *updated_at, const char *updated_by)
{
    Ncc__Directory__RecordFormDefinition *def = s_definition_parse(canonical);
    if (!def)
        return -EIO;
    Ncc__Directory__RecordFormChanged event = NCC__DIRECTORY__RECORD_FORM_CHANGED__INIT;
    event.has_version = true;
    event.version = version;
    event.definition = def;
    event.updated_at = (char *)updated_at;
    event.updated_by = (char *)updated_by;
    ncc_ctx_t ctx = ncc_request_ctx(request);
    int rc = ncc_outbox_add(dir->db, &ctx, &event.base) < 0 ? -EIO : 0;
    protobuf_c_message_free_unpacked(&def->base, NULL);
    return rc;
}

static void s_on_update(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *dir = arg;
    const Ncc__Directory__UpdateRecordForm *m =
        (const Ncc__Directory__UpdateRecordForm *)request->message;
    s_problems_t problems = {0};
    char *canonical = NULL;
    PGresult *res = NULL;

    if (!m->has_version) {
        ncc_reply_error(reply, 422, "invalid_field", "version",
                        "version is required (the version you read)");
        return;
    }
    if (!m->definition) {
        ncc_reply_error(reply, 422, "invalid_field", "definition", "definition is required");
        return;
    }
    problems.items = calloc(S_PROBLEMS_KEPT, sizeof *problems.items);
    if (!problems.items) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    s_validate(m->definition, &problems);
    if (problems.total > 0) {
        s_reply_problems(reply, &problems);
        goto out;
    }
    canonical = s_canonical(m->definition);
    if (!canonical) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }

    char login[80];
    masters_actor_t actor = masters_actor_of(dir, request, login, sizeof login);
    if (ncc_db_begin(dir->db) < 0)
        goto db_error;
    const char *compare[] = {canonical};
    res = ncc_db_exec(dir->db, "SELECT version, definition = $1::jsonb FROM record_form FOR UPDATE",
                      1, compare, NULL);
    if (!res)
        goto db_error;
    if (PQntuples(res) != 1) {
        ncc_db_rollback(dir->db);
        ncc_error("record_form.missing", "directory.record_form holds %d rows, not 1",
                  PQntuples(res));
        ncc_reply_error(reply, 500, "internal", NULL, "the record form cannot be read");
        goto out;
    }
    int64_t current = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    bool same = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    res = NULL;
    if (m->version != current) {
        ncc_db_rollback(dir->db);
        ncc_reply_error(reply, 409, "conflict", "version",
                        "the record form was changed meanwhile (version %" PRId64
                        " is current): read it again",
                        current);
        goto out;
    }
    if (same) {
        /* Nothing changes: no new version, no history, no event. */
        ncc_db_rollback(dir->db);
        s_reply_form(dir, reply);
        goto out;
    }
    const char *params[] = {canonical, actor.id ? actor.id : "", actor.login ? actor.login : "",
                            actor.role ? actor.role : "", actor.address ? actor.address : ""};
    // clang-format off
    res = ncc_db_exec(dir->db,
        "WITH old AS (SELECT definition FROM record_form), "
        "new AS (UPDATE record_form SET definition = $1::jsonb, version = version + 1, "
        "updated_at = now(), updated_by_id = $2, updated_by = $3 "
        "RETURNING version, updated_at, updated_by), "
        "h AS (INSERT INTO record_form_history (version, before, after, actor_id, actor_login, "
        "actor_role, address) SELECT new.version, old.definition, $1::jsonb, $2, $3, $4, $5 "
        "FROM new, old) "
        "SELECT version, " DIRECTORY_RFC3339("updated_at") ", updated_by FROM new",
        5, params, NULL);
    // clang-format on
    if (!res || PQntuples(res) != 1)
        goto db_error;
    if (s_announce(dir, request, canonical, strtoll(PQgetvalue(res, 0, 0), NULL, 10),
                   PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2)) < 0)
        goto db_error;
    PQclear(res);
    res = NULL;
    if (ncc_db_commit(dir->db) < 0)
        goto db_error;
    directory_flush(dir);
    ncc_info("record_form.changed", "the record form was changed by %s",
             actor.login && *actor.login ? actor.login : (actor.id ? actor.id : "?"));
    s_reply_form(dir, reply);
    goto out;

db_error:
    directory_reply_db_error(dir, reply, "change the record form");
out:
    PQclear(res);
    free(canonical);
    free(problems.items);
}

static void s_on_history(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *dir = arg;
    const Ncc__Directory__ListRecordFormHistory *m =
        (const Ncc__Directory__ListRecordFormHistory *)request->message;
    int page = m->has_page ? m->page : 1;
    int per_page = m->has_per_page ? m->per_page : S_HISTORY_PER_PAGE;
    if (page < 1 || page > 1000000) {
        ncc_reply_error(reply, 422, "invalid_field", "page", "page must be at least 1");
        return;
    }
    if (per_page < 1 || per_page > S_HISTORY_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "per_page",
                        "per_page must be between 1 and %d", S_HISTORY_MAX);
        return;
    }
    char limit[16], offset[24];
    snprintf(limit, sizeof limit, "%d", per_page);
    snprintf(offset, sizeof offset, "%lld", (long long)(page - 1) * per_page);
    const char *params[] = {limit, offset};
    // clang-format off
    static const char sql[] =
        "SELECT jsonb_build_object('items', coalesce((SELECT jsonb_agg(j ORDER BY n) FROM "
        "(SELECT jsonb_strip_nulls(jsonb_build_object('id', h.id, 'version', h.version, 'at', "
        DIRECTORY_RFC3339_US("h.at") ", 'actor_id', nullif(h.actor_id, ''), 'actor_login', "
        "nullif(h.actor_login, ''), 'before', h.before, 'after', h.after)) AS j, "
        "row_number() OVER (ORDER BY h.id DESC) AS n FROM record_form_history h "
        "ORDER BY h.id DESC LIMIT $1::int OFFSET $2::bigint) x), '[]'::jsonb), "
        "'total', (SELECT count(*) FROM record_form_history))::text";
    // clang-format on
    cJSON *json = NULL;
    int rc = masters_query_json(dir, sql, 2, params, &json);
    if (rc < 0 && rc != -ENOMEM)
        directory_reply_db_error(dir, reply, "record form history");
    else if (rc <= 0)
        ncc_reply_error(reply, 500, "internal", NULL, "the history cannot be read");
    else
        masters_reply_json(reply, &ncc__directory__record_form_history_list__descriptor, json);
    cJSON_Delete(json);
}

/* ---- registration ---------------------------------------------------------------------- */

int directory_record_form_register(directory_t *self)
{
    ncc_service_t *service = self->service;
    if (ncc_service_on(service, &ncc__directory__get_record_form__descriptor, NCC_ROLES_ALL,
                       s_on_get, self) < 0 ||
        ncc_service_on(service, &ncc__directory__update_record_form__descriptor, NCC_ROLE_ADMIN,
                       s_on_update, self) < 0 ||
        ncc_service_on(service, &ncc__directory__list_record_form_history__descriptor,
                       NCC_ROLE_ADMIN | NCC_ROLE_SUPERVISOR, s_on_history, self) < 0)
        return -EINVAL;
    return 0;
}
