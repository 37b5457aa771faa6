/*
 * check_main.c: the one main() of every unit-test program (see
 * check_main.h). Prints Check's summary line ("100%: Checks: N, Failures:
 * 0, Errors: 0"), which test/summary.sh collects from each program's log.
 */
#include <stdio.h>
#include <stdlib.h>

#include "apr_general.h"

#include "check_main.h"

int main(void)
{
    SRunner *sr;
    int failed;

    /* Before the suite is built or run: forked tests inherit it, and with
     * CK_FORK=no every test runs in this process. */
    if (apr_initialize() != APR_SUCCESS) {
        fprintf(stderr, "apr_initialize failed\n");
        return EXIT_FAILURE;
    }
    sr = srunner_create(hb_test_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
