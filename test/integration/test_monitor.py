#!/usr/bin/python3
"""mod_heartmonitor, the proxy side, fed by packets the test sends.

The table (several senders, several ports on one address, IPv6, several
listeners), expiry, the full-table policy, bad input, the storage file's
format and atomicity, an unwritable storage path, the POST handler, the
status pages and the mod_status section, graceful restart keeping the table,
the table in huge pages (HeartbeatHugePages), the receiver's hand-over (old
generation until the new one is up, a killed receiver replaced), and
interop with Debian's stock sender and stock lbmethod. No mod_watchdog.
"""

import json
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

# No mod_watchdog: the monitor elects its receiver itself (stock needed it).
MONITOR = ['heartmonitor']

STATUS = """
<Location /hb-status>
    SetHandler heartbeat-status
</Location>
<Location /hb>
    SetHandler heartbeat
</Location>
"""


def packet(ready, busy=0, port=None, **extra):
    p = 'v=1&ready=%d&busy=%d' % (ready, busy)
    if port is not None:
        p += '&port=%d' % port
    for k, v in extra.items():
        p += '&%s=%s' % (k, v)
    return p.encode()


class MonitorCase(hbtest.HbTestCase):

    def monitor(self, extra='', listen=None, modules=(), **kw):
        self.hb_port = hbtest.free_port(kind='udp')
        listen = listen or ['127.0.0.1:%d' % self.hb_port]
        conf = ''.join('HeartbeatListen %s\n' % l for l in listen) + STATUS + extra
        m = self.httpd('monitor', conf, modules=MONITOR + list(modules), **kw)
        return m

    def send(self, payload, source='127.0.0.1', host='127.0.0.1', port=None):
        hbtest.send_udp(host, port or self.hb_port, payload, source=source)

    def status(self, m):
        r = m.get('/hb-status?json')
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body.decode())

    def servers(self, m):
        return {(s['ip'], s['port']): s for s in self.status(m)['servers']}

    def wait_servers(self, m, pred, message, timeout=10):
        hbtest.wait_until(lambda: pred(self.servers(m)), timeout=timeout, message=message)
        return self.servers(m)


