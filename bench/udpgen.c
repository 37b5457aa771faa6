/*
 * udpgen: fixed-rate load generator of valid heartbeat packets, for the
 * monitor-ingest benchmark (bench/run.py).
 *
 * Sends `count` packets at `rate` packets per second, round-robin over
 * `ips` x `ports` distinct senders: sender i has source address
 * base + (i % ips) and states port= port_base + (i / ips). The monitor keys
 * an entry by source address and port=, so both make distinct entries;
 * the stock monitor keys by address only, so only distinct addresses count
 * for it.
 *
 * Why the source address is set per packet (IP_PKTINFO) instead of one
 * socket bound per sender: 10,000 senders would need 10,000 descriptors, and
 * one socket with sendmmsg batches keeps the generator cheap enough to offer
 * 200k packets/s on a 2-core machine while the monitor uses the other core.
 *
 * Safety: the destination must be on loopback (127.0.0.0/8), in the
 * benchmark's own namespaces (198.18.0.0/15) or multicast (only used inside
 * a namespace the benchmark made); anything else is refused. The run is
 * bounded by the packet count and by a time limit.
 *
 * Prints one JSON object on stdout: what was sent, over how long.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH_MAX 64
#define PKT_MAX   160

typedef struct {
    struct sockaddr_in dst;
    uint32_t src_base; /* host byte order; 0 = let the kernel choose */
    unsigned int ips;
    unsigned int ports;
    unsigned int port_base;
    double rate;
    uint64_t count;
    double max_seconds;
    unsigned int interval_ms; /* the int= field */
    unsigned int batch;
    const char *mcast_if; /* local address for IP_MULTICAST_IF, or NULL */
} opts_t;

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s -d ADDR:PORT -r RATE -n COUNT [-s SRC_BASE] [-i IPS] [-p PORTS]\n"
            "          [-P PORT_BASE] [-t MAX_SECONDS] [-I INT_MS] [-b BATCH] [-m MCAST_IF]\n"
            "  sends COUNT valid heartbeats at RATE/s from IPS x PORTS senders\n",
            prog);
    exit(2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Loopback, the RFC 2544 benchmarking range the harness's namespaces use,
 * or multicast: the only places this tool may send to. */
static int allowed_destination(uint32_t a)
{
    return (a >> 24) == 127 || (a >> 17) == (0xc612u >> 1) || (a >> 28) == 0xe;
}

static int parse_addr_port(const char *text, struct sockaddr_in *out)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    size_t len;

    if (colon == NULL || (len = (size_t)(colon - text)) == 0 || len >= sizeof(host)) {
        return -1;
    }
    memcpy(host, text, len);
    host[len] = '\0';
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 && out->sin_port != 0 ? 0 : -1;
}

static void parse_opts(int argc, char **argv, opts_t *o)
{
    int c;
    struct in_addr a;

    memset(o, 0, sizeof(*o));
    o->ips = 1;
    o->ports = 1;
    o->port_base = 10000;
    o->max_seconds = 30;
    o->interval_ms = 1000;
    o->batch = 32;
    while ((c = getopt(argc, argv, "d:r:n:s:i:p:P:t:I:b:m:")) != -1) {
        switch (c) {
        case 'd':
            if (parse_addr_port(optarg, &o->dst) != 0) {
                usage(argv[0]);
            }
            break;
        case 'r':
            o->rate = atof(optarg);
            break;
        case 'n':
            o->count = strtoull(optarg, NULL, 10);
            break;
        case 's':
            if (inet_pton(AF_INET, optarg, &a) != 1) {
                usage(argv[0]);
            }
            o->src_base = ntohl(a.s_addr);
            break;
        case 'i':
            o->ips = (unsigned int)atoi(optarg);
            break;
        case 'p':
            o->ports = (unsigned int)atoi(optarg);
            break;
        case 'P':
            o->port_base = (unsigned int)atoi(optarg);
            break;
        case 't':
            o->max_seconds = atof(optarg);
            break;
        case 'I':
            o->interval_ms = (unsigned int)atoi(optarg);
            break;
        case 'b':
            o->batch = (unsigned int)atoi(optarg);
            break;
        case 'm':
            o->mcast_if = optarg;
            break;
        default:
            usage(argv[0]);
        }
    }
    if (o->dst.sin_family == 0 || o->rate <= 0 || o->count == 0 || o->ips == 0 || o->ports == 0 ||
        o->port_base == 0 || o->port_base + o->ports - 1 > 65535 || o->batch == 0 ||
        o->batch > BATCH_MAX || o->max_seconds <= 0) {
        usage(argv[0]);
    }
    if (!allowed_destination(ntohl(o->dst.sin_addr.s_addr))) {
        fprintf(stderr, "udpgen: refusing a destination outside 127.0.0.0/8, 198.18.0.0/15 "
                        "and multicast\n");
        exit(2);
    }
    if (o->ips > 1 && o->src_base == 0) {
        fprintf(stderr, "udpgen: -i needs -s (the first source address)\n");
        exit(2);
    }
}

