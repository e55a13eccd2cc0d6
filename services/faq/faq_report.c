/* faq_report: the FaqSearched event (faq_report.h). */
#include "faq_report.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ncc/log.h"

#define S_SHOWN 3

void faq_report_searched(faq_t *self, const char *q, const faq_hit_t *hits, size_t count,
                         bool public_request)
{
    char *norm = faq_normalize(q);
    if (!norm || !*norm) {
        free(norm);
        return;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    char hash[2 * EVP_MAX_MD_SIZE + 1] = "";
    if (EVP_Digest(norm, strlen(norm), digest, &digest_len, EVP_sha256(), NULL) == 1)
        for (unsigned int i = 0; i < digest_len; i++)
            snprintf(hash + 2 * i, 3, "%02x", digest[i]);
    /* the numbers and questions of the first hits, in rank order */
    size_t n = count < S_SHOWN ? count : S_SHOWN;
    int64_t numbers[S_SHOWN];
    char *questions[S_SHOWN];
    size_t shown = 0;
    PGresult *res = NULL;
    if (n > 0) {
        char ids[S_SHOWN * 24 + 4];
        size_t at = 0;
        ids[at++] = '{';
        for (size_t i = 0; i < n; i++)
            at +=
                (size_t)snprintf(ids + at, sizeof ids - at, "%s%" PRId64, i ? "," : "", hits[i].id);
        snprintf(ids + at, sizeof ids - at, "}");
        const char *params[] = {ids};
        res = ncc_db_exec(self->db,
                          "SELECT f.number, left(f.question, 200) FROM unnest($1::bigint[]) WITH "
                          "ORDINALITY AS h(id, rank) JOIN faqs f ON f.id = h.id ORDER BY h.rank",
                          1, params, NULL);
        for (int r = 0; res && r < PQntuples(res) && shown < S_SHOWN; r++, shown++) {
            numbers[shown] = strtoll(PQgetvalue(res, r, 0), NULL, 10);
            questions[shown] = PQgetvalue(res, r, 1);
        }
    }
    char id[33], now[40];
    ncc_bus_random_id(id);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    Ncc__Faq__FaqSearched event = NCC__FAQ__FAQ_SEARCHED__INIT;
    event.search_id = id;
    event.searched_at = now;
    event.has_resident = true;
    event.resident = public_request;
    event.has_hits = true;
    event.hits = (int64_t)count;
    event.query_hash = hash;
    if (count == 0) {
        size_t len = 0, chars = 0;
        while (norm[len] && chars < 200)
            chars += ((unsigned char)norm[len++] & 0xC0) != 0x80 ? 1 : 0;
        while (norm[len] && ((unsigned char)norm[len] & 0xC0) == 0x80)
            len++;
        norm[len] = '\0';
        event.query = norm;
    }
    event.n_shown = shown;
    event.shown = numbers;
    event.n_shown_questions = shown;
    event.shown_questions = questions;
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    if (ncc_outbox_add(self->db, &ctx, &event.base) < 0)
        ncc_warn("faq.searched_event", "the search was not reported: %s", ncc_db_error(self->db));
    if (res)
        PQclear(res);
    free(norm);
}