class TableTest(MonitorCase):

    def test_several_senders_and_ports(self):
        m = self.monitor().start()
        self.send(packet(5, 1, port=8080), source='127.0.0.2')
        self.send(packet(7, 2, port=8081), source='127.0.0.2')
        self.send(packet(9, 0), source='127.0.0.3')  # stock sender: no port
        t = self.wait_servers(m, lambda t: len(t) == 3, 'three entries')
        self.assertEqual((t[('127.0.0.2', 8080)]['ready'], t[('127.0.0.2', 8080)]['busy']), (5, 1))
        self.assertEqual((t[('127.0.0.2', 8081)]['ready'], t[('127.0.0.2', 8081)]['busy']), (7, 2))
        stock = t[('127.0.0.3', 80)]
        self.assertEqual(stock['ready'], 9)
        self.assertFalse(stock['port_known'])
        self.assertTrue(t[('127.0.0.2', 8080)]['port_known'])

        # Updates apply to the right entry, in place.
        self.send(packet(1, 6, port=8081, state='drain', seq=42, int=250), source='127.0.0.2')
        t = self.wait_servers(m, lambda t: t[('127.0.0.2', 8081)]['ready'] == 1, 'update')
        e = t[('127.0.0.2', 8081)]
        self.assertEqual((e['busy'], e['state'], e['seq'], e['interval_ms'], e['packets']),
                         (6, 'drain', 42, 250, 2))
        self.assertEqual(t[('127.0.0.2', 8080)]['ready'], 5)
        self.assertEqual(len(t), 3)
        counters = self.status(m)['counters']
        self.assertEqual((counters['accepted'], counters['inserted']), (4, 3))

    def test_ipv6_and_several_listeners(self):
        self.assertTrue(hbtest.ipv6_available(), 'IPv6 loopback is needed')
        p4 = hbtest.free_port(kind='udp')
        p6 = hbtest.free_port6(kind='udp')
        m = self.monitor(listen=['127.0.0.1:%d' % p4, '[::1]:%d' % p6]).start()
        self.send(packet(3, port=1000), port=p4)
        hbtest.send_udp('::1', p6, packet(4, port=2000))
        t = self.wait_servers(m, lambda t: len(t) == 2, 'both families')
        self.assertEqual(t[('127.0.0.1', 1000)]['ready'], 3)
        self.assertEqual(t[('::1', 2000)]['ready'], 4)

    def test_expiry(self):
        m = self.monitor('HeartbeatExpiry 1s\n').start()
        self.send(packet(3, port=1000))
        self.wait_servers(m, lambda t: len(t) == 1, 'entry')
        t0 = time.monotonic()
        self.wait_servers(m, lambda t: len(t) == 0, 'entry expired', timeout=5)
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)
        self.assertEqual(self.status(m)['counters']['expired'], 1)

    def test_full_table_policy(self):
        # Stale = a third of HeartbeatExpiry: 1 s here.
        m = self.monitor('HeartbeatMaxServers 2\nHeartbeatExpiry 3s\n').start()
        self.send(packet(1, port=1))
        self.send(packet(2, port=2))
        self.wait_servers(m, lambda t: len(t) == 2, 'two entries')
        self.send(packet(3, port=3))  # both entries fresh: dropped
        hbtest.wait_until(lambda: self.status(m)['counters']['full'] == 1, timeout=5,
                          message='drop counted')
        self.assertNotIn(('127.0.0.1', 3), self.servers(m))
        # Keep port 2 fresh; port 1 goes stale and may be replaced.
        deadline = time.monotonic() + 1.3
        while time.monotonic() < deadline:
            self.send(packet(2, port=2))
            time.sleep(0.1)
        self.send(packet(3, port=3))
        t = self.wait_servers(m, lambda t: ('127.0.0.1', 3) in t, 'replacement')
        self.assertEqual(set(t), {('127.0.0.1', 2), ('127.0.0.1', 3)})
        self.assertEqual(self.status(m)['counters']['replaced'], 1)
        m.wait_log(r'HM0203: table full', timeout=1)

    def test_bad_input_never_changes_the_table(self):
        m = self.monitor().start()
        self.send(packet(5, 1, port=8080))
        self.wait_servers(m, lambda t: len(t) == 1, 'entry')
        bad = [b'', b'v=1&ready=5', b'v=2&ready=1&busy=1&port=8080',
               b'v=1&ready=-5&busy=0&port=8080', b'v=1&ready=4294967296&busy=0&port=8080',
               b'v=1&ready=99&busy=0&port=8080&ready=1', b'v=1&ready=9\x00&busy=0&port=8080',
               b'v=1&ready=%39&busy=0&port=8080', b'v=1&ready=9&busy=0&port=80800',
               b'\xff\xfe' * 10, b'x' * 1401]
        for p in bad:
            self.send(p)
        hbtest.wait_until(lambda: self.status(m)['counters']['malformed'] == len(bad), timeout=5,
                          message='every bad packet counted')
        st = self.status(m)
        self.assertEqual(len(st['servers']), 1)
        e = st['servers'][0]
        self.assertEqual((e['ready'], e['busy'], e['packets']), (5, 1, 1))
        self.assertIsNotNone(e['last_error'])
        self.assertEqual(len(st['rejections']), len(bad))
        reasons = {r['reason'] for r in st['rejections']}
        self.assertTrue({'v is not 1', 'a field is missing'} <= reasons or len(reasons) > 4,
                        reasons)
        # Rate-limited: one warning line, not one per packet.
        log = m.error_log()
        self.assertEqual(len(re.findall(r'HM0202', log)), 1, log)
        self.assertNotIn(':crit]', log)


