/* test_compose: compose.yaml runs the whole set safely. Parsed with libyaml, it must give
 * every daemon a service built from its own Dockerfile (multi-stage, non-root, with a
 * HEALTHCHECK), health-checked through /readyz, started after a healthy PostgreSQL; only
 * the nginx TLS edge publishes ports, its configuration file exists, and no secret is
 * written inline. Paths are relative to NCC_SOURCE_DIR (default: the current directory,
 * the repository root under `make test`). */
#include <criterion/criterion.h>
#include <yaml.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const s_daemons[] = {"directory", "calls",   "history", "faq",
                                        "sms",       "summary", "report",  "gateway"};
#define S_DAEMON_COUNT (sizeof s_daemons / sizeof s_daemons[0])

/* The parsed compose.yaml, loaded before each test (each runs in its own process). */
static yaml_document_t s_doc;
static bool s_loaded;

static const char *s_top(void)
{
    const char *top = getenv("NCC_SOURCE_DIR");
    return top && *top ? top : ".";
}

/* top/relative into buf. */
static const char *s_path(char *buf, size_t len, const char *relative)
{
    int n = snprintf(buf, len, "%s/%s", s_top(), relative);
    cr_assert(n > 0 && (size_t)n < len, "path too long: %s", relative);
    return buf;
}

static bool s_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void s_load(void)
{
    char path[4096];
    s_path(path, sizeof path, "compose.yaml");
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (run from the repository root or set NCC_SOURCE_DIR)",
                       path);
    yaml_parser_t parser;
    cr_assert(yaml_parser_initialize(&parser));
    yaml_parser_set_input_file(&parser, f);
    int ok = yaml_parser_load(&parser, &s_doc);
    char problem[512] = "";
    if (!ok) {
        snprintf(problem, sizeof problem, "%s at line %zu", parser.problem ? parser.problem : "?",
                 parser.problem_mark.line + 1);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    cr_assert(ok, "compose.yaml does not parse: %s", problem);
    s_loaded = true;
}

static void s_unload(void)
{
    if (s_loaded) {
        yaml_document_delete(&s_doc);
        s_loaded = false;
    }
}

TestSuite(compose, .init = s_load, .fini = s_unload);

/* --- reading the document (nodes are borrowed from s_doc) ----------------------------- */

static yaml_node_t *s_node(int id)
{
    return id ? yaml_document_get_node(&s_doc, id) : NULL;
}

static const char *s_scalar(const yaml_node_t *node)
{
    return node && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

static bool s_is_map(const yaml_node_t *node)
{
    return node && node->type == YAML_MAPPING_NODE;
}

static bool s_is_seq(const yaml_node_t *node)
{
    return node && node->type == YAML_SEQUENCE_NODE;
}

static size_t s_seq_len(const yaml_node_t *node)
{
    return s_is_seq(node)
               ? (size_t)(node->data.sequence.items.top - node->data.sequence.items.start)
               : 0;
}

static yaml_node_t *s_seq_at(const yaml_node_t *node, size_t i)
{
    return i < s_seq_len(node) ? s_node(node->data.sequence.items.start[i]) : NULL;
}

/* The value of `key` in mapping `map`, following YAML merge keys ("<<: *anchor" or a
 * sequence of anchors), as docker compose does. NULL when absent. */
static yaml_node_t *s_get(const yaml_node_t *map, const char *key)
{
    if (!s_is_map(map))
        return NULL;
    yaml_node_pair_t *pair;
    for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
        const char *k = s_scalar(s_node(pair->key));
        if (k && strcmp(k, key) == 0)
            return s_node(pair->value);
    }
    for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
        const char *k = s_scalar(s_node(pair->key));
        if (!k || strcmp(k, "<<") != 0)
            continue;
        yaml_node_t *merged = s_node(pair->value);
        yaml_node_t *found = s_get(merged, key);
        for (size_t i = 0; !found && i < s_seq_len(merged); i++)
            found = s_get(s_seq_at(merged, i), key);
        if (found)
            return found;
    }
    return NULL;
}

static yaml_node_t *s_service(const char *name)
{
    return s_get(s_get(yaml_document_get_root_node(&s_doc), "services"), name);
}

/* The whole text of a file (caller frees), or NULL. */
static char *s_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while (out && (n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, out);
    if (out)
        fclose(out);
    fclose(f);
    return text;
}

