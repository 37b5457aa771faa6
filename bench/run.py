#!/usr/bin/python3
"""bench/run.py: the heartbeat suite's benchmarks, side by side with baselines.

Run by `make bench` (bench/bench.am), which builds the modules and the load
tools first. Seven benchmarks, each measured in one run against baselines on
the same machine, alternating the variants (A B A B ...) over several rounds
and reporting medians, because the machine is small (2 cores) and shared:

1. request path: wrk through the proxy, lbmethod=heartbeat against
   lbmethod=byrequests in the same proxy process (3 and 64 members, and 3
   members while the table holds 1,000 other senders, and 3 members whose
   origin has HeartbeatResponseHeader on), Debian's stock
   lbmethod_heartbeat (file mode) against byrequests in another; the
   origin's own throughput with the header on and off; plus the C
   micro-benchmark bench/pick_bench of the pick and the table lookup.
2. monitor ingest: bench/udpgen sends valid heartbeats at fixed rates from
   10 or 10,000 senders to our monitor and to the stock monitor (which only
   listens on multicast, hence a network namespace); packets applied vs
   sent, and the monitor's CPU time per packet.
3. freshness: an origin becomes fully busy; time until the proxy stops
   picking it, ours (HeartbeatResponseHeader off and on) against the stock
   trio.
4. balancing quality: origins of capacity 1:4, 20 ms service, open-loop
   load at 80% of capacity (bench/openloop); latency percentiles and errors
   for each pick mode of ours, stock, byrequests and bybusyness.
5. failure (issue 16): origins of 8 and 32 workers, 400 ms service. A full
   proxy start while 36 closed-loop clients are already connecting
   (heartbeat and bybusyness); a third origin answering 503 at once under
   open-loop load (heartbeat, byrequests, bybusyness, against the same
   load without it); the 32-worker origin stopped and started again under
   load, for each HeartbeatSlowStart.
6. proxies (issue 17): the same origins behind two proxies, 18 closed-loop
   clients on each: heartbeat with and without HeartbeatResponseHeader,
   p2c with it, bybusyness; and one proxy with all 36 clients, with and
   without the header.
7. membership (issue 18, HeartbeatJoin): wrk over 64 members that joined
   by their signed heartbeats against the same 64 as static byrequests
   members; 1,000 join/leave cycles of 8 origins over 16 slots (processes
   alive, the children's memory, one address per slot, requests meanwhile);
   real origins (HeartbeatBalancer) under wrk while one stops gracefully
   and while the proxy restarts gracefully (against static members).

Writes the results to bench/results/ (JSON) and, through bench/report.py,
docs/PERFORMANCE.md (the commands, the raw numbers, medians and ratios,
against the targets).

Every server, namespace and load generator is started by this script and
stopped by pid; all traffic stays on loopback (127.0.0.0/8) or inside the
network namespaces this script creates (198.18.0.0/15). Python 3 standard
library only; reuses the integration-test harness test/harness/hbtest.py.
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, 'test', 'harness'))
import hbtest  # noqa: E402
from report import analysis_notes, fmt, median, sum_counts, write_report  # noqa: E402

T_START = time.monotonic()

# Modules of each proxy flavour (built-ins such as watchdog are skipped by
# the harness).
PROXY_BASE = ['proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm',
              'lbmethod_byrequests', 'lbmethod_bybusyness']
# A proxy with a monitor: ours or stock, as the Httpd's `ours` flag says.
HB_PROXY = PROXY_BASE + ['watchdog', 'heartmonitor', 'lbmethod_heartbeat']
# The stock lbmethod alone, reading a file the benchmark writes.
STOCK_FILE_PROXY = PROXY_BASE + ['lbmethod_heartbeat']

STATUS_LOCATION = """
<Location /hb-status>
    SetHandler heartbeat-status
</Location>
"""

# Groups for the namespace benchmarks: ours and stock run side by side on
# separate groups so that neither ever sees the other's packets.
OURS_GROUP = ('239.0.0.2', 27998)
STOCK_GROUP = ('239.0.0.1', 27999)


def log(msg):
    sys.stderr.write('[bench %6.1fs] %s\n' % (time.monotonic() - T_START, msg))
    sys.stderr.flush()


def mpm(threads, servers=1, start=1):
    """Event MPM settings for exactly servers x threads workers."""
    return ('StartServers %d\nServerLimit %d\n%sThreadsPerChild %d\nMaxRequestWorkers %d\n'
            'MinSpareThreads 1\nMaxSpareThreads %d\n'
            % (start, servers, 'ThreadLimit %d\n' % threads if threads > 64 else '', threads,
               servers * threads, servers * threads))


def answers_200(url, netns=None):
    """Whether GET url answers 200 now; a timeout or a refused connection is
    just "not yet" (a server that has just started may not accept for a
    moment on a loaded machine)."""
    try:
        return hbtest.get(url, timeout=5, netns=netns).status == 200
    except OSError:
        return False


def proxy_status(proxy, netns=None):
    """Our monitor's status page (JSON)."""
    return json.loads(hbtest.get(proxy.url('/hb-status?json'), netns=netns).body.decode())


def proxy_servers(proxy, netns=None, port=None):
    """Our monitor's table as its status page says: {ip: entry}, for origins
    that each have an address of their own (or of those on `port`)."""
    return {e['ip']: e for e in proxy_status(proxy, netns)['servers']
            if port is None or e['port'] == port}


def proxy_members(proxy, netns=None, balancer=None):
    """The members of one heartbeat balancer on the status page, with their
    per-response load reports (load_reports, load_ignored, load): {member
    URL: entry}."""
    return {m['member']: m for m in proxy_status(proxy, netns).get('members', [])
            if m['balancer'] == 'balancer://' + balancer}


def prefork(n):
    """Prefork MPM settings for exactly n single-worker processes."""
    return ('StartServers %d\nServerLimit %d\nMaxRequestWorkers %d\nMinSpareServers %d\n'
            'MaxSpareServers %d\n' % (n, n, n, n, n))


# --------------------------------------------------------------------------
# Background processes and CPU accounting
# --------------------------------------------------------------------------

class Procs:
    """Every long-running helper this script starts, so that each is
    stopped by its pid whatever happens."""

    running = []

    @classmethod
    def start(cls, cmd, **kwargs):
        kwargs.setdefault('stdout', subprocess.PIPE)
        kwargs.setdefault('stderr', subprocess.PIPE)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True,
                                text=True, **kwargs)
        cls.running.append(proc)
        return proc

    @classmethod
    def stop(cls, proc, timeout=5):
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
        if proc in cls.running:
            cls.running.remove(proc)
        out, err = proc.communicate()
        return out, err

    @classmethod
    def stop_all(cls):
        for proc in list(cls.running):
            cls.stop(proc)


def process_cpu(pids):
    """{pid: (utime+stime in seconds from /proc/<pid>/stat,
    run time in seconds summed over /proc/<pid>/task/*/schedstat)}.

    stat counts in clock ticks (10 ms here), too coarse for a 2-second run
    at 10k packets/s; schedstat counts nanoseconds. Both are kept."""
    hz = os.sysconf('SC_CLK_TCK')
    out = {}
    for pid in pids:
        try:
            with open('/proc/%d/stat' % pid) as f:
                stat = f.read()
            fields = stat[stat.rindex(')') + 2:].split()
            ticks = (int(fields[11]) + int(fields[12])) / hz
            run_ns = 0
            for tid in os.listdir('/proc/%d/task' % pid):
                try:
                    with open('/proc/%d/task/%s/schedstat' % (pid, tid)) as f:
                        run_ns += int(f.read().split()[0])
                except OSError:
                    pass
            out[pid] = (ticks, run_ns / 1e9)
        except (OSError, ValueError, IndexError):
            pass
    return out


def cpu_delta(before, after):
    """CPU used between two process_cpu() samples, by every process alive at
    the second (a process started in between counts from zero)."""
    stat = sum(a[0] - before.get(pid, (0, 0))[0] for pid, a in after.items())
    sched = sum(a[1] - before.get(pid, (0, 0))[1] for pid, a in after.items())
    return stat, sched


def httpd_pids(httpd):
    """The parent and every child of an httpd (its process group)."""
    return [httpd.pid] + httpd.children()


def udp_socket_stats(pid, port):
    """(rx_queue bytes, drops) of the UDP sockets bound to `port`, read in
    the network namespace of process pid."""
    rxq = drops = 0
    found = False
    for table in ('udp', 'udp6'):
        try:
            with open('/proc/%d/net/%s' % (pid, table)) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(':', 1)[1], 16) != port:
                continue
            found = True
            rxq += int(fields[4].split(':')[1], 16)
            drops += int(fields[-1])
    return (rxq, drops) if found else (None, None)


def machine_info():
    info = {'nproc': os.cpu_count(), 'kernel': platform.release()}
    try:
        with open('/proc/cpuinfo') as f:
            m = re.search(r'^model name\s*:\s*(.+)$', f.read(), re.M)
            info['cpu'] = m.group(1) if m else 'unknown'
    except OSError:
        info['cpu'] = 'unknown'
    try:
        res = subprocess.run([hbtest.httpd_binary(), '-v'], capture_output=True, text=True)
        info['httpd'] = res.stdout.splitlines()[0].split(':', 1)[1].strip()
    except (OSError, IndexError, hbtest.HarnessError):
        info['httpd'] = 'unknown'
    try:
        res = subprocess.run(['wrk', '--version'], capture_output=True, text=True)
        info['wrk'] = (res.stdout + res.stderr).split()[1]
    except (OSError, IndexError):
        info['wrk'] = None
    try:
        res = subprocess.run(['git', '-C', SRC, 'rev-parse', '--short', 'HEAD'],
                             capture_output=True, text=True)
        info['commit'] = res.stdout.strip() or None
    except OSError:
        info['commit'] = None
    return info


def loadavg():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


# --------------------------------------------------------------------------
# Benchmark 1: request path
# --------------------------------------------------------------------------

WRK_RE = re.compile(r'Requests/sec:\s+([\d.]+)')


def run_wrk(url, cfg):
    cmd = ['wrk', '-t1', '-c%d' % cfg.wrk_conns, '-d%ds' % cfg.wrk_seconds,
           '--timeout', '5s', url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=cfg.wrk_seconds + 30)
    m = WRK_RE.search(res.stdout)
    if not m:
        raise RuntimeError('wrk failed: %s %s' % (res.stdout, res.stderr))
    errors = 0
    m2 = re.search(r'Non-2xx or 3xx responses:\s+(\d+)', res.stdout)
    if m2:
        errors += int(m2.group(1))
    m3 = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)',
                   res.stdout)
    if m3:
        errors += sum(int(x) for x in m3.groups())
    return float(m.group(1)), errors


def ab_rounds(pairs, rounds, run_one, label):
    """For each round, run every (name, arg) of `pairs` in order: the
    baseline and the variant alternate (A B A B ...). Returns {name: [..]}."""
    out = {name: [] for name, _ in pairs}
    for r in range(rounds):
        for name, arg in pairs:
            value = run_one(arg)
            out[name].append(value)
        log('%s round %d/%d: %s' % (label, r + 1, rounds, ', '.join(
            '%s=%s' % (n, fmt(out[n][-1][0], 0)) for n, _ in pairs)))
    return out


def summarise_pair(base_runs, test_runs):
    """Medians of both, the ratio of the medians and the median of the
    per-round ratios (paired: each round's two runs are adjacent in time)."""
    base = [r[0] for r in base_runs]
    test = [r[0] for r in test_runs]
    paired = [t / b for t, b in zip(test, base) if b]
    return {
        'baseline_rps': base, 'variant_rps': test,
        'baseline_errors': sum(r[1] for r in base_runs),
        'variant_errors': sum(r[1] for r in test_runs),
        'baseline_median': median(base), 'variant_median': median(test),
        'ratio_of_medians': (median(test) / median(base)) if median(base) else None,
        'paired_ratios': paired, 'ratio': median(paired),
    }


