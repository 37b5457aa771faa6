/*
 * openloop: fixed-rate (open-loop) HTTP client for the balancing-quality
 * benchmark (bench/run.py).
 *
 * A closed-loop client such as wrk waits for a response before it sends the
 * next request, so when the server slows down it also slows down and the
 * queueing never shows in its latencies ("coordinated omission"). Here
 * requests start at times fixed in advance, whatever happens to the earlier
 * ones (Poisson arrivals from a fixed seed, so every variant gets the same
 * schedule), and each latency runs from the request's scheduled start to
 * the end of its response.
 *
 * One TCP connection per request (Connection: close): a request never
 * waits for another to free a connection, and the end of the response is
 * simply the server closing.
 *
 * Safety: only loopback (127.0.0.0/8) and the benchmark's own namespaces
 * (198.18.0.0/15) may be targets; the run is bounded by its duration plus
 * the per-request timeout.
 *
 * Prints one JSON object: counts, errors by kind, latency percentiles of
 * the successful requests (ms), and how many responses each origin served
 * (its X-Origin header).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESP_KEEP   1024 /* bytes of each response kept: enough for the headers */
#define MAX_ORIGINS 8

typedef enum { C_FREE = 0, C_CONNECTING, C_READING } cstate_e;

typedef struct {
    int fd;
    cstate_e state;
    double sched; /* scheduled start, seconds since the run's start */
    size_t got;
    char buf[RESP_KEEP];
} conn_t;

typedef struct {
    struct sockaddr_in dst;
    const char *path;
    double rate, duration, timeout;
    unsigned int max_conc;
    unsigned int seed;
    int poisson;
} opts_t;

typedef struct {
    uint64_t scheduled, ok;
    uint64_t e_connect, e_timeout, e_status, e_overflow, e_reset;
    double *lat; /* ms, successful requests */
    uint64_t nlat, cap;
    double max_lag; /* how late the client itself started a request, s */
    char origin[MAX_ORIGINS][16];
    uint64_t origin_n[MAX_ORIGINS];
    uint64_t status_hist[6]; /* 1xx..5xx, [0] = unparsable */
    uint64_t code5xx[100];   /* 500..599 exactly, to tell 502/503/504 apart */
} stats_t;

static double t_start;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t_start;
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s -a ADDR:PORT -u PATH -r RATE -d SECONDS [-T TIMEOUT] [-C MAX_CONC]\n"
            "          [-s SEED] [-U (uniform spacing instead of Poisson)]\n",
            prog);
    exit(2);
}

static void parse_opts(int argc, char **argv, opts_t *o)
{
    int c;
    char host[64];
    const char *colon;
    size_t len;

    memset(o, 0, sizeof(*o));
    o->timeout = 5;
    o->max_conc = 2000;
    o->seed = 1;
    o->poisson = 1;
    while ((c = getopt(argc, argv, "a:u:r:d:T:C:s:U")) != -1) {
        switch (c) {
        case 'a':
            colon = strrchr(optarg, ':');
            if (colon == NULL || (len = (size_t)(colon - optarg)) == 0 || len >= sizeof(host)) {
                usage(argv[0]);
            }
            memcpy(host, optarg, len);
            host[len] = '\0';
            o->dst.sin_family = AF_INET;
            o->dst.sin_port = htons((uint16_t)atoi(colon + 1));
            if (inet_pton(AF_INET, host, &o->dst.sin_addr) != 1) {
                usage(argv[0]);
            }
            break;
        case 'u':
            o->path = optarg;
            break;
        case 'r':
            o->rate = atof(optarg);
            break;
        case 'd':
            o->duration = atof(optarg);
            break;
        case 'T':
            o->timeout = atof(optarg);
            break;
        case 'C':
            o->max_conc = (unsigned int)atoi(optarg);
            break;
        case 's':
            o->seed = (unsigned int)atoi(optarg);
            break;
        case 'U':
            o->poisson = 0;
            break;
        default:
            usage(argv[0]);
        }
    }
    if (o->dst.sin_family == 0 || o->path == NULL || o->path[0] != '/' || o->rate <= 0 ||
        o->duration <= 0 || o->duration > 600 || o->timeout <= 0 || o->max_conc == 0) {
        usage(argv[0]);
    }
    {
        uint32_t a = ntohl(o->dst.sin_addr.s_addr);
        if ((a >> 24) != 127 && (a >> 17) != (0xc612u >> 1)) {
            fprintf(stderr, "openloop: refusing a target outside 127.0.0.0/8 and 198.18.0.0/15\n");
            exit(2);
        }
    }
}

