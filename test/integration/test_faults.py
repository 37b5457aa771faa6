#!/usr/bin/python3
"""Faults and load: nothing is lost, the proxy keeps answering.

- a killed origin (SIGKILL) gets no new requests once stale, and is used
  again when it comes back;
- a graceful restart of the proxy under load fails no request and keeps
  the table;
- the storage file deleted, its directory made unwritable, the disk full:
  clear errors, the shared table keeps working, the file recovers;
- more senders than HeartbeatMaxServers: the policy holds;
- a flood from one source while real origins beat: their entries stay
  fresh and the proxy's latency stays within 2x of the quiet case.
"""

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

PROXY = ['proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm', 'lbmethod_byrequests',
         'watchdog', 'heartmonitor', 'lbmethod_heartbeat']
SENDER = ['watchdog', 'heartbeat']
STATUS = """
<Location /hb-status>
    SetHandler heartbeat-status
</Location>
"""


class FaultCase(hbtest.HbTestCase):

    def chain(self, names, proxy_extra='', member_opts='', before_start=None):
        self.hb_port = hbtest.free_port(kind='udp')
        origins = []
        for name in names:
            o = self.httpd(name, 'HeartbeatAddress 127.0.0.1:%d\nHeartbeatInterval 100ms\n'
                           % self.hb_port, modules=SENDER)
            o.add_file('who', name + '\n')
            origins.append(o)
        members = '\n'.join('    BalancerMember http://127.0.0.1:%d %s' % (o.port, member_opts)
                            for o in origins)
        proxy = self.httpd('proxy', STATUS + """
HeartbeatListen 127.0.0.1:%d
HeartbeatMaxServers 20
%s
<Proxy balancer://b>
%s
    ProxySet lbmethod=heartbeat
</Proxy>
ProxyPass /app balancer://b
""" % (self.hb_port, proxy_extra, members), modules=PROXY)
        if before_start:
            before_start(proxy)
        proxy.start()
        for o in origins:
            o.start()
        hbtest.wait_until(lambda: len(self.servers(proxy)) == len(origins), timeout=10,
                          message='every origin in the table')
        return proxy, origins

    def servers(self, proxy):
        body = proxy.get('/hb-status?json').body.decode()
        return {s['port']: s for s in json.loads(body)['servers']}

    def status(self, proxy):
        return json.loads(proxy.get('/hb-status?json').body.decode())


class OriginFaultTest(FaultCase):

    def test_killed_origin_leaves_and_comes_back(self):
        proxy, (a, b) = self.chain(['a', 'b'], member_opts='retry=2')
        proxy.allowed_errors = [r'AH00957|AH01114|AH00959|AH01102|AH00898|AH01144|AH02429']
        os.killpg(a.pid, signal.SIGKILL)
        a.proc.wait()
        t0 = time.monotonic()
        # Within the staleness window a request sent to a may fail (a pooled
        # connection to a dead process cannot be retried safely); the
        # balancer puts a in error and uses b.
        window = [proxy.get('/app/who') for _ in range(20)]
        self.assertGreaterEqual(sum(r.status == 200 for r in window), 18,
                                [r.status for r in window])
        hbtest.wait_until(lambda: self.servers(proxy)[a.port]['age_ms'] > 1500, timeout=5)
        errors_before = len(re.findall(r'127\.0\.0\.1:%d' % a.port, proxy.error_log()))
        for _ in range(20):
            self.assertEqual(proxy.get('/app/who').body, b'b\n')
        errors_after = len(re.findall(r'127\.0\.0\.1:%d' % a.port, proxy.error_log()))
        self.assertEqual(errors_before, errors_after, 'a stale origin was still tried')
        self.assertLess(time.monotonic() - t0, 30)
        # a comes back (same port): it reports, and is used again.
        a.started = False
        a.proc = None
        a.start()
        hbtest.wait_until(lambda: 'a' in {proxy.get('/app/who').body.decode().strip()
                                          for _ in range(6)},
                          timeout=30, message='a used again after its return')


