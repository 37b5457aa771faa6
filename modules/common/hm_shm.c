/*
 * hm_shm.c: the table's shared block.
 *
 * Why huge pages: every heartbeat from a large fleet lands on a different
 * 4 KB page of the table, and on a virtual machine each of those TLB misses
 * is a nested page walk that, after the receiver has slept a few
 * milliseconds, costs about a microsecond (measured: 1.2-1.4 us per random
 * touch of a 2 MB shared block after a 16 ms sleep, 30-50 ns in one huge
 * page). Shared anonymous memory only gets huge pages from the hugetlb
 * pool (shmem transparent huge pages are off by default), so the pool is
 * asked first and normal pages are the fallback.
 */
#include "apr_shm.h"
#include "apr_strings.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "hm_shm.h"

struct hm_shm {
    void *base;
    apr_size_t size;
    apr_size_t huge_page; /* 0: an apr_shm_t of normal pages */
    apr_shm_t *apr;
    apr_pool_t *pool;
};

#ifdef MAP_HUGETLB
/* The default huge page size (what MAP_HUGETLB without a size flag gets),
 * or 0 if the kernel has none. */
static apr_size_t hm_default_huge_page(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    unsigned long kb = 0;

    if (!f) {
        return 0;
    }
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return (apr_size_t)kb * 1024;
}

static apr_status_t hm_huge_unmap(void *data)
{
    hm_shm_t *shm = data;

    munmap(shm->base, shm->size);
    return APR_SUCCESS;
}

/* MAP_SHARED reserves the pages now, so running short later is a failed
 * mmap here, never a SIGBUS in a child. */
static apr_status_t hm_huge_map(hm_shm_t *shm, apr_size_t size, const char **why)
{
    apr_size_t page = hm_default_huge_page();
    void *base;

    if (page == 0) {
        *why = "the kernel has no huge pages";
        return APR_ENOTIMPL;
    }
    size = (size + page - 1) / page * page;
    base =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (base == MAP_FAILED) {
        int err = errno;
        *why = err == ENOMEM
                   ? apr_psprintf(shm->pool,
                                  "not enough free huge pages for %" APR_SIZE_T_FMT
                                  " kB (vm.nr_hugepages, HugePages_Free in /proc/meminfo)",
                                  size / 1024)
                   : apr_psprintf(shm->pool, "mmap: %s", strerror(err));
        return err;
    }
    shm->base = base;
    shm->size = size;
    shm->huge_page = page;
    apr_pool_cleanup_register(shm->pool, shm, hm_huge_unmap, apr_pool_cleanup_null);
    return APR_SUCCESS;
}
#else
static apr_status_t hm_huge_map(hm_shm_t *shm, apr_size_t size, const char **why)
{
    (void)shm;
    (void)size;
    *why = "this system has no MAP_HUGETLB";
    return APR_ENOTIMPL;
}
#endif

apr_status_t hm_shm_create(hm_shm_t **out, apr_size_t size, hm_huge_e huge, apr_pool_t *pool,
                           const char **why)
{
    hm_shm_t *shm = apr_pcalloc(pool, sizeof(*shm));
    const char *reason = NULL;
    apr_status_t rv;

    shm->pool = pool;
    if (why) {
        *why = NULL;
    }
    if (huge != HM_HUGE_OFF) {
        rv = hm_huge_map(shm, size, &reason);
        if (rv == APR_SUCCESS) {
            *out = shm;
            return APR_SUCCESS;
        }
        if (why) {
            *why = reason;
        }
        if (huge == HM_HUGE_ON) {
            return rv;
        }
    }
    rv = apr_shm_create(&shm->apr, size, NULL, pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    shm->base = apr_shm_baseaddr_get(shm->apr);
    shm->size = apr_shm_size_get(shm->apr);
    *out = shm;
    return APR_SUCCESS;
}

void *hm_shm_base(const hm_shm_t *shm)
{
    return shm->base;
}

apr_size_t hm_shm_size(const hm_shm_t *shm)
{
    return shm->size;
}

apr_size_t hm_shm_huge_page(const hm_shm_t *shm)
{
    return shm->huge_page;
}

void hm_shm_destroy(hm_shm_t *shm)
{
    if (shm->apr) {
        apr_shm_destroy(shm->apr);
        return;
    }
#ifdef MAP_HUGETLB
    apr_pool_cleanup_run(shm->pool, shm, hm_huge_unmap);
#endif
}

#if defined(MADV_HUGEPAGE)
#define HM_THP_SIZE ((apr_size_t)2 * 1024 * 1024)

typedef struct {
    void *map;
    apr_size_t len;
} hm_private_map_t;

static apr_status_t hm_private_unmap(void *data)
{
    hm_private_map_t *m = data;

    munmap(m->map, m->len);
    return APR_SUCCESS;
}

void *hm_private_huge(apr_size_t size, apr_pool_t *pool)
{
    hm_private_map_t *m;
    char *map, *base;

    if (size > HM_THP_SIZE) {
        return apr_pcalloc(pool, size);
    }
    /* Twice the size so that an aligned huge page fits inside. */
    map = mmap(NULL, 2 * HM_THP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        return apr_pcalloc(pool, size);
    }
    m = apr_palloc(pool, sizeof(*m));
    m->map = map;
    m->len = 2 * HM_THP_SIZE;
    apr_pool_cleanup_register(pool, m, hm_private_unmap, apr_pool_cleanup_null);
    base = (char *)(((uintptr_t)map + HM_THP_SIZE - 1) & ~(uintptr_t)(HM_THP_SIZE - 1));
    /* Refused where transparent huge pages are off: normal pages then. */
    (void)madvise(base, HM_THP_SIZE, MADV_HUGEPAGE);
    return base;
}
#else
void *hm_private_huge(apr_size_t size, apr_pool_t *pool)
{
    return apr_pcalloc(pool, size);
}
#endif