class StorageTest(MonitorCase):

    LINE = re.compile(r'^(\S+) &ready=(\d+)&busy=(\d+)&lastseen=(\d+)&port=(\d+)'
                      r'&seen=\d+(&int=\d+)?&state=(up|drain|stopping)(&seq=\d+)?&portknown=[01]$')

    def test_format_and_atomic_rewrites(self):
        m = self.monitor()
        path = os.path.join(m.run_dir, 'hb.dat')
        m.conf_body += ('HeartbeatStorage "%s"\nHeartbeatStorageInterval 100ms\n'
                        'HeartbeatMaxServers 200\n' % path)
        m.start()
        senders = 120
        stop = threading.Event()

        def feed():
            n = 0
            while not stop.is_set():
                for i in range(senders):
                    self.send(packet(i, n % 3, port=10000 + i, seq=n, int=100))
                n += 1
                time.sleep(0.05)
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            def complete():
                with open(path) as f:
                    return len(f.read().splitlines()) == senders + 1
            hbtest.wait_until(lambda: os.path.exists(path) and complete(), timeout=10,
                              message='file with every sender')
            # A reader never sees a partial file: every read is whole.
            reads, versions = 0, set()
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                with open(path) as f:
                    text = f.read()
                versions.add(text)
                reads += 1
                self.assertTrue(text.endswith('\n'), 'partial file: %r' % text[-80:])
                lines = text.splitlines()
                self.assertTrue(lines[0].startswith('# heartbeat table'), lines[0])
                self.assertEqual(len(lines), senders + 1, 'lines: %d' % len(lines))
                for line in lines[1:]:
                    self.assertRegex(line, self.LINE)
            # Inode numbers get reused by rename, so count contents instead.
            self.assertGreater(len(versions), 3, 'the file should have been replaced many times')
        finally:
            stop.set()
            feeder.join()
        self.assertEqual(os.listdir(m.run_dir).count('hb.dat'), 1)
        self.assertEqual([f for f in os.listdir(m.run_dir) if '.tmp' in f], [])

    def test_written_only_on_change(self):
        m = self.monitor()
        path = os.path.join(m.run_dir, 'hb.dat')
        m.conf_body += 'HeartbeatStorage "%s"\nHeartbeatStorageInterval 100ms\n' % path
        m.start()
        self.send(packet(1, port=1))
        hbtest.wait_until(lambda: os.path.exists(path) and '&port=1&' in open(path).read(),
                          timeout=5, message='file written')
        ino = os.stat(path).st_ino
        # Nothing changes for 1.5 s: the file is not rewritten (it is at the
        # latest after 5 s, to keep the stock lastseen counting).
        time.sleep(1.5)
        self.assertEqual(os.stat(path).st_ino, ino)
        self.send(packet(2, port=1))
        hbtest.wait_until(lambda: os.stat(path).st_ino != ino, timeout=5,
                          message='rewritten after a change')

    def test_unwritable_directory_reported_at_startup(self):
        m = self.monitor()
        ro = os.path.join(m.root, 'readonly')
        os.makedirs(ro, mode=0o755)  # owned by root: children cannot write
        m.conf_body += 'HeartbeatStorage "%s/hb.dat"\n' % ro
        # HM0207: the receiver's own write attempts then fail, as they must.
        m.allowed_errors = [r'HM0212', r'HM0207']
        m.start()
        self.assertRegex(m.error_log(), r'HM0212: HeartbeatStorage .*readonly/hb.dat cannot be '
                                        r'written: directory .*readonly/ is not writable by user')

    def test_unwritable_directory_refused_in_file_mode(self):
        m = self.monitor('HeartbeatMaxServers 0\nHeartbeatStorage "/nonexistent-dir/hb.dat"\n')
        m.allowed_errors = [r'HM0212', r'AH00016|AH00020|Configuration Failed']
        with self.assertRaisesRegex(hbtest.HttpdError, 'HM0212|does not exist'):
            m.start()


