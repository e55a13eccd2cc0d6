/* form: the record form setting (R3, R38; docs/record-form.md) as ncc-history follows and
 * enforces it. ncc-directory keeps the setting; this copy asks it GetRecordForm once the
 * database is ready (again every 1, 2, 4 ... 30 s until the directory answers: a try
 * blocks the loop for up to a second), then follows ncc.directory.RecordFormChanged
 * through the frame's subscription (the directory's outbox, replayed after a gap), keeping
 * the definition with the highest version seen. Until the directory has answered once, and
 * whenever it cannot be reached, the last definition held applies, else the built-in
 * default (the directory's version 1, below): a record is never refused or lost because
 * the directory is down.
 *
 * The rules (history_form_check, history_form_extra) apply to what a user saves through
 * the API; records made from calls are exempt until a user saves them, the CSV import
 * keeps its own checks (docs/history.md). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

#define S_TIMEOUT_MS   1000
#define S_RETRY_MAX_S  30
#define S_TEXT_MAX     200   /* a text field of the ward's own without max_length */
#define S_TEXTAREA_MAX 10000 /* a textarea without max_length */
#define S_NUMBER_MAX   32    /* characters of a number */
#define S_FAQ_MAX      99999999

/* The directory's default (services/directory/sql/004_record_form.sql, version 1). */
static const char s_default_json[] =
    "{\"fields\":[{\"name\":\"receipt_id\",\"label_ja\":\"受付ID\",\"label_en\":\"Receipt "
    "ID\",\"type\""
    ":\"text\",\"required\":false,\"visible\":true,\"max_length\":32},{\"name\":\"channel\",\"labe"
    "l_ja\":\"受付チャネル\",\"label_en\":\"Channel\",\"type\":\"choice\",\"required\":true,"
    "\"visible\":tr"
    "ue,\"options\":[{\"code\":\"phone\",\"label_ja\":\"電話\",\"label_en\":\"Phone\"},{\"code\":"
    "\"sms\","
    "\"label_ja\":\"SMS\",\"label_en\":\"SMS\"},{\"code\":\"form\",\"label_ja\":\"フォーム\","
    "\"label_en\":\""
    "Web "
    "form\"},{\"code\":\"chat\",\"label_ja\":\"チャット\",\"label_en\":\"Chat\"},{\"code\":"
    "\"line\",\"l"
    "abel_ja\":\"LINE\",\"label_en\":\"LINE\"},{\"code\":\"visit\",\"label_ja\":\"来庁\",\"label_"
    "en\":\"V"
    "isit\"}]},{\"name\":\"started_at\",\"label_ja\":\"受付開始日時\",\"label_en\":\"Started "
    "at\",\"type\""
    ":\"datetime\",\"required\":true,\"visible\":true},{\"name\":\"ended_at\",\"label_ja\":"
    "\"受付終了日"
    "時\",\"label_en\":\"Ended "
    "at\",\"type\":\"datetime\",\"required\":false,\"visible\":true},{\"na"
    "me\":\"wrapup_ended_at\",\"label_ja\":\"後処理終了日時\",\"label_en\":\"Wrap-up ended "
    "at\",\"type\":"
    "\"datetime\",\"required\":false,\"visible\":true},{\"name\":\"operator_name\",\"label_ja\":\""
    "受付者氏名\",\"label_en\":\"Operator\",\"type\":\"text\",\"required\":false,\"visible\":true,"
    "\"max_"
    "length\":100},{\"name\":\"reception_type\",\"label_ja\":\"受付区分\",\"label_en\":\"Reception "
    "ty"
    "pe\",\"type\":\"choice\",\"required\":false,\"visible\":true,\"choices\":\"reception-types\"}"
    ",{\"name\":\"department_id\",\"label_ja\":\"問い合わせ受付区分\",\"label_en\":\"Department\","
    "\"type\":\""
    "choice\",\"required\":false,\"visible\":true,\"choices\":\"departments\"},{\"name\":\"catego"
    "ry\",\"label_ja\":\"カテゴリー\",\"label_en\":\"Category\",\"type\":\"choice\",\"required\":"
    "false,\"v"
    "isible\":true,\"choices\":\"categories\"},{\"name\":\"handling_type\",\"label_ja\":"
    "\"対応区分\",\""
    "label_en\":\"Handling type\",\"type\":\"choice\",\"required\":false,\"visible\":true,\"choic"
    "es\":\"handling-types\"},{\"name\":\"inquiry\",\"label_ja\":\"受付内容\",\"label_en\":"
    "\"Inquiry\",\""
    "type\":\"textarea\",\"required\":true,\"visible\":true,\"max_length\":4000},{\"name\":\"resp"
    "onse\",\"label_ja\":\"対応内容\",\"label_en\":\"Response\",\"type\":\"textarea\",\"required\":"
    "false"
    ",\"visible\":true,\"max_length\":4000},{\"name\":\"faq_ids\",\"label_ja\":\"利用FAQ\",\"label_"
    "e"
    "n\":\"FAQs used\",\"type\":\"faq_ids\",\"required\":false,\"visible\":true},{\"name\":\"transf"
    "er_to\",\"label_ja\":\"転送先\",\"label_en\":\"Transferred "
    "to\",\"type\":\"choice\",\"required\":f"
    "alse,\"visible\":true,\"choices\":\"directory\"},{\"name\":\"summary\",\"label_ja\":"
    "\"AI要約\",\""
    "label_en\":\"AI summary\",\"type\":\"textarea\",\"required\":false,\"visible\":true,\"max_le"
    "ngth\":10000},{\"name\":\"call_id\",\"label_ja\":\"通話ID\",\"label_en\":\"Call "
    "ID\",\"type\":\"te"
    "xt\",\"required\":false,\"visible\":false,\"max_length\":64},{\"name\":\"operator_id\",\"lab"
    "el_ja\":\"受付者ID\",\"label_en\":\"Operator "
    "ID\",\"type\":\"text\",\"required\":false,\"visible\""
    ":false,\"max_length\":32}],\"statuses\":[{\"code\":\"open\",\"label_ja\":\"未対応\",\"label_"
    "en\":"
    "\"Open\",\"initial\":true,\"final\":false,\"next\":[\"in_progress\",\"closed\"]},{\"code\":"
    "\"in"
    "_progress\",\"label_ja\":\"対応中\",\"label_en\":\"In "
    "progress\",\"initial\":false,\"final\":fal"
    "se,\"next\":[\"open\",\"closed\"]},{\"code\":\"closed\",\"label_ja\":\"完了\",\"label_en\":"
    "\"Closed"
    "\",\"initial\":false,\"final\":true,\"next\":[\"in_progress\"]}]}";