/* The next inter-arrival gap: exponential for Poisson arrivals. */
static double next_gap(const opts_t *o, unsigned int *seed)
{
    if (!o->poisson) {
        return 1.0 / o->rate;
    }
    double u = ((double)rand_r(seed) + 1.0) / ((double)RAND_MAX + 2.0);
    return -log(u) / o->rate;
}

static void record_origin(stats_t *st, const conn_t *c)
{
    /* Header names are case-insensitive; httpd sends them as set. */
    const char *p = c->buf, *end = c->buf + c->got;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) {
            break;
        }
        if (eol - p > 10 && strncasecmp(p, "X-Origin:", 9) == 0) {
            const char *v = p + 9;
            size_t n;
            while (*v == ' ') {
                v++;
            }
            n = (size_t)(eol - v);
            while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == ' ')) {
                n--;
            }
            if (n >= sizeof(st->origin[0])) {
                n = sizeof(st->origin[0]) - 1;
            }
            for (int i = 0; i < MAX_ORIGINS; i++) {
                if (st->origin[i][0] == '\0') {
                    memcpy(st->origin[i], v, n);
                    st->origin[i][n] = '\0';
                }
                if (strlen(st->origin[i]) == n && memcmp(st->origin[i], v, n) == 0) {
                    st->origin_n[i]++;
                    return;
                }
            }
            return;
        }
        if (eol - p <= 1) {
            return; /* end of the headers */
        }
        p = eol + 1;
    }
}

static void finish(stats_t *st, conn_t *c, int epfd, int failed_kind)
{
    double done = now_s();

    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (failed_kind == 0) {
        int code = 0;
        if (c->got >= 12 && memcmp(c->buf, "HTTP/1.", 7) == 0) {
            code = atoi(c->buf + 9);
        }
        st->status_hist[code >= 100 && code < 600 ? code / 100 : 0]++;
        if (code >= 500 && code < 600) {
            st->code5xx[code - 500]++;
        }
        if (code >= 200 && code < 400) {
            st->ok++;
            if (st->nlat < st->cap) {
                st->lat[st->nlat++] = (done - c->sched) * 1000.0;
            }
            record_origin(st, c);
        } else {
            st->e_status++;
        }
    } else if (failed_kind == 1) {
        st->e_connect++;
    } else if (failed_kind == 2) {
        st->e_timeout++;
    } else {
        st->e_reset++;
    }
    c->state = C_FREE;
    c->fd = -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, uint64_t n, double p)
{
    if (n == 0) {
        return NAN;
    }
    uint64_t i = (uint64_t)ceil(p / 100.0 * (double)n);
    return v[i == 0 ? 0 : i - 1];
}

static void print_num(const char *name, double v, int last)
{
    if (isnan(v)) {
        printf("\"%s\": null%s", name, last ? "" : ", ");
    } else {
        printf("\"%s\": %.3f%s", name, v, last ? "" : ", ");
    }
}