class ProxyRestartTest(FaultCase):

    def test_graceful_restart_under_load(self):
        proxy, (a, b) = self.chain(['a', 'b'])
        before = self.servers(proxy)
        # Connection: close: a keep-alive connection that the restart closes
        # between two requests is a client's to retry, and wrk would count
        # it as an error; a request itself must never fail.
        wrk = subprocess.Popen(['wrk', '-t', '2', '-c', '8', '-d', '6s', '--latency',
                                '-H', 'Connection: close', proxy.url('/app/who')], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(1.5)  # pacing the load, not waiting for a condition
            proxy.graceful_restart()
            # The table is there at once after the restart.
            self.assertEqual(set(self.servers(proxy)), set(before))
            out, _ = wrk.communicate(timeout=30)
        finally:
            if wrk.poll() is None:
                wrk.kill()
                wrk.wait()
        done = re.search(r'(\d+) requests in', out)
        self.assertIsNotNone(done, out)
        self.assertGreater(int(done.group(1)), 100, out)
        self.assertNotIn('Non-2xx', out)
        self.assertNotRegex(out, r'Socket errors: connect [1-9]|read [1-9]|timeout [1-9]')


class StorageFaultTest(FaultCase):

    def test_file_deleted_and_unwritable(self):
        def prepare(p):
            p.make_dir('run/hbdir')
            p.allowed_errors = [r'HM0207']
        proxy, (a,) = self.chain(['a'], proxy_extra='HeartbeatStorageInterval 100ms\n'
                                 'HeartbeatStorage hbdir/hb.dat\n', before_start=prepare)
        path_dir = os.path.join(proxy.run_dir, 'hbdir')
        path = os.path.join(path_dir, 'hb.dat')
        hbtest.wait_until(lambda: os.path.exists(path), timeout=5, message='file written')
        os.unlink(path)
        hbtest.wait_until(lambda: os.path.exists(path), timeout=5, message='file recreated')
        # Unwritable directory: an error, once; the shared table goes on.
        os.chmod(path_dir, 0o555)
        proxy.wait_log(r'HM0207: cannot write HeartbeatStorage', timeout=10)
        self.assertEqual(proxy.get('/app/who').body, b'a\n')
        self.assertLess(self.servers(proxy)[a.port]['age_ms'], 1000)
        time.sleep(1.0)  # let several rewrite attempts fail
        self.assertEqual(proxy.error_log().count('HM0207'), 1, 'logged once, not per attempt')
        os.chmod(path_dir, 0o755)
        proxy.wait_log(r'HM0208: HeartbeatStorage .* is written again', timeout=10)

    def test_disk_full(self):
        proxy = self.httpd('proxy', modules=PROXY)
        full = os.path.join(proxy.root, 'full')
        os.makedirs(full)
        # Room for the table's file (150 entries, 15 KB) beside the one
        # written at start-up, which stays until the new one replaces it.
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, 'cannot mount a tmpfs: %s' % r.stderr)
        self.addCleanup(subprocess.run, ['umount', '-l', full])
        os.chmod(full, 0o777)
        self.hb_port = hbtest.free_port(kind='udp')
        proxy.conf_body = STATUS + """
HeartbeatListen 127.0.0.1:%d
HeartbeatMaxServers 200
HeartbeatStorage "%s/hb.dat"
HeartbeatStorageInterval 100ms
""" % (self.hb_port, full)
        proxy.allowed_errors = [r'HM0207']
        proxy.start()
        # Fill the disk, then send more senders than the file can hold.
        fd = os.open(os.path.join(full, 'filler'), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while True:
                os.write(fd, b'x' * 1024)
        except OSError:
            pass
        finally:
            os.close(fd)
        for i in range(150):
            hbtest.send_udp('127.0.0.1', self.hb_port,
                            b'v=1&ready=1&busy=0&port=%d' % (20000 + i))
        proxy.wait_log(r'HM0207: cannot write', timeout=10)
        hbtest.wait_until(lambda: len(self.servers(proxy)) == 150, timeout=10,
                          message='the shared table keeps every sender')
        self.assertEqual([f for f in os.listdir(full) if '.tmp' in f], [],
                         'a failed write left its temporary file')
        os.unlink(os.path.join(full, 'filler'))
        proxy.wait_log(r'HM0208', timeout=10)
        with open(os.path.join(full, 'hb.dat')) as f:
            self.assertEqual(len([l for l in f if not l.startswith('#')]), 150)


class OverflowTest(FaultCase):

    def test_more_senders_than_slots(self):
        self.hb_port = hbtest.free_port(kind='udp')
        proxy = self.httpd('proxy', STATUS + 'HeartbeatListen 127.0.0.1:%d\n'
                           'HeartbeatMaxServers 10\nHeartbeatRateLimit 0\n' % self.hb_port,
                           modules=PROXY)
        proxy.start()
        for i in range(1000):
            hbtest.send_udp('127.0.0.1', self.hb_port,
                            b'v=1&ready=%d&busy=0&port=%d' % (i, 30000 + i))
        st = hbtest.wait_until(
            lambda: (lambda s: s if s['counters']['accepted'] + s['counters']['full'] == 1000
                     else None)(self.status(proxy)), timeout=10, message='every packet counted')
        self.assertEqual(st['count'], 10)
        self.assertEqual(st['counters']['accepted'], 10)
        self.assertEqual(st['counters']['full'], 990)
        # The first ten stay (fresh ones are never evicted).
        self.assertEqual(sorted(s['port'] for s in st['servers']), list(range(30000, 30010)))
        self.assertEqual(proxy.error_log().count('HM0203'), 1)


class FloodTest(FaultCase):

    def latency_p99(self, url):
        out = subprocess.run(['wrk', '-t', '1', '-c', '4', '-d', '3s', '--latency', url],
                             capture_output=True, text=True, timeout=30).stdout
        m = re.search(r'^\s+99%\s+([\d.]+)(us|ms|s)\s*$', out, re.M)
        self.assertIsNotNone(m, out)
        self.assertNotIn('Non-2xx', out)
        return float(m.group(1)) * {'us': 1e-3, 'ms': 1.0, 's': 1e3}[m.group(2)]

    def flood(self, port, seconds, sent):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(('127.0.0.99', 0))
        payload = b'v=1&ready=1000000&busy=0&port=1'
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for _ in range(200):
                try:
                    s.sendto(payload, ('127.0.0.1', port))
                    sent[0] += 1
                except OSError:
                    pass
        s.close()

    def p99_while_flooding(self, proxy, port):
        sent = [0]
        t = threading.Thread(target=self.flood, args=(port, 4.5, sent), daemon=True)
        t.start()
        try:
            p99 = self.latency_p99(proxy.url('/app/who'))
        finally:
            t.join()
        return p99, sent[0]

    def test_flood_from_one_source(self):
        proxy, (a, b) = self.chain(['a', 'b'])
        # The baseline floods a socket nobody reads, so the flooder's own
        # CPU and the kernel's delivery cost are in both measurements: what
        # differs is only what the monitor does with the packets.
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(('127.0.0.1', 0))
        self.addCleanup(sink.close)
        # Alternate sink and monitor three times and compare medians: one
        # wrk run's p99 on a shared 2-core machine swings by 2x on its own.
        results = []
        for target in (sink.getsockname()[1], self.hb_port) * 3:
            results.append(self.p99_while_flooding(proxy, target))
            servers = self.servers(proxy)
            for o in (a, b):
                self.assertLess(servers[o.port]['age_ms'], 1000, servers)
                self.assertLess(servers[o.port]['ready'], 1000, servers)
        quiet = statistics.median(r[0] for r in results[0::2])
        loaded = statistics.median(r[0] for r in results[1::2])
        sent = sum(r[1] for r in results[1::2])
        self.assertGreater(sent, 10000)
        self.assertGreater(self.status(proxy)['counters']['ratelimited'], sent // 2)
        print('p99: %.2f ms with the flood into a sink, %.2f ms into the monitor '
              '(%d packets)' % (quiet, loaded, sent))
        self.assertLess(loaded, 2 * quiet + 1.0, 'p99 %.2f ms flooded vs %.2f ms baseline'
                        % (loaded, quiet))


if __name__ == '__main__':
    hbtest.main()