/* Filled in by the system: never required of a user (docs/record-form.md). */
static const char *const s_system[] = {"receipt_id",    "call_id", "operator_id",
                                       "operator_name", "summary", NULL};

static bool s_in(const char *const *list, const char *name)
{
    for (size_t i = 0; name && list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

static bool s_empty(const char *text)
{
    return !text || !*text;
}

static const Ncc__Directory__RecordFormField *
s_field(const Ncc__Directory__RecordFormDefinition *def, const char *name)
{
    for (size_t i = 0; def && name && i < def->n_fields; i++)
        if (def->fields[i]->name && strcmp(def->fields[i]->name, name) == 0)
            return def->fields[i];
    return NULL;
}

static const Ncc__Directory__RecordFormStatus *
s_status(const Ncc__Directory__RecordFormDefinition *def, const char *code)
{
    for (size_t i = 0; def && code && i < def->n_statuses; i++)
        if (def->statuses[i]->code && strcmp(def->statuses[i]->code, code) == 0)
            return def->statuses[i];
    return NULL;
}

static bool s_next_has(const Ncc__Directory__RecordFormStatus *status, const char *code)
{
    for (size_t i = 0; status && i < status->n_next; i++)
        if (status->next[i] && strcmp(status->next[i], code) == 0)
            return true;
    return false;
}

/* x_ followed by 1 to 30 of a-z 0-9 _. */
static bool s_custom_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len < 3 || len > 32 || name[0] != 'x' || name[1] != '_')
        return false;
    for (const char *p = name + 2; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static size_t s_chars(const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

/* "a, b, c" of the codes of a list into out. */
static void s_join(char **codes, size_t n, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "",
                                 codes[i] ? codes[i] : "");
}

/* ---- following the setting ----------------------------------------------------------- */

/* A copy of `def` (packed and unpacked), or NULL. */
static Ncc__Directory__RecordFormDefinition *s_copy(const Ncc__Directory__RecordFormDefinition *def)
{
    size_t len = protobuf_c_message_get_packed_size(&def->base);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return NULL;
    protobuf_c_message_pack(&def->base, buf);
    Ncc__Directory__RecordFormDefinition *copy =
        ncc__directory__record_form_definition__unpack(NULL, len, buf);
    free(buf);
    return copy;
}

/* Keeps `def` at `version` when it is newer than the one held. 0 or -ENOMEM. */
static int s_adopt(history_t *self, int64_t version,
                   const Ncc__Directory__RecordFormDefinition *def, const char *how)
{
    if (!def || version <= self->form_version)
        return 0; /* older or repeated: the whole form is in every event */
    Ncc__Directory__RecordFormDefinition *copy = s_copy(def);
    if (!copy)
        return -ENOMEM;
    if (self->form)
        ncc__directory__record_form_definition__free_unpacked(self->form, NULL);
    self->form = copy;
    self->form_version = version;
    ncc_info("record_form.applied",
             "record form version %" PRId64 " (%s): %zu fields, %zu statuses", version, how,
             copy->n_fields, copy->n_statuses);
    return 0;
}

/* Asks ncc-directory for the current form. 0, or a negative errno (logged). */
static int s_load(history_t *self)
{
    ncc_rpc_client_t *client = ncc_service_client(self->service, "directory");
    if (!client)
        return -ENOMEM;
    Ncc__Directory__GetRecordForm get = NCC__DIRECTORY__GET_RECORD_FORM__INIT;
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    int rc = ncc_rpc_call_typed(client, &ctx, &get.base, &ncc__directory__record_form__descriptor,
                                S_TIMEOUT_MS, &answer, &error);
    if (rc < 0) {
        ncc_warn("record_form.load_failed",
                 "the record form cannot be had from ncc-directory (%s%s%s): records are checked "
                 "against %s",
                 strerror(-rc), error && error->message ? ": " : "",
                 error && error->message ? error->message : "",
                 self->form ? "the last form held" : "the built-in default");
        if (error)
            ncc__error__free_unpacked(error, NULL);
        return rc;
    }
    const Ncc__Directory__RecordForm *form = (const Ncc__Directory__RecordForm *)answer;
    rc = s_adopt(self, form->has_version ? form->version : 0, form->definition, "loaded");
    protobuf_c_message_free_unpacked(answer, NULL);
    return rc;
}

/* Every second until the directory has answered once (back-off 1, 2, 4 ... 30 s). */
static void s_tick(void *arg)
{
    history_t *self = arg;
    int64_t now = ncc_bus_now_us();
    if (self->form || now < self->form_next_try_us)
        return;
    if (s_load(self) == 0 && self->form)
        return;
    self->form_retry_s = self->form_retry_s ? self->form_retry_s * 2 : 1;
    if (self->form_retry_s > S_RETRY_MAX_S)
        self->form_retry_s = S_RETRY_MAX_S;
    self->form_next_try_us = now + (int64_t)self->form_retry_s * 1000000;
}

/* ncc.directory.RecordFormChanged (the directory's outbox). */
static int s_on_changed(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                        const ProtobufCMessage *message)
{
    (void)db;
    (void)event;
    const Ncc__Directory__RecordFormChanged *m = (const Ncc__Directory__RecordFormChanged *)message;
    return s_adopt(arg, m->has_version ? m->version : 0, m->definition, "changed");
}

int history_form_register(history_t *self)
{
    ProtobufCMessage *message = NULL;
    ncc_json_error_t err;
    if (ncc_json_parse_pb(&ncc__directory__record_form_definition__descriptor, s_default_json,
                          strlen(s_default_json), 0, &message, &err) < 0) {
        ncc_error("record_form.default_unreadable", "the built-in record form: %s (%s)",
                  err.message, err.field);
        return -EINVAL;
    }
    self->form_default = (Ncc__Directory__RecordFormDefinition *)message;
    if (ncc_service_subscribe_each_copy(self->service, "directory",
                                        "ncc.directory.RecordFormChanged", s_on_changed,
                                        self) < 0 ||
        ncc_service_every(self->service, 1000, s_tick, self) < 0)
        return -EINVAL;
    return 0;
}

void history_form_clear(history_t *self)
{
    if (self->form)
        ncc__directory__record_form_definition__free_unpacked(self->form, NULL);
    if (self->form_default)
        ncc__directory__record_form_definition__free_unpacked(self->form_default, NULL);
    self->form = self->form_default = NULL;
}

const Ncc__Directory__RecordFormDefinition *history_form(history_t *self)
{
    return self->form ? self->form : self->form_default;
}

const char *history_form_initial(history_t *self)
{
    const Ncc__Directory__RecordFormDefinition *def = history_form(self);
    for (size_t i = 0; def && i < def->n_statuses; i++)
        if (def->statuses[i]->has_initial && def->statuses[i]->initial && def->statuses[i]->code)
            return def->statuses[i]->code;
    return "open";
}

bool history_form_final(history_t *self, const char *status)
{
    const Ncc__Directory__RecordFormStatus *s = s_status(history_form(self), status);
    if (!s)
        return status && strcmp(status, "closed") == 0;
    return s->has_final && s->final;
}

/* ---- the rules --------------------------------------------------------------------------- */

/* A value of x_ field `field` checked by its type into out (canonical text). */
static bool s_extra_value(const Ncc__Directory__RecordFormField *field, const char *value,
                          char *out, size_t len, char *err, size_t errlen)
{
    const char *name = field->name;
    const char *type = field->type ? field->type : "text";
    if (strcmp(type, "text") == 0 || strcmp(type, "textarea") == 0) {
        bool area = strcmp(type, "textarea") == 0;
        size_t max = field->has_max_length && field->max_length > 0
                         ? (size_t)field->max_length
                         : (area ? S_TEXTAREA_MAX : S_TEXT_MAX);
        if (!history_text_ok(value, max, area)) {
            snprintf(err, errlen, "%s: at most %zu characters%s", name, max,
                     area ? ", without control characters other than line breaks and tabs"
                          : " on one line");
            return false;
        }
        snprintf(out, len, "%s", value);
        return true;
    }
    if (strcmp(type, "number") == 0) {
        char *end = NULL;
        double v = strlen(value) <= S_NUMBER_MAX ? strtod(value, &end) : NAN;
        if (!end || end == value || *end || !isfinite(v) || strchr(value, ' ') ||
            (value[0] != '-' && (value[0] < '0' || value[0] > '9'))) {
            snprintf(err, errlen, "%s must be a number (12, -3.5)", name);
            return false;
        }
        snprintf(out, len, "%s", value);
        return true;
    }
    if (strcmp(type, "date") == 0 || strcmp(type, "datetime") == 0) {
        bool date = strcmp(type, "date") == 0, date_only = false;
        char canonical[40];
        if (history_time_parse(value, date ? HISTORY_TIME_DATE : 0, canonical, NULL, &date_only) <
                0 ||
            date != date_only) {
            snprintf(err, errlen,
                     date ? "%s must be a date (2027-04-01)"
                          : "%s must be an RFC 3339 time with an offset "
                            "(2027-04-01T09:00:00+09:00)",
                     name);
            return false;
        }
        snprintf(out, len, "%s", date ? value : canonical);
        return true;
    }
    if (strcmp(type, "choice") == 0) {
        if (!history_code_ok(value)) {
            snprintf(err, errlen, "%s: a code is 1 to 32 of A-Z a-z 0-9 . _ -", name);
            return false;
        }
        snprintf(out, len, "%s", value); /* its list: history_form_check */
        return true;
    }
    if (strcmp(type, "faq_ids") == 0) {
        /* up to 3 FAQ numbers separated by spaces or commas, written with spaces */
        size_t used = 0, count = 0;
        out[0] = '\0';
        for (const char *p = value; *p;) {
            while (*p == ' ' || *p == ',')
                p++;
            if (!*p)
                break;
            char *end = NULL;
            long long v = strtoll(p, &end, 10);
            if (end == p || (*end && *end != ' ' && *end != ',') || v <= 0 || v > S_FAQ_MAX ||
                ++count > 3) {
                snprintf(err, errlen, "%s: at most 3 FAQ numbers (1 to %d) separated by spaces",
                         name, S_FAQ_MAX);
                return false;
            }
            used += (size_t)snprintf(out + used, len - used, "%s%lld", used ? " " : "", v);
            p = end;
        }
        return true;
    }
    snprintf(err, errlen, "%s: the form gives it an unknown type %s", name, type);
    return false;
}

bool history_form_extra(history_t *self, Ncc__History__RecordValue *const *given, size_t n,
                        const cJSON *base, cJSON **ret_merged, ncc_reply_t *reply)
{
    const Ncc__Directory__RecordFormDefinition *def = history_form(self);
    cJSON *merged = base ? cJSON_Duplicate(base, true) : cJSON_CreateObject();
    if (!merged) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = given[i]->name;
        const Ncc__Directory__RecordFormField *field = s_field(def, name);
        if (!s_custom_name(name) || !field) {
            const char *shown = name && history_text_ok(name, 40, false) ? name : "extra";
            ncc_reply_error(reply, 422, "invalid_field", s_custom_name(name) ? name : "extra",
                            s_custom_name(name)
                                ? "%s is not a field of the record form (a field of the ward's "
                                  "own must be in the record form setting)"
                                : "%s: a field of the ward's own is named x_ followed by 1 to 30 "
                                  "of a-z 0-9 _",
                            shown);
            cJSON_Delete(merged);
            return false;
        }
        const char *value = given[i]->value ? given[i]->value : "";
        cJSON_DeleteItemFromObjectCaseSensitive(merged, name);
        if (!*value)
            continue; /* "" removes it */
        char canonical[4 * S_TEXTAREA_MAX + 8], err[240];
        if (!s_extra_value(field, value, canonical, sizeof canonical, err, sizeof err)) {
            ncc_reply_error(reply, 422, "invalid_field", name, "%s", err);
            cJSON_Delete(merged);
            return false;
        }
        if (!cJSON_AddStringToObject(merged, name, canonical)) {
            cJSON_Delete(merged);
            ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
            return false;
        }
    }
    *ret_merged = merged;
    return true;
}

bool history_form_has_extra(history_t *self, const char *name)
{
    return s_custom_name(name) && s_field(history_form(self), name);
}

bool history_form_import_value(history_t *self, const char *name, const char *value, char *out,
                               size_t len, char *err, size_t errlen)
{
    const Ncc__Directory__RecordFormField *field = s_field(history_form(self), name);
    if (!s_custom_name(name) || !field) {
        snprintf(err, errlen, "%s is not a field of the record form", name);
        return false;
    }
    if (!s_extra_value(field, value, out, len, err, errlen))
        return false;
    if (!field->type || strcmp(field->type, "choice") != 0)
        return true;
    if (field->n_options > 0) {
        for (size_t k = 0; k < field->n_options; k++)
            if (field->options[k]->code && strcmp(field->options[k]->code, value) == 0)
                return true;
        snprintf(err, errlen, "%s: %s is not one of the record form's choices", name, value);
        return false;
    }
    if (field->choices && ncc_masters_cache_count(self->masters, field->choices) > 0)
        return history_code_known(self, field->choices, name, value, value, err, errlen);
    return true;
}

/* A field's value in the input: a built-in from `values`, an x_ one from the objects.
 * False when the form's field is not a value the input holds. */
static bool s_value_of(const history_form_input_t *in, const char *name, const char **ret_value,
                       const char **ret_was)
{
    if (s_custom_name(name)) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(in->extra, name);
        const cJSON *w =
            in->extra_was ? cJSON_GetObjectItemCaseSensitive(in->extra_was, name) : NULL;
        *ret_value = cJSON_IsString(v) ? v->valuestring : NULL;
        *ret_was = cJSON_IsString(w) ? w->valuestring : NULL;
        return true;
    }
    for (size_t i = 0; i < in->n_values; i++) {
        if (strcmp(in->values[i].name, name) == 0) {
            *ret_value = in->values[i].value;
            *ret_was = in->values[i].was;
            return true;
        }
    }
    return false;
}