def bench_request_path(sb, cfg, bins):
    log('request path: starting 3 origins serving 64 member addresses')
    port = hbtest.free_port()
    members = ['127.0.1.%d' % (m + 1) for m in range(64)]
    # Issue 17: 3 more members (127.0.1.65-67) on an origin that reports
    # its load on every response; two more origins, not members, the same
    # with the header on and off (127.0.1.68, 69), served directly. Their
    # heartbeats go to a port nothing listens on: udpgen feeds the
    # monitor, as for the others.
    hdr_members = ['127.0.1.%d' % (m + 65) for m in range(3)]
    sink = hbtest.free_port(kind='udp')

    def origin(name, listen, header=None):
        extra, modules = '', []
        if header is not None:
            extra = 'HeartbeatAddress 127.0.0.1:%d\nHeartbeatResponseHeader %s\n' % (
                sink, 'on' if header else 'off')
            modules = ['watchdog', 'heartbeat']
        o = sb.httpd(name, mpm(64, servers=2, start=2) + """
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
AsyncRequestWorkerFactor 8
""" + extra, listen=[(ip, port) for ip in listen], modules=modules)
        o.add_file('f.txt', 'x' * 127 + '\n')
        o.start()
        return o
    origins = [origin('rp-origin%d' % k, [ip for m, ip in enumerate(members) if m % 3 == k])
               for k in range(3)]
    origins.append(origin('rp-origin-header', hdr_members, header=True))
    direct_on = origin('rp-origin-on', ['127.0.1.68'], header=True)
    direct_off = origin('rp-origin-off', ['127.0.1.69'], header=False)
    origins += [direct_on, direct_off]

    def balancer(name, n, method, ips=members):
        lines = '\n'.join('    BalancerMember http://%s:%d' % (ip, port) for ip in ips[:n])
        return ('<Proxy balancer://%s>\n%s\n    ProxySet lbmethod=%s\n</Proxy>\n'
                'ProxyPass /%s/ balancer://%s/\n' % (name, lines, method, name, name))

    common = mpm(32, servers=2, start=2) + """
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
"""
    hb_port = hbtest.free_port(kind='udp')
    ours = sb.httpd('rp-proxy-ours', common + STATUS_LOCATION + (
        'HeartbeatListen 127.0.0.1:%d\nHeartbeatMaxServers 2000\n' % hb_port)
        + balancer('hb3', 3, 'heartbeat') + balancer('br3', 3, 'byrequests')
        + balancer('hb64', 64, 'heartbeat') + balancer('br64', 64, 'byrequests')
        + balancer('hb3hdr', 3, 'heartbeat', hdr_members)
        + balancer('br3hdr', 3, 'byrequests', hdr_members),
        modules=HB_PROXY)
    ours.start()

    # The stock lbmethod reads a file; the benchmark writes it, as the stock
    # monitor would: every member fresh (lastseen=0), busy=1 so that stock
    # does not quarter `ready` (it does so for idle-looking origins).
    stock_file = os.path.join(sb.path, 'stock-hb.dat')
    with open(stock_file, 'w') as f:
        for ip in members:
            f.write('%s &ready=50&busy=1&lastseen=0&port=%d\n' % (ip, port))
    os.chmod(stock_file, 0o644)
    stock = sb.httpd('rp-proxy-stock', common + 'HeartbeatStorage "%s"\n' % stock_file
                     + balancer('st3', 3, 'heartbeat') + balancer('br3', 3, 'byrequests')
                     + balancer('st64', 64, 'heartbeat') + balancer('br64', 64, 'byrequests'),
                     modules=STOCK_FILE_PROXY, ours=False)
    stock.start()

    # Every member reports twice per interval (1 s), from its own address.
    fed = len(members + hdr_members)
    feed_members = Procs.start([
        os.path.join(bins, 'udpgen'), '-d', '127.0.0.1:%d' % hb_port, '-s', members[0],
        '-i', str(fed), '-p', '1', '-P', str(port), '-r', str(2 * fed), '-I', '1000',
        '-n', '200000', '-t', '1200'])

    def table_count():
        r = ours.get('/hb-status?json')
        return len(json.loads(r.body.decode())['servers'])
    hbtest.wait_until(lambda: table_count() >= fed, timeout=15,
                      message='%d members in the table' % fed)
    for proxy, paths in ((ours, ('/hb3/f.txt', '/br3/f.txt', '/hb64/f.txt', '/br64/f.txt',
                                 '/hb3hdr/f.txt', '/br3hdr/f.txt')),
                         (stock, ('/st3/f.txt', '/st64/f.txt'))):
        for path in paths:
            hbtest.wait_until(lambda: answers_200(proxy.url(path)), timeout=30,
                              message='%s through %s' % (path, proxy.name))

    def wrk_ours(path):
        return run_wrk(ours.url(path), cfg)

    def wrk_stock(path):
        return run_wrk(stock.url(path), cfg)

    # Warm both proxies (connection pools, page cache) before timing.
    for path in ('/hb3/f.txt', '/br64/f.txt', '/hb3hdr/f.txt'):
        subprocess.run(['wrk', '-t1', '-c%d' % cfg.wrk_conns, '-d1s', ours.url(path)],
                       capture_output=True, timeout=30)
    subprocess.run(['wrk', '-t1', '-c%d' % cfg.wrk_conns, '-d1s', stock.url('/st3/f.txt')],
                   capture_output=True, timeout=30)

    res = {'members_port': port}
    runs = ab_rounds([('br3', '/br3/f.txt'), ('hb3', '/hb3/f.txt'),
                      ('br64', '/br64/f.txt'), ('hb64', '/hb64/f.txt')],
                     cfg.rounds_rp, wrk_ours, 'request path (ours)')
    res['ours_3'] = summarise_pair(runs['br3'], runs['hb3'])
    res['ours_64'] = summarise_pair(runs['br64'], runs['hb64'])

    # Origins with HeartbeatResponseHeader on: the proxy's side (heartbeat
    # against byrequests over the same reporting members) and the origin's
    # (the same origin with the header off, both served directly).
    def wrk_origin(o):
        """wrk against origin o itself, and what o spent per request (CPU
        us): less noisy than its throughput on a shared machine."""
        c0 = process_cpu(httpd_pids(o))
        rps, errors = run_wrk('http://%s:%d/f.txt' % o.listen[0], cfg)
        cpu = cpu_delta(c0, process_cpu(httpd_pids(o)))[1]
        return rps, errors, cpu / (rps * cfg.wrk_seconds) * 1e6 if rps else None
    runs = ab_rounds([('br3hdr', lambda: wrk_ours('/br3hdr/f.txt')),
                      ('hb3hdr', lambda: wrk_ours('/hb3hdr/f.txt')),
                      ('plain', lambda: wrk_origin(direct_off)),
                      ('header', lambda: wrk_origin(direct_on))],
                     cfg.rounds_rp, lambda run: run(), 'request path (header on)')
    res['ours_3_header'] = summarise_pair(runs['br3hdr'], runs['hb3hdr'])
    res['origin_header'] = summarise_pair(runs['plain'], runs['header'])
    for key, name in (('baseline', 'plain'), ('variant', 'header')):
        res['origin_header'][key + '_cpu_us'] = [r[2] for r in runs[name]]
        res['origin_header'][key + '_cpu_us_median'] = median([r[2] for r in runs[name]])
    res['header_members'] = proxy_members(ours, None, 'hb3hdr')

    # 1,000 other senders, each reporting once a second: the table holds
    # 1,064 entries while the 3-member balancer picks.
    log('request path: adding 1,000 other senders')
    feed_others = Procs.start([
        os.path.join(bins, 'udpgen'), '-d', '127.0.0.1:%d' % hb_port, '-s', '127.0.2.1',
        '-i', '1000', '-p', '1', '-P', '30000', '-r', '1000', '-I', '1000',
        '-n', '2000000', '-t', '1200'])
    hbtest.wait_until(lambda: table_count() >= fed + 1000, timeout=15,
                      message='%d entries in the table' % (fed + 1000))
    runs = ab_rounds([('br3', '/br3/f.txt'), ('hb3', '/hb3/f.txt')],
                     cfg.rounds_rp, wrk_ours, 'request path (1,000 others)')
    res['ours_3_with_1000'] = summarise_pair(runs['br3'], runs['hb3'])
    res['table_entries'] = table_count()
    counters = json.loads(ours.get('/hb-status?json').body.decode())['counters']
    res['monitor_counters'] = counters
    Procs.stop(feed_others)
    Procs.stop(feed_members)

    runs = ab_rounds([('br3', '/br3/f.txt'), ('st3', '/st3/f.txt'),
                      ('br64', '/br64/f.txt'), ('st64', '/st64/f.txt')],
                     cfg.rounds, wrk_stock, 'request path (stock file mode)')
    res['stock_3'] = summarise_pair(runs['br3'], runs['st3'])
    res['stock_64'] = summarise_pair(runs['br64'], runs['st64'])
    res['wrk_command'] = ('wrk -t1 -c%d -d%ds --timeout 5s http://127.0.0.1:PORT/<balancer>/f.txt'
                          % (cfg.wrk_conns, cfg.wrk_seconds))
    for h in (ours, stock):
        h.shutdown()
    for o in origins:
        o.shutdown()
    return res


def bench_micro(bins):
    log('micro: bench/pick_bench')
    res = subprocess.run([os.path.join(bins, 'pick_bench')], capture_output=True, text=True,
                         timeout=300)
    if res.returncode != 0:
        raise RuntimeError('pick_bench failed: %s' % res.stderr)
    data = json.loads(res.stdout)
    picks = {p['members']: p for p in data['pick']}
    # Linear growth: time per member stays flat from 4 to 1,024 members.
    data['most_ns_per_member_spread'] = (max(p['most_ns_per_member'] for p in picks.values())
                                         / min(p['most_ns_per_member'] for p in picks.values()))
    return data


# --------------------------------------------------------------------------
# Benchmark 2: monitor ingest
# --------------------------------------------------------------------------

class Monitor:
    """One monitor under test: how to reach it, how to feed it, how to read
    what it applied."""

    def __init__(self, name, httpd, hb_addr, hb_port, netns, src_base, mcast_if, counts):
        self.name = name
        self.httpd = httpd
        self.hb_addr = hb_addr
        self.hb_port = hb_port
        self.netns = netns
        self.src_base = src_base
        self.mcast_if = mcast_if
        self.counts = counts  # True: has an 'accepted' counter (ours)

    def accepted(self):
        if not self.counts:
            return None
        # ?counters, not ?json: formatting 10,000 entries costs the
        # monitor's workers milliseconds, which is not packet cost.
        r = hbtest.get(self.httpd.url('/hb-status?counters'), netns=self.netns)
        return json.loads(r.body.decode())['counters']['accepted']

    def sender_cmd(self, bins, rate, senders, seconds):
        cmd = [os.path.join(bins, 'udpgen'), '-d', '%s:%d' % (self.hb_addr, self.hb_port),
               '-r', str(rate), '-n', str(int(rate * seconds)), '-t', str(int(seconds) + 11),
               '-s', self.src_base, '-i', str(senders), '-p', '1', '-P', '20000']
        if self.mcast_if:
            cmd += ['-m', self.mcast_if]
        if self.netns is not None:
            cmd = self.netns.command(cmd)
        return cmd


def ingest_run(mon, bins, rate, senders, cfg):
    """Send rate x seconds packets; return what was sent, applied, dropped
    and the monitor's CPU time."""
    pid = mon.httpd.pid
    a0 = mon.accepted()
    _, d0 = udp_socket_stats(pid, mon.hb_port)
    c0 = process_cpu(httpd_pids(mon.httpd))
    t0 = time.monotonic()
    # At least ingest_min_packets per run: a short run at a low rate is a
    # few milliseconds of CPU, within the machine's noise.
    seconds = max(cfg.ingest_seconds, getattr(cfg, 'ingest_min_packets', 0) / rate)
    res = subprocess.run(mon.sender_cmd(bins, rate, senders, seconds),
                         capture_output=True, text=True, timeout=seconds + 30)
    if res.returncode != 0:
        raise RuntimeError('udpgen failed: %s' % res.stderr)
    gen = json.loads(res.stdout)

    # Let the monitor finish what is queued: the socket's queue empty and,
    # for ours, the counter no longer moving.
    deadline = time.monotonic() + 5
    last = None
    while time.monotonic() < deadline:
        rxq, _ = udp_socket_stats(pid, mon.hb_port)
        if rxq == 0:
            if not mon.counts:
                break
            cur = mon.accepted()
            if cur == last:
                break
            last = cur
        time.sleep(0.05)
    c1 = process_cpu(httpd_pids(mon.httpd))
    elapsed = time.monotonic() - t0
    a1 = mon.accepted()
    _, d1 = udp_socket_stats(pid, mon.hb_port)
    stat_cpu, sched_cpu = cpu_delta(c0, c1)
    sent = gen['sent']
    drops = (d1 - d0) if d0 is not None and d1 is not None else None
    applied = (a1 - a0) if mon.counts else (sent - drops if drops is not None else None)
    return {
        'rate': rate, 'senders': senders, 'sent': sent, 'achieved_rate': gen['rate'],
        'applied': applied, 'kernel_drops': drops,
        'lost': sent - applied if applied is not None else None,
        'cpu_s': sched_cpu, 'cpu_stat_s': stat_cpu, 'window_s': elapsed,
        'cpu_us_per_packet': sched_cpu / applied * 1e6 if applied else None,
        'cpu_stat_us_per_packet': stat_cpu / applied * 1e6 if applied else None,
    }


def idle_cpu(mon, seconds=3.0):
    """CPU the monitor uses per second with no heartbeats arriving."""
    c0 = process_cpu(httpd_pids(mon.httpd))
    time.sleep(seconds)
    return cpu_delta(c0, process_cpu(httpd_pids(mon.httpd)))[1] / seconds


def perf_profile(mon, bins, rate, senders, seconds=2.0):
    """Where our monitor's time goes at full load: perf record (software
    clock, the VM may have no hardware counters) on every monitor process
    while udpgen runs. None if perf does not work here."""
    if not shutil.which('perf'):
        return None
    data = os.path.join(mon.httpd.root, 'perf.data')
    gen = Procs.start(mon.sender_cmd(bins, rate, senders, seconds + 2))
    try:
        time.sleep(0.5)
        res = subprocess.run(['perf', 'record', '-e', 'cpu-clock', '-F', '2999', '-g', '-o', data,
                              '-p', ','.join(str(p) for p in httpd_pids(mon.httpd)),
                              '--', 'sleep', str(seconds)],
                             capture_output=True, text=True, timeout=seconds + 30)
    finally:
        Procs.stop(gen)
    if res.returncode != 0 or not os.path.exists(data):
        return {'error': (res.stderr or '').strip()[-300:]}
    out = {}
    for key, sort in (('symbols', 'dso,symbol'), ('dsos', 'dso')):
        rep = subprocess.run(['perf', 'report', '-i', data, '--stdio', '--no-children',
                              '--sort', sort, '-g', 'none', '--percent-limit', '1'],
                             capture_output=True, text=True, timeout=60)
        rows = []
        for line in rep.stdout.splitlines():
            m = re.match(r'^\s+([\d.]+)%\s+(\S+)(?:\s+\[.\]\s+(.+?))?\s*$', line)
            if m:
                symbol = re.sub(r'(\s+-)+$', '', (m.group(3) or '').strip())
                rows.append({'percent': float(m.group(1)), 'dso': m.group(2),
                             'symbol': symbol})
        out[key] = rows[:25]
    # Which system calls the monitor's receiver makes per packet.
    out['rate'] = rate
    out['senders'] = senders
    return out


def receiver_tid(httpd):
    """The thread id of our monitor's receiver (named hm-receiver), or None."""
    for pid in httpd_pids(httpd):
        try:
            for tid in os.listdir('/proc/%d/task' % pid):
                with open('/proc/%d/task/%s/comm' % (pid, tid)) as f:
                    if f.read().strip() == 'hm-receiver':
                        return int(tid)
        except OSError:
            continue
    return None


class PinnedSender(Monitor):
    """The same monitor, fed by a udpgen pinned to CPU 0."""

    def __init__(self, mon):
        self.__dict__.update(mon.__dict__)

    def sender_cmd(self, bins, rate, senders, seconds):
        return ['taskset', '-c', '0'] + Monitor.sender_cmd(self, bins, rate, senders, seconds)


def placement_runs(httpd, mon, bins, cfg, rate=50000, senders=10):
    """CPU per packet with the receiver on the sender's CPU and on the
    other one (both pinned with taskset), alternating, with 10 and with
    10,000 senders: how much of the spread between runs is where the
    scheduler happens to put them, and what the number of senders costs
    once placement is fixed."""
    tid = receiver_tid(httpd)
    if tid is None or (os.cpu_count() or 1) < 2 or not shutil.which('taskset'):
        return None
    log('ingest: receiver on the sender\'s CPU or the other, %d/s' % rate)
    pinned = PinnedSender(mon)
    out = {'rate': rate, 'senders': senders, 'same': [], 'other': [],
           'same_10000': [], 'other_10000': []}
    try:
        for _ in range(cfg.rounds):
            for where, cpu in (('same', '0'), ('other', '1')):
                subprocess.run(['taskset', '-pc', cpu, str(tid)], check=True,
                               capture_output=True)
                out[where].append(ingest_run(pinned, bins, rate, senders, cfg))
                out[where + '_10000'].append(ingest_run(pinned, bins, rate, 10000, cfg))
    finally:
        subprocess.run(['taskset', '-pc', '0-%d' % (os.cpu_count() - 1), str(tid)],
                       capture_output=True)
    for where in ('same', 'other', 'same_10000', 'other_10000'):
        out['median_' + where] = median([r['cpu_us_per_packet'] for r in out[where]])
    return out


def summarise_cell(name, rate, senders, rs):
    lost = [r['lost'] for r in rs if r['lost'] is not None]
    return {
        'monitor': name, 'rate': rate, 'senders': senders, 'runs': rs,
        'median_sent': median([r['sent'] for r in rs]),
        'median_applied': median([r['applied'] for r in rs]),
        'median_lost': median(lost), 'max_lost': max(lost) if lost else None,
        'median_loss_pct': median([100.0 * r['lost'] / r['sent'] for r in rs
                                   if r['lost'] is not None and r['sent']]),
        'median_achieved_rate': median([r['achieved_rate'] for r in rs]),
        'median_cpu_us_per_packet': median([r['cpu_us_per_packet'] for r in rs]),
        'median_cpu_stat_us_per_packet': median([r['cpu_stat_us_per_packet'] for r in rs]),
        'median_cpu_net_us_per_packet': median([r['cpu_net_us_per_packet'] for r in rs]),
    }


HUGE_POOL = '/proc/sys/vm/nr_hugepages'


def bench_metrics(httpd, mon, bins, cfg, idle_cpu_per_s, rate=50000):
    """Issue 19: what one ?prometheus scrape of the status page costs with
    10,000 origins in the table (time to the last byte, the monitor's CPU,
    size), and whether the receiver keeps up while the page is scraped back
    to back: runs at `rate` from 10,000 senders, alternately without and
    with a client scraping all the time, compared on loss."""
    log('ingest: ?prometheus scrapes with 10,000 origins in the table')
    url = httpd.url('/hb-status?prometheus')
    # Every sender heard within the table's expiry: 10,000 entries.
    ingest_run(mon, bins, 20000, 10000, argparse.Namespace(ingest_seconds=1))
    entries = json.loads(httpd.get('/hb-status?counters').body.decode())['count']

    def scrape():
        t0 = time.monotonic()
        r = hbtest.get(url, timeout=60)
        if r.status != 200:
            raise RuntimeError('?prometheus answered %d' % r.status)
        return time.monotonic() - t0, r.body

    _, body = scrape()  # warm
    promtool = None
    if shutil.which('promtool'):
        res = subprocess.run(['promtool', 'check', 'metrics'], input=body, capture_output=True,
                             timeout=120)
        promtool = res.returncode == 0 and not res.stdout and not res.stderr
    n = 5 if cfg.quick else 20
    pids = httpd_pids(httpd)
    c0 = process_cpu(pids)
    t0 = time.monotonic()
    quiet = [scrape()[0] for _ in range(n)]
    cpu = cpu_delta(c0, process_cpu(pids))[1] - idle_cpu_per_s * (time.monotonic() - t0)
    out = {'entries': entries, 'bytes': len(body), 'lines': body.count(b'\n'),
           'promtool_ok': promtool, 'scrape_s': quiet, 'median_scrape_s': median(quiet),
           'cpu_s_per_scrape': cpu / n, 'rate': rate, 'without': [], 'with': [],
           'scrapes_during': [], 'scrape_s_under_load': []}

    for _ in range(cfg.rounds):
        out['without'].append(ingest_run(mon, bins, rate, 10000, cfg))
        stop, times = threading.Event(), []

        def scraper():
            while not stop.is_set():
                times.append(scrape()[0])
        th = threading.Thread(target=scraper, daemon=True)
        th.start()
        try:
            out['with'].append(ingest_run(mon, bins, rate, 10000, cfg))
        finally:
            stop.set()
            th.join(timeout=60)
        out['scrapes_during'].append(len(times))
        out['scrape_s_under_load'] += times
    for k in ('without', 'with'):
        out['max_lost_' + k] = max(r['lost'] for r in out[k])
        out['max_drops_' + k] = max(r['kernel_drops'] or 0 for r in out[k])
    out['median_scrape_s_under_load'] = median(out['scrape_s_under_load'])
    log('ingest: ?prometheus: %d entries, %d bytes, median %.1f ms (%.1f ms under load), '
        'lost %d with scrapes, %d without'
        % (entries, len(body), out['median_scrape_s'] * 1000,
           out['median_scrape_s_under_load'] * 1000, out['max_lost_with'],
           out['max_lost_without']))
    return out


