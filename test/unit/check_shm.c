/*
 * check_shm.c: unit tests for hm_shm (the table's shared block, in huge
 * pages when the system has some). Whether huge pages can be had depends
 * on the machine (vm.nr_hugepages is 0 on most): every test passes either
 * way and checks what the machine's /proc/meminfo says must happen.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apr_pools.h"

#include "hm_shm.h"

#include "check_main.h"

static apr_pool_t *pool;

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

/* A number from /proc/meminfo ("Hugepagesize:", "HugePages_Free:"), or -1. */
static long meminfo(const char *field)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    long v = -1;

    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, field, strlen(field))) {
            v = strtol(line + strlen(field), NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* Whether the kernel may hand out huge pages beyond the reserved pool
 * (surplus pages): then a request larger than the free pool can succeed. */
static int overcommit_hugepages(void)
{
    FILE *f = fopen("/proc/sys/vm/nr_overcommit_hugepages", "r");
    long v = 0;

    if (f) {
        if (fscanf(f, "%ld", &v) != 1) {
            v = 0;
        }
        fclose(f);
    }
    return v > 0;
}

static int all_zero(const void *p, apr_size_t n)
{
    const unsigned char *c = p;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        if (c[i]) {
            return 0;
        }
    }
    return 1;
}

START_TEST(test_normal_pages)
{
    hm_shm_t *shm = NULL;
    const char *why = "not reset";
    apr_size_t size = 3 * 4096 + 17;

    ck_assert_int_eq(hm_shm_create(&shm, size, HM_HUGE_OFF, pool, &why), APR_SUCCESS);
    ck_assert_ptr_nonnull(shm);
    ck_assert_ptr_null(why);
    ck_assert_ptr_nonnull(hm_shm_base(shm));
    ck_assert_uint_ge(hm_shm_size(shm), size);
    ck_assert_uint_eq(hm_shm_huge_page(shm), 0);
    ck_assert(all_zero(hm_shm_base(shm), hm_shm_size(shm)));
    /* The table needs 8-byte alignment at least. */
    ck_assert_uint_eq((uintptr_t)hm_shm_base(shm) % 8, 0);
    memset(hm_shm_base(shm), 0x5a, hm_shm_size(shm));
    hm_shm_destroy(shm);
}
END_TEST

START_TEST(test_why_optional)
{
    hm_shm_t *shm = NULL;

    ck_assert_int_eq(hm_shm_create(&shm, 4096, HM_HUGE_OFF, pool, NULL), APR_SUCCESS);
    ck_assert_ptr_nonnull(hm_shm_base(shm));
}
END_TEST

/* What the parent's children rely on: a write in one process is seen in
 * the other, both ways. */
START_TEST(test_shared_with_child)
{
    hm_shm_t *shm = NULL;
    volatile uint32_t *word;
    int status;
    pid_t pid;

    ck_assert_int_eq(hm_shm_create(&shm, 4096, HM_HUGE_OFF, pool, NULL), APR_SUCCESS);
    word = hm_shm_base(shm);
    word[0] = 1;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (word[0] != 1) {
            _exit(1);
        }
        word[1] = 42;
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_uint_eq(word[1], 42);
}
END_TEST

/* HM_HUGE_TRY asking for one huge page more than the pool has free: huge
 * pages cannot be had, so normal pages, and *why says why. On a machine
 * with none reserved (vm.nr_hugepages=0) that is a single page. */
START_TEST(test_try_falls_back)
{
    long page_kb = meminfo("Hugepagesize:"), free_pages = meminfo("HugePages_Free:");
    apr_size_t size;
    hm_shm_t *shm = NULL;
    const char *why = NULL;

    if (page_kb <= 0 || free_pages < 0) {
        /* No huge pages in this kernel at all: the fallback is certain. */
        page_kb = 2048;
        free_pages = 0;
    }
    size = (apr_size_t)(free_pages + 1) * (apr_size_t)page_kb * 1024;
    ck_assert_int_eq(hm_shm_create(&shm, size, HM_HUGE_TRY, pool, &why), APR_SUCCESS);
    ck_assert_ptr_nonnull(hm_shm_base(shm));
    ck_assert_uint_ge(hm_shm_size(shm), size);
    if (hm_shm_huge_page(shm) == 0) {
        ck_assert_msg(why != NULL && *why, "fell back to normal pages without saying why");
        ck_assert(all_zero(hm_shm_base(shm), hm_shm_size(shm)));
    } else {
        /* Surplus huge pages made it possible after all. */
        ck_assert_msg(overcommit_hugepages(), "more huge pages than HugePages_Free");
        ck_assert_ptr_null(why);
    }
    hm_shm_destroy(shm);
}
END_TEST

/* HM_HUGE_ON: huge pages or an error, never a silent fallback. */
START_TEST(test_on_never_falls_back)
{
    long page_kb = meminfo("Hugepagesize:"), free_pages = meminfo("HugePages_Free:");
    hm_shm_t *shm = NULL;
    const char *why = NULL;
    apr_status_t rv;

    rv = hm_shm_create(&shm, 4096, HM_HUGE_ON, pool, &why);
    if (rv != APR_SUCCESS) {
        ck_assert_msg(why != NULL && *why, "failed without saying why");
        ck_assert_msg(free_pages <= 0 || page_kb <= 0,
                      "no huge page although HugePages_Free is %ld (%s)", free_pages, why);
        return;
    }
    ck_assert_ptr_null(why);
    ck_assert_uint_ne(hm_shm_huge_page(shm), 0);
    ck_assert_uint_eq(hm_shm_huge_page(shm), (apr_size_t)page_kb * 1024);
    /* Rounded up to whole huge pages. */
    ck_assert_uint_eq(hm_shm_size(shm) % hm_shm_huge_page(shm), 0);
    ck_assert_uint_ge(hm_shm_size(shm), 4096);
    ck_assert(all_zero(hm_shm_base(shm), hm_shm_size(shm)));
    hm_shm_destroy(shm);
}
END_TEST

/* The receiver's buffers: zeroed, writable, any size (beyond one huge
 * page they come from the pool). */
START_TEST(test_private_huge)
{
    apr_size_t sizes[] = {1, 110 * 1024, 2 * 1024 * 1024, 3 * 1024 * 1024};
    unsigned int i;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *p = hm_private_huge(sizes[i], pool);
        ck_assert_ptr_nonnull(p);
        ck_assert(all_zero(p, sizes[i]));
        memset(p, 0xa5, sizes[i]);
    }
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hm_shm");
    TCase *tc = tcase_create("shm");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_normal_pages);
    tcase_add_test(tc, test_why_optional);
    tcase_add_test(tc, test_shared_with_child);
    tcase_add_test(tc, test_try_falls_back);
    tcase_add_test(tc, test_on_never_falls_back);
    suite_add_tcase(s, tc);
    tc = tcase_create("private");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_private_huge);
    suite_add_tcase(s, tc);
    return s;
}
