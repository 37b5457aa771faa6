/*
 * check_elect.c: unit tests for hb_elect (which child runs a singleton):
 * one holder at a time across processes, hand-over when the holder lets go
 * and when it dies holding the election, a newer generation superseding an
 * older one, and independent names.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apr_pools.h"

#include "hb_elect.h"

#include "check_main.h"

static apr_pool_t *pproc, *pconf;

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pproc, NULL), APR_SUCCESS);
    ck_assert_int_eq(apr_pool_create(&pconf, pproc), APR_SUCCESS);
}

static void teardown(void)
{
    apr_pool_destroy(pproc);
}

/* A child process that wins the election, says so through the pipe, then
 * holds it until killed (or exits at once if `release`). */
static pid_t holder(hb_elect_t *e, int release)
{
    int fds[2];
    char c;
    pid_t pid;

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        if (hb_elect_wait(e) == HB_ELECT_ERROR) {
            _exit(2);
        }
        (void)!write(fds[1], "w", 1);
        if (release) {
            hb_elect_release(e);
            _exit(0);
        }
        for (;;) {
            pause();
        }
    }
    close(fds[1]);
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    close(fds[0]);
    return pid;
}

START_TEST(test_holder_dies_hand_over)
{
    hb_elect_t *e;
    pid_t pid;
    int status;

    ck_assert_int_eq(hb_elect_create(&e, "test", pconf, pproc), APR_SUCCESS);
    pid = holder(e, 0);
    /* The holder crashes holding it: the next waiter wins, and is told. */
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(hb_elect_wait(e), HB_ELECT_WON_FROM_DEAD);
    ck_assert_int_eq(hb_elect_claim(e), 0);
    hb_elect_release(e);
    /* A clean release is an ordinary win for the next one. */
    pid = holder(e, 1);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(hb_elect_wait(e), HB_ELECT_WON);
    hb_elect_release(e);
}
END_TEST

START_TEST(test_one_holder_at_a_time)
{
    hb_elect_t *e;
    pid_t pid;
    int status, fds[2];
    char c;

    ck_assert_int_eq(hb_elect_create(&e, "test", pconf, pproc), APR_SUCCESS);
    ck_assert_int_eq(hb_elect_wait(e), HB_ELECT_WON);
    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Blocks while the parent holds it. */
        close(fds[0]);
        hb_elect_wait(e);
        (void)!write(fds[1], "w", 1);
        hb_elect_release(e);
        _exit(0);
    }
    close(fds[1]);
    /* Not won while held: nothing to read for a while. */
    {
        fd_set set;
        struct timeval tv = {0, 200000};
        FD_ZERO(&set);
        FD_SET(fds[0], &set);
        ck_assert_int_eq(select(fds[0] + 1, &set, NULL, NULL, &tv), 0);
    }
    hb_elect_release(e);
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}
END_TEST

START_TEST(test_generations)
{
    hb_elect_t *old, *cur, *other;
    apr_pool_t *pconf2;

    ck_assert_int_eq(hb_elect_create(&old, "test", pconf, pproc), APR_SUCCESS);
    ck_assert_int_eq(hb_elect_wait(old), HB_ELECT_WON);
    ck_assert_int_eq(hb_elect_claim(old), 0);
    ck_assert(!hb_elect_superseded(old));

    /* A graceful restart: a new generation, its own mutex. */
    ck_assert_int_eq(apr_pool_create(&pconf2, pproc), APR_SUCCESS);
    ck_assert_int_eq(hb_elect_create(&cur, "test", pconf2, pproc), APR_SUCCESS);
    ck_assert_int_eq(hb_elect_wait(cur), HB_ELECT_WON); /* not blocked by old */
    ck_assert(!hb_elect_superseded(old));               /* until cur claims */
    ck_assert_int_eq(hb_elect_claim(cur), 0);
    ck_assert(hb_elect_superseded(old));
    ck_assert(!hb_elect_superseded(cur));
    /* The old generation can never take it back. */
    ck_assert_int_eq(hb_elect_claim(old), -1);
    ck_assert_int_eq(hb_elect_claim(cur), 0);

    /* Another name is another singleton altogether. */
    ck_assert_int_eq(hb_elect_create(&other, "other", pconf2, pproc), APR_SUCCESS);
    ck_assert_int_eq(hb_elect_wait(other), HB_ELECT_WON);
    ck_assert_int_eq(hb_elect_claim(other), 0);
    ck_assert(!hb_elect_superseded(cur));
    hb_elect_release(other);
    hb_elect_release(cur);
    hb_elect_release(old);
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hb_elect");
    TCase *tc = tcase_create("elect");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_holder_dies_hand_over);
    tcase_add_test(tc, test_one_holder_at_a_time);
    tcase_add_test(tc, test_generations);
    suite_add_tcase(s, tc);
    return s;
}
