#!/usr/bin/python3
"""Demo of the heartbeat suite on loopback.

Three origins with 2, 4 and 8 workers send heartbeats to a proxy whose
balancer uses lbmethod=heartbeat. Each origin answers /work after 200 ms
(a CGI script), so the load builds up real in-flight requests. The client
keeps 10 requests in flight; every second the demo prints the monitor's
table and how many requests each origin served.

Stops on Ctrl-C (or after --duration seconds) and leaves nothing running.
"""

import argparse
import collections
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test',
                                'harness'))
import hbtest  # noqa: E402

ORIGINS = [('small', 2), ('medium', 4), ('large', 8)]
CONCURRENCY = 10
SERVICE_TIME = 0.2

CGI = """#!/bin/sh
sleep %s
printf 'Content-Type: text/plain\\r\\n\\r\\n%%s\\n' "%s"
"""


def origin_conf(hb_port, workers):
    return """
HeartbeatAddress 127.0.0.1:%d
HeartbeatInterval 200ms
StartServers 1
ServerLimit 1
ThreadsPerChild %d
MaxRequestWorkers %d
MinSpareThreads 1
MaxSpareThreads %d
ScriptSock cgisock
<Location /work>
    SetHandler cgi-script
    Options +ExecCGI
</Location>
""" % (hb_port, workers, workers, workers)


def proxy_conf(hb_port, origins):
    # A busy event-MPM origin closes idle keep-alive connections, which a
    # pooled backend connection would hit as a failed request: fresh
    # connections keep the demo's counts about balancing alone.
    members = '\n'.join('    BalancerMember http://127.0.0.1:%d disablereuse=on' % o.port
                        for o in origins)
    return """
HeartbeatListen 127.0.0.1:%d
HeartbeatMaxServers 16
<Location /heartbeat-status>
    SetHandler heartbeat-status
</Location>
<Proxy balancer://demo>
%s
    ProxySet lbmethod=heartbeat
</Proxy>
ProxyPass /app balancer://demo
""" % (hb_port, members)


class Load:
    """CONCURRENCY client threads, each sending one request after another."""

    def __init__(self, url):
        self.url = url
        self.counts = collections.Counter()
        self.errors = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.loop, daemon=True)
                        for _ in range(CONCURRENCY)]

    def start(self):
        for t in self.threads:
            t.start()

    def loop(self):
        while not self.stop.is_set():
            try:
                r = hbtest.get(self.url, timeout=5)
                who = r.body.decode().strip() if r.status == 200 else None
            except OSError:
                who = None
            with self.lock:
                if who:
                    self.counts[who] += 1
                else:
                    self.errors += 1

    def snapshot(self):
        with self.lock:
            return dict(self.counts), self.errors

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)


def show(proxy, origins, load, started):
    data = json.loads(proxy.get('/heartbeat-status?json').body.decode())
    by_port = {s['port']: s for s in data['servers']}
    counts, errors = load.snapshot()
    total = sum(counts.values()) or 1
    lines = ['', 'heartbeat demo, %.0fs: proxy http://127.0.0.1:%d/app  status '
             'http://127.0.0.1:%d/heartbeat-status' % (time.time() - started, proxy.port,
                                                       proxy.port),
             '%-8s %6s %8s %6s %6s %7s %9s %6s' % ('origin', 'port', 'workers', 'ready', 'busy',
                                                  'age_ms', 'requests', 'share')]
    for (name, workers), o in zip(ORIGINS, origins):
        s = by_port.get(o.port, {})
        n = counts.get(name, 0)
        lines.append('%-8s %6d %8d %6s %6s %7s %9d %5.0f%%' % (
            name, o.port, workers, s.get('ready', '-'), s.get('busy', '-'),
            s.get('age_ms', '-'), n, 100.0 * n / total))
    lines.append('failed requests: %d   packets accepted: %d' % (
        errors, data['counters']['accepted']))
    print('\n'.join(lines), flush=True)
    return counts, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--duration', type=float, default=0,
                    help='stop after this many seconds (default: run until Ctrl-C)')
    args = ap.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    sandbox = hbtest.Sandbox('demo')
    load = None
    ok = False
    try:
        hb_port = hbtest.free_port(kind='udp')
        origins = []
        for name, workers in ORIGINS:
            o = sandbox.httpd(name, origin_conf(hb_port, workers),
                              modules=['watchdog', 'heartbeat', 'cgid', 'alias'])
            o.add_file('work', CGI % (SERVICE_TIME, name), mode=0o755)
            origins.append(o)
        proxy = sandbox.httpd('proxy', proxy_conf(hb_port, origins),
                              modules=['proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm',
                                       'lbmethod_byrequests', 'heartmonitor',
                                       'lbmethod_heartbeat'])
        proxy.start()
        for o in origins:
            o.start()
        hbtest.wait_until(
            lambda: len(json.loads(proxy.get('/heartbeat-status?json').body)['servers'])
            == len(origins), timeout=15, message='all origins in the table')
        load = Load(proxy.url('/app/work'))
        load.start()
        started = time.time()
        print('Started a proxy and %d origins; Ctrl-C stops everything.' % len(origins))
        while not stop.is_set():
            stop.wait(1.0)
            counts, errors = show(proxy, origins, load, started)
            if args.duration and time.time() - started >= args.duration:
                break
        ok = sum(counts.values()) > 0
    finally:
        if load:
            load.close()
        sandbox.close(raise_errors=False)
        sandbox.finish(failed=not ok)
        print('Stopped: every httpd of the demo has exited.', flush=True)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