def reserve_huge_pages(extra):
    """Add `extra` pages to the kernel's hugetlb pool (root only) -> the
    previous size to restore, or None when the pool cannot be changed."""
    try:
        with open(HUGE_POOL) as f:
            saved = int(f.read())
        with open(HUGE_POOL, 'w') as f:
            f.write(str(saved + extra))
    except (OSError, ValueError) as exc:
        log('ingest: cannot reserve huge pages (%s): the tables use normal pages' % exc)
        return None
    return saved


def restore_huge_pages(saved):
    if saved is not None:
        try:
            with open(HUGE_POOL, 'w') as f:
                f.write(str(saved))
        except OSError as exc:
            log('ingest: cannot restore vm.nr_hugepages=%d: %s' % (saved, exc))


def bench_ingest(sb, cfg, bins):
    """Ours on loopback unicast for the targets (10 vs 10,000 senders at
    every rate), the same in normal pages, then ours against the stock
    monitor on multicast in a namespace (the stock monitor can only join a
    group)."""
    # One 2 MB page per table of 12000 (ours, ours-multicast), as an
    # administrator would reserve them (docs/directives.md); given back at
    # the end. ours-4k shows the same load without them.
    saved_pool = reserve_huge_pages(2)
    try:
        return _bench_ingest(sb, cfg, bins, saved_pool is not None)
    finally:
        restore_huge_pages(saved_pool)


def _bench_ingest(sb, cfg, bins, reserved):
    log('ingest: our monitor on loopback unicast')
    monitor_mpm = mpm(8)
    # HeartbeatRateLimit 0: the per-address limit (default 100/s) would drop
    # nearly everything 10 senders send at these rates, by design; the
    # capacity of the receive path is what is measured here. The default is
    # measured separately below.
    def unicast_monitor(name, httpd_name, extra=''):
        port = hbtest.free_port(kind='udp')
        h = sb.httpd(httpd_name, monitor_mpm + STATUS_LOCATION
                     + 'HeartbeatListen 127.0.0.1:%d\nHeartbeatMaxServers 12000\n'
                     'HeartbeatRateLimit 0\n%s' % (port, extra), modules=['heartmonitor'])
        h.start()
        return h, Monitor(name, h, '127.0.0.1', port, None, '127.2.0.1', None, True)
    uni_h, unicast = unicast_monitor('ours', 'ingest-ours-unicast')
    small_h, small = unicast_monitor('ours-4k', 'ingest-ours-4k', 'HeartbeatHugePages off\n')

    log('ingest: namespace with our monitor and the stock monitor on multicast')
    lab = sb.netlab(['mon'], ipv6=False)
    host = lab['mon']
    # 198.19.0.0/16 (benchmarking range) is made local in this namespace only,
    # so that udpgen can send from 10,000 distinct addresses: multicast needs a
    # non-loopback source, which 127/8 is not.
    hbtest.run_ip('-n', host.ns, 'route', 'add', 'local', '198.19.0.0/16', 'dev', 'lo')
    mc_h = sb.httpd('ingest-ours-mcast', monitor_mpm + STATUS_LOCATION
                    + 'HeartbeatListen %s:%d\nHeartbeatMaxServers 12000\n' % OURS_GROUP
                    + 'HeartbeatRateLimit 0\n',
                    modules=['heartmonitor'], netns=host, listen=[(host.ip, 80)])
    stock_h = sb.httpd('ingest-stock', monitor_mpm
                       + 'HeartbeatListen %s:%d\nHeartbeatMaxServers 0\n' % STOCK_GROUP,
                       modules=['watchdog', 'heartmonitor'], ours=False, netns=host,
                       listen=[(host.ip, 8080)])
    # The stock monitor writes its file as the children's user.
    hbtest.chown_to_run_user(stock_h.logs)
    mc_h.start()
    stock_h.start()
    ours_mc = Monitor('ours-multicast', mc_h, OURS_GROUP[0], OURS_GROUP[1], host, '198.19.0.1',
                      host.ip, True)
    stock = Monitor('stock-multicast', stock_h, STOCK_GROUP[0], STOCK_GROUP[1], host,
                    '198.19.0.1', host.ip, False)

    # Each monitor receives before anything is measured.
    for mon in (unicast, small, ours_mc, stock):
        ingest_run(mon, bins, 1000, 10, argparse.Namespace(ingest_seconds=1))
    res = {'cells': [], 'idle_cpu_per_s': {}, 'huge_pages_reserved': reserved,
           'huge_page_kb': {}}
    for mon in (unicast, small, ours_mc):
        res['huge_page_kb'][mon.name] = json.loads(
            mon.httpd.get('/hb-status?counters').body.decode()).get('huge_page_kb')
    for mon in (unicast, small, ours_mc, stock):
        res['idle_cpu_per_s'][mon.name] = idle_cpu(mon)

    top = max(cfg.ingest_rates)
    runs = {}

    def add(mon, rate, senders):
        runs.setdefault((mon.name, rate, senders), []).append(
            ingest_run(mon, bins, rate, senders, cfg))
    for rnd in range(cfg.rounds):
        for rate in cfg.ingest_rates:
            for senders in (10, 10000):  # A B: 10 then 10,000 senders
                add(unicast, rate, senders)
            add(small, rate, 10000)  # and 10,000 in normal pages
        for rate in cfg.ingest_rates:
            for senders in (10, 10000):
                for mon in (ours_mc, stock):  # A B: ours then stock
                    add(mon, rate, senders)
        last = {k: v[-1] for k, v in runs.items()}
        log('ingest round %d/%d: ours %dk/s lost %s (10 senders) %s (10,000), us/pkt %s %s;'
            ' multicast %dk/s: ours lost %s, stock lost %s'
            % (rnd + 1, cfg.rounds, top // 1000, last[('ours', top, 10)]['lost'],
               last[('ours', top, 10000)]['lost'],
               fmt(last[('ours', top, 10)]['cpu_us_per_packet'], 2),
               fmt(last[('ours', top, 10000)]['cpu_us_per_packet'], 2), top // 1000,
               last[('ours-multicast', top, 10000)]['lost'],
               last[('stock-multicast', top, 10000)]['lost']))
    # What the packets cost: the run's CPU less what the monitor spends idle
    # over the same time (the MPM's own housekeeping, and for stock
    # mod_watchdog's thread, which wakes 10 times a second), measured above
    # in this run.
    for (name, rate, senders), rs in runs.items():
        for r in rs:
            net = r['cpu_s'] - res['idle_cpu_per_s'][name] * r['window_s']
            r['cpu_net_us_per_packet'] = net / r['applied'] * 1e6 if r['applied'] else None
    order = {'ours': 0, 'ours-4k': 1, 'ours-multicast': 2, 'stock-multicast': 3}
    for (name, rate, senders), rs in sorted(runs.items(), key=lambda kv: (order[kv[0][0]],
                                                                            kv[0][1], kv[0][2])):
        res['cells'].append(summarise_cell(name, rate, senders, rs))

    res['placement'] = placement_runs(uni_h, unicast, bins, cfg)
    res['metrics'] = bench_metrics(uni_h, unicast, bins, cfg, res['idle_cpu_per_s']['ours'])

    # The default per-address rate limit with 10 senders at the top rate:
    # what the excess costs when it is dropped on purpose.
    log('ingest: default HeartbeatRateLimit, 10 senders at %d/s' % top)
    uni_h.conf_body = uni_h.conf_body.replace('HeartbeatRateLimit 0\n', '')
    uni_h.graceful_restart()
    rl = []
    for _ in range(cfg.rounds):
        c0 = json.loads(uni_h.get('/hb-status?counters').body.decode())['counters']
        run = ingest_run(unicast, bins, top, 10, cfg)
        c1 = json.loads(uni_h.get('/hb-status?counters').body.decode())['counters']
        run['ratelimited'] = c1.get('ratelimited', 0) - c0.get('ratelimited', 0)
        run['cpu_us_per_packet_sent'] = run['cpu_s'] / run['sent'] * 1e6
        rl.append(run)
    res['ratelimited'] = {
        'runs': rl, 'rate': top, 'senders': 10,
        'median_accepted': median([r['applied'] for r in rl]),
        'median_ratelimited': median([r['ratelimited'] for r in rl]),
        'median_cpu_us_per_packet_sent': median([r['cpu_us_per_packet_sent'] for r in rl]),
    }
    uni_h.conf_body += 'HeartbeatRateLimit 0\n'
    uni_h.graceful_restart()

    low = min(cfg.ingest_rates)
    for key, rate in (('perf', top), ('perf_low', low)):
        log('ingest: perf profile of our monitor at %d/s, 10,000 senders' % rate)
        try:
            res[key] = perf_profile(unicast, bins, rate, 10000)
        except (OSError, subprocess.SubprocessError) as exc:
            res[key] = {'error': str(exc)}
    count = 'max(RATE*%d,%d)' % (cfg.ingest_seconds, cfg.ingest_min_packets)
    res['udpgen_unicast'] = ('udpgen -d 127.0.0.1:PORT -r RATE -n %s -s 127.2.0.1'
                             ' -i SENDERS -p 1 -P 20000' % count)
    res['udpgen_multicast'] = ('ip netns exec NS udpgen -d GROUP:PORT -r RATE -n %s'
                               ' -s 198.19.0.1 -i SENDERS -p 1 -P 20000 -m 198.18.0.1' % count)
    for h in (uni_h, small_h, mc_h, stock_h):
        h.shutdown()
    lab.close()
    return res


# --------------------------------------------------------------------------
# Benchmark 3: freshness
# --------------------------------------------------------------------------

class Prober:
    """Sends GET url every `interval` seconds from inside netns, each in a
    thread of its own so that a request stuck at a fully busy origin does
    not delay the next one. Records (sent, answered-by, done) per probe."""

    def __init__(self, url, netns, interval=0.025):
        self.url = url
        self.netns = netns
        self.interval = interval
        self.probes = []  # [send time, who or None, done time or None]
        self.lock = threading.Lock()
        self.threads = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _one(self, rec):
        try:
            r = hbtest.get(self.url, timeout=60, netns=self.netns)
            who = r.body.decode().strip() if r.status == 200 else 'E%d' % r.status
        except OSError:
            who = 'X'
        with self.lock:
            rec[1] = who
            rec[2] = time.monotonic()

    def _loop(self):
        nxt = time.monotonic()
        while not self._stop.is_set():
            rec = [time.monotonic(), None, None]
            with self.lock:
                self.probes.append(rec)
            t = threading.Thread(target=self._one, args=(rec,), daemon=True)
            t.start()
            self.threads.append(t)
            nxt += self.interval
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def snapshot(self):
        with self.lock:
            return [list(p) for p in self.probes]

    def halt(self):
        """Send no more probes (those in flight go on)."""
        self._stop.set()
        self._thread.join()

    def stop(self, join_timeout=30):
        """halt(), then wait for the probes in flight to be answered."""
        self.halt()
        deadline = time.monotonic() + join_timeout
        for t in self.threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))


def hold_workers(ip, port, n, netns):
    """Open n connections and send each an unfinished request: every one
    keeps a worker of the origin reading, so n = all its workers makes it
    fully busy (its scoreboard shows them busy, none ready)."""
    socks = []
    for _ in range(n):
        s = hbtest.make_socket(socket.AF_INET, socket.SOCK_STREAM, netns)
        s.settimeout(5)
        s.connect((ip, port))
        s.sendall(b'GET /who HTTP/1.1\r\nHost: hold\r\n')
        socks.append(s)
    return socks


# A probe unanswered for this long is stuck at the busy origin.
PROBE_YOUNG = 0.3


def freshness_trial(suite, rng, cfg):
    """One change and its detection. Returns seconds from the change to the
    first probe sent after the last one that still went to the busy origin."""
    prober = Prober(suite['url'], suite['netns'], cfg.probe_interval).start()
    socks = []
    try:
        # Start from a state where the data says the origin is free: it is
        # being picked again.
        def picked_a():
            recent = [p for p in prober.snapshot() if p[1] == 'a']
            return bool(recent)
        hbtest.wait_until(picked_a, timeout=20, interval=0.02,
                          message='%s: origin a picked again' % suite['name'])
        # A random phase relative to the senders' clocks.
        time.sleep(rng.uniform(0, 1.0))
        # Per-response load reports the proxy took from a (header on).
        count_reports = suite.get('reports', lambda: None)
        reports0 = count_reports()
        socks = hold_workers(suite['a_ip'], suite['a_port'], suite['a_workers'], suite['netns'])
        t0 = time.monotonic()

        def settled():
            now = time.monotonic()
            probes = [p for p in prober.snapshot() if p[0] >= t0]
            run = 0
            for send, who, _done in probes:
                if who == 'b':
                    run += 1
                elif who is None and now - send < PROBE_YOUNG:
                    break  # too young to tell
                else:
                    run = 0  # went to a (answered, or stuck there)
            return run >= cfg.settle_probes
        try:
            hbtest.wait_until(settled, timeout=cfg.fresh_timeout, interval=0.05)
            timed_out = False
        except hbtest.HarnessTimeout:
            timed_out = True
        # What the proxy's data said about the busy origin at that point.
        try:
            seen_as = suite['report']()
            reports = None if reports0 is None else count_reports() - reports0
        except (OSError, ValueError, KeyError) as exc:
            seen_as, reports = 'unknown (%s)' % exc, None
    finally:
        # Stop probing, release the busy origin once every probe sent has
        # been routed (answered, or unanswered long enough to be stuck at
        # a: with the header on, the first answers after the release tell
        # the proxy at once that a is free again), then collect the answers
        # of the probes that were stuck there.
        prober.halt()
        hbtest.wait_until(lambda: all(p[1] is not None or time.monotonic() - p[0] >= PROBE_YOUNG
                                      for p in prober.snapshot()), timeout=10, interval=0.02,
                          message='%s: every probe routed' % suite['name'])
        for s in socks:
            s.close()
        prober.stop()
    probes = [p for p in prober.snapshot() if p[0] >= t0]
    last_a = max((i for i, p in enumerate(probes) if p[1] == 'a'), default=-1)
    unanswered = sum(1 for p in probes if p[1] is None)
    if timed_out or last_a + 1 >= len(probes):
        # What the probes got, in order, to tell why: a = the busy origin,
        # b = the other, E<status> = an error answer, X = no answer.
        trace = ''.join((p[1] or '.')[:4] + ('' if p[1] in ('a', 'b') else ' ') for p in probes)
        return {'seconds': None, 'timed_out': True, 'probes': len(probes),
                'unanswered': unanswered, 'trace': trace[:2000]}
    detect = probes[last_a + 1][0]
    return {'seconds': detect - t0, 'timed_out': False, 'probes': len(probes),
            'to_busy_origin': sum(1 for p in probes if p[1] == 'a'),
            'unanswered': unanswered, 'busy_origin_seen_as': seen_as,
            'reports_from_busy_origin': reports}


WHO = 'who'

LUA_SVC = """-- %(ms)d ms of service without using CPU: the worker is held, as by a
-- backend call, so capacity is exactly workers / %(ms)d ms.
function handle(r)
    r.content_type = "text/plain"
    r.usleep(%(ms)d000)
    r.headers_out['X-Origin'] = '%(name)s'
    r:puts("%(name)s\\n")
    return apache2.OK
end
"""