/* The Dockerfile named by service `name`'s build (context + dockerfile), into buf. */
static const char *s_dockerfile(const char *name, char *buf, size_t len)
{
    yaml_node_t *build = s_get(s_service(name), "build");
    cr_assert(s_is_map(build), "service %s has no build mapping", name);
    const char *context = s_scalar(s_get(build, "context"));
    const char *dockerfile = s_scalar(s_get(build, "dockerfile"));
    cr_assert_not_null(dockerfile, "service %s: build names no dockerfile", name);
    char relative[1024];
    int n = snprintf(relative, sizeof relative, "%s/%s", context ? context : ".", dockerfile);
    cr_assert(n > 0 && (size_t)n < sizeof relative);
    return s_path(buf, len, relative);
}

/* --- tests ------------------------------------------------------------------------------ */

Test(compose, parses_with_a_healthy_postgres_15)
{
    yaml_node_t *root = yaml_document_get_root_node(&s_doc);
    cr_assert(s_is_map(root), "compose.yaml is not a mapping");
    cr_assert(s_is_map(s_get(root, "services")), "compose.yaml has no services");
    yaml_node_t *pg = s_service("postgres");
    cr_assert_not_null(pg, "no postgres service");
    const char *image = s_scalar(s_get(pg, "image"));
    cr_assert(image && strncmp(image, "postgres:15", 11) == 0, "postgres image is %s",
              image ? image : "(none)");
    yaml_node_t *test = s_get(s_get(pg, "healthcheck"), "test");
    cr_assert(s_seq_len(test) > 1 || s_scalar(test), "postgres has no health check");
}

Test(compose, every_daemon_is_built_from_its_own_dockerfile)
{
    for (size_t i = 0; i < S_DAEMON_COUNT; i++) {
        const char *name = s_daemons[i];
        cr_assert_not_null(s_service(name), "no service for ncc-%s", name);
        char path[4096];
        s_dockerfile(name, path, sizeof path);
        cr_assert(s_is_file(path), "service %s: %s does not exist", name, path);
        cr_assert_not_null(strstr(path, name), "service %s builds from %s", name, path);
        char *text = s_read(path);
        cr_assert_not_null(text, "cannot read %s", path);
        char target[128];
        snprintf(target, sizeof target, "ncc-%s", name);
        bool ok = strstr(text, "FROM debian:bookworm-slim AS build") &&
                  strstr(text, "\nFROM debian:bookworm-slim\n") && strstr(text, "\nHEALTHCHECK ") &&
                  strstr(text, "/readyz") && strstr(text, "\nUSER ncc\n") && strstr(text, target);
        free(text);
        cr_assert(ok,
                  "%s must be multi-stage from debian:bookworm-slim, build %s, run as USER ncc "
                  "and have a HEALTHCHECK on /readyz",
                  path, target);
    }
}

Test(compose, every_daemon_is_health_checked_on_readyz)
{
    for (size_t i = 0; i < S_DAEMON_COUNT; i++) {
        const char *name = s_daemons[i];
        yaml_node_t *health = s_get(s_service(name), "healthcheck");
        cr_assert(s_is_map(health), "service %s has no healthcheck", name);
        const char *disabled = s_scalar(s_get(health, "disable"));
        cr_assert(!disabled || strcmp(disabled, "true") != 0, "service %s: healthcheck disabled",
                  name);
        yaml_node_t *test = s_get(health, "test");
        bool readyz = false;
        if (s_scalar(test))
            readyz = strstr(s_scalar(test), "/readyz") != NULL;
        for (size_t j = 0; j < s_seq_len(test); j++) {
            const char *arg = s_scalar(s_seq_at(test, j));
            if (arg && strstr(arg, "/readyz"))
                readyz = true;
        }
        cr_assert(readyz, "service %s: healthcheck does not ask /readyz", name);
    }
}

Test(compose, every_daemon_waits_for_a_healthy_postgres)
{
    for (size_t i = 0; i < S_DAEMON_COUNT; i++) {
        const char *name = s_daemons[i];
        yaml_node_t *depends = s_get(s_service(name), "depends_on");
        cr_assert(s_is_map(depends), "service %s: depends_on is not a mapping with conditions",
                  name);
        const char *condition = s_scalar(s_get(s_get(depends, "postgres"), "condition"));
        cr_assert(condition && strcmp(condition, "service_healthy") == 0,
                  "service %s does not wait for postgres to be healthy", name);
    }
}