class HttpTest(MonitorCase):

    def test_post_handler_answers(self):
        m = self.monitor("""
<Location /hb-denied>
    SetHandler heartbeat
    Require ip 192.0.2.1
</Location>
""", modules=['authz_host'])
        m.allowed_errors = [r'AH01630: client denied.*hb-denied']
        m.start()
        r = m.post('/hb', packet(6, 2, port=9000))
        self.assertEqual((r.status, r.body), (200, b'OK\n'))
        e = self.servers(m)[('127.0.0.1', 9000)]
        self.assertEqual((e['ready'], e['busy'], e['via']), (6, 2, 'http'))

        self.assertEqual(m.get('/hb').status, 405)
        self.assertIn('POST', m.get('/hb').headers.get('allow', ''))
        r = m.post('/hb', b'v=1&ready=x&busy=0')
        self.assertEqual(r.status, 400)
        self.assertIn(b'malformed', r.body)
        self.assertEqual(m.post('/hb', b'v=1&busy=0').status, 400)
        self.assertEqual(m.post('/hb', b'v=1&ready=1&busy=0&pad=' + b'x' * 2000).status, 413)
        self.assertEqual(m.post('/hb-denied', packet(1, port=9001)).status, 403)
        t = self.servers(m)
        self.assertEqual(set(t), {('127.0.0.1', 9000)})
        self.assertEqual(t[('127.0.0.1', 9000)]['ready'], 6)
        self.assertEqual(self.status(m)['counters']['malformed'], 3)

    def test_status_pages(self):
        m = self.monitor(modules=['status'], extra="""
<Location /server-status>
    SetHandler server-status
</Location>
""").start()
        self.send(packet(4, 1, port=7000), source='127.0.0.5')
        self.wait_servers(m, lambda t: len(t) == 1, 'entry')
        html = m.get('/hb-status').body.decode()
        self.assertIn('<h1>Heartbeat monitor</h1>', html)
        self.assertRegex(html, r'<tr><td>127\.0\.0\.5</td><td>7000</td><td>4</td><td>1</td>'
                               r'<td>up</td>')
        auto = m.get('/hb-status?auto').body.decode()
        self.assertIn('Count: 1\nHugePageKB: 0\n', auto)
        self.assertRegex(auto, r'Server: 127\.0\.0\.5 7000 ready=4 busy=1 state=up age_ms=\d+')
        self.assertEqual(m.get('/hb-status?json').headers['content-type'], 'application/json')
        # ?counters: the same counters as ?json, without the entries.
        full = self.status(m)
        r = m.get('/hb-status?counters')
        self.assertEqual(r.headers['content-type'], 'application/json')
        short = json.loads(r.body.decode())
        self.assertEqual(set(short), {'capacity', 'count', 'huge_page_kb', 'counters'})
        self.assertEqual(short['huge_page_kb'], 0)  # 10 origins: normal pages
        self.assertEqual((short['capacity'], short['count']), (full['capacity'], 1))
        self.assertEqual(short['counters'], full['counters'])
        self.assertEqual(short['counters']['accepted'], 1)
        # mod_status gets a section too.
        ss = m.get('/server-status').body.decode()
        self.assertIn('<h2>Heartbeat monitor</h2>', ss)
        self.assertIn('127.0.0.5', ss)
        self.assertIn('HeartbeatCount: 1', m.get('/server-status?auto').body.decode())


class RestartTest(MonitorCase):

    def test_graceful_restart_keeps_the_table(self):
        m = self.monitor().start()
        for i in range(5):
            self.send(packet(i + 1, port=6000 + i))
        before = self.wait_servers(m, lambda t: len(t) == 5, 'five entries')
        m.graceful_restart()
        # No packet since the restart, and still all there, same values.
        after = self.servers(m)
        self.assertEqual({k: v['ready'] for k, v in after.items()},
                         {k: v['ready'] for k, v in before.items()})
        # And the listener still works after the restart.
        self.send(packet(42, port=6000))
        self.wait_servers(m, lambda t: t[('127.0.0.1', 6000)]['ready'] == 42, 'update')


