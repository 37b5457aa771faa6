/*
 * hm_shm.h: the shared block that holds the table, in huge pages when the
 * system has some reserved (HeartbeatHugePages).
 */
#ifndef HM_SHM_H
#define HM_SHM_H

#include "apr_pools.h"

typedef enum {
    HM_HUGE_TRY = 0, /* huge pages for a large table if any are free (default) */
    HM_HUGE_ON,      /* huge pages or fail to start */
    HM_HUGE_OFF
} hm_huge_e;

typedef struct hm_shm hm_shm_t;

/* Tables at least this large ask for huge pages under HM_HUGE_TRY; a smaller
 * one would leave most of a 2 MB page unused. */
#define HM_HUGE_MIN_TABLE (1024 * 1024)

/*
 * Anonymous shared memory of at least size bytes, zeroed, inherited by
 * children; unmapped when pool is cleared or by hm_shm_destroy. With
 * huge != HM_HUGE_OFF, huge pages are asked for (size rounded up to the
 * huge page size). Under HM_HUGE_TRY a failure falls back to normal pages;
 * *why (if not NULL) then says why huge pages were not used, else NULL.
 */
apr_status_t hm_shm_create(hm_shm_t **out, apr_size_t size, hm_huge_e huge, apr_pool_t *pool,
                           const char **why);
void *hm_shm_base(const hm_shm_t *shm);
apr_size_t hm_shm_size(const hm_shm_t *shm);
/* 0, or the size of the huge pages the block is made of. */
apr_size_t hm_shm_huge_page(const hm_shm_t *shm);
void hm_shm_destroy(hm_shm_t *shm);

/*
 * size bytes of zeroed private memory for one thread's hot buffers, in one
 * transparent huge page where the kernel allows it (MADV_HUGEPAGE), else
 * from pool. Freed with pool.
 */
void *hm_private_huge(apr_size_t size, apr_pool_t *pool);

#endif
