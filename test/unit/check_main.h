/*
 * check_main.h: the contract between a unit-test file and the shared main()
 * in check_main.c.
 *
 * Each test/unit/check_<core file>.c is one program: it defines
 * hb_test_suite() and links check_main.c (through libcheckmain), which runs
 * that suite in Check's default fork mode (CK_FORK in the environment still
 * applies, e.g. CK_FORK=no under valgrind) and exits non-zero if any test
 * failed. APR is initialised once, before the suite runs: a fixture that
 * needs a pool creates one with apr_pool_create(&pool, NULL) and destroys it
 * in its teardown; no test file calls apr_initialize or apr_terminate.
 */
#ifndef CHECK_MAIN_H
#define CHECK_MAIN_H

#include <check.h>

/* The suite of this program: built fresh on each call, owned by the caller
 * (the SRunner frees it). */
Suite *hb_test_suite(void);

#endif