class HugePagesTest(MonitorCase):
    """HeartbeatHugePages: a large table goes to the hugetlb pool when it has
    free pages (try, the default), must (on) or never does (off)."""

    POOL = '/proc/sys/vm/nr_hugepages'

    @staticmethod
    def meminfo(key):
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
        raise AssertionError('no %s in /proc/meminfo' % key)

    def setUp(self):
        super().setUp()
        # The test reserves pages for itself on top of whatever is there,
        # and gives them back afterwards (pages still mapped then are freed
        # by the kernel when the last mapping goes).
        try:
            with open(self.POOL) as f:
                saved = int(f.read())
            with open(self.POOL, 'w') as f:
                f.write(str(saved + 2))
        except OSError as exc:
            self.fail('cannot reserve huge pages (%s): run as root' % exc)
        self.addCleanup(self.set_pool, saved)
        hbtest.wait_until(lambda: self.meminfo('HugePages_Free') >= 2, timeout=5,
                          message='two free huge pages')
        self.page_kb = self.meminfo('Hugepagesize')

    def set_pool(self, n):
        with open(self.POOL, 'w') as f:
            f.write(str(n))

    def hugetlb_kb(self, pid):
        """kB of pid's mappings made of huge pages (hugetlb), faulted in or
        not (a child maps the page on first touch)."""
        total, size = 0, 0
        with open('/proc/%d/smaps' % pid) as f:
            for line in f:
                if line.startswith('Size:'):
                    size = int(line.split()[1])
                elif line.startswith('KernelPageSize:') and int(line.split()[1]) == self.page_kb:
                    total += size
        return total

    def test_large_table_in_huge_pages_and_back(self):
        # 12000 origins: a 1.6 MB table, one 2 MB page.
        m = self.monitor('HeartbeatMaxServers 12000\n').start()
        self.assertEqual(self.status(m)['huge_page_kb'], self.page_kb)
        self.assertGreaterEqual(self.hugetlb_kb(m.pid), self.page_kb)
        for child in m.children():
            self.assertGreaterEqual(self.hugetlb_kb(child), self.page_kb, 'child %d' % child)
        for i in range(3):
            self.send(packet(i + 1, port=6100 + i))
        before = self.wait_servers(m, lambda t: len(t) == 3, 'three entries')
        # off across a graceful restart: a new block of normal pages with
        # the same entries, the huge page given back.
        m.conf_body += 'HeartbeatHugePages off\n'
        m.graceful_restart()
        self.assertEqual(self.status(m)['huge_page_kb'], 0)
        self.assertEqual({k: v['ready'] for k, v in self.servers(m).items()},
                         {k: v['ready'] for k, v in before.items()})
        self.assertEqual(self.hugetlb_kb(m.pid), 0)
        self.send(packet(9, port=6100))
        self.wait_servers(m, lambda t: t[('127.0.0.1', 6100)]['ready'] == 9, 'update')

    def test_small_table_stays_in_normal_pages(self):
        m = self.monitor('HeartbeatMaxServers 50\n').start()
        self.assertEqual(self.status(m)['huge_page_kb'], 0)
        self.assertEqual(self.hugetlb_kb(m.pid), 0)
        # on: even a small table, in one page.
        m.conf_body += 'HeartbeatHugePages on\n'
        m.graceful_restart()
        self.assertEqual(self.status(m)['huge_page_kb'], self.page_kb)

    def test_not_enough_free_pages(self):
        # 100000 origins need 14 MB: more than the two pages reserved.
        m = self.monitor('HeartbeatMaxServers 100000\n').start()
        self.assertEqual(self.status(m)['huge_page_kb'], 0)
        self.assertRegex(m.error_log(), r'HM0213: the table for 100000 origins \(\d+ kB\) is in '
                                        r'normal pages: not enough free huge pages')
        self.send(packet(4, port=6200))
        self.wait_servers(m, lambda t: ('127.0.0.1', 6200) in t, 'entry')
        # Still too few across a graceful restart: the same block stays,
        # with its entries, and no second notice.
        m.graceful_restart()
        self.assertEqual(self.status(m)['huge_page_kb'], 0)
        self.assertIn(('127.0.0.1', 6200), self.servers(m))
        self.assertEqual(len(re.findall(r'HM0213', m.error_log())), 1, m.error_log())
        m2 = self.monitor('HeartbeatMaxServers 100000\nHeartbeatHugePages on\n')
        m2.allowed_errors = [r'HM0204', r'AH00016|AH00020|Configuration Failed']
        with self.assertRaisesRegex(hbtest.HttpdError, 'HM0204'):
            m2.start()
        self.assertRegex(m2.error_log(), r'HM0204: cannot create \d+ bytes of shared memory for '
                                         r'100000 origins \(HeartbeatMaxServers\): not enough free '
                                         r'huge pages')

    def test_bad_value_is_a_config_error(self):
        m = self.monitor('HeartbeatHugePages maybe\n')
        m.allowed_errors = [r'AH00526|Syntax error']
        with self.assertRaisesRegex(hbtest.HttpdError,
                                    "HeartbeatHugePages: 'maybe' must be try, on or off"):
            m.start()