def start_origin_pair(sb, lab, name, ours, workers, lua=False, use_prefork=False, port=None,
                      hosts=('a', 'b'), service_ms=20, extra=''):
    """Origins a and b (or `hosts`, one per entry of `workers`) of one trio
    in their namespaces, not started yet: ours on port 8080 sending to
    OURS_GROUP, stock on port 80 (its sender cannot state another port)
    sending to STOCK_GROUP. `lua` adds the /svc handler, which holds its
    worker `service_ms`; `use_prefork` makes each worker a process of its
    own instead of a thread of one event-MPM process; `extra` is added to
    each origin's configuration."""
    port = port or (8080 if ours else 80)
    group = OURS_GROUP if ours else STOCK_GROUP
    out = []
    for host_name, n in zip(hosts, workers):
        host = lab[host_name]
        conf = ((prefork(n) if use_prefork else mpm(n)) + 'HeartbeatAddress %s:%d\n' % group
                + extra)
        if ours:
            conf += 'HeartbeatInterval 1s\n'  # the default, as stock's fixed 1 s
        o = sb.httpd('%s-%s' % (name, host_name), conf,
                     modules=['watchdog', 'heartbeat'] + (['lua'] if lua else []),
                     ours=ours, netns=host, listen=[(host.ip, port)],
                     mpm='prefork' if use_prefork else 'event')
        o.add_file(WHO, host_name + '\n')
        if lua:
            script = o.add_file('svc.lua', LUA_SVC % {'name': host_name, 'ms': service_ms})
            o.conf_body += 'LuaMapHandler ^/svc$ "%s" handle\nListenBacklog 1024\n' % script
        out.append(o)
    return out


def stock_proxy_conf(members, name, extra_members=''):
    return ('HeartbeatListen %s:%d\nHeartbeatMaxServers 0\n' % STOCK_GROUP
            + '<Proxy balancer://%s>\n' % name
            + ''.join('    BalancerMember %s%s\n' % (m, extra_members) for m in members)
            + '    ProxySet lbmethod=heartbeat\n</Proxy>\n')


def bench_freshness(sb, cfg):
    log('freshness: namespaces a, b, proxy; our trio (header off and on) and the stock trio')
    lab = sb.netlab(['a', 'b', 'proxy'], ipv6=False)
    a, b, p = lab['a'], lab['b'], lab['proxy']
    workers = (8, 4)
    ours_o = start_origin_pair(sb, lab, 'fresh-ours', True, workers)
    # The same with HeartbeatResponseHeader on (issue 17), on port 8081.
    ours_o += start_origin_pair(sb, lab, 'fresh-header', True, workers, port=8081,
                                extra='HeartbeatResponseHeader on\n')
    stock_o = start_origin_pair(sb, lab, 'fresh-stock', False, workers)
    proxy_mpm = mpm(150, servers=2, start=2)
    # disablereuse: a new backend connection per request. With pooled
    # keep-alive connections the proxy's requests would go on being served
    # by a's workers while the event MPM, over its connection limit, leaves
    # the holding connections unaccepted, and a would never look busy.
    ours_p = sb.httpd('fresh-proxy-ours', proxy_mpm + STATUS_LOCATION
                      + 'HeartbeatListen %s:%d\n' % OURS_GROUP + ''.join("""
<Proxy balancer://%s>
    BalancerMember http://%s:%d disablereuse=on
    BalancerMember http://%s:%d disablereuse=on
    ProxySet lbmethod=heartbeat
    HeartbeatPickMode weighted
</Proxy>
ProxyPass /%s balancer://%s timeout=60
""" % (name, a.ip, port, b.ip, port, name, name) for name, port in (('app', 8080),
                                                                  ('apph', 8081))),
        modules=HB_PROXY, netns=p, listen=[(p.ip, 80)])
    # The busy origin is listed first: stock's off-by-one range can then
    # never hand it a pick once it reports ready=0.
    stock_p = sb.httpd('fresh-proxy-stock', proxy_mpm + stock_proxy_conf(
        ['http://%s:80' % a.ip, 'http://%s:80' % b.ip], 'app', ' disablereuse=on')
        + 'ProxyPass /app balancer://app timeout=60\n',
        modules=HB_PROXY, ours=False, netns=p, listen=[(p.ip, 8080)])
    hbtest.chown_to_run_user(stock_p.logs)
    for h in (ours_p, stock_p):
        h.start()
    for o in ours_o + stock_o:
        o.start()
    def ours_view(port=8080):
        e = proxy_servers(ours_p, p, port).get(a.ip)
        if e is None:
            return 'absent'
        return 'state=%s ready=%s busy=%s' % (e['state'], e['ready'], e['busy'])

    def header_member():
        return proxy_members(ours_p, p, 'apph')['http://%s:8081' % a.ip]

    def header_view():
        """The heartbeat's data and the member's last load report."""
        m = header_member()
        last = m['load'] and 'ready=%(ready)s busy=%(busy)s, %(age_ms)s ms old' % m['load']
        return '%s; last report: %s' % (ours_view(8081), last or 'none')

    def stock_view():
        with open(os.path.join(stock_p.run_dir, 'hb.dat')) as f:
            for line in f:
                if line.startswith(a.ip + ' '):
                    return line.split(' ', 1)[1].strip()
        return 'absent'
    suites = [
        {'name': 'ours', 'url': ours_p.url('/app/' + WHO), 'netns': p, 'a_ip': a.ip,
         'a_port': 8080, 'a_workers': workers[0], 'report': ours_view},
        {'name': 'ours-header', 'url': ours_p.url('/apph/' + WHO), 'netns': p, 'a_ip': a.ip,
         'a_port': 8081, 'a_workers': workers[0], 'report': header_view,
         'reports': lambda: header_member()['load_reports']},
        {'name': 'stock', 'url': stock_p.url('/app/' + WHO), 'netns': p, 'a_ip': a.ip,
         'a_port': 80, 'a_workers': workers[0], 'report': stock_view},
    ]
    for s in suites:
        hbtest.wait_until(lambda: answers_200(s['url'], p), timeout=30,
                          message='%s trio routing' % s['name'])
    rng = random.Random(7)
    trials = {s['name']: [] for s in suites}
    for rnd in range(cfg.rounds):
        for _ in range(cfg.fresh_trials_per_round):
            for s in suites:
                trials[s['name']].append(freshness_trial(s, rng, cfg))
        log('freshness round %d/%d: %s' % (rnd + 1, cfg.rounds, ', '.join(
            '%s %s' % (name, [fmt(t['seconds'], 2) for t in ts[-cfg.fresh_trials_per_round:]])
            for name, ts in trials.items())))
    res = {}
    for name, ts in trials.items():
        secs = [t['seconds'] for t in ts if t['seconds'] is not None]
        res[name] = {'trials': ts, 'seconds': secs, 'median': median(secs),
                     'max': max(secs) if secs else None, 'min': min(secs) if secs else None,
                     'timed_out': sum(1 for t in ts if t['timed_out'])}
    res['interval_s'] = 1.0
    res['probe_interval_s'] = cfg.probe_interval
    res['header_member'] = header_member()
    for h in ours_o + stock_o + [ours_p, stock_p]:
        h.shutdown()
    lab.close()
    return res


# --------------------------------------------------------------------------
# Benchmark 4: balancing quality
# --------------------------------------------------------------------------

# Members of the load benchmarks' balancers. disablereuse: one backend
# connection per request, so a request for a full origin waits in its listen
# queue (plain queueing) instead of on an idle keep-alive connection the
# origin may close under pressure.
MEMBER_OPTS = ' disablereuse=on retry=1'
LOAD_PROXY_MPM = mpm(128, servers=4, start=2)


def balancer_conf(name, method, hosts, port=8080, section=''):
    """<Proxy balancer://name> over `hosts` (NetHosts) on `port` with
    lbmethod=method and `section` inside it, mapped at /name/."""
    lines = ''.join('    BalancerMember http://%s:%d%s\n' % (h.ip, port, MEMBER_OPTS)
                    for h in hosts)
    return ('<Proxy balancer://%s>\n%s    ProxySet lbmethod=%s\n%s</Proxy>\n'
            'ProxyPass /%s/ balancer://%s/ timeout=5\n'
            % (name, lines, method, section, name, name))


def run_openloop(bins, proxy, netns, path, rate, seconds, seed):
    """bench/openloop from inside netns against proxy's first address:
    Poisson arrivals at `rate`/s for `seconds`, client timeout 6 s ->
    its JSON (counts, errors, percentiles, answers per origin)."""
    cmd = netns.command([os.path.join(bins, 'openloop'), '-a', '%s:%d' % proxy.listen[0],
                         '-u', path, '-r', '%g' % rate, '-d', str(seconds),
                         '-T', '6', '-s', str(seed)])
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if res.returncode != 0:
        raise RuntimeError('openloop failed: %s' % res.stderr)
    return json.loads(res.stdout)


def bench_quality(sb, cfg, bins):
    log('quality: origins of 2 and 8 workers (20 ms service), open-loop load')
    lab = sb.netlab(['a', 'b', 'proxy'], ipv6=False)
    a, b, p = lab['a'], lab['b'], lab['proxy']
    workers = (2, 8)
    # Event MPM origins (Debian's default) for every method; prefork origins
    # (a process per worker) for a second look at ours and bybusyness: see
    # the report for why the MPM matters to ours.
    origins = {'ours': start_origin_pair(sb, lab, 'q-ours', True, workers, lua=True),
               'stock': start_origin_pair(sb, lab, 'q-stock', False, workers, lua=True),
               'prefork': start_origin_pair(sb, lab, 'q-prefork', True, workers, lua=True,
                                            use_prefork=True, port=8081)}

    def balancer(name, method, mode=None, port=8080):
        return balancer_conf(name, method, (a, b), port,
                             '    HeartbeatPickMode %s\n' % mode if mode else '')
    ours_p = sb.httpd('q-proxy-ours', LOAD_PROXY_MPM + STATUS_LOCATION
                      + 'HeartbeatListen %s:%d\n' % OURS_GROUP
                      + balancer('most', 'heartbeat', 'most')
                      + balancer('weighted', 'heartbeat', 'weighted')
                      + balancer('p2c', 'heartbeat', 'p2c')
                      + balancer('byrequests', 'byrequests')
                      + balancer('bybusyness', 'bybusyness')
                      + balancer('most-prefork', 'heartbeat', 'most', port=8081)
                      + balancer('bybusyness-prefork', 'bybusyness', port=8081),
                      modules=HB_PROXY, netns=p, listen=[(p.ip, 80)])
    stock_p = sb.httpd('q-proxy-stock', LOAD_PROXY_MPM + stock_proxy_conf(
        ['http://%s:80' % a.ip, 'http://%s:80' % b.ip], 'stock', MEMBER_OPTS)
        + 'ProxyPass /stock/ balancer://stock/ timeout=5\n',
        modules=HB_PROXY, ours=False, netns=p, listen=[(p.ip, 8080)])
    hbtest.chown_to_run_user(stock_p.logs)
    for h in (ours_p, stock_p):
        h.start()
    for pair in origins.values():
        for o in pair:
            o.start()

    # Baselines and ours alternate (A B A B ...).
    variants = [('byrequests', ours_p, '/byrequests/svc'), ('most', ours_p, '/most/svc'),
                ('bybusyness', ours_p, '/bybusyness/svc'), ('weighted', ours_p, '/weighted/svc'),
                ('stock', stock_p, '/stock/svc'), ('p2c', ours_p, '/p2c/svc'),
                ('bybusyness-prefork', ours_p, '/bybusyness-prefork/svc'),
                ('most-prefork', ours_p, '/most-prefork/svc')]
    for name, proxy, path in variants:
        hbtest.wait_until(lambda: answers_200(proxy.url(path), p),
                          timeout=30, message='%s routing' % name)
    capacity = sum(workers) / 0.020
    rate = cfg.load_fraction * capacity

    def origins_idle():
        """Every origin answers a direct request at once: no queue left
        from the previous run."""
        for pair in origins.values():
            for o in pair:
                t = time.monotonic()
                try:
                    r = hbtest.get(o.url('/svc'), timeout=10, netns=o.netns)
                except OSError:
                    return False
                if r.status != 200 or time.monotonic() - t > 0.1:
                    return False
        return True

    def lb_log_lines(pattern):
        return len(re.findall(pattern, ours_p.error_log()))

    results = {name: [] for name, _, _ in variants}
    for rnd in range(cfg.rounds):
        seed = 1000 + rnd  # the same arrivals for every variant of a round
        for name, proxy, path in variants:
            hbtest.wait_until(origins_idle, timeout=30, interval=0.2,
                              message='origins idle before %s' % name)
            # Let every sender report the idle state (interval 1 s).
            time.sleep(1.2)
            results[name].append(run_openloop(bins, proxy, p, path, rate,
                                              cfg.quality_seconds, seed))
        log('quality round %d/%d: p99 ms %s' % (rnd + 1, cfg.rounds, ', '.join(
            '%s=%s/%derr' % (n, fmt(results[n][-1]['p99_ms'], 0),
                             sum(results[n][-1]['errors'].values()))
            for n, _, _ in variants)))
    out = {'capacity_rps': capacity, 'offered_rps': rate, 'workers': workers,
           'seconds': cfg.quality_seconds, 'variants': {},
           'lb0304_lines': lb_log_lines(r'LB0304'), 'ah01170_lines': lb_log_lines(r'AH01170')}
    for name, rs in results.items():
        errs = [sum(r['errors'].values()) for r in rs]
        codes = {}
        for r in rs:
            for code, n in r.get('codes_5xx', {}).items():
                codes[code] = codes.get(code, 0) + n
        out['variants'][name] = {
            'runs': rs,
            'p50_ms': median([r['p50_ms'] for r in rs]),
            'p99_ms': median([r['p99_ms'] for r in rs]),
            'p999_ms': median([r['p999_ms'] for r in rs]),
            'errors_total': sum(errs),
            'errors_per_run': errs,
            'codes_5xx': codes,
            'share_a': median([r['origins'].get('a', 0) / max(1, r['ok']) for r in rs]),
        }
    out['openloop_command'] = ('openloop -a PROXY:PORT -u /<balancer>/svc -r %g -d %d -T 6 -s SEED'
                               % (rate, cfg.quality_seconds))
    for h in [ours_p, stock_p] + [o for pair in origins.values() for o in pair]:
        h.shutdown()
    lab.close()
    return out


# --------------------------------------------------------------------------
# Benchmark 5: failure (cold start, black hole, slow start)
# --------------------------------------------------------------------------

