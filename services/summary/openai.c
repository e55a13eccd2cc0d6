/* openai: a summary (or an answer draft, draft.c) from an OpenAI-compatible
 * Chat Completions endpoint (summarizer.h): POST <base_url>/chat/completions with the masked
 * text, temperature 0, and `"store": false` (OpenAI's switch that
 * keeps the exchange out of its stored completions; Azure OpenAI, vLLM and
 * llama.cpp ignore it and keep nothing by default). Bounded: the time-out
 * covers the whole request, the answer is read up to 256 KiB, no redirects,
 * http(s) only. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "summarizer.h"

#define S_ANSWER_MAX (256 * 1024)

static const char s_system_prompt[] =
    "あなたは区役所コールセンターの応対記録を書く担当者です。次の通話の書き起こしを、"
    "「用件: 」「回答: 」「結果: 」の3行、合計200文字以内の日本語で要約してください。"
    "[氏名]や[電話番号]のような角括弧の置き換え文字はそのまま残し、元の個人情報を推測して"
    "書かないでください。要約だけを出力してください。";

typedef struct {
    char *data;
    size_t len;
    bool too_large;
} s_buffer_t;

static size_t s_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_buffer_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > S_ANSWER_MAX) {
        b->too_large = true;
        return 0;
    }
    char *grown = realloc(b->data, b->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, ptr, n);
    b->len += n;
    grown[b->len] = '\0';
    b->data = grown;
    return n;
}

/* The conversation as one user message: "利用者: ..." / "職員: ..." lines. */
static char *s_conversation(const summary_segment_t *segments, size_t count)
{
    size_t len = 1;
    for (size_t i = 0; i < count; i++)
        len += strlen(segments[i].text ? segments[i].text : "") + 16;
    char *text = malloc(len);
    if (!text)
        return NULL;
    size_t w = 0;
    for (size_t i = 0; i < count; i++) {
        const char *who = !segments[i].speaker                         ? ""
                          : strcmp(segments[i].speaker, "caller") == 0 ? "利用者: "
                                                                       : "職員: ";
        w += (size_t)snprintf(text + w, len - w, "%s%s\n", who,
                              segments[i].text ? segments[i].text : "");
    }
    return text;
}

/* Well-formed UTF-8 without control characters other than newline and tab. */
static bool s_text_ok(const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        unsigned char c = *p;
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || (len == 1 && ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)))
            return false;
        for (size_t i = 1; i < len; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += len;
    }
    return true;
}

char *openai_chat(const summarizer_config_t *config, const char *system_prompt,
                  const char *user_text, const char **ret_reason)
{
    char *result = NULL, *body = NULL;
    struct curl_slist *headers = NULL;
    s_buffer_t answer = {0};
    cJSON *request = NULL, *json = NULL;
    CURL *curl = NULL;
    *ret_reason = "no_memory";
    request = cJSON_CreateObject();
    if (!request)
        goto out;
    cJSON_AddStringToObject(request, "model", config->model);
    cJSON *messages = cJSON_AddArrayToObject(request, "messages");
    cJSON *system = cJSON_CreateObject(), *user = cJSON_CreateObject();
    cJSON_AddItemToArray(messages, system);
    cJSON_AddItemToArray(messages, user);
    cJSON_AddStringToObject(system, "role", "system");
    cJSON_AddStringToObject(system, "content", system_prompt);
    cJSON_AddStringToObject(user, "role", "user");
    cJSON_AddStringToObject(user, "content", user_text);
    cJSON_AddNumberToObject(request, "temperature", 0);
    cJSON_AddNumberToObject(request, "max_tokens", 512);
    cJSON_AddBoolToObject(request, "store", false);
    cJSON_AddBoolToObject(request, "stream", false);
    body = cJSON_PrintUnformatted(request);
    curl = curl_easy_init();
    if (!body || !curl)
        goto out;
    char url[1024];
    size_t base_len = strlen(config->base_url);
    while (base_len > 0 && config->base_url[base_len - 1] == '/')
        base_len--;
    snprintf(url, sizeof url, "%.*s/chat/completions", (int)base_len, config->base_url);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    if (config->api_key && *config->api_key) {
        char auth[1024];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", config->api_key);
        headers = curl_slist_append(headers, auth);
        /* Azure OpenAI takes its key in api-key */
        snprintf(auth, sizeof auth, "api-key: %s", config->api_key);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)config->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)config->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        *ret_reason = answer.too_large                 ? "too_large"
                      : rc == CURLE_OPERATION_TIMEDOUT ? "timeout"
                                                       : "unreachable";
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        *ret_reason = "http_status";
        goto out;
    }
    json = answer.data ? cJSON_ParseWithLength(answer.data, answer.len) : NULL;
    if (!json) {
        *ret_reason = "not_json";
        goto out;
    }
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(json, "choices");
    cJSON *first = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    cJSON *message = first ? cJSON_GetObjectItemCaseSensitive(first, "message") : NULL;
    cJSON *content = message ? cJSON_GetObjectItemCaseSensitive(message, "content") : NULL;
    if (!cJSON_IsString(content) || !content->valuestring) {
        *ret_reason = "no_content";
        goto out;
    }
    const char *text = content->valuestring;
    while (*text == ' ' || *text == '\n')
        text++;
    if (!*text || !s_text_ok(text)) {
        *ret_reason = "bad_text";
        goto out;
    }
    result = strdup(text);
    *ret_reason = result ? NULL : "no_memory";
out:
    cJSON_Delete(json);
    cJSON_Delete(request);
    curl_slist_free_all(headers);
    if (curl)
        curl_easy_cleanup(curl);
    free(answer.data);
    free(body);
    return result;
}

char *openai_summarize(const summarizer_config_t *config, const summary_segment_t *segments,
                       size_t count, const char **ret_reason)
{
    char *conversation = s_conversation(segments, count);
    if (!conversation) {
        *ret_reason = "no_memory";
        return NULL;
    }
    char *result = openai_chat(config, s_system_prompt, conversation, ret_reason);
    free(conversation);
    return result;
}
