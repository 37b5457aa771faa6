/*
 * hb_elect.c: one singleton thread per generation (see hb_elect.h). Needs
 * robust process-shared mutexes (POSIX.1-2008: Linux, the BSDs).
 */
#include "apr_shm.h"
#include "apr_time.h"
#include "apr_strings.h"

#include <errno.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "hb_elect.h"

/* Shared by every generation: counts generations, names the receiving one. */
typedef struct {
    uint32_t generations;
    uint32_t receiving;
} hb_elect_word_t;

struct hb_elect {
    pthread_mutex_t mutex; /* in this generation's shared memory */
    hb_elect_word_t *word;
    uint32_t generation;
};

apr_status_t hb_shm_once(void **out, const char *name, apr_size_t size, apr_pool_t *pproc)
{
    char key[96];
    apr_shm_t *shm = NULL;
    apr_status_t rv;

    apr_snprintf(key, sizeof(key), "hb_shm.%s", name);
    apr_pool_userdata_get((void **)&shm, key, pproc);
    if (!shm) {
        rv = apr_shm_create(&shm, size, NULL, pproc);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        memset(apr_shm_baseaddr_get(shm), 0, size);
        /* Once per name: the key must live as long as pproc. */
        apr_pool_userdata_set(shm, apr_pstrdup(pproc, key), apr_pool_cleanup_null, pproc);
    }
    *out = apr_shm_baseaddr_get(shm);
    return APR_SUCCESS;
}

apr_status_t hb_robust_mutex_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t attr;
    int rc;

    if ((rc = pthread_mutexattr_init(&attr)) != 0) {
        return APR_FROM_OS_ERROR(rc);
    }
    rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0) {
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    }
    if (rc == 0) {
        rc = pthread_mutex_init(m, &attr);
    }
    pthread_mutexattr_destroy(&attr);
    return rc == 0 ? APR_SUCCESS : APR_FROM_OS_ERROR(rc);
}

static apr_status_t hb_elect_word(hb_elect_word_t **out, const char *name, apr_pool_t *pproc)
{
    char key[96];

    apr_snprintf(key, sizeof(key), "hb_elect.%s", name);
    return hb_shm_once((void **)out, key, sizeof(hb_elect_word_t), pproc);
}

apr_status_t hb_elect_create(hb_elect_t **out, const char *name, apr_pool_t *pconf,
                             apr_pool_t *pproc)
{
    hb_elect_word_t *word;
    apr_shm_t *shm;
    hb_elect_t *e;
    apr_status_t rv;

    if ((rv = hb_elect_word(&word, name, pproc)) != APR_SUCCESS) {
        return rv;
    }
    rv = apr_shm_create(&shm, sizeof(*e), NULL, pconf);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    e = apr_shm_baseaddr_get(shm);
    if ((rv = hb_robust_mutex_init(&e->mutex)) != APR_SUCCESS) {
        return rv;
    }
    e->word = word;
    /* Only the parent writes this, between generations. */
    e->generation = ++word->generations;
    *out = e;
    return APR_SUCCESS;
}

hb_elect_e hb_elect_wait(hb_elect_t *e)
{
    int rc = pthread_mutex_lock(&e->mutex);

    if (rc == 0) {
        return HB_ELECT_WON;
    }
    if (rc == EOWNERDEAD) {
        /* The mutex guards no data, only the right to run the receiver:
         * nothing can be half-done. */
        pthread_mutex_consistent(&e->mutex);
        return HB_ELECT_WON_FROM_DEAD;
    }
    errno = rc;
    return HB_ELECT_ERROR;
}

int hb_elect_claim(hb_elect_t *e)
{
    uint32_t cur = __atomic_load_n(&e->word->receiving, __ATOMIC_ACQUIRE);

    /* Generations only grow (wrapping after 4 billion restarts is fine:
     * the difference is what counts). A newer one never gives way. */
    while ((int32_t)(e->generation - cur) >= 0) {
        if (__atomic_compare_exchange_n(&e->word->receiving, &cur, e->generation, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            return 0;
        }
    }
    return -1;
}

int hb_elect_superseded(const hb_elect_t *e)
{
    uint32_t cur = __atomic_load_n(&e->word->receiving, __ATOMIC_ACQUIRE);

    return (int32_t)(cur - e->generation) > 0;
}

int hb_elect_newer_made(const hb_elect_t *e)
{
    uint32_t cur = __atomic_load_n(&e->word->generations, __ATOMIC_ACQUIRE);

    return (int32_t)(cur - e->generation) > 0;
}

void hb_elect_handover_wait(const hb_elect_t *e, apr_interval_time_t notice,
                            apr_interval_time_t most)
{
    apr_time_t start = apr_time_now();

    while (!hb_elect_superseded(e)) {
        apr_interval_time_t waited = apr_time_now() - start;
        /* Wall clock: a step back only makes the wait longer, never past
         * what the child's exit can afford (most again). */
        if (waited < 0 || waited >= most || (waited >= notice && !hb_elect_newer_made(e))) {
            return;
        }
        apr_sleep(apr_time_from_msec(10));
    }
}

void hb_elect_release(hb_elect_t *e)
{
    pthread_mutex_unlock(&e->mutex);
}

void hb_elect_standby(hb_elect_t *e, pthread_mutex_t *guard, const hb_standby_t *hooks, void *baton)
{
    hb_elect_e won = hb_elect_wait(e);
    int run;

    if (won == HB_ELECT_ERROR) {
        if (hooks->failed) {
            hooks->failed(baton, errno);
        }
        return;
    }
    if (won == HB_ELECT_WON_FROM_DEAD && hooks->took_over) {
        hooks->took_over(baton);
    }
    pthread_mutex_lock(guard);
    run = (!hooks->may_run || hooks->may_run(baton)) && hb_elect_claim(e) == 0 &&
          (!hooks->prepare || hooks->prepare(baton));
    pthread_mutex_unlock(guard);
    if (run) {
        hooks->run(baton);
        pthread_mutex_lock(guard);
        if (hooks->finish) {
            hooks->finish(baton);
        }
        pthread_mutex_unlock(guard);
    }
    /* Stopping, or this child cannot run it: the next waiter's turn. */
    hb_elect_release(e);
}

void hb_thread_name(const char *name)
{
#ifdef __linux__
    (void)prctl(PR_SET_NAME, name, 0, 0, 0);
#else
    (void)name;
#endif
}