class ClosedLoop:
    """`clients` clients inside netns, each sending GET url again as soon
    as its previous answer is in (closed loop), one connection per
    request. Every request is recorded as (start, end, outcome, origin):
    outcome is the status, 'refused' (nothing listens: the client tries
    again after `retry` s, so the clients are already connecting when a
    server starts) or 'error' (reset, timeout); origin is X-Origin.
    Client i sends its first request after i x `stagger` s."""

    def __init__(self, url, netns, clients, timeout=10.0, retry=0.05, stagger=0.0):
        self.url = url
        self.timeout = timeout
        self.retry = retry
        self.stagger = stagger
        self.records = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        # Each client runs in a thread moved into the namespace once
        # (in_netns), so its sockets need no helper thread each.
        self.threads = [threading.Thread(target=hbtest.in_netns, args=(netns, self._client, i),
                                         daemon=True) for i in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _client(self, i):
        self._stop.wait(i * self.stagger)
        while not self._stop.is_set():
            t0 = time.monotonic()
            origin = None
            try:
                r = hbtest.get(self.url, timeout=self.timeout)
                outcome, origin = r.status, r.headers.get('X-Origin')
            except ConnectionRefusedError:
                outcome = 'refused'
            except (OSError, http.client.HTTPException):
                outcome = 'error'
            with self.lock:
                self.records.append((t0, time.monotonic(), outcome, origin))
            if outcome == 'refused':
                self._stop.wait(self.retry)

    def snapshot(self):
        with self.lock:
            return list(self.records)

    def halt(self):
        """Send no more (the requests in flight go on)."""
        self._stop.set()

    def stop(self):
        """Send no more; wait for the answers in flight."""
        self.halt()
        for t in self.threads:
            t.join(timeout=self.timeout + 5)


def percentile(values, p):
    """Nearest rank, as bench/openloop: of sorted values."""
    if not values:
        return None
    i = int(math.ceil(p / 100.0 * len(values)))
    return values[max(i, 1) - 1]


def ok_status(outcome):
    return isinstance(outcome, int) and 200 <= outcome < 300


def window_stats(records, t0, t1):
    """The requests of a ClosedLoop started in [t0, t1): how many, how many
    failed (non-2xx or no answer) and how, latency of the others (ms), and
    answers by origin."""
    rs = [r for r in records if t0 <= r[0] < t1]
    lat = sorted((r[1] - r[0]) * 1000 for r in rs if ok_status(r[2]))
    failed = {}
    for r in rs:
        if not ok_status(r[2]):
            failed[str(r[2])] = failed.get(str(r[2]), 0) + 1
    origins = {}
    for r in rs:
        if r[3]:
            origins[r[3]] = origins.get(r[3], 0) + 1
    return {'requests': len(rs), 'failed': sum(failed.values()), 'failed_by': failed,
            'p50_ms': percentile(lat, 50), 'p99_ms': percentile(lat, 99),
            'max_ms': lat[-1] if lat else None, 'origins': origins}


def share(origins, name):
    n = sum(origins.values())
    return origins.get(name, 0) / n if n else None


def time_to_share(records, origin, t0, t1, target, window=1.0, step=0.1, tolerance=0.1):
    """Seconds from t0 to the end of the first `window` (sliding by `step`
    within [t0, t1)) in which `origin` answered a share of the requests
    started then within `tolerance` (relative) of `target`; None if none."""
    if not target:
        return None
    s = t0
    while s + window <= t1 + 1e-9:
        got = window_stats(records, s, s + window)['origins']
        sh = share(got, origin)
        if sh is not None and abs(sh - target) <= tolerance * target:
            return s + window - t0
        s += step
    return None


def ratio(a, b):
    return a / b if a is not None and b else None


def storage_files(proxy):
    """What the proxy's monitor saved at its last stop: the storage file
    (default heartbeat/hb.dat in DefaultRuntimeDir, the harness's run/) and
    whatever else is in that directory."""
    d = os.path.join(proxy.run_dir, 'heartbeat')
    return sorted(os.path.join(d, n) for n in os.listdir(d)) if os.path.isdir(d) else []


class FirstSeen:
    """Polls the proxy's status page (JSON) every `interval` s from before
    its start until each of `ips` is in the monitor's table or `timeout`
    s passed: when each one was first seen (time.monotonic())."""

    def __init__(self, proxy, netns, ips, interval=0.02, timeout=3.0):
        self.proxy, self.netns, self.ips = proxy, netns, set(ips)
        self.interval, self.timeout = interval, timeout
        self.seen = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.t0 = time.monotonic()
        self.thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set() and time.monotonic() - self.t0 < self.timeout:
            try:
                servers = proxy_servers(self.proxy, self.netns)
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                servers = {}
            now = time.monotonic()
            for ip in self.ips & set(servers):
                self.seen.setdefault(ip, now)
            if self.ips <= set(self.seen):
                return
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=10)


def cold_start(proxy, p, method, cfg, fresh=False, stopped_at=None, watch=()):
    """One full start of the proxy while cfg.fail_clients clients are
    already connecting to /<method>/svc; stopped again at the end.

    `fresh`: the first start of a new proxy. What the monitor saved at the
    previous stop is removed first (no restart priors), and the proxy is
    started only once it has been stopped (since `stopped_at`, monotonic)
    for cfg.first_down s, so that every origin has had a heartbeat
    refused. `watch`: origin addresses whose first appearance in the
    monitor's table is recorded (status page polled from before the
    start), relative to the start's return.

    The windows count from t_up, when the start returned (the harness saw
    the proxy accept a connection). The first one also holds what started
    earlier and got through; a refusal counts as a failure only for a
    request started after t_up: one started before may have tried before
    the proxy listened, whatever its place among the others."""
    removed = []
    if fresh:
        for path in storage_files(proxy):
            os.unlink(path)
            removed.append(os.path.basename(path))
    loop = ClosedLoop(proxy.url('/%s/svc' % method), p, cfg.fail_clients).start()
    seen = None
    try:
        hbtest.wait_until(lambda: len(loop.snapshot()) >= cfg.fail_clients, timeout=10,
                          message='clients connecting')
        if fresh and stopped_at is not None:
            time.sleep(max(0.0, stopped_at + cfg.first_down - time.monotonic()))
        if watch:
            seen = FirstSeen(proxy, p, watch).start()
        t_cmd = time.monotonic()
        proxy.start()
        t_up = time.monotonic()
        time.sleep(cfg.cold_steady[1])  # measuring
    finally:
        if seen:
            seen.stop()
        if proxy.running:
            proxy.shutdown()
        t_down = time.monotonic()
        loop.stop()
    records = [r for r in loop.snapshot()
               if r[0] >= t_cmd and not (r[2] == 'refused' and r[0] < t_up)]
    first = window_stats(records, t_cmd, t_up + cfg.cold_first)
    steady = window_stats(records, t_up + cfg.cold_steady[0], t_up + cfg.cold_steady[1])
    # How long the start shows: the last request of the first window slower
    # than 1.5 times the steady p99.
    slow = [r[0] - t_up for r in records if r[0] < t_up + cfg.cold_first and ok_status(r[2])
            and steady['p99_ms'] and (r[1] - r[0]) * 1000 > 1.5 * steady['p99_ms']]
    out = {'method': method, 'start_s': t_up - t_cmd, 'first': first, 'steady': steady,
           'ratio': ratio(first['p99_ms'], steady['p99_ms']),
            'slow_until_s': max(slow) if slow else None,
           'share_b_first': share(first['origins'], 'b'),
           'share_b_steady': share(steady['origins'], 'b'), 't_down': t_down}
    if stopped_at is not None:
        out['down_s'] = t_cmd - stopped_at
    if fresh:
        out['removed'] = removed
    if watch:
        out['first_seen_s'] = {ip: seen.seen[ip] - t_up if ip in seen.seen else None
                               for ip in watch}
    # The first second after the start, in 0.25-s slices: answers by origin.
    out['first_origins'] = [window_stats(records, t_up + i * 0.25 if i else t_cmd,
                                         t_up + (i + 1) * 0.25)['origins'] for i in range(4)]
    return out


def black_hole_runs(proxy, p, bins, cfg, idle):
    """Open-loop load on each method's balancer over a and b (no black
    hole) and over a, b and c (c answers 503 at once), alternating."""
    runs = {}
    for rnd in range(cfg.rounds):
        # Every round starts with no member ejected yet (a graceful restart
        # starts the ejection state afresh, and keeps the table).
        if rnd:
            proxy.graceful_restart()
        for method in FAIL_METHODS:
            for name in (method, 'bh-' + method):
                # Every run ends with all its requests answered; heartbeat
                # also needs the reports to say so.
                if method == 'heartbeat':
                    hbtest.wait_until(idle, timeout=30, interval=0.1,
                                      message='origins reported idle before %s' % name)
                runs.setdefault(name, []).append(run_openloop(
                    bins, proxy, p, '/%s/svc' % name, cfg.bh_rate, cfg.bh_seconds, 3000 + rnd))
        log('failure: black hole round %d/%d: failed %% %s' % (rnd + 1, cfg.rounds, ', '.join(
            '%s=%s' % (m, fmt(failed_pct(runs['bh-' + m][-1]), 1)) for m in FAIL_METHODS)))
    out = {}
    for method in FAIL_METHODS:
        base, bh = runs[method], runs['bh-' + method]
        paired = [ratio(x['p99_ms'], y['p99_ms']) for x, y in zip(bh, base)]
        out[method] = {
            'base_runs': base, 'bh_runs': bh,
            'failed_pct': [failed_pct(r) for r in bh],
            'median_failed_pct': median([failed_pct(r) for r in bh]),
            'base_failed_pct': [failed_pct(r) for r in base],
            'base_p99_ms': median([r['p99_ms'] for r in base]),
            'bh_p99_ms': median([r['p99_ms'] for r in bh]),
            'p99_ratio': median(paired), 'paired_ratios': paired,
            'share_a': median([share(r['origins'], 'a') for r in bh]),
            'base_share_a': median([share(r['origins'], 'a') for r in base]),
        }
    return out


def failed_pct(run):
    """Requests of an openloop run that failed (any error), in percent."""
    return 100.0 * sum(run['errors'].values()) / run['scheduled'] if run['scheduled'] else None


def slow_start_trial(proxy, p, origin, balancer, ramp, cfg):
    """Load on /<balancer>/svc; origin b (32 workers) fully stopped, gone
    from the proxy's view, started again: what the 5 s after its return
    look like, and how long until its share is back near steady."""
    ip = origin.netns.ip
    # The clients start spread over one service time, as they run.
    loop = ClosedLoop(proxy.url('/%s/svc' % balancer), p, cfg.fail_clients,
                      stagger=cfg.fail_service_ms / 1000 / cfg.fail_clients).start()
    try:
        t_load = time.monotonic()
        time.sleep(cfg.ss_settle + cfg.ss_steady)  # measuring the steady state
        t_stop = time.monotonic()
        origin.shutdown()

        def state():
            return proxy_servers(proxy, p).get(ip, {}).get('state')
        hbtest.wait_until(lambda: state() != 'up', timeout=10, interval=0.02,
                          message='the proxy seeing %s stopped' % origin.name)
        t_gone = time.monotonic()
        origin.start()

        def back():
            e = proxy_servers(proxy, p).get(ip)
            return e is not None and e['state'] == 'up' and e['ready'] > 0
        hbtest.wait_until(back, timeout=10, interval=0.02,
                          message='the proxy seeing %s back' % origin.name)
        t_back = time.monotonic()
        span = max(cfg.ss_window, ramp + cfg.ss_tail)
        time.sleep(span)  # measuring the return
    finally:
        loop.stop()
    records = loop.snapshot()
    steady = window_stats(records, t_load + cfg.ss_settle, t_stop)
    after = window_stats(records, t_back, t_back + cfg.ss_window)
    target = share(steady['origins'], 'b')
    return {'ramp_s': ramp, 'steady': steady, 'after': after, 'steady_share_b': target,
            'share_b_first_s': share(window_stats(records, t_back, t_back + 1)['origins'], 'b'),
            'gone_s': t_gone - t_stop, 'back_s': t_back - t_gone, 'span_s': span,
            'settle_s': time_to_share(records, 'b', t_back, t_back + span, target)}


FAIL_METHODS = ('heartbeat', 'byrequests', 'bybusyness')
FIRST_HB_PORT = 27997  # the proxy's unicast HeartbeatListen, beside OURS_GROUP
FAIL_WORKERS = (8, 32)  # origins a and b; c, the black hole, as b
SLOW_START_MISSING = "Invalid command 'HeartbeatSlowStart'"


def bench_failure(sb, cfg, bins):
    log('failure: origins of 8 and 32 workers (400 ms service) and a black hole')
    started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    load0 = loadavg()
    lab = sb.netlab(['a', 'b', 'c', 'proxy'], ipv6=False)
    a, b, c, p = lab['a'], lab['b'], lab['c'], lab['proxy']
    # a and b also send to the proxy by unicast (mod_heartbeat sends to every
    # HeartbeatAddress), for the first start of a new proxy: a unicast
    # sender hears "port unreachable" while the monitor is down and beats
    # every 100 ms until it listens. The multicast stays, for the other
    # rows (an unsigned heartbeat twice is the same report twice).
    origins = start_origin_pair(sb, lab, 'fail', True, FAIL_WORKERS, lua=True,
                                service_ms=cfg.fail_service_ms,
                                extra='HeartbeatAddress %s:%d\n' % (p.ip, FIRST_HB_PORT))
    # c: our sender reports its workers, all free, and every request gets
    # 503 at once (a broken application), as in test_black_hole_is_ejected.
    (hole,) = start_origin_pair(sb, lab, 'fail', True, FAIL_WORKERS[1:], hosts=('c',))
    hole.modules.append('alias')
    hole.conf_body += 'Redirect 503 /svc\n'
    conf = (LOAD_PROXY_MPM + STATUS_LOCATION + 'HeartbeatListen %s:%d\n' % OURS_GROUP
            + 'HeartbeatListen %s:%d\n' % (p.ip, FIRST_HB_PORT)
            + ''.join(balancer_conf(m, m, (a, b)) + balancer_conf('bh-' + m, m, (a, b, c))
                      for m in FAIL_METHODS))
    ramps = [(s, 'ss%d' % s) for s in cfg.ss_ramps]
    proxy = sb.httpd('fail-proxy', conf + ''.join(
        balancer_conf(name, 'heartbeat', (a, b), section='    HeartbeatSlowStart %s\n'
                      % ('%ds' % s if s else '0')) for s, name in ramps),
        modules=HB_PROXY, netns=p, listen=[(p.ip, 80)])
    rc, out = proxy.config_test()
    res = {'workers': FAIL_WORKERS, 'service_ms': cfg.fail_service_ms,
           'clients': cfg.fail_clients, 'cold_first_s': cfg.cold_first,
           'cold_steady_s': list(cfg.cold_steady), 'bh_rate': cfg.bh_rate,
           'bh_seconds': cfg.bh_seconds, 'ss_window_s': cfg.ss_window,
           'ss_settle_s': cfg.ss_settle, 'ss_steady_s': cfg.ss_steady, 'date': started,
           'load_start': load0, 'first_down_s': cfg.first_down,
           'first_hb': '%s:%d' % (p.ip, FIRST_HB_PORT)}
    if rc != 0 and SLOW_START_MISSING in out:
        # Not built yet: slow start 0 is the default, measured without the
        # directive; the others are reported as not measured.
        log('failure: HeartbeatSlowStart missing; slow start only with the default (off)')
        res['slow_start_missing'] = [s for s, _ in ramps if s]
        ramps = [(0, 'heartbeat')]
        proxy.conf_body = conf
    elif rc != 0:
        raise RuntimeError('failure proxy: httpd -t failed:\n%s' % out)
    for o in origins + [hole]:
        o.start()

    # A restart, as in production: the proxy ran before, so at its start the
    # monitor has the origins' last reports to go on (hm_seed_table). The
    # very first start of a new proxy has none: until the origins report
    # (up to an interval), it cannot tell a small one from a big one.
    proxy.start()
    hbtest.wait_until(lambda: len(proxy_servers(proxy, p)) >= 3, timeout=10,
                      message='the proxy has heard every origin')
    proxy.shutdown()
    stopped_at = time.monotonic()
    log('failure: cold start, %d clients already connecting' % cfg.fail_clients)
    # heartbeat and bybusyness after a restart (the last reports saved at
    # the previous stop read back), and heartbeat at the first start of a
    # new proxy ('first': nothing saved, stopped for cfg.first_down s).
    res['cold'] = {m: [] for m in ('heartbeat', 'bybusyness', 'first')}
    watch = (a.ip, b.ip)
    for rnd in range(cfg.rounds):
        for variant in res['cold']:
            fresh = variant == 'first'
            r = cold_start(proxy, p, 'heartbeat' if fresh else variant, cfg, fresh=fresh,
                           stopped_at=stopped_at, watch=watch if fresh else ())
            stopped_at = r.pop('t_down')
            res['cold'][variant].append(r)
        first = res['cold']['first'][-1]
        log('failure: cold start %d/%d: failed/ratio %s; first start: down %s s, removed %s,'
            ' a/b first seen %s s after the start returned' % (
                rnd + 1, cfg.rounds, ', '.join(
                    '%s=%d/%s' % (m, r[-1]['first']['failed'], fmt(r[-1]['ratio'], 2))
                    for m, r in res['cold'].items()), fmt(first['down_s'], 2),
                ' '.join(first['removed']) or 'nothing',
                '/'.join(fmt(first['first_seen_s'][ip], 3) for ip in watch)))

    log('failure: black hole, open loop %g/s' % cfg.bh_rate)
    proxy.start()
    want = {a.ip: FAIL_WORKERS[0], b.ip: FAIL_WORKERS[1]}

    def idle():
        servers = proxy_servers(proxy, p)
        return all(servers.get(ip, {}).get('ready') == n for ip, n in want.items())
    res['black_hole'] = black_hole_runs(proxy, p, bins, cfg, idle)
    log_text = proxy.error_log()
    res['black_hole_log'] = {k: len(re.findall(k, log_text)) for k in ('LB0310', 'LB0311')}
    # Where c stands in the heartbeat balancer at the end.
    res['black_hole_c'] = next((
        m for m in json.loads(hbtest.get(proxy.url('/hb-status?json'), netns=p).body.decode())
        .get('members', []) if m['balancer'] == 'balancer://bh-heartbeat'
        and m['member'] == 'http://%s:8080' % c.ip), None)
    hole.shutdown()

    log('failure: slow start, restarting b under load (%s)' % ', '.join(
        '%ds' % s for s, _ in ramps))
    trials = {s: [] for s, _ in ramps}
    for rnd in range(cfg.rounds):
        for s, name in ramps:
            trials[s].append(slow_start_trial(proxy, p, origins[1], name, s, cfg))
        log('failure: slow start %d/%d: p99/failed/settle %s' % (rnd + 1, cfg.rounds, ', '.join(
            '%ds=%s/%d/%s' % (s, fmt(t[-1]['after']['p99_ms'], 0), t[-1]['after']['failed'],
                              fmt(t[-1]['settle_s'], 1)) for s, t in trials.items())))
    res['slow_start'] = {str(s): {
        'trials': ts, 'balancer': dict(ramps)[s],
        'p99_ms': median([t['after']['p99_ms'] for t in ts]),
        'failed': [t['after']['failed'] for t in ts],
        'steady_p99_ms': median([t['steady']['p99_ms'] for t in ts]),
        'steady_share_b': median([t['steady_share_b'] for t in ts]),
        'share_b_first_s': median([t['share_b_first_s'] for t in ts]),
        'settle_s': median([t['settle_s'] for t in ts]),
        'unsettled': sum(1 for t in ts if t['settle_s'] is None)} for s, ts in trials.items()}
    res['load_end'] = loadavg()
    for h in origins + [proxy]:
        h.shutdown()
    lab.close()
    return res


