/*
 * hb_elect.h: which child runs a server-wide singleton thread (the
 * monitor's receiver, the origin's sender). One thread per child waits on
 * a process-shared mutex; the holder runs the singleton until its child
 * exits, and a waiter in another child takes over at once. The owner dying
 * with it (a crash) hands it on too (a robust mutex).
 *
 * Each generation has its own mutex, and a word that outlives generations
 * says which generation's singleton runs. After a graceful restart the new
 * generation's one starts as soon as one of its children is up and claims
 * the word; the old one sees that at its next wake-up and stops. Until
 * then the old one keeps running: children of the new generation may take
 * a second or more to start, and with mod_watchdog's singleton (which this
 * replaces) nothing ran in between, so balancers with short heartbeat
 * intervals saw every member go stale.
 */
#ifndef HB_ELECT_H
#define HB_ELECT_H

#include "apr_pools.h"

#include <pthread.h>

typedef struct hb_elect hb_elect_t;

/* Shared memory that outlives generations: made zeroed, once per name, in
 * pproc (the process pool), and found again by name after every restart.
 * For the words a singleton keeps across graceful restarts. */
apr_status_t hb_shm_once(void **out, const char *name, apr_size_t size, apr_pool_t *pproc);

/* In the parent, once per generation before its children fork: a new
 * election in shared memory that lives as long as pconf (children keep
 * their own mapping after the parent lets it go); the word shared by all
 * generations is made once, in pproc, under the name `name` (one per
 * singleton: elections of different names are independent). */
apr_status_t hb_elect_create(hb_elect_t **out, const char *name, apr_pool_t *pconf,
                             apr_pool_t *pproc);

typedef enum {
    HB_ELECT_WON = 0,
    HB_ELECT_WON_FROM_DEAD, /* the previous holder died holding it */
    HB_ELECT_ERROR          /* errno says why */
} hb_elect_e;

/* Block until the calling thread holds the election. */
hb_elect_e hb_elect_wait(hb_elect_t *e);

/* After winning: 0 if this generation is (now) the one that runs,
 * -1 if a newer one already does (then release and stop). */
int hb_elect_claim(hb_elect_t *e);

/* 1 once a newer generation's singleton has claimed the word. */
int hb_elect_superseded(const hb_elect_t *e);

/* 1 once the parent has made a newer generation's election: a restart is
 * under way, though none of that generation's children may be up yet. */
int hb_elect_newer_made(const hb_elect_t *e);

/*
 * For the child that runs the singleton, as it exits: return once a newer
 * generation's singleton has taken over, or at once if none is made within
 * `notice` (the server is stopping, or this child leaves on its own and
 * another of its generation takes over), and after `most` in any case.
 * The singleton keeps running meanwhile. After a graceful restart httpd
 * starts the new generation's children at its next maintenance pass, up
 * to a second later, and idle old children exit at once: without this
 * wait nothing would run in between. Not with ServerLimit 1 (the caller's
 * to check): the new child can start only once the old one has gone.
 */
void hb_elect_handover_wait(const hb_elect_t *e, apr_interval_time_t notice,
                            apr_interval_time_t most);

/* Let go (only the thread that won may). */
void hb_elect_release(hb_elect_t *e);

/*
 * What every child's standby thread does, whatever the singleton: wait to
 * be elected (failed() if the wait itself fails; took_over() if the last
 * holder died holding it); then, holding the caller's guard, run only if
 * may_run() (the child is not stopping), this generation's claim holds
 * (an older generation's child that wins after its singleton left has
 * nothing to do) and prepare() succeeds; run() outside the guard,
 * finish() under it; release the election last. Each hook gets baton;
 * any may be NULL but run.
 */
typedef struct {
    void (*failed)(void *baton, int err);
    void (*took_over)(void *baton);
    int (*may_run)(void *baton);
    int (*prepare)(void *baton);
    void (*run)(void *baton);
    void (*finish)(void *baton);
} hb_standby_t;

void hb_elect_standby(hb_elect_t *e, pthread_mutex_t *guard, const hb_standby_t *hooks,
                      void *baton);

/* A mutex in shared memory for every process (PTHREAD_PROCESS_SHARED)
 * that passes on when its holder dies (PTHREAD_MUTEX_ROBUST: the next
 * locker gets EOWNERDEAD). */
apr_status_t hb_robust_mutex_init(pthread_mutex_t *m);

/* Name the calling thread (top -H, ps -L show it), where the system can. */
void hb_thread_name(const char *name);

#endif