Test(compose, only_nginx_publishes_ports)
{
    for (size_t i = 0; i < S_DAEMON_COUNT; i++) {
        yaml_node_t *svc = s_service(s_daemons[i]);
        cr_assert_null(s_get(svc, "ports"), "service %s publishes ports", s_daemons[i]);
        const char *mode = s_scalar(s_get(svc, "network_mode"));
        cr_assert(!mode || strcmp(mode, "host") != 0, "service %s uses the host network",
                  s_daemons[i]);
    }
    cr_assert_null(s_get(s_service("postgres"), "ports"), "postgres publishes ports");
    yaml_node_t *ports = s_get(s_service("nginx"), "ports");
    bool https = false;
    for (size_t j = 0; j < s_seq_len(ports); j++) {
        const char *port = s_scalar(s_seq_at(ports, j));
        if (port && strstr(port, "443"))
            https = true;
    }
    cr_assert(https, "nginx does not publish 443");
}

Test(compose, nginx_config_exists_and_edge_waits_for_gateway)
{
    yaml_node_t *nginx = s_service("nginx");
    cr_assert_not_null(nginx, "no nginx service");
    yaml_node_t *volumes = s_get(nginx, "volumes");
    const char *conf = NULL;
    for (size_t j = 0; j < s_seq_len(volumes); j++) {
        yaml_node_t *volume = s_seq_at(volumes, j);
        const char *spec = s_scalar(volume);
        if (spec && strstr(spec, ":/etc/nginx/nginx.conf"))
            conf = spec;
        const char *target = s_scalar(s_get(volume, "target"));
        if (target && strcmp(target, "/etc/nginx/nginx.conf") == 0)
            conf = s_scalar(s_get(volume, "source"));
    }
    cr_assert_not_null(conf, "nginx mounts no /etc/nginx/nginx.conf");
    char relative[1024];
    size_t len = strcspn(conf, ":");
    cr_assert(len < sizeof relative);
    memcpy(relative, conf, len);
    relative[len] = '\0';
    char path[4096];
    s_path(path, sizeof path, relative);
    cr_assert(s_is_file(path), "nginx configuration %s does not exist", path);
    char *text = s_read(path);
    cr_assert_not_null(text);
    bool limited = strstr(text, "limit_req ") && strstr(text, "client_max_body_size") &&
                   strstr(text, "large_client_header_buffers") && strstr(text, "gateway:8080");
    free(text);
    cr_assert(limited, "%s lacks rate or size limits or the gateway upstream", path);
    const char *condition =
        s_scalar(s_get(s_get(s_get(nginx, "depends_on"), "gateway"), "condition"));
    cr_assert(condition && strcmp(condition, "service_healthy") == 0,
              "nginx does not wait for a healthy gateway");
}

/* True when an environment entry named `key` must come from an env file. */
static bool s_is_secret(const char *key)
{
    static const char *const suffixes[] = {"_SECRET", "_PASSWORD", "_KEYS", "_KEY"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(key), s = strlen(suffixes[i]);
        if (k >= s && strcmp(key + k - s, suffixes[i]) == 0)
            return true;
    }
    return strcmp(key, "NCC_DATABASE_URL") == 0;
}

/* Fails when mapping or list `env` (of service `name`) spells out a secret. */
static void s_check_env(const char *name, const yaml_node_t *env)
{
    if (s_is_map(env)) {
        for (yaml_node_pair_t *p = env->data.mapping.pairs.start; p < env->data.mapping.pairs.top;
             p++) {
            const char *key = s_scalar(s_node(p->key));
            if (key && strcmp(key, "<<") == 0) {
                s_check_env(name, s_node(p->value));
                continue;
            }
            cr_assert(!key || !s_is_secret(key), "service %s: %s is written in compose.yaml", name,
                      key);
        }
    }
    for (size_t j = 0; j < s_seq_len(env); j++) {
        const char *entry = s_scalar(s_seq_at(env, j));
        if (!entry)
            continue;
        char key[256];
        size_t len = strcspn(entry, "=");
        cr_assert(len < sizeof key);
        memcpy(key, entry, len);
        key[len] = '\0';
        cr_assert(!s_is_secret(key), "service %s: %s is written in compose.yaml", name, key);
    }
}

Test(compose, secrets_come_from_env_files_only)
{
    yaml_node_t *services = s_get(yaml_document_get_root_node(&s_doc), "services");
    cr_assert(s_is_map(services));
    for (yaml_node_pair_t *p = services->data.mapping.pairs.start;
         p < services->data.mapping.pairs.top; p++) {
        const char *name = s_scalar(s_node(p->key));
        s_check_env(name ? name : "?", s_get(s_node(p->value), "environment"));
    }
    for (size_t i = 0; i < S_DAEMON_COUNT; i++) {
        yaml_node_t *env_file = s_get(s_service(s_daemons[i]), "env_file");
        cr_assert(s_scalar(env_file) || s_seq_len(env_file) > 0, "service %s has no env_file",
                  s_daemons[i]);
    }
}