# --------------------------------------------------------------------------
# Benchmark 6: several proxies, one pool of origins (issue 17)
# --------------------------------------------------------------------------

# Balancer name: lbmethod, the origins' port (8081: the pair with
# HeartbeatResponseHeader on, 8080: the same without), lines for <Proxy>.
MP_BALANCERS = {
    'bybusyness': ('bybusyness', 8080, ''),
    'heartbeat': ('heartbeat', 8080, ''),
    'header': ('heartbeat', 8081, ''),
    'p2c-header': ('heartbeat', 8081, '    HeartbeatPickMode p2c\n'),
}
MP_ONE = ('heartbeat', 'header')  # measured on one proxy with all the clients too


def load_reports(proxies, balancer):
    """{proxy name: {member: load_reports}} of a heartbeat balancer."""
    return {h.name: {m: e['load_reports'] for m, e in proxy_members(h, ns, balancer).items()}
            for h, ns in proxies}


def closed_loop_phase(targets, balancer, clients, cfg):
    """`clients` closed-loop clients on each proxy of `targets` ((httpd,
    netns) pairs) at once, on /<balancer>/svc; the window from mp_settle to
    mp_settle + mp_window s measured. -> each proxy's window, the total
    rate of answers, the failures over the whole run and the load reports
    the proxies took meanwhile."""
    reports0 = load_reports(targets, balancer)
    loops = [ClosedLoop(h.url('/%s/svc' % balancer), ns, clients,
                        stagger=cfg.fail_service_ms / 1000 / clients).start()
             for h, ns in targets]
    try:
        t0 = time.monotonic()
        time.sleep(cfg.mp_settle + cfg.mp_window)  # measuring
    finally:
        for loop in loops:
            loop.halt()
        for loop in loops:
            loop.stop()
    elapsed = time.monotonic() - t0
    w0 = t0 + cfg.mp_settle
    per = [window_stats(loop.snapshot(), w0, w0 + cfg.mp_window) for loop in loops]
    whole = [window_stats(loop.snapshot(), t0, time.monotonic()) for loop in loops]
    reports1 = load_reports(targets, balancer)
    worst = [w['p99_ms'] for w in per]
    return {
        'proxies': per, 'p99_ms': None if None in worst else max(worst),
        'rps': sum(w['requests'] - w['failed'] for w in per) / cfg.mp_window,
        'errors': sum(w['failed'] for w in whole),
        'failed_by': sum_counts(w['failed_by'] for w in whole),
        'share_b': share(sum_counts(w['origins'] for w in per), 'b'),
        # Reports taken per member per second, over the whole run.
        'reports_per_s': {name: {m: (n - reports0[name].get(m, 0)) / elapsed
                                 for m, n in ms.items()} for name, ms in reports1.items()},
    }


def bench_proxies(sb, cfg):
    log('proxies: two proxies over origins of 8 and 32 workers (%d ms service)'
        % cfg.fail_service_ms)
    started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    load0 = loadavg()
    lab = sb.netlab(['a', 'b', 'p1', 'p2'], ipv6=False)
    a, b = lab['a'], lab['b']
    # Two pairs of the same origins, the second with the header on; every
    # origin sends its heartbeats to the group both proxies listen on.
    origins = start_origin_pair(sb, lab, 'mp', True, FAIL_WORKERS, lua=True,
                                service_ms=cfg.fail_service_ms)
    origins += start_origin_pair(sb, lab, 'mp-header', True, FAIL_WORKERS, lua=True,
                                 service_ms=cfg.fail_service_ms, port=8081,
                                 extra='HeartbeatResponseHeader on\n')
    conf = (LOAD_PROXY_MPM + STATUS_LOCATION + 'HeartbeatListen %s:%d\n' % OURS_GROUP
            + ''.join(balancer_conf(name, method, (a, b), port, section)
                      for name, (method, port, section) in MP_BALANCERS.items()))
    proxies = []
    for i, ns in enumerate((lab['p1'], lab['p2'])):
        h = sb.httpd('mp-proxy%d' % (i + 1), conf, modules=HB_PROXY, netns=ns,
                     listen=[(ns.ip, 80)])
        h.start()
        proxies.append((h, ns))
    for o in origins:
        o.start()
    want = {a.ip: FAIL_WORKERS[0], b.ip: FAIL_WORKERS[1]}

    def idle(port):
        """Both proxies' tables say that every origin on port is idle."""
        for h, ns in proxies:
            servers = proxy_servers(h, ns, port)
            if any(servers.get(ip, {}).get('ready') != n for ip, n in want.items()):
                return False
        return True
    for h, ns in proxies:
        for name in MP_BALANCERS:
            hbtest.wait_until(lambda: answers_200(h.url('/%s/svc' % name), ns), timeout=30,
                              message='%s through %s' % (name, h.name))
    res = {'workers': FAIL_WORKERS, 'service_ms': cfg.fail_service_ms,
           'clients_per_proxy': cfg.mp_clients, 'settle_s': cfg.mp_settle,
           'window_s': cfg.mp_window, 'date': started, 'load_start': load0,
           'two': {name: [] for name in MP_BALANCERS}, 'one': {name: [] for name in MP_ONE}}
    for rnd in range(cfg.rounds):
        for key, targets, clients, names in (
                ('two', proxies, cfg.mp_clients, MP_BALANCERS),
                ('one', proxies[:1], cfg.mp_clients * len(proxies), MP_ONE)):
            for name in names:
                port = MP_BALANCERS[name][1]
                hbtest.wait_until(lambda: idle(port), timeout=30, interval=0.1,
                                  message='origins reported idle before %s' % name)
                res[key][name].append(closed_loop_phase(targets, name, clients, cfg))
            log('proxies: %s, round %d/%d: p99 ms/req/s/errors %s' % (
                'two proxies' if key == 'two' else 'one proxy', rnd + 1, cfg.rounds,
                ', '.join('%s=%s/%s/%d' % (n, fmt(r[-1]['p99_ms'], 0), fmt(r[-1]['rps'], 1),
                                           r[-1]['errors']) for n, r in res[key].items())))
    for key in ('two', 'one'):
        res[key] = {name: {
            'runs': runs, 'p99_ms': median([r['p99_ms'] for r in runs]),
            'rps': median([r['rps'] for r in runs]),
            'errors': sum(r['errors'] for r in runs),
            'share_b': median([r['share_b'] for r in runs])} for name, runs in res[key].items()}
    res['members'] = {h.name: proxy_status(h, ns).get('members') for h, ns in proxies}
    res['load_end'] = loadavg()
    for h in origins + [h for h, _ in proxies]:
        h.shutdown()
    lab.close()
    return res


# --------------------------------------------------------------------------
# Benchmark 7: dynamic membership (issue 18, HeartbeatJoin)
# --------------------------------------------------------------------------

# The key the proxies and the origins of this section share (HeartbeatSecret
# file, key id), and how the hand-signed heartbeats are signed: as
# test/integration/test_join.py's sign().
JOIN_KEY = b'bench-join-key-0123456789abcdef-xyz'
JOIN_KID = 'site'


def sign_heartbeat(body, key=JOIN_KEY, kid=JOIN_KID):
    """body + "&ts=MS&kid=K&sig=HEX" (HMAC-SHA256 over all before &sig)."""
    body = '%s&ts=%d&kid=%s' % (body, int(time.time() * 1000), kid)
    return (body + '&sig=' + hmac.new(key, body.encode(), hashlib.sha256).hexdigest()).encode()


class JoinFeeder:
    """Plays origins that join: a signed heartbeat for each address of
    `ips` (origin port `port`), sent from that address to 127.0.0.1:hb_port
    every `every` s (int= says so). An origin announces `balancer`
    (join=, addr=) while announcing(ip) is true; set_join() changes that
    and sends at once. seq grows per origin; ready varies as udpgen's."""

    def __init__(self, hb_port, ips, port, balancer, every=1.0, ready=None):
        self.hb_port, self.port, self.balancer, self.every = hb_port, port, balancer, every
        self.ips = list(ips)
        self.ready = ready
        self.join = {ip: True for ip in self.ips}
        self.seq = int(time.time() * 1000)
        self.k = 0
        self.sent = 0
        self.lock = threading.Lock()
        self.socks = {}
        for ip in self.ips:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((ip, 0))
            self.socks[ip] = s
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def beat(self, ip):
        with self.lock:
            self.seq += 1
            self.k += 1
            ready = self.ready if self.ready is not None else 10 + (self.k * 7) % 50
            body = 'v=1&ready=%d&busy=%d&port=%d&seq=%d&int=%d&state=up' % (
                ready, self.k % 5, self.port, self.seq, int(self.every * 1000))
            if self.join[ip]:
                body += '&join=' + self.balancer
            body += '&addr=' + ip
            self.socks[ip].sendto(sign_heartbeat(body), ('127.0.0.1', self.hb_port))
            self.sent += 1

    def set_join(self, ip, on):
        with self.lock:
            self.join[ip] = on
        self.beat(ip)

    def _loop(self):
        while not self._stop.is_set():
            for ip in self.ips:
                self.beat(ip)
            self._stop.wait(self.every)

    def close(self):
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join()
        for s in self.socks.values():
            s.close()


def join_proxy_conf(hb_port, key_path, max_servers=200):
    return ('HeartbeatListen 127.0.0.1:%d\nHeartbeatMaxServers %d\nHeartbeatSecret "%s" %s\n'
            % (hb_port, max_servers, key_path, JOIN_KID)) + STATUS_LOCATION


def join_balancer_conf(name, growth, extra='', section=''):
    """<Proxy balancer://name> with no BalancerMember, HeartbeatJoin on;
    `extra` goes on the ProxySet line, `section` into the section."""
    return ('<Proxy balancer://%s>\n    ProxySet lbmethod=heartbeat growth=%d%s\n'
            '    HeartbeatJoin on\n%s</Proxy>\nProxyPass /%s/ balancer://%s/\n'
            % (name, growth, extra, section, name, name))


def member_list(proxy, balancer):
    """[(member URL, joined mark)] of one balancer on the status page, as
    listed (duplicates kept), and the balancer's counters."""
    st = proxy_status(proxy)
    ms = [(m['member'], m.get('joined')) for m in st.get('members', [])
          if m['balancer'] == 'balancer://' + balancer]
    bal = next((b for b in st.get('balancers', []) if b['balancer'] == 'balancer://' + balancer),
               None)
    return ms, bal


def private_dirty_kb(pids):
    """{pid: (Private_Dirty kB, Rss kB)} from /proc/<pid>/smaps_rollup."""
    out = {}
    for pid in pids:
        try:
            with open('/proc/%d/smaps_rollup' % pid) as f:
                text = f.read()
        except OSError:
            continue
        vals = dict(re.findall(r'^(\w+):\s+(\d+) kB', text, re.M))
        out[pid] = (int(vals.get('Private_Dirty', 0)), int(vals.get('Rss', 0)))
    return out


def wrk_start(url, seconds, conns, close=False):
    """wrk in the background; close: every request on a new connection
    (Connection: close), so that no keep-alive connection can be closed
    under a request."""
    return Procs.start(['wrk', '-t1', '-c%d' % conns, '-d%ds' % seconds, '--timeout', '5s']
                       + (['-H', 'Connection: close'] if close else []) + [url])


def wrk_parse(text):
    """wrk's output -> requests/s, requests, non-2xx/3xx, socket errors by kind."""
    m = WRK_RE.search(text)
    if not m:
        raise RuntimeError('wrk failed: %s' % text)
    n = re.search(r'(\d+) requests in', text)
    non2xx = re.search(r'Non-2xx or 3xx responses:\s+(\d+)', text)
    sock = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', text)
    errors = dict(zip(('connect', 'read', 'write', 'timeout'),
                      (int(x) for x in sock.groups()) if sock else (0, 0, 0, 0)))
    out = {'rps': float(m.group(1)), 'requests': int(n.group(1)) if n else None,
           'non_2xx': int(non2xx.group(1)) if non2xx else 0, 'socket_errors': errors}
    out['failed'] = out['non_2xx'] + sum(errors.values())
    return out


def wrk_with_event(url, cfg, event, close=False):
    """wrk for cfg.mb_wrk_seconds; `event` (a function) runs
    cfg.mb_event_at s into it. -> wrk's numbers and how long the event
    took."""
    proc = wrk_start(url, cfg.mb_wrk_seconds, cfg.wrk_conns, close)
    try:
        time.sleep(cfg.mb_event_at)
        t0 = time.monotonic()
        what = event()
        took = time.monotonic() - t0
        out, err = proc.communicate(timeout=cfg.mb_wrk_seconds + 30)
    finally:
        Procs.stop(proc)
    res = wrk_parse(out + err)
    res['event_s'] = took
    res['event'] = what or {}
    res['close'] = close
    return res


def membership_origin(sb, name, listen, extra='', modules=()):
    """An origin as the request path's: event MPM, keep-alive, f.txt."""
    o = sb.httpd(name, mpm(64, servers=2, start=2) + """
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
AsyncRequestWorkerFactor 8
""" + extra, listen=listen, modules=list(modules))
    o.add_file('f.txt', 'x' * 127 + '\n')
    return o


PROXY_KEEPALIVE = """
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
"""


def bench_membership(sb, cfg, bins):
    log('membership: 64 origins joined by their signed heartbeats against 64 static members')
    started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    res = {'date': started, 'load_start': loadavg()}
    members = ['127.0.1.%d' % (m + 1) for m in range(64)]
    port = hbtest.port_free_on(members)
    origins = [membership_origin(sb, 'mb-origin%d' % k,
                                 [(ip, port) for m, ip in enumerate(members) if m % 3 == k])
               for k in range(3)]
    for o in origins:
        o.start()
    try:
        res['request_path'] = membership_request_path(sb, cfg, members, port)
        res['cycles'] = membership_cycles(sb, cfg, members[:cfg.mb_origins], port)
    finally:
        for o in origins:
            o.shutdown()
    res['stop_restart'] = membership_stop_restart(sb, cfg)
    res['load_end'] = loadavg()
    return res