static const char *s_label(const Ncc__Directory__RecordFormField *field)
{
    return field->label_ja && *field->label_ja ? field->label_ja : field->name;
}

bool history_form_check(history_t *self, const history_form_input_t *in, ncc_reply_t *reply)
{
    const Ncc__Directory__RecordFormDefinition *def = history_form(self);
    char list[600];

    /* The status: one of the setting's, reached by a transition it allows. */
    const Ncc__Directory__RecordFormStatus *status = s_status(def, in->status);
    if (!status) {
        char codes[400];
        size_t used = 0;
        codes[0] = '\0';
        for (size_t i = 0; i < def->n_statuses && used < sizeof codes; i++)
            used += (size_t)snprintf(codes + used, sizeof codes - used, "%s%s", i ? ", " : "",
                                     def->statuses[i]->code ? def->statuses[i]->code : "");
        ncc_reply_error(reply, 422, "invalid_field", "status",
                        "status must be one of the record form's statuses: %s", codes);
        return false;
    }
    if (!in->status_was) {
        const char *initial = history_form_initial(self);
        const Ncc__Directory__RecordFormStatus *first = s_status(def, initial);
        if (strcmp(in->status, initial) != 0 && !s_next_has(first, in->status)) {
            s_join(first ? first->next : NULL, first ? first->n_next : 0, list, sizeof list);
            ncc_reply_error(reply, 422, "invalid_field", "status", "a new record starts as %s%s%s",
                            initial, *list ? " or " : "", list);
            return false;
        }
    } else if (strcmp(in->status, in->status_was) != 0) {
        /* From a status the setting no longer knows, any of its statuses may follow. */
        const Ncc__Directory__RecordFormStatus *was = s_status(def, in->status_was);
        if (was && !s_next_has(was, in->status)) {
            s_join(was->next, was->n_next, list, sizeof list);
            ncc_reply_error(reply, 422, "invalid_field", "status",
                            "a record in status %s may move to %s only, not to %s", in->status_was,
                            *list ? list : "(none)", in->status);
            return false;
        }
    }

    for (size_t i = 0; i < def->n_fields; i++) {
        const Ncc__Directory__RecordFormField *field = def->fields[i];
        const char *value = NULL, *was = NULL;
        if (!field->name || !s_value_of(in, field->name, &value, &was))
            continue;
        bool changed = !s_empty(value) && (!was || strcmp(value, was) != 0);
        /* Required: visible, not the system's. */
        bool visible = !field->has_visible || field->visible;
        if (field->has_required && field->required && visible && !s_in(s_system, field->name) &&
            s_empty(value)) {
            ncc_reply_error(reply, 422, "invalid_field", field->name,
                            "%s (%s) is required by the record form", field->name, s_label(field));
            return false;
        }
        if (!changed)
            continue; /* what is stored stays valid, as a retired code does */
        /* Choices of its own. */
        if (field->type && strcmp(field->type, "choice") == 0 && field->n_options > 0) {
            bool found = false;
            for (size_t k = 0; k < field->n_options && !found; k++)
                found = field->options[k]->code && strcmp(field->options[k]->code, value) == 0;
            if (!found) {
                size_t used = 0;
                list[0] = '\0';
                for (size_t k = 0; k < field->n_options && used < sizeof list; k++)
                    used +=
                        (size_t)snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "",
                                         field->options[k]->code ? field->options[k]->code : "");
                ncc_reply_error(reply, 422, "invalid_field", field->name,
                                "%s: %s is not one of the record form's choices (%s)", field->name,
                                value, list);
                return false;
            }
        }
        /* A field of the ward's own whose choices are a master the history follows. */
        if (s_custom_name(field->name) && field->type && strcmp(field->type, "choice") == 0 &&
            field->choices && ncc_masters_cache_count(self->masters, field->choices) > 0) {
            char err[200];
            if (!history_code_known(self, field->choices, field->name, value, was, err,
                                    sizeof err)) {
                ncc_reply_error(reply, 422, "invalid_field", field->name, "%s", err);
                return false;
            }
        }
        /* The longest text. */
        if (field->has_max_length && field->max_length > 0 && field->type &&
            (strcmp(field->type, "text") == 0 || strcmp(field->type, "textarea") == 0) &&
            s_chars(value) > (size_t)field->max_length) {
            ncc_reply_error(reply, 422, "invalid_field", field->name,
                            "%s: at most %d characters (the record form's max_length)", field->name,
                            field->max_length);
            return false;
        }
    }
    return true;
}