int main(int argc, char **argv)
{
    opts_t o;
    stats_t st;
    conn_t *conns;
    char req[512];
    int reqlen, epfd;
    unsigned int seed;
    double next;
    struct rlimit rl;

    parse_opts(argc, argv, &o);
    /* Room for every request that may be in flight at once. */
    rl.rlim_cur = rl.rlim_max = o.max_conc + 64;
    setrlimit(RLIMIT_NOFILE, &rl);

    memset(&st, 0, sizeof(st));
    st.cap = (uint64_t)(o.rate * o.duration * 1.5) + 1000;
    st.lat = malloc(st.cap * sizeof(double));
    conns = calloc(o.max_conc, sizeof(*conns));
    epfd = epoll_create1(0);
    if (st.lat == NULL || conns == NULL || epfd < 0) {
        perror("openloop");
        return 1;
    }
    reqlen = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: hb-openloop\r\n"
                      "Connection: close\r\n\r\n",
                      o.path);
    seed = o.seed;
    t_start = 0;
    t_start = now_s();
    next = next_gap(&o, &seed);

    for (;;) {
        double t = now_s();
        int active = 0, timeout_ms;
        struct epoll_event ev[64];
        int n;

        /* Start every request whose time has come. */
        while (next <= t && next < o.duration) {
            conn_t *c = NULL;
            st.scheduled++;
            if (t - next > st.max_lag) {
                st.max_lag = t - next;
            }
            for (unsigned int i = 0; i < o.max_conc; i++) {
                if (conns[i].state == C_FREE) {
                    c = &conns[i];
                    break;
                }
            }
            if (c == NULL) {
                st.e_overflow++;
            } else {
                struct epoll_event e;
                int one = 1;
                c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
                c->sched = next;
                c->got = 0;
                if (c->fd < 0) {
                    st.e_connect++;
                } else {
                    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    if (connect(c->fd, (struct sockaddr *)&o.dst, sizeof(o.dst)) != 0 &&
                        errno != EINPROGRESS) {
                        close(c->fd);
                        st.e_connect++;
                    } else {
                        c->state = C_CONNECTING;
                        e.events = EPOLLOUT;
                        e.data.ptr = c;
                        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e);
                    }
                }
            }
            next += next_gap(&o, &seed);
        }

        /* Time out what has waited too long; count what is still open. */
        for (unsigned int i = 0; i < o.max_conc; i++) {
            if (conns[i].state != C_FREE) {
                if (t - conns[i].sched > o.timeout) {
                    finish(&st, &conns[i], epfd, 2);
                } else {
                    active++;
                }
            }
        }
        if (next >= o.duration && active == 0) {
            break;
        }

        timeout_ms = 10;
        if (next < o.duration) {
            double wait = (next - now_s()) * 1000.0;
            timeout_ms = wait < 0 ? 0 : (wait < 10 ? (int)ceil(wait) : 10);
        }
        n = epoll_wait(epfd, ev, 64, timeout_ms);
        for (int k = 0; k < n; k++) {
            conn_t *c = ev[k].data.ptr;
            if (c->state == C_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0 || send(c->fd, req, (size_t)reqlen, MSG_NOSIGNAL) != reqlen) {
                    finish(&st, c, epfd, 1);
                    continue;
                }
                c->state = C_READING;
                ev[k].events = EPOLLIN;
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev[k]);
            } else if (c->state == C_READING) {
                char tmp[4096];
                ssize_t r = recv(c->fd, tmp, sizeof(tmp), 0);
                if (r > 0) {
                    size_t keep = (size_t)r;
                    if (keep > RESP_KEEP - c->got) {
                        keep = RESP_KEEP - c->got;
                    }
                    memcpy(c->buf + c->got, tmp, keep);
                    c->got += keep;
                } else if (r == 0) {
                    finish(&st, c, epfd, c->got > 0 ? 0 : 3);
                } else if (errno != EAGAIN && errno != EINTR) {
                    finish(&st, c, epfd, 3);
                }
            }
        }
    }

    qsort(st.lat, st.nlat, sizeof(double), cmp_double);
    {
        double sum = 0;
        for (uint64_t i = 0; i < st.nlat; i++) {
            sum += st.lat[i];
        }
        printf("{\"offered_rate\": %.1f, \"duration\": %.1f, \"scheduled\": %llu, \"ok\": %llu, ",
               o.rate, o.duration, (unsigned long long)st.scheduled, (unsigned long long)st.ok);
        printf("\"errors\": {\"connect\": %llu, \"timeout\": %llu, \"status\": %llu, "
               "\"overflow\": %llu, \"reset\": %llu}, ",
               (unsigned long long)st.e_connect, (unsigned long long)st.e_timeout,
               (unsigned long long)st.e_status, (unsigned long long)st.e_overflow,
               (unsigned long long)st.e_reset);
        printf("\"status\": {\"other\": %llu, \"1xx\": %llu, \"2xx\": %llu, \"3xx\": %llu, "
               "\"4xx\": %llu, \"5xx\": %llu}, ",
               (unsigned long long)st.status_hist[0], (unsigned long long)st.status_hist[1],
               (unsigned long long)st.status_hist[2], (unsigned long long)st.status_hist[3],
               (unsigned long long)st.status_hist[4], (unsigned long long)st.status_hist[5]);
        printf("\"codes_5xx\": {");
        for (int i = 0, first = 1; i < 100; i++) {
            if (st.code5xx[i] != 0) {
                printf("%s\"%d\": %llu", first ? "" : ", ", 500 + i,
                       (unsigned long long)st.code5xx[i]);
                first = 0;
            }
        }
        printf("}, ");
        print_num("p50_ms", pct(st.lat, st.nlat, 50), 0);
        print_num("p90_ms", pct(st.lat, st.nlat, 90), 0);
        print_num("p99_ms", pct(st.lat, st.nlat, 99), 0);
        print_num("p999_ms", pct(st.lat, st.nlat, 99.9), 0);
        print_num("max_ms", st.nlat ? st.lat[st.nlat - 1] : NAN, 0);
        print_num("mean_ms", st.nlat ? sum / (double)st.nlat : NAN, 0);
        print_num("max_client_lag_ms", st.max_lag * 1000.0, 0);
        printf("\"origins\": {");
        for (int i = 0, first = 1; i < MAX_ORIGINS; i++) {
            if (st.origin[i][0] != '\0') {
                printf("%s\"%s\": %llu", first ? "" : ", ", st.origin[i],
                       (unsigned long long)st.origin_n[i]);
                first = 0;
            }
        }
        printf("}}\n");
    }
    free(st.lat);
    free(conns);
    close(epfd);
    return 0;
}