def membership_request_path(sb, cfg, members, port):
    """Row 1: wrk through jn64 (64 joined members) and br64 (the same 64 as
    static byrequests members) in one proxy, alternating."""
    hb_port = hbtest.free_port(kind='udp')
    lines = '\n'.join('    BalancerMember http://%s:%d' % (ip, port) for ip in members)
    proxy = sb.httpd('mb-rp-proxy', modules=HB_PROXY)
    key = hbtest.write_key(proxy, 'site.key', JOIN_KEY)
    proxy.conf_body = (mpm(32, servers=2, start=2) + PROXY_KEEPALIVE
                       + join_proxy_conf(hb_port, key)
                       + join_balancer_conf('jn64', len(members))
                       + '<Proxy balancer://br64>\n%s\n    ProxySet lbmethod=byrequests\n'
                       '</Proxy>\nProxyPass /br64/ balancer://br64/\n' % lines)
    proxy.start()
    feeder = JoinFeeder(hb_port, members, port, 'jn64', every=1.0).start()
    try:
        t0 = time.monotonic()
        want = {'http://%s:%d' % (ip, port) for ip in members}

        def all_joined():
            ms, _ = member_list(proxy, 'jn64')
            return {u for u, j in ms if j == 'joined'} == want
        hbtest.wait_until(all_joined, timeout=20, interval=0.1,
                          message=lambda: '64 joined members: %r' % (member_list(proxy, 'jn64'),))
        joined_s = time.monotonic() - t0
        for path in ('/jn64/f.txt', '/br64/f.txt'):
            hbtest.wait_until(lambda: answers_200(proxy.url(path)), timeout=30,
                              message='%s through the proxy' % path)
            subprocess.run(['wrk', '-t1', '-c%d' % cfg.wrk_conns, '-d1s', proxy.url(path)],
                           capture_output=True, timeout=30)
        runs = ab_rounds([('br64', '/br64/f.txt'), ('jn64', '/jn64/f.txt')], cfg.rounds_rp,
                         lambda path: run_wrk(proxy.url(path), cfg), 'membership: request path')
        out = summarise_pair(runs['br64'], runs['jn64'])
        ms, bal = member_list(proxy, 'jn64')
        out.update({'members': len(ms), 'joined_members': sum(1 for _, j in ms if j == 'joined'),
                    'all_joined_s': joined_s, 'balancer': bal,
                    'heartbeats_sent': feeder.sent, 'members_port': port,
                    'wrk_command': 'wrk -t1 -c%d -d%ds --timeout 5s '
                    'http://127.0.0.1:PORT/<balancer>/f.txt' % (cfg.wrk_conns, cfg.wrk_seconds)})
    finally:
        feeder.close()
        proxy.shutdown()
    return out