static int open_socket(const opts_t *o)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int sndbuf = 4 * 1024 * 1024;

    if (fd < 0) {
        perror("udpgen: socket");
        exit(1);
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    if (o->mcast_if != NULL) {
        struct in_addr ifa;
        unsigned char loop = 1, ttl = 1;
        if (inet_pton(AF_INET, o->mcast_if, &ifa) != 1 ||
            setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof(ifa)) != 0) {
            perror("udpgen: IP_MULTICAST_IF");
            exit(1);
        }
        /* The receiver is on this host: loop the group traffic back to it,
         * and never let it past the namespace's own link. */
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop));
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl));
    }
    if (o->ips == 1 && o->src_base != 0) {
        /* One source address: a plain bind is enough. */
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(o->src_base);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            perror("udpgen: bind");
            exit(1);
        }
    }
    return fd;
}

int main(int argc, char **argv)
{
    opts_t o;
    int fd;
    uint64_t senders, sent = 0, errors = 0, seq0;
    struct mmsghdr msgs[BATCH_MAX];
    struct iovec iov[BATCH_MAX];
    char payload[BATCH_MAX][PKT_MAX];
    /* IP_PKTINFO control buffers, aligned as a cmsghdr must be. */
    _Alignas(struct cmsghdr) char ctl[BATCH_MAX][CMSG_SPACE(sizeof(struct in_pktinfo))];
    struct in_pktinfo *pinfo[BATCH_MAX];
    double start, elapsed;
    int use_pktinfo;

    parse_opts(argc, argv, &o);
    fd = open_socket(&o);
    senders = (uint64_t)o.ips * o.ports;
    use_pktinfo = o.ips > 1;
    /* seq starts at the wall clock in ms, as mod_heartbeat's does, so that
     * it keeps rising across runs. */
    seq0 = (uint64_t)time(NULL) * 1000u;

    memset(msgs, 0, sizeof(msgs));
    memset(ctl, 0, sizeof(ctl));
    for (unsigned int j = 0; j < BATCH_MAX; j++) {
        iov[j].iov_base = payload[j];
        msgs[j].msg_hdr.msg_name = &o.dst;
        msgs[j].msg_hdr.msg_namelen = sizeof(o.dst);
        msgs[j].msg_hdr.msg_iov = &iov[j];
        msgs[j].msg_hdr.msg_iovlen = 1;
        if (use_pktinfo) {
            struct cmsghdr *cm;
            msgs[j].msg_hdr.msg_control = ctl[j];
            msgs[j].msg_hdr.msg_controllen = sizeof(ctl[j]);
            cm = CMSG_FIRSTHDR(&msgs[j].msg_hdr);
            cm->cmsg_level = IPPROTO_IP;
            cm->cmsg_type = IP_PKTINFO;
            cm->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
            pinfo[j] = (struct in_pktinfo *)(void *)CMSG_DATA(cm);
        }
    }

    start = now_s();
    while (sent < o.count) {
        double t = now_s() - start;
        uint64_t due = (uint64_t)(t * o.rate);
        unsigned int n;
        int r;

        if (t > o.max_seconds) {
            break;
        }
        if (due > o.count) {
            due = o.count;
        }
        if (due <= sent) {
            /* Ahead of schedule: sleep until the next packet is due (a few
             * tens of microseconds at high rates). */
            double wait = ((double)(sent + 1) / o.rate) - t;
            struct timespec ts = {0, (long)(wait * 1e9)};
            if (ts.tv_nsec > 0) {
                nanosleep(&ts, NULL);
            }
            continue;
        }
        n = (unsigned int)((due - sent) < o.batch ? (due - sent) : o.batch);
        for (unsigned int j = 0; j < n; j++) {
            uint64_t k = sent + j, s = k % senders, round = k / senders;
            unsigned int ip_ix = (unsigned int)(s % o.ips);
            unsigned int port = o.port_base + (unsigned int)(s / o.ips);
            int len = snprintf(payload[j], PKT_MAX,
                               "v=1&ready=%u&busy=%u&port=%u&seq=%llu&int=%u&state=up",
                               (unsigned int)(10 + (k * 7) % 50), (unsigned int)(k % 5), port,
                               (unsigned long long)(seq0 + round), o.interval_ms);
            iov[j].iov_len = (size_t)len;
            if (use_pktinfo) {
                /* ipi_spec_dst is the source address for this datagram. */
                memset(pinfo[j], 0, sizeof(*pinfo[j]));
                pinfo[j]->ipi_spec_dst.s_addr = htonl(o.src_base + ip_ix);
            }
        }
        r = sendmmsg(fd, msgs, n, 0);
        if (r < 0) {
            if (errno == EPERM || errno == EINVAL || errno == EADDRNOTAVAIL) {
                perror("udpgen: sendmmsg");
                return 1;
            }
            /* ENOBUFS/EAGAIN: count the whole batch as lost at the sender,
             * so that "sent" stays what really left. */
            errors += n;
            sent += n;
            continue;
        }
        if ((unsigned int)r < n) {
            errors += n - (unsigned int)r;
        }
        sent += n;
    }
    elapsed = now_s() - start;
    close(fd);
    printf("{\"sent\": %llu, \"send_errors\": %llu, \"senders\": %llu, \"elapsed\": %.6f, "
           "\"rate\": %.1f}\n",
           (unsigned long long)(sent - errors), (unsigned long long)errors,
           (unsigned long long)senders, elapsed,
           elapsed > 0 ? (double)(sent - errors) / elapsed : 0);
    return 0;
}
