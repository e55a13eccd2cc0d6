/* rotation: background re-encryption of personal data after a data-key
 * rotation (R14; docs/security-crypto.md "Rotation").
 *
 * A service names its encrypted columns ({table, id column, column, context});
 * each step re-encrypts, under the keyring's current key, at most a batch of
 * rows whose value is not yet under it ("v1:<current id>:" prefix test in SQL):
 * decrypt, encrypt, UPDATE ... WHERE id = $1 AND column = <old value>, so a
 * concurrent change wins over the re-encryption, one transaction per batch.
 * A value that does not decrypt is logged (table, column, id; never the value)
 * and skipped. The service frame runs the steps from its cron
 * (ncc_service_encrypted_column in ncc/service.h); this module does not care
 * who calls it. One rotation object belongs to the thread that uses its db.
 *
 * Counted: ncc_rows_reencrypted_total, ncc_rows_reencrypt_skipped_total. */
#ifndef NCC_ROTATION_H
#define NCC_ROTATION_H

#include <stdbool.h>
#include <stdint.h>

#include "ncc/crypto.h"
#include "ncc/db.h"

typedef struct ncc_rotation ncc_rotation_t;

/* A rotation over `db` (borrowed; its search_path names the service's
 * schema) with `keyring` (borrowed; both must outlive the object). NULL on
 * allocation failure or NULL arguments. */
ncc_rotation_t *ncc_rotation_new(ncc_db_t *db, const ncc_keyring_t *keyring);
void ncc_rotation_destroy(ncc_rotation_t **self_p);

/* Adds an encrypted column (strings copied). `table`, `id_column` and
 * `column` are plain SQL identifiers ([a-z_][a-z0-9_]*, at most 63 bytes;
 * the table unqualified, found through the search_path); the id column must
 * be unique and orderable (a primary key); `context` is the associated data
 * the values were encrypted with (ncc_encrypt). 0, -EINVAL, -EEXIST for a
 * column already added, -ENOMEM. */
int ncc_rotation_add(ncc_rotation_t *self, const char *table, const char *id_column,
                     const char *column, const char *context);

/* What one step did. */
typedef struct {
    int64_t reencrypted; /* rows now under the current key */
    int64_t skipped;     /* rows whose value did not decrypt (logged, left as they are) */
    int64_t changed;     /* rows changed concurrently between read and write (left alone) */
    int64_t examined;    /* rows read (reencrypted + skipped + changed) */
} ncc_rotation_stats_t;

/* Re-encrypts at most `batch` rows (1 to 10000) in total, taking the columns
 * in order and, within a column, the rows by id from where the last step
 * stopped: one transaction per column touched. A column whose pass over the
 * table ends without anything re-encrypted rests for an hour (the keyring
 * does not change while the process runs; values other copies may still
 * write under an old key are caught then). *ret_stats (may be NULL) gets the
 * counts, also on failure (the rolled-back batch counts nothing). 0 when
 * done; -EINVAL; -EIO on a database failure (ncc_db_error(db) says why; the
 * batch is rolled back and the next step tries again); -EBUSY when a
 * transaction is already open on db. */
int ncc_rotation_step(ncc_rotation_t *self, int batch, ncc_rotation_stats_t *ret_stats);

/* True when every column's last pass found nothing left to re-encrypt (only
 * values that do not decrypt, if any). */
bool ncc_rotation_idle(ncc_rotation_t *self);

#endif
