/* registry: type name -> message descriptor over the generated table
 * ncc_registry_messages[] (scripts/gen-registry.sh). A sorted index is built
 * once (pthread_once), then every look-up is a binary search. */
#include "ncc/registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The descriptors sorted by full name; built once, kept for the process
 * lifetime. NULL if it could not be allocated: look-ups then scan the table. */
static const ProtobufCMessageDescriptor **s_index;
/* Entries in s_index. */
static size_t s_index_len;
static pthread_once_t s_index_once = PTHREAD_ONCE_INIT;

static int s_compare_names(const void *a, const void *b)
{
    const ProtobufCMessageDescriptor *const *x = a;
    const ProtobufCMessageDescriptor *const *y = b;

    return strcmp((*x)->name, (*y)->name);
}

static void s_build_index(void)
{
    size_t n = 0;

    while (ncc_registry_messages[n])
        n++;
    const ProtobufCMessageDescriptor **index = malloc((n + 1) * sizeof *index);
    if (!index)
        return;
    memcpy(index, ncc_registry_messages, n * sizeof *index);
    qsort(index, n, sizeof *index, s_compare_names);
    s_index = index;
    s_index_len = n;
}

const ProtobufCMessageDescriptor *ncc_registry_find(const char *type_name)
{
    if (!type_name)
        return NULL;
    pthread_once(&s_index_once, s_build_index);

    if (!s_index) {
        for (size_t i = 0; ncc_registry_messages[i]; i++)
            if (strcmp(ncc_registry_messages[i]->name, type_name) == 0)
                return ncc_registry_messages[i];
        return NULL;
    }

    size_t low = 0;
    size_t high = s_index_len;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int cmp = strcmp(s_index[mid]->name, type_name);
        if (cmp == 0)
            return s_index[mid];
        if (cmp < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}