class RequestLoop:
    """`clients` threads each sending GET url, pausing `pause` s between
    answers; every request is recorded as (start, end, status or
    'error')."""

    def __init__(self, url, clients=2, pause=0.01):
        self.url, self.pause = url, pause
        self.records = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True)
                        for _ in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _client(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                outcome = hbtest.get(self.url, timeout=10).status
            except (OSError, http.client.HTTPException):
                outcome = 'error'
            with self.lock:
                self.records.append((t0, time.monotonic(), outcome))
            self._stop.wait(self.pause)

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(timeout=15)


LB_SLOT_RE = re.compile(r'LB0315: (\S+) joined balancer://(\S+) \(slot (\d+)')
LB_AGAIN_RE = re.compile(r'LB0319: (\S+) joined balancer://(\S+) again \(its slot (\d+)\)')


def membership_cycles(sb, cfg, ips, port):
    """Row 2: the origins at `ips` join and leave balancer cyc (growth
    cfg.mb_slots) over and over, all at once, until cfg.mb_cycles cycles
    in all: each announces until it is a joined member (status page), then
    sends heartbeats without join= until it is disabled (left), and so on.
    Meanwhile requests go through the balancer, and the status page is
    polled for what the balancer lists."""
    log('membership: %d join/leave cycles of %d origins over %d slots'
        % (cfg.mb_cycles, len(ips), cfg.mb_slots))
    hb_port = hbtest.free_port(kind='udp')
    proxy = sb.httpd('mb-cycle-proxy', modules=HB_PROXY,
                     log_level_extra='lbmethod_heartbeat:info')
    key = hbtest.write_key(proxy, 'site.key', JOIN_KEY)
    proxy.conf_body = (mpm(32, servers=2, start=2) + PROXY_KEEPALIVE
                       + join_proxy_conf(hb_port, key, max_servers=64)
                       + join_balancer_conf('cyc', cfg.mb_slots))
    proxy.start()
    urls = {ip: 'http://%s:%d' % (ip, port) for ip in ips}
    feeder = JoinFeeder(hb_port, ips, port, 'cyc', every=0.2, ready=10).start()
    loop = None
    try:
        def joined():
            ms, _ = member_list(proxy, 'cyc')
            return sum(1 for _, j in ms if j == 'joined') == len(ips)
        hbtest.wait_until(joined, timeout=20, interval=0.1, message=lambda: 'all %d joined: %r'
                          % (len(ips), member_list(proxy, 'cyc')))
        # Warm every worker thread of the children (their allocators keep
        # what a request freed) before the first memory sample.
        subprocess.run(['wrk', '-t1', '-c%d' % (2 * cfg.wrk_conns), '-d2s',
                        proxy.url('/cyc/f.txt')], capture_output=True, timeout=30)
        loop = RequestLoop(proxy.url('/cyc/f.txt'), clients=cfg.mb_clients).start()
        time.sleep(1)
        children0 = sorted(proxy.children())
        mem0 = private_dirty_kb(children0)
        phase = {ip: 'join' for ip in ips}
        cycles = {ip: 0 for ip in ips}
        polls = []  # (time, listed, joined)
        mem = [(0, sum(v[0] for v in mem0.values()))]  # (cycles, Private_Dirty kB)
        worst = {'listed': 0, 'distinct': 0, 'duplicates': 0, 'strangers': set()}
        t0 = time.monotonic()
        deadline = t0 + cfg.mb_cycle_timeout
        while sum(cycles.values()) < cfg.mb_cycles and time.monotonic() < deadline:
            ms, _ = member_list(proxy, 'cyc')
            now = time.monotonic()
            listed = [u for u, _ in ms]
            marks = dict(ms)
            n_joined = sum(1 for _, j in ms if j == 'joined')
            polls.append((now, len(listed), n_joined))
            worst['listed'] = max(worst['listed'], len(listed))
            worst['distinct'] = max(worst['distinct'], len(set(listed)))
            worst['duplicates'] = max(worst['duplicates'], len(listed) - len(set(listed)))
            worst['strangers'] |= set(listed) - set(urls.values())
            # An origin leaves only while another one announces and is a
            # member: one always is, so requests always have somewhere to
            # go (otherwise the origins fall into step with the sweep and
            # all leave at once).
            holders = sum(1 for ip in ips if phase[ip] == 'join'
                          and marks.get(urls[ip]) == 'joined')
            # The origin with the fewest cycles goes first: every one takes
            # its turn at holding.
            for ip in sorted(ips, key=lambda x: cycles[x]):
                mark = marks.get(urls[ip])
                if phase[ip] == 'join' and mark == 'joined' and holders > 1:
                    phase[ip] = 'leave'
                    holders -= 1
                    feeder.set_join(ip, False)
                elif phase[ip] == 'leave' and mark == 'left':
                    cycles[ip] += 1
                    done = sum(cycles.values())
                    if done % max(1, cfg.mb_cycles // 10) == 0:
                        mem.append((done, sum(v[0] for v in
                                              private_dirty_kb(proxy.children()).values())))
                    if done >= cfg.mb_cycles:
                        break
                    phase[ip] = 'join'
                    feeder.set_join(ip, True)
            time.sleep(0.03)
        elapsed = time.monotonic() - t0
        # Everyone announces again, as at the start: the same state as the
        # first memory sample.
        for ip in ips:
            feeder.set_join(ip, True)
        hbtest.wait_until(joined, timeout=10, interval=0.1,
                          message=lambda: 'all joined again: %r' % (member_list(proxy, 'cyc'),))
        time.sleep(1)
        loop.stop()
        children1 = sorted(proxy.children())
        mem1 = private_dirty_kb(children1)
        ms, bal = member_list(proxy, 'cyc')
    finally:
        if loop:
            loop.stop()
        feeder.close()
    alive = proxy.running
    text = proxy.error_log()
    proxy.shutdown()
    # The slot each origin was given (LB0315) and took again (LB0319): one
    # address per slot, each address in one slot.
    slot_urls, url_slots = {}, {}
    for m in list(LB_SLOT_RE.finditer(text)) + list(LB_AGAIN_RE.finditer(text)):
        if m.group(2) != 'cyc':
            continue
        slot_urls.setdefault(int(m.group(3)), set()).add(m.group(1))
        url_slots.setdefault(m.group(1), set()).add(int(m.group(3)))
    pd0 = sum(v[0] for v in mem0.values())
    pd1 = sum(v[0] for v in mem1.values())
    rss0 = sum(v[1] for v in mem0.values())
    rss1 = sum(v[1] for v in mem1.values())
    recs = loop.records
    t_end = t0 + elapsed
    during = [r for r in recs if t0 <= r[0] < t_end]
    failed = [r for r in during if not ok_status(r[2])]

    def joined_at(t):
        """Joined members in the last poll before t (None before the first)."""
        before = [p for p in polls if p[0] <= t]
        return before[-1][2] if before else None
    failed_up = [r for r in failed if (joined_at(r[0]) or 0) > 0 and (joined_at(r[1]) or 0) > 0]
    by = {}
    for r in failed:
        by[str(r[2])] = by.get(str(r[2]), 0) + 1
    crash = [line for line in text.splitlines()
             if re.search(r'exit signal|Segmentation|AddressSanitizer', line)]
    return {
        'origins': len(ips), 'slots': cfg.mb_slots, 'cycles': sum(cycles.values()),
        'cycles_wanted': cfg.mb_cycles, 'cycles_by_origin': cycles, 'seconds': elapsed,
        'polls': len(polls), 'max_listed': worst['listed'], 'max_distinct': worst['distinct'],
        'max_duplicates': worst['duplicates'], 'strangers': sorted(worst['strangers']),
        'min_joined': min((p[2] for p in polls), default=None),
        'polls_none_joined': sum(1 for p in polls if p[2] == 0),
        'slot_urls': {str(k): sorted(v) for k, v in sorted(slot_urls.items())},
        'url_slots': {k: sorted(v) for k, v in sorted(url_slots.items())},
        'slots_shared': sum(1 for v in slot_urls.values() if len(v) > 1)
        + sum(1 for v in url_slots.values() if len(v) > 1),
        'lb0315': len(LB_SLOT_RE.findall(text)), 'lb0319': len(LB_AGAIN_RE.findall(text)),
        'lb0317': len(re.findall(r'LB0317:', text)),
        'balancer': bal, 'members_end': ms,
        'parent_alive': alive, 'children_before': children0, 'children_after': children1,
        'children_same': children0 == children1, 'crash_lines': crash[:10],
        'private_dirty_kb_before': pd0, 'private_dirty_kb_after': pd1,
        'rss_kb_before': rss0, 'rss_kb_after': rss1,
        'private_dirty_growth_kb': pd1 - pd0,
        'private_dirty_growth_pct': 100.0 * (pd1 - pd0) / pd0 if pd0 else None,
        'requests': len(during), 'requests_failed': len(failed),
        'requests_failed_with_member_up': len(failed_up), 'failed_by': by,
        'heartbeats_sent': feeder.sent, 'private_dirty_by_cycles': mem, 'clients': cfg.mb_clients,
        'mem_children': {str(p): [mem0.get(p), mem1.get(p)] for p in children0},
    }


# Rows 3 and 4: the balancers the real origins join, each as the brief of
# issue 18 sets it up (lbmethod=heartbeat growth=8, HeartbeatJoin on):
# rs takes the proxy's graceful restarts; gs the origins' graceful stops,
# gd their drain (hbctl) then graceful stop, as docs/deployment.md advises.
# gs and gd give their members retry=1 (HeartbeatJoinMember): a member
# whose connection failed stays in error for mod_proxy's retry, 60 s by
# default, which would carry one stop's failures into the next.
MB_JOIN_RETRY = '    HeartbeatJoinMember retry=1\n'
MB_STOP_BALANCERS = (('rs', ''), ('gs', MB_JOIN_RETRY), ('gd', MB_JOIN_RETRY))
HBCTL = os.path.join(SRC, 'tools', 'hbctl')


def membership_stop_restart(sb, cfg):
    """Rows 3 and 4: three real origins with mod_heartbeat (HeartbeatBalancer
    for every balancer of MB_STOP_BALANCERS) joined. wrk through the proxy
    while the proxy restarts gracefully (SIGUSR1), joined members against
    the same origins as static byrequests members, with keep-alive and
    with a connection per request; then wrk while one origin stops
    gracefully (SIGWINCH), alone or after hbctl drain."""
    ips = ['127.0.4.%d' % (k + 1) for k in range(3)]
    port = hbtest.port_free_on(ips)
    hb_port = hbtest.free_port(kind='udp')
    proxy = sb.httpd('mb-sr-proxy', modules=HB_PROXY, log_level_extra='lbmethod_heartbeat:info')
    key = hbtest.write_key(proxy, 'site.key', JOIN_KEY)
    lines = '\n'.join('    BalancerMember http://%s:%d' % (ip, port) for ip in ips)
    # Two children of 32 threads, and room for two more: after a graceful
    # restart the new generation starts its two while the old one finishes
    # (with ServerLimit 2 it would run on one child until an old one exits,
    # and that child, all its workers busy, closes keep-alive connections).
    proxy.conf_body = (mpm(32, servers=4, start=2) + PROXY_KEEPALIVE
                       + join_proxy_conf(hb_port, key, max_servers=64)
                       + ''.join(join_balancer_conf(name, 8, section=section)
                                 for name, section in MB_STOP_BALANCERS)
                       + '<Proxy balancer://static>\n%s\n    ProxySet lbmethod=byrequests\n'
                       '</Proxy>\nProxyPass /static/ balancer://static/\n' % lines)
    origins = []
    for k, ip in enumerate(ips):
        o = membership_origin(sb, 'mb-sr-origin%d' % k, [(ip, port)], modules=['heartbeat'])
        okey = hbtest.write_key(o, 'site.key', JOIN_KEY)
        o.state_file = os.path.join(o.run_dir, 'heartbeat.state')
        o.conf_body += ('HeartbeatAddress 127.0.0.1:%d\nHeartbeatSource %s\n'
                        'HeartbeatSecret "%s" %s\nHeartbeatInterval %s\nHeartbeatStateFile %s\n'
                        % (hb_port, ip, okey, JOIN_KID, cfg.mb_interval, o.state_file)
                        + ''.join('HeartbeatBalancer %s\n' % name
                                  for name, _ in MB_STOP_BALANCERS))
        origins.append(o)
    for h in (origins[0], proxy):
        rc, out = h.config_test()
        if rc != 0:
            # Rows 1 and 2 need none of this: these are reported as not
            # measured.
            log('membership: %s: configuration refused: %s' % (h.name, out.strip()[-300:]))
            return {'error': '`httpd -t` refuses the %s configuration (HeartbeatBalancer,'
                    ' HeartbeatStateFile, HeartbeatJoinMember built?): %s'
                    % ('origins\'' if h is not proxy else 'proxy\'s', out.strip()[-300:])}
    urls = {ip: 'http://%s:%d' % (ip, port) for ip in ips}
    proxy.start()
    for o in origins:
        o.start()

    def serving(ip):
        e = proxy_servers(proxy, port=port).get(ip)
        st = proxy_status(proxy)
        ms = {(m['balancer'], m['member'], m.get('joined')) for m in st.get('members', [])}
        return (e is not None and e['state'] == 'up'
                and all(('balancer://' + name, urls[ip], 'joined') in ms
                        for name, _ in MB_STOP_BALANCERS))
    interval = float(cfg.mb_interval[:-2]) / 1000 if cfg.mb_interval.endswith('ms') \
        else float(cfg.mb_interval.rstrip('s'))
    res = {'interval': cfg.mb_interval, 'wrk_seconds': cfg.mb_wrk_seconds,
           'event_at_s': cfg.mb_event_at, 'balancers': dict(MB_STOP_BALANCERS),
           'wrk_conns': cfg.wrk_conns, 'graceful_stop': [], 'restart': {}}
    try:
        t0 = time.monotonic()
        hbtest.wait_until(lambda: all(serving(ip) for ip in ips), timeout=20, interval=0.1,
                          message=lambda: 'real origins joined: %r' % (proxy_status(proxy),))
        res['joined_s'] = time.monotonic() - t0
        for path in ('/rs/f.txt', '/static/f.txt'):
            subprocess.run(['wrk', '-t1', '-c%d' % cfg.wrk_conns, '-d1s', proxy.url(path)],
                           capture_output=True, timeout=30)
        log('membership: proxy graceful restart under wrk (%d rounds: joined and static'
            ' members, keep-alive and a connection per request)' % cfg.rounds)
        variants = (('static', '/static/f.txt', False), ('joined', '/rs/f.txt', False),
                    ('static-close', '/static/f.txt', True),
                    ('joined-close', '/rs/f.txt', True))
        res['restart'] = {name: [] for name, _, _ in variants}

        def restart():
            """A graceful restart; -> the children before and after."""
            old = sorted(proxy.children())
            proxy.graceful_restart()
            return {'old_children': old, 'new_children': sorted(proxy.children())}
        for rnd in range(cfg.rounds):
            for name, path, close in variants:
                r = wrk_with_event(proxy.url(path), cfg, restart, close)
                ms, _ = member_list(proxy, 'rs')
                r['members_after'] = sum(1 for _, j in ms if j == 'joined')
                res['restart'][name].append(r)
            log('membership: graceful restart %d/%d: failed %s' % (
                rnd + 1, cfg.rounds, ', '.join('%s %d of %d' % (
                    n, res['restart'][n][-1]['failed'], res['restart'][n][-1]['requests'])
                    for n, _, _ in variants)))

        log('membership: graceful stop of a joined origin under wrk (%d rounds: alone, and'
            ' after hbctl drain)' % cfg.rounds)
        k = 0
        for rnd in range(cfg.rounds):
            for name, drain in (('gs', False), ('gd', True)):
                o, ip = origins[k % len(origins)], ips[k % len(ips)]
                k += 1

                def not_up(states):
                    e = proxy_servers(proxy, port=port).get(ip)
                    return e is None or e['state'] in states

                def stop():
                    """[hbctl drain, until the proxy's table says so, and two
                    intervals more,] SIGWINCH to the origin; -> how long until
                    the table said drain (from hbctl's return), and stopping
                    (from the signal: its state=stopping heartbeat), and until
                    the origin had exited."""
                    out = {}
                    if drain:
                        subprocess.run([HBCTL, 'drain', o.state_file], check=True,
                                       capture_output=True, timeout=30)
                        t_ev = time.monotonic()  # the file says drain
                        hbtest.wait_until(lambda: not_up(('drain',)), timeout=5, interval=0.002,
                                          message='%s drained in the proxy\'s table' % ip)
                        out['drain_seen_s'] = time.monotonic() - t_ev
                        time.sleep(2 * interval)
                    t_sig = time.monotonic()
                    th = threading.Thread(target=o.graceful_stop)
                    th.start()
                    seen = None
                    while seen is None and time.monotonic() - t_sig < 5:
                        if not_up(('stopping',)):
                            seen = time.monotonic() - t_sig
                        else:
                            time.sleep(0.002)
                    th.join()
                    out.update({'stopping_seen_s': seen, 'exited_s': time.monotonic() - t_sig})
                    return out
                r = wrk_with_event(proxy.url('/%s/f.txt' % name), cfg, stop)
                r.update({'origin': ip, 'balancer': name, 'drain': drain})
                if drain:
                    subprocess.run([HBCTL, 'undrain', o.state_file], check=True,
                                   capture_output=True, timeout=30)
                o.start()
                t1 = time.monotonic()
                hbtest.wait_until(lambda: serving(ip), timeout=20, interval=0.05,
                                  message=lambda: '%s joined again: %r'
                                  % (ip, proxy_status(proxy)))
                r['back_s'] = time.monotonic() - t1
                res['graceful_stop'].append(r)
                ev = r['event']
                log('membership: %sgraceful stop of %s (%s): %d failed of %d (non-2xx %d, %s);'
                    ' the proxy saw it %sstopping after %s ms' % (
                        'drain, then ' if drain else '', ip, name, r['failed'], r['requests'],
                        r['non_2xx'], r['socket_errors'],
                        'drain after %s ms, ' % fmt(ev['drain_seen_s'] * 1000, 0)
                        if drain else '',
                        fmt(ev['stopping_seen_s'] * 1000 if ev.get('stopping_seen_s')
                            is not None else None, 0)))
        res['members_end'] = member_list(proxy, 'rs')[0]
    finally:
        for o in origins:
            if o.running:
                o.shutdown()
        proxy.shutdown()
    for name, runs in res['restart'].items():
        res['restart_%s_failed' % name] = sum(r['failed'] for r in runs)
    for which, drain in (('alone', False), ('drain', True)):
        runs = [r for r in res['graceful_stop'] if r['drain'] == drain]
        res['graceful_stop_%s_failed' % which] = sum(r['failed'] for r in runs)
    log_text = proxy.error_log()
    # What the proxy logged: joins, AH01102 (a request on a backend
    # connection the origin reset or closed: error reading the status line),
    # AH00957/AH01114 (connect refused), AH00959 (member put in error for
    # retry), LB0304/AH01170 (no member to pick: 503).
    res['proxy_log'] = {k: len(re.findall(k, log_text))
                        for k in ('LB0315', 'LB0317', 'LB0319', 'LB0304', 'AH01170', 'AH01102',
                                  'AH00957', 'AH01114', 'AH00959')}
    res['proxy_log_errors'] = [line for line in log_text.splitlines()
                               if re.search(r':(error|crit|alert|emerg)\]', line)][:20]
    # Requests no member could take (503): which process, and why.
    res['proxy_log_503'] = [line for line in log_text.splitlines()
                            if re.search(r'LB0304|AH01170', line)][:20]
    return res


# --------------------------------------------------------------------------
# After a benchmark
# --------------------------------------------------------------------------

def stop_leftovers(sb):
    """After a benchmark failed: stop its servers, helpers and namespaces so
    that they do not load the machine while the next one measures."""
    Procs.stop_all()
    for h in sb.httpds:
        if h.running:
            try:
                h.shutdown()
            except (hbtest.HarnessError, OSError) as exc:
                log('cleanup: %s' % exc)
    for lab in sb.labs:
        try:
            lab.close()
        except (hbtest.HarnessError, OSError) as exc:
            log('cleanup: %s' % exc)


def crash_lines(sb):
    """Error-log lines of every httpd the benchmark ran that say a process
    crashed: a benchmark that crashes a module must say so."""
    bad = re.compile(r'exit signal|Segmentation fault|AddressSanitizer|runtime error:')
    out = []
    for h in sb.httpds:
        for line in h.error_log().splitlines():
            if bad.search(line):
                out.append('%s: %s' % (h.name, line))
    return out[:50]


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--bin-dir', default=os.environ.get('HB_BENCH_BIN')
                    or os.path.join(hbtest.build_dir(), 'bench'),
                    help='where pick_bench, udpgen and openloop were built')
    ap.add_argument('--out-md', default=os.path.join(SRC, 'docs', 'PERFORMANCE.md'))
    ap.add_argument('--out-dir', default=os.path.join(SRC, 'bench', 'results'))
    ap.add_argument('--only',
                    default='request_path,micro,ingest,freshness,quality,failure,proxies,'
                    'membership',
                    help='comma-separated subset')
    ap.add_argument('--rounds', type=int, default=3, help='rounds per comparison (>= 3)')
    ap.add_argument('--quick', action='store_true', help='short runs, for trying the script')
    ap.add_argument('--san', default='', help='sanitizer flags the build used (recorded)')
    ap.add_argument('--merge-into', metavar='JSON',
                    help='put the benchmarks measured now (--only) into the results of an'
                         ' earlier run, in place of its own, and report on the whole')
    ap.add_argument('--report-from', metavar='JSON',
                    help='only rewrite the report from the results of an earlier run')
    cfg = ap.parse_args(argv)
    if cfg.rounds < 3 and not cfg.quick:
        ap.error('--rounds must be at least 3')
    cfg.only = set(cfg.only.split(','))
    # wrk runs are short and the ratio targets are tight: more rounds for ours;
    # the stock comparison has no target and keeps the common count.
    cfg.rounds_rp = max(cfg.rounds, 7)
    cfg.wrk_seconds = 3
    cfg.wrk_conns = 32
    cfg.ingest_rates = [10000, 50000, 100000, 200000]
    cfg.ingest_seconds = 2
    cfg.ingest_min_packets = 60000
    cfg.probe_interval = 0.025
    cfg.settle_probes = 40
    cfg.fresh_timeout = 15
    cfg.fresh_trials_per_round = 2
    cfg.load_fraction = 0.8
    cfg.quality_seconds = 5
    # failure: origins of 8 and 32 workers, 400 ms per request, 36 clients
    # in a closed loop (cold start, slow start), open loop for the black
    # hole; windows in seconds from the proxy's start or the origin's return.
    cfg.fail_service_ms = 400
    cfg.fail_clients = 36
    cfg.cold_first = 3
    cfg.cold_steady = (10, 11.5)
    cfg.first_down = 1.5  # first start of a new proxy: stopped this long before
    cfg.bh_rate = 50
    cfg.bh_seconds = 4
    cfg.ss_ramps = (0, 2, 5)
    cfg.ss_settle = 1
    cfg.ss_steady = 1.5
    cfg.ss_window = 5
    cfg.ss_tail = 1.5
    # proxies (issue 17): the failure section's origins, cfg.mp_clients
    # closed-loop clients on each of two proxies (all of them on one for the
    # one-proxy rows); measured from mp_settle s for mp_window s.
    cfg.mp_clients = 18
    cfg.mp_settle = 1.5
    cfg.mp_window = 4
    # membership (issue 18): 8 origins joining and leaving 16 slots until
    # mb_cycles cycles in all (at most mb_cycle_timeout s), mb_clients
    # clients sending requests meanwhile; real origins (HeartbeatInterval
    # mb_interval) stopped, or the proxy restarted, mb_event_at s into a
    # wrk run of mb_wrk_seconds.
    cfg.mb_origins = 8
    cfg.mb_slots = 16
    cfg.mb_cycles = 1000
    cfg.mb_cycle_timeout = 240
    cfg.mb_clients = 2
    cfg.mb_interval = '250ms'
    cfg.mb_wrk_seconds = 4
    cfg.mb_event_at = 1.5
    if cfg.quick:
        cfg.rounds_rp = cfg.rounds
        cfg.wrk_seconds = 1
        cfg.ingest_rates = [10000, 200000]
        cfg.ingest_seconds = 1
        cfg.ingest_min_packets = 0
        cfg.fresh_trials_per_round = 1
        cfg.quality_seconds = 3
        cfg.cold_steady = (6, 8)
        cfg.bh_seconds = 3
        cfg.mp_window = 3
        cfg.mb_cycles = 200
        cfg.mb_wrk_seconds = 3
    return cfg


def check_tools(cfg):
    missing = [t for t in ('wrk', 'ip') if not shutil.which(t)]
    for prog in ('pick_bench', 'udpgen', 'openloop'):
        if not os.access(os.path.join(cfg.bin_dir, prog), os.X_OK):
            missing.append(os.path.join(cfg.bin_dir, prog) + ' (run make bench)')
    for mod in hbtest.OUR_MODULES:
        if not os.path.exists(hbtest.our_module_path(mod)):
            missing.append(hbtest.our_module_path(mod) + ' (run make)')
    if missing:
        sys.exit('bench: missing: %s (bench/deps.sh installs the packages)' % ', '.join(missing))
    if os.geteuid() != 0:
        sys.exit('bench: must run as root (network namespaces, www-data children)')
    reason = hbtest.netns_unavailable_reason()
    if reason:
        sys.exit('bench: %s' % reason)


def merge_results(path, new):
    """The results of an earlier run (JSON at path) with the benchmarks just
    measured in place of its own, and when and where they were measured
    (meta.remeasured) for the report's head."""
    with open(path) as f:
        merged = json.load(f)
    names = [n for n in new if n not in ('meta', 'failures', 'crashes', 'config', 'notes')]
    for name in names:
        merged[name] = new[name]
    failures = merged.setdefault('failures', {})
    for name in names + list(new['failures']):
        failures.pop(name, None)
    failures.update(new['failures'])
    merged['crashes'] = merged.get('crashes', []) + new['crashes']
    meta = new['meta']
    merged['meta'].setdefault('remeasured', []).append({
        'benchmarks': sorted(names + list(new['failures'])), 'date': meta['date'],
        'commit': meta['commit'], 'load_start': meta['load_start'],
        'load_end': meta['load_end'], 'total_seconds': meta['total_seconds'],
        'from': os.path.basename(path)})
    return merged


# Settings the report needs, kept with the results so that --report-from
# renders an old run as it was measured.
REPORT_SETTINGS = ('rounds', 'rounds_rp', 'wrk_seconds', 'wrk_conns', 'ingest_rates',
                   'ingest_seconds', 'ingest_min_packets', 'probe_interval', 'quality_seconds', 'load_fraction')


def main(argv=None):
    cfg = parse_args(argv if argv is not None else sys.argv[1:])
    if cfg.report_from:
        with open(cfg.report_from) as f:
            results = json.load(f)
        for k, v in results.get('config', {}).items():
            setattr(cfg, k, v)
        results['notes'] = analysis_notes(results, cfg)
        write_report(results, cfg, cfg.out_md)
        log('wrote %s from %s' % (cfg.out_md, cfg.report_from))
        return 0
    check_tools(cfg)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, hbtest.raise_interrupt)
    results = {'meta': machine_info()}
    results['meta'].update({
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'load_start': loadavg(), 'quick': cfg.quick, 'rounds': cfg.rounds,
        'sanitizers': cfg.san or None,
    })
    if cfg.san:
        log('WARNING: the modules are built with sanitizers (%s): numbers are not'
            ' representative' % cfg.san)
    run = hbtest.TestRun.current()
    results['failures'] = {}
    benches = [('micro', lambda sb: bench_micro(cfg.bin_dir)),
               ('request_path', lambda sb: bench_request_path(sb, cfg, cfg.bin_dir)),
               ('ingest', lambda sb: bench_ingest(sb, cfg, cfg.bin_dir)),
               ('freshness', lambda sb: bench_freshness(sb, cfg)),
               ('quality', lambda sb: bench_quality(sb, cfg, cfg.bin_dir)),
               ('failure', lambda sb: bench_failure(sb, cfg, cfg.bin_dir)),
               ('proxies', lambda sb: bench_proxies(sb, cfg)),
               ('membership', lambda sb: bench_membership(sb, cfg, cfg.bin_dir))]
    try:
        with hbtest.Sandbox('bench', run=run) as sb:
            for name, bench in benches:
                if name not in cfg.only:
                    continue
                # One benchmark failing (a server that would not start, a
                # timeout on a loaded machine) must not waste the others:
                # record it, stop what it left running, go on, and fail at
                # the end.
                try:
                    results[name] = bench(sb)
                except Exception as exc:  # noqa: BLE001 - reported, then fatal
                    log('%s FAILED: %s' % (name, traceback.format_exc()))
                    results['failures'][name] = '%s: %s' % (type(exc).__name__, exc)
                    stop_leftovers(sb)
            results['crashes'] = crash_lines(sb)
            if results['failures']:
                # Keep the servers' trees for a look (path printed at exit).
                sb.close(raise_errors=False)
                sb.finish(failed=True)
    finally:
        Procs.stop_all()
        run.finish(failed=bool(results['failures']))
    results['config'] = {k: getattr(cfg, k) for k in REPORT_SETTINGS}
    results['meta']['load_end'] = loadavg()
    results['meta']['total_seconds'] = time.monotonic() - T_START
    if cfg.merge_into:
        results = merge_results(cfg.merge_into, results)
    results['notes'] = analysis_notes(results, cfg)
    os.makedirs(cfg.out_dir, exist_ok=True)
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    json_path = os.path.join(cfg.out_dir, 'bench-%s%s.json'
                             % (stamp, '-merged' if cfg.merge_into else ''))
    # Named relative to the tree the report goes into (docs/..).
    root = os.path.dirname(os.path.dirname(os.path.abspath(cfg.out_md)))
    results['meta']['json_relpath'] = os.path.relpath(json_path, root)
    with open(json_path, 'w') as f:
        json.dump(results, f, indent=1, sort_keys=True)
    shutil.copyfile(json_path, os.path.join(cfg.out_dir, 'latest.json'))
    write_report(results, cfg, cfg.out_md)
    log('wrote %s and %s (%.1f minutes)' % (cfg.out_md, json_path,
                                            (time.monotonic() - T_START) / 60))
    if results['failures']:
        log('failed: %s' % ', '.join(sorted(results['failures'])))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