class HandoverTest(MonitorCase):

    def test_old_receiver_keeps_receiving_until_the_new_one_is_up(self):
        # One child at a time (ServerLimit 1): after a graceful restart the
        # new generation's child can only start once the old one has
        # finished its last request, here one that sends half a request
        # and stalls (until Timeout). Heartbeats must keep reaching the
        # table (seen here in the storage file) all that time; with a
        # receiver that stops when its child begins to stop, nothing did.
        m = self.monitor()
        path = os.path.join(m.run_dir, 'hb.dat')
        m.conf_body += ('HeartbeatStorage "%s"\nHeartbeatStorageInterval 100ms\n'
                        'StartServers 1\nServerLimit 1\nThreadsPerChild 4\n'
                        'MaxRequestWorkers 4\nMinSpareThreads 1\nMaxSpareThreads 4\n'
                        'Timeout 8\n' % path)
        # That is the point of the set-up: the new child waits for the slot.
        m.allowed_errors = [r'AH03490: scoreboard is full']
        m.start()

        def ready_in_file():
            try:
                with open(path) as f:
                    found = re.search(r'&ready=(\d+)&', f.read())
            except FileNotFoundError:
                return None
            return int(found.group(1)) if found else None

        self.send(packet(1, port=7300))
        hbtest.wait_until(lambda: ready_in_file() == 1, timeout=10, message='first entry in file')
        old_children = set(m.children())
        stall = socket.create_connection((m.host, m.port))
        self.addCleanup(stall.close)
        stall.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n')
        m.graceful_restart(wait_old_generation=False)
        # While the old child drains, with no new child yet, new values
        # must show up in the file within a few storage intervals.
        for ready in range(2, 7):
            self.assertEqual(set(m.children()), old_children, 'the old child is still alone')
            self.send(packet(ready, port=7300))
            hbtest.wait_until(lambda: ready_in_file() == ready, timeout=1.5,
                              message='ready=%d in the file while the old child drains' % ready)
            time.sleep(0.3)  # spacing the updates over the drain, not waiting for one
        self.assertEqual(set(m.children()), old_children, 'the old child was alone throughout')
        stall.close()
        # And the new generation's receiver takes over once its child runs.
        hbtest.wait_until(lambda: set(m.children()) - old_children, timeout=15,
                          message='a new-generation child')
        self.send(packet(9, port=7300))
        hbtest.wait_until(lambda: ready_in_file() == 9, timeout=5, message='ready=9 after')


    def test_crashed_receiver_is_replaced(self):
        # SIGKILL the child that runs the receiver: a standby in another
        # child (or in the child that replaces it) takes over, says so
        # (HM0211), and heartbeats keep being applied.
        m = self.monitor('StartServers 2\nMinSpareThreads 1\n').start()
        self.send(packet(1, port=7400))
        self.wait_servers(m, lambda t: ('127.0.0.1', 7400) in t, 'entry')
        threads = hbtest.wait_until(lambda: ReceiverThreadTest.receiver_threads(m), timeout=10,
                                    message='a thread named hm-receiver')
        self.assertEqual(len(threads), 1, threads)
        victim = threads[0][0]
        os.kill(victim, signal.SIGKILL)
        m.allowed_errors = [r'AH00052|exit signal Killed']
        again = hbtest.wait_until(
            lambda: [t for t in ReceiverThreadTest.receiver_threads(m) if t[0] != victim],
            timeout=10, message='a new hm-receiver in another child')
        self.assertEqual(len(again), 1, again)
        m.wait_log(r'HM0211: the child running the heartbeat receiver died; this one '
                   r'\(pid %d\) took over' % again[0][0])
        self.send(packet(2, port=7400))
        self.wait_servers(m, lambda t: t[('127.0.0.1', 7400)]['ready'] == 2, 'update after')


