/*
 * hm_elect.c: one receiver per generation (see hm_elect.h). Needs robust
 * process-shared mutexes (POSIX.1-2008: Linux, the BSDs).
 */
#include "apr_shm.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "hm_elect.h"

#define HM_ELECT_KEY "mod_heartmonitor.elect"

/* Shared by every generation: counts generations, names the receiving one. */
typedef struct {
    uint32_t generations;
    uint32_t receiving;
} hm_elect_word_t;

struct hm_elect {
    pthread_mutex_t mutex; /* in this generation's shared memory */
    hm_elect_word_t *word;
    uint32_t generation;
};

static apr_status_t hm_elect_word(hm_elect_word_t **out, apr_pool_t *pproc)
{
    apr_shm_t *shm = NULL;
    apr_status_t rv;

    apr_pool_userdata_get((void **)&shm, HM_ELECT_KEY, pproc);
    if (!shm) {
        rv = apr_shm_create(&shm, sizeof(hm_elect_word_t), NULL, pproc);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        apr_pool_userdata_set(shm, HM_ELECT_KEY, apr_pool_cleanup_null, pproc);
    }
    *out = apr_shm_baseaddr_get(shm);
    return APR_SUCCESS;
}

apr_status_t hm_elect_create(hm_elect_t **out, apr_pool_t *pconf, apr_pool_t *pproc)
{
    pthread_mutexattr_t attr;
    hm_elect_word_t *word;
    apr_shm_t *shm;
    hm_elect_t *e;
    apr_status_t rv;
    int rc;

    if ((rv = hm_elect_word(&word, pproc)) != APR_SUCCESS) {
        return rv;
    }
    rv = apr_shm_create(&shm, sizeof(*e), NULL, pconf);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    e = apr_shm_baseaddr_get(shm);
    if ((rc = pthread_mutexattr_init(&attr)) != 0) {
        return rc;
    }
    rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0) {
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    }
    if (rc == 0) {
        rc = pthread_mutex_init(&e->mutex, &attr);
    }
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        return rc;
    }
    e->word = word;
    /* Only the parent writes this, between generations. */
    e->generation = ++word->generations;
    *out = e;
    return APR_SUCCESS;
}

hm_elect_e hm_elect_wait(hm_elect_t *e)
{
    int rc = pthread_mutex_lock(&e->mutex);

    if (rc == 0) {
        return HM_ELECT_WON;
    }
    if (rc == EOWNERDEAD) {
        /* The mutex guards no data, only the right to run the receiver:
         * nothing can be half-done. */
        pthread_mutex_consistent(&e->mutex);
        return HM_ELECT_WON_FROM_DEAD;
    }
    errno = rc;
    return HM_ELECT_ERROR;
}

int hm_elect_claim(hm_elect_t *e)
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

int hm_elect_superseded(const hm_elect_t *e)
{
    uint32_t cur = __atomic_load_n(&e->word->receiving, __ATOMIC_ACQUIRE);

    return (int32_t)(cur - e->generation) > 0;
}

void hm_elect_release(hm_elect_t *e)
{
    pthread_mutex_unlock(&e->mutex);
}
