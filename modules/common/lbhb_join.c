/*
 * lbhb_join.c: slot choice for origins that join (lbhb_join.h).
 */
#include "lbhb_join.h"

lbhb_join_e lbhb_join_choose(const lbhb_jslot_t *s, unsigned int n, int64_t now,
                             int64_t reuse_after, unsigned int *index)
{
    unsigned int i;
    int fresh = -1, reuse = -1;

    for (i = 0; i < n; i++) {
        if (s[i].used && s[i].same) {
            *index = i;
            return LBHB_JOIN_HAVE;
        }
    }
    for (i = 0; i < n; i++) {
        if (!s[i].used) {
            if (fresh < 0) {
                fresh = (int)i;
            }
        } else if (s[i].joined && s[i].disabled && s[i].busy == 0 && s[i].since <= now &&
                   now - s[i].since >= reuse_after && (reuse < 0 || s[i].since < s[reuse].since)) {
            reuse = (int)i;
        }
    }
    if (fresh >= 0) {
        *index = (unsigned int)fresh;
        return LBHB_JOIN_NEW;
    }
    if (reuse >= 0) {
        *index = (unsigned int)reuse;
        return LBHB_JOIN_REUSE;
    }
    return LBHB_JOIN_FULL;
}
