/* Tests for the message registry (common/src/registry.c): every generated
 * descriptor is found by its full name, nothing else is, from many threads. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ncc.pb-c.h"
#include "ncc/registry.h"
#include "test_types.pb-c.h"

/* Criterion runs each test in a forked worker, and a LeakSanitizer report
 * there does not fail the run: check after every test and crash on a leak
 * (the weak symbol is NULL in builds without the sanitizer). */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static void s_check_leaks(void)
{
    if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check() != 0)
        abort();
}

TestSuite(registry, .fini = s_check_leaks);

Test(registry, finds_known_types)
{
    cr_assert_eq(ncc_registry_find("ncc.Ping"), &ncc__ping__descriptor);
    cr_assert_eq(ncc_registry_find("ncc.Envelope"), &ncc__envelope__descriptor);
    cr_assert_eq(ncc_registry_find("ncc.test.Scalars"), &ncc__test__scalars__descriptor);
    cr_assert_eq(ncc_registry_find("ncc.test.Everything"), &ncc__test__everything__descriptor);
}

Test(registry, every_entry_is_found_by_its_name)
{
    size_t n = 0;

    for (; ncc_registry_messages[n]; n++) {
        const ProtobufCMessageDescriptor *d = ncc_registry_messages[n];
        cr_assert_eq(d->magic, PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
        cr_assert_eq(ncc_registry_find(d->name), d, "%s", d->name);
    }
    cr_assert_geq(n, 20);
}

Test(registry, unknown_names_are_null)
{
    cr_assert_null(ncc_registry_find(NULL));
    cr_assert_null(ncc_registry_find(""));
    cr_assert_null(ncc_registry_find("Ping"));
    cr_assert_null(ncc_registry_find("ncc.ping"));
    cr_assert_null(ncc_registry_find("ncc.Ping "));
    cr_assert_null(ncc_registry_find(".ncc.Ping"));
    cr_assert_null(ncc_registry_find("ncc.Pin"));
    cr_assert_null(ncc_registry_find("ncc.Pingg"));
    cr_assert_null(ncc_registry_find("ncc.test.Color")); /* an enum, not a message */
    cr_assert_null(ncc_registry_find("zzz"));
    cr_assert_null(ncc_registry_find("\x01"));
}

static void *s_look_up_all(void *arg)
{
    (void)arg;
    for (int round = 0; round < 200; round++)
        for (size_t i = 0; ncc_registry_messages[i]; i++)
            if (ncc_registry_find(ncc_registry_messages[i]->name) != ncc_registry_messages[i])
                return (void *)1;
    return NULL;
}

Test(registry, first_use_from_many_threads)
{
    pthread_t threads[8];

    for (int i = 0; i < 8; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, s_look_up_all, NULL), 0);
    for (int i = 0; i < 8; i++) {
        void *result = (void *)1;
        cr_assert_eq(pthread_join(threads[i], &result), 0);
        cr_assert_null(result);
    }
}
