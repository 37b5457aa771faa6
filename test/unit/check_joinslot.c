/*
 * check_joinslot.c: which slot an origin that joins gets (lbhb_join.c).
 */
#include <string.h>

#include "check_main.h"
#include "lbhb_join.h"

#define SEC 1000000LL

static lbhb_jslot_t slots[8];

static void reset(void)
{
    memset(slots, 0, sizeof(slots));
}

START_TEST(test_own_slot_first)
{
    unsigned int i = 99;

    reset();
    slots[0].used = 1; /* a static member */
    slots[1].used = slots[1].joined = slots[1].disabled = 1;
    slots[1].same = 1;
    slots[1].since = 0;
    ck_assert_int_eq(lbhb_join_choose(slots, 4, 100 * SEC, 60 * SEC, &i), LBHB_JOIN_HAVE);
    ck_assert_uint_eq(i, 1);
}
END_TEST

START_TEST(test_fresh_slot_before_reuse)
{
    unsigned int i = 99;

    reset();
    slots[0].used = slots[0].joined = slots[0].disabled = 1;
    slots[0].since = 0; /* long gone: could be reused */
    slots[1].used = 1;
    ck_assert_int_eq(lbhb_join_choose(slots, 3, 1000 * SEC, 60 * SEC, &i), LBHB_JOIN_NEW);
    ck_assert_uint_eq(i, 2);
}
END_TEST

START_TEST(test_reuse_rules)
{
    unsigned int i = 99;

    reset();
    slots[0].used = 1;                                       /* static */
    slots[1].used = slots[1].joined = 1;                     /* joined, up */
    slots[2].used = slots[2].joined = slots[2].disabled = 1; /* gone 30 s */
    slots[2].since = 70 * SEC;
    slots[3].used = slots[3].joined = slots[3].disabled = 1; /* gone 90 s, busy */
    slots[3].since = 10 * SEC;
    slots[3].busy = 1;
    /* Nothing may be reused yet: too recent, or a request in flight. */
    ck_assert_int_eq(lbhb_join_choose(slots, 4, 100 * SEC, 60 * SEC, &i), LBHB_JOIN_FULL);
    slots[3].busy = 0;
    ck_assert_int_eq(lbhb_join_choose(slots, 4, 100 * SEC, 60 * SEC, &i), LBHB_JOIN_REUSE);
    ck_assert_uint_eq(i, 3);
    /* Of two that may go, the one gone longest. */
    ck_assert_int_eq(lbhb_join_choose(slots, 4, 200 * SEC, 60 * SEC, &i), LBHB_JOIN_REUSE);
    ck_assert_uint_eq(i, 3);
    /* A disabled time in the future (the clock stepped back) is not old. */
    slots[3].since = 300 * SEC;
    ck_assert_int_eq(lbhb_join_choose(slots, 4, 200 * SEC, 60 * SEC, &i), LBHB_JOIN_REUSE);
    ck_assert_uint_eq(i, 2);
    /* A static member's slot is never taken, however long disabled. */
    reset();
    slots[0].used = slots[0].disabled = 1;
    ck_assert_int_eq(lbhb_join_choose(slots, 1, 1000 * SEC, 60 * SEC, &i), LBHB_JOIN_FULL);
}
END_TEST

/* Many origins coming and going over few slots: no slot ever holds two,
 * and an origin never holds two slots. */
START_TEST(test_churn_one_address_per_slot)
{
    enum { N = 16, ORIGINS = 40 };
    int holder[N], where[ORIGINS];
    int64_t now = 0;
    unsigned int seed = 12345, round;

    reset();
    memset(holder, -1, sizeof(holder));
    memset(where, -1, sizeof(where));
    lbhb_jslot_t s[N];
    memset(s, 0, sizeof(s));
    for (round = 0; round < 200000; round++) {
        int o = (int)((seed = seed * 1103515245u + 12345u) >> 16) % ORIGINS;
        int leave = ((seed >> 8) & 3) == 0;
        unsigned int i, k;
        now += SEC;
        if (leave) {
            if (where[o] >= 0 && !s[where[o]].disabled) {
                s[where[o]].disabled = 1;
                s[where[o]].since = now;
            }
            continue;
        }
        for (k = 0; k < N; k++) {
            s[k].same = holder[k] == o;
        }
        switch (lbhb_join_choose(s, N, now, 60 * SEC, &i)) {
        case LBHB_JOIN_HAVE:
            ck_assert_int_eq(holder[i], o);
            s[i].disabled = 0;
            break;
        case LBHB_JOIN_NEW:
            ck_assert(!s[i].used);
            /* fallthrough */
        case LBHB_JOIN_REUSE:
            ck_assert_int_lt(where[o], 0);
            if (holder[i] >= 0) {
                ck_assert(s[i].disabled && now - s[i].since >= 60 * SEC);
                where[holder[i]] = -1;
            }
            holder[i] = o;
            where[o] = (int)i;
            s[i].used = s[i].joined = 1;
            s[i].disabled = 0;
            break;
        default:
            ck_assert_int_lt(where[o], 0);
        }
    }
    for (int a = 0; a < N; a++) {
        for (int b = a + 1; b < N; b++) {
            ck_assert(holder[a] < 0 || holder[a] != holder[b]);
        }
    }
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("lbhb_join");
    TCase *tc = tcase_create("choose");

    tcase_add_test(tc, test_own_slot_first);
    tcase_add_test(tc, test_fresh_slot_before_reuse);
    tcase_add_test(tc, test_reuse_rules);
    tcase_add_test(tc, test_churn_one_address_per_slot);
    suite_add_tcase(s, tc);
    return s;
}
