/*
 * check_due.c: unit tests for hm_due (when the receiver's expiry scan and
 * storage write are due, and how long it may sleep meanwhile).
 */
#include <stdint.h>

#include "hm_due.h"

#include "check_main.h"

#define MS  INT64_C(1000)
#define SEC INT64_C(1000000)
#define NOW (INT64_C(1796000000) * SEC)

START_TEST(test_scan_at_once)
{
    hm_due_t d;

    hm_due_init(&d, 30 * SEC, SEC, 1);
    ck_assert_int_le(hm_due_scan(&d), NOW);
    ck_assert_int_eq(hm_due_poll(&d, NOW, 0, 0), 0);
}
END_TEST

START_TEST(test_scan_when_oldest_can_expire)
{
    hm_due_t d;

    hm_due_init(&d, 30 * SEC, SEC, 0);
    /* The oldest entry was seen 10 s ago: nothing can expire for 20 s. */
    hm_due_scanned(&d, NOW, NOW - 10 * SEC);
    ck_assert_int_eq(hm_due_scan(&d), NOW + 20 * SEC);
    /* Seen long ago (it did not expire: the clock jumped): not sooner
     * than a second after the last scan. */
    hm_due_scanned(&d, NOW, NOW - 100 * SEC);
    ck_assert_int_eq(hm_due_scan(&d), NOW + SEC);
    /* Empty: a new entry is at least as new as now. */
    hm_due_scanned(&d, NOW, INT64_MAX);
    ck_assert_int_eq(hm_due_scan(&d), NOW + 30 * SEC);
    /* Seen "later" than now (clock went back): at least once per expiry. */
    hm_due_scanned(&d, NOW, NOW + 100 * SEC);
    ck_assert_int_eq(hm_due_scan(&d), NOW + 30 * SEC);
}
END_TEST

START_TEST(test_scan_short_expiry)
{
    hm_due_t d;

    /* A quarter of an expiry under four seconds. */
    hm_due_init(&d, 2 * SEC, SEC, 0);
    hm_due_scanned(&d, NOW, NOW - 10 * SEC);
    ck_assert_int_eq(hm_due_scan(&d), NOW + 500 * MS);
    hm_due_scanned(&d, NOW, NOW - 1900 * MS);
    ck_assert_int_eq(hm_due_scan(&d), NOW + 500 * MS);
    hm_due_scanned(&d, NOW, NOW - 1 * SEC);
    ck_assert_int_eq(hm_due_scan(&d), NOW + 1 * SEC);
}
END_TEST

START_TEST(test_write_schedule)
{
    hm_due_t d;

    hm_due_init(&d, 30 * SEC, 2 * SEC, 1);
    /* Never written: at once. */
    ck_assert_int_le(hm_due_write(&d, 0, 0), NOW);
    hm_due_wrote(&d, NOW, 10, 3, 1);
    /* Counts changed: after HeartbeatStorageInterval. */
    ck_assert_int_eq(hm_due_write(&d, 11, 3), NOW + 2 * SEC);
    /* Nothing changed: every few seconds anyway, for stock's lastseen. */
    ck_assert_int_eq(hm_due_write(&d, 10, 3), NOW + HM_DUE_REWRITE);
    /* An origin appeared or changed state: almost at once. */
    ck_assert_int_eq(hm_due_write(&d, 11, 4), NOW + HM_DUE_WRITE_GAP);
    /* A long interval holds for unchanged tables too. */
    hm_due_init(&d, 30 * SEC, 60 * SEC, 1);
    hm_due_wrote(&d, NOW, 10, 3, 1);
    ck_assert_int_eq(hm_due_write(&d, 10, 3), NOW + 60 * SEC);
    ck_assert_int_eq(hm_due_write(&d, 11, 4), NOW + HM_DUE_WRITE_GAP);
    /* An interval shorter than the gap is not made longer. */
    hm_due_init(&d, 30 * SEC, 10 * MS, 1);
    hm_due_wrote(&d, NOW, 10, 3, 1);
    ck_assert_int_eq(hm_due_write(&d, 11, 4), NOW + 10 * MS);
}
END_TEST

START_TEST(test_write_failed)
{
    hm_due_t d;

    hm_due_init(&d, 30 * SEC, 2 * SEC, 1);
    hm_due_wrote(&d, NOW, 10, 3, 1);
    /* A state change whose write failed: retried after the interval, not
     * within the gap again. */
    hm_due_wrote(&d, NOW + SEC, 11, 4, 0);
    ck_assert_int_eq(hm_due_write(&d, 11, 4), NOW + 3 * SEC);
    /* The file still holds version 10. */
    ck_assert_int_eq(hm_due_write(&d, 10, 4), NOW + SEC + HM_DUE_REWRITE);
}
END_TEST

START_TEST(test_write_now)
{
    hm_due_t d;

    hm_due_init(&d, 30 * SEC, 2 * SEC, 1);
    hm_due_wrote(&d, NOW, 10, 3, 1);
    hm_due_write_now(&d);
    ck_assert_int_le(hm_due_write(&d, 10, 3), NOW);
}
END_TEST

START_TEST(test_no_file)
{
    hm_due_t d;

    hm_due_init(&d, 30 * SEC, 2 * SEC, 0);
    ck_assert_int_eq(hm_due_write(&d, 0, 0), INT64_MAX);
    hm_due_write_now(&d);
    ck_assert_int_eq(hm_due_write(&d, 0, 0), INT64_MAX);
    hm_due_scanned(&d, NOW, NOW - 29 * SEC - 700 * MS);
    /* Only the scan wakes the receiver. */
    ck_assert_int_eq(hm_due_poll(&d, NOW, 5, 5), SEC);
    ck_assert_int_eq(hm_due_poll(&d, NOW + 100 * MS, 5, 5), 900 * MS);
}
END_TEST

START_TEST(test_poll)
{
    hm_due_t d;

    hm_due_init(&d, 30 * SEC, 100 * MS, 1);
    hm_due_scanned(&d, NOW, NOW);
    hm_due_wrote(&d, NOW, 10, 3, 1);
    /* The write (counts changed) comes before the scan. */
    ck_assert_int_eq(hm_due_poll(&d, NOW, 11, 3), 100 * MS);
    /* Whole milliseconds, rounded up: never 0 before it is due. */
    ck_assert_int_eq(hm_due_poll(&d, NOW + 99 * MS + 1, 11, 3), 1 * MS);
    ck_assert_int_eq(hm_due_poll(&d, NOW + 99 * MS + 999, 11, 3), 1 * MS);
    ck_assert_int_eq(hm_due_poll(&d, NOW + 100 * MS, 11, 3), 0);
    ck_assert_int_eq(hm_due_poll(&d, NOW + 10 * SEC, 11, 3), 0);
    /* Nothing to do for a while: at most HM_DUE_POLL_MAX. */
    ck_assert_int_eq(hm_due_poll(&d, NOW, 10, 3), HM_DUE_POLL_MAX);
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hm_due");
    TCase *tc = tcase_create("scan");

    tcase_add_test(tc, test_scan_at_once);
    tcase_add_test(tc, test_scan_when_oldest_can_expire);
    tcase_add_test(tc, test_scan_short_expiry);
    suite_add_tcase(s, tc);
    tc = tcase_create("write");
    tcase_add_test(tc, test_write_schedule);
    tcase_add_test(tc, test_write_failed);
    tcase_add_test(tc, test_write_now);
    tcase_add_test(tc, test_no_file);
    tcase_add_test(tc, test_poll);
    suite_add_tcase(s, tc);
    return s;
}