class ReceiverThreadTest(MonitorCase):

    @staticmethod
    def receiver_threads(m):
        """(pid, tid) of every thread named hm-receiver in the monitor."""
        found = []
        for pid in [m.pid] + m.children():
            try:
                tids = os.listdir('/proc/%d/task' % pid)
            except OSError:
                continue
            for tid in tids:
                try:
                    with open('/proc/%d/task/%s/comm' % (pid, tid)) as f:
                        if f.read().strip() == 'hm-receiver':
                            found.append((pid, int(tid)))
                except OSError:
                    pass
        return found

    @staticmethod
    def wakeups(pid, tid):
        with open('/proc/%d/task/%d/status' % (pid, tid)) as f:
            for line in f:
                if line.startswith('voluntary_ctxt_switches:'):
                    return int(line.split()[1])
        raise AssertionError('no voluntary_ctxt_switches for %d' % tid)

    def test_idle_receiver_sleeps_until_due(self):
        # One receiver, named for top -H; idle, it sleeps until its next
        # expiry scan or storage write (at most a second), not 10 times a
        # second, and still applies a packet at once.
        m = self.monitor().start()
        threads = hbtest.wait_until(lambda: self.receiver_threads(m), timeout=10,
                                    message='a thread named hm-receiver')
        self.assertEqual(len(threads), 1, threads)
        pid, tid = threads[0]
        self.send(packet(3, port=7100))
        self.wait_servers(m, lambda t: ('127.0.0.1', 7100) in t, 'entry')
        w0 = self.wakeups(pid, tid)
        time.sleep(4)  # a measurement window, not a wait for a condition
        woke = self.wakeups(pid, tid) - w0
        # About once a second, plus the few short sleeps after the packet
        # before it goes back to poll; every 100 ms would be 40.
        self.assertLessEqual(woke, 12, 'idle receiver woke %d times in 4 s' % woke)
        # Asleep in poll, a datagram still wakes it.
        self.send(packet(5, port=7100))
        self.wait_servers(m, lambda t: t[('127.0.0.1', 7100)]['ready'] == 5, 'update', timeout=2)


class StockInteropTest(MonitorCase):

    def test_stock_sender(self):
        lab = self.sandbox.netlab(['origin', 'proxy'])
        m = self.httpd('monitor', 'HeartbeatListen 239.0.0.1:27999\n' + STATUS,
                       modules=MONITOR, netns=lab['proxy']).start()
        self.httpd('stock-origin', 'HeartbeatAddress 239.0.0.1:27999\n', ours=False,
                   modules=['watchdog', 'heartbeat'], netns=lab['origin']).start()

        def entry():
            r = hbtest.get(m.url('/hb-status?json'), netns=lab['proxy'])
            for s in json.loads(r.body.decode())['servers']:
                if s['ip'] == lab['origin'].ip:
                    return s
            return None
        hbtest.wait_until(lambda: entry() and entry()['ready'] > 0, timeout=15,
                          message='stock sender in our table')
        e = entry()
        self.assertEqual(e['port'], 80)
        self.assertFalse(e['port_known'])
        self.assertEqual(e['state'], 'up')

    def test_stock_lbmethod_reads_our_file(self):
        origin = self.httpd('origin', '', modules=['watchdog', 'heartbeat'])
        origin.add_file('who', 'origin\n')
        hb_port = hbtest.free_port(kind='udp')
        origin.conf_body = ('HeartbeatAddress 127.0.0.1:%d\nHeartbeatInterval 100ms\n'
                            'HeartbeatPort 80\n' % hb_port)
        proxy = self.httpd('proxy', '', ours=['heartmonitor'], modules=[
            'watchdog', 'proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm',
            'lbmethod_byrequests', 'heartmonitor', 'lbmethod_heartbeat'])
        path = os.path.join(proxy.run_dir, 'hb.dat')
        proxy.conf_body = """
HeartbeatListen 127.0.0.1:%d
HeartbeatStorage "%s"
<Proxy balancer://stock>
    BalancerMember http://127.0.0.1:%d
    ProxySet lbmethod=heartbeat
</Proxy>
ProxyPass /app balancer://stock
""" % (hb_port, path, origin.port)
        # Until the monitor's first write the stock lbmethod finds no file.
        proxy.allowed_errors = [r'AH01170|AH01213']
        proxy.start()
        # No data yet: the stock lbmethod finds nobody.
        self.assertEqual(proxy.get('/app/who').status, 503)
        origin.start()
        hbtest.wait_until(lambda: proxy.get('/app/who').status == 200, timeout=20,
                          message='stock lbmethod routing from our file')
        self.assertEqual(proxy.get('/app/who').body, b'origin\n')


if __name__ == '__main__':
    hbtest.main()
