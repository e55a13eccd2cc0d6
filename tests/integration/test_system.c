/* The whole system as `make run` starts it (scripts/test.sh starts it before
 * the integration tests): every daemon is up on the bus behind the gateway,
 * and a JSON request crosses the gateway and the bus to each service. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncc_test.h"

static const char *const services[] = {"directory", "calls",   "history", "faq",
                                       "sms",       "summary", "report"};

static const char *s_gateway(void)
{
    const char *url = getenv("NCC_TEST_GATEWAY_URL");
    cr_assert(url && *url, "NCC_TEST_GATEWAY_URL is not set: scripts/test.sh starts the system");
    return url;
}

Test(system, every_service_is_up_behind_the_gateway, .timeout = 60)
{
    char url[256], *body = NULL;
    snprintf(url, sizeof url, "%s/api/v1/health", s_gateway());
    long status = ncct_http("GET", url, NULL, &body);
    cr_assert_eq(status, 200, "health %ld: %s", status, body ? body : "");
    cJSON *json = cJSON_Parse(body);
    cr_assert_not_null(json);
    cr_assert_str_eq(cJSON_GetObjectItem(json, "status")->valuestring, "ok");
    const cJSON *list = cJSON_GetObjectItem(json, "services");
    cr_assert(cJSON_IsArray(list));
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        bool up = false;
        const cJSON *item;
        cJSON_ArrayForEach(item, list)
        {
            const cJSON *name = cJSON_GetObjectItem(item, "name");
            const cJSON *state = cJSON_GetObjectItem(item, "status");
            if (cJSON_IsString(name) && strcmp(name->valuestring, services[i]) == 0)
                up = cJSON_IsString(state) && strcmp(state->valuestring, "up") == 0;
        }
        cr_expect(up, "%s is not up: %s", services[i], body);
    }
    cJSON_Delete(json);
    free(body);
}

Test(system, a_json_request_crosses_the_bus_to_each_service, .timeout = 60)
{
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        char url[256], *body = NULL;
        snprintf(url, sizeof url, "%s/api/v1/services/%s/ping", s_gateway(), services[i]);
        long status = ncct_http("POST", url, "{\"message\":\"中野区 ping\"}", &body);
        cr_assert_eq(status, 200, "%s: %ld %s", services[i], status, body ? body : "");
        cJSON *json = cJSON_Parse(body);
        cr_assert_not_null(json, "%s", body);
        cr_expect_str_eq(cJSON_GetObjectItem(json, "message")->valuestring, "中野区 ping");
        cr_expect_str_eq(cJSON_GetObjectItem(json, "service")->valuestring, services[i]);
        cJSON_Delete(json);
        free(body);
    }
}
