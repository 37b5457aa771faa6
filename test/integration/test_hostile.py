#!/usr/bin/python3
"""Hostile input: a barrage of malformed heartbeats against a live proxy.

A proxy runs our mod_heartmonitor (UDP listener, POST handler, status page
with JSON) and a balancer with lbmethod=heartbeat in front of two plain
origins, a and b. While a client keeps requesting through the balancer, the
test sends every kind of malformed heartbeat it can think of (and a few
hundred random and mutated ones), interleaved with valid reports for a
(ready=10) and b (ready=3). It asserts:

* the proxy serves every request, during the barrage and after, and every
  one goes to a: most malformed packets claim a huge ready count for b,
  so a single one taken in would send requests to b;
* the table holds exactly a and b, with exactly the values and packet
  counts of the valid reports, fresh;
* the counters account for every heartbeat sent: accepted == valid sent,
  malformed == malformed sent (with HeartbeatRateLimit 0, so that every
  datagram reaches the parser; test_rate_limited_barrage keeps the default
  cap and checks malformed + ratelimited == malformed sent, and that the
  origin sending at a sane rate from its own address is never cut off);
* the error log shows no crash or sanitizer report, and the HM0202 warning
  at most once a minute per process, not once per packet.

Counting is exact only if no datagram is lost. UDP on loopback drops when
the receiving socket's buffer overflows, so the barrage is paced: it sends a
small batch (at most one datagram over 2 KB) and waits until the counters
have seen the whole batch before the next. If the counters still fall
short, the failure message gives the kernel's drop count for the socket
(/proc/net/udp), which tells a loss apart from a miscount.

Every "malformed" packet is checked against valid_packet(), a model of
docs/protocol.md, before it is sent, so the test cannot pass by sending
packets that were never malformed.
"""

import datetime
import http.client
import json
import os
import random
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

PROXY = ['proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm', 'lbmethod_byrequests',
         'watchdog', 'heartmonitor', 'lbmethod_heartbeat']

LOCATIONS = """
<Location /hb-status>
    SetHandler heartbeat-status
</Location>
<Location /hb>
    SetHandler heartbeat
</Location>
"""

#: Seed of the random and mutated packets; printed so a failure reproduces.
SEED = int(os.environ.get('HB_HOSTILE_SEED', '20261130'))

#: Other sources of malformed packets, besides the origins' own 127.0.0.1.
STRANGERS = ['127.0.0.2', '127.0.0.3', '127.0.0.77']

#: The largest UDP payload IPv4 can carry (64 KiB less the headers).
UDP_MAX = 65507

# --------------------------------------------------------------------------
# The wire format, as docs/protocol.md states it


_KEY_RE = re.compile(rb'[A-Za-z0-9_.-]{1,32}')
_LIMITS = {b'v': 2 ** 64 - 1, b'ready': 2 ** 31 - 1, b'busy': 2 ** 31 - 1, b'port': 65535,
           b'seq': 2 ** 64 - 1, b'int': 3600000}
_MINIMA = {b'port': 1, b'int': 1}


def valid_packet(p):
    """True if docs/protocol.md says a receiver accepts packet p (bytes)."""
    if not 1 <= len(p) <= 1400:
        return False
    seen = {}
    for pair in p.split(b'&'):
        if not pair:
            continue  # empty pairs are ignored
        key, eq, val = pair.partition(b'=')
        if not eq or not _KEY_RE.fullmatch(key):
            return False
        if any(c < 0x21 or c > 0x7e for c in val):
            return False
        if key in _LIMITS or key == b'state':
            if key in seen:
                return False  # a known key only once
            seen[key] = val
    for key, val in seen.items():
        if key == b'state':
            if val not in (b'up', b'drain', b'stopping'):
                return False
            continue
        if not (1 <= len(val) <= 20 and val.isdigit()):
            return False
        if not _MINIMA.get(key, 0) <= int(val) <= _LIMITS[key]:
            return False
    return all(k in seen for k in (b'v', b'ready', b'busy')) and int(seen[b'v']) == 1


def report(port, ready, busy, seq):
    return b'v=1&ready=%d&busy=%d&port=%d&seq=%d&int=1000&state=up' % (ready, busy, port, seq)


def handmade_malformed(a, b):
    """(name, payload) for every kind of malformed heartbeat; most would, if
    accepted, give origin b (port b) a huge ready count or change a's entry."""
    big = 99999
    lure = b'v=1&ready=%d&busy=0&port=%d' % (big, b)
    pad = lambda p, n: p + b'&pad=' + b'x' * (n - len(p) - 5)  # noqa: E731
    cases = [
        ('empty', b''),
        ('only &', b'&'),
        ('only &&&', b'&&&'),
        ('only =', b'='),
        ('missing v', b'ready=%d&busy=0&port=%d' % (big, b)),
        ('missing ready', b'v=1&busy=0&port=%d' % b),
        ('missing busy', b'v=1&ready=%d&port=%d' % (big, b)),
        ('missing value', b'v=1&ready=&busy=0&port=%d' % b),
        ('bare key', lure + b'&flag'),
        ('empty key', b'=1&' + lure),
        ('key of 33', lure + b'&' + b'k' * 33 + b'=1'),
        ('key with space', lure + b'&a b=1'),
        ('key with %', lure + b'&%76=1'),
        ('duplicate ready', lure + b'&ready=1'),
        ('duplicate v', b'v=1&' + lure),
        ('duplicate port', lure + b'&port=%d' % a),
        ('duplicate state', lure + b'&state=up&state=up'),
        ('duplicate seq', lure + b'&seq=1&seq=2'),
        ('duplicate int', lure + b'&int=100&int=100'),
        ('minus', b'v=1&ready=-1&busy=0&port=%d' % a),
        ('plus', b'v=1&ready=+%d&busy=0&port=%d' % (big, b)),
        ('minus zero', b'v=1&ready=%d&busy=-0&port=%d' % (big, b)),
        ('negative port', b'v=1&ready=%d&busy=0&port=-%d' % (big, b)),
        ('ready 2^31', b'v=1&ready=2147483648&busy=0&port=%d' % b),
        ('ready 2^32', b'v=1&ready=4294967296&busy=0&port=%d' % b),
        ('ready 2^32+99999', b'v=1&ready=%d&busy=0&port=%d' % (2 ** 32 + big, b)),
        ('busy 2^64', b'v=1&ready=%d&busy=18446744073709551616&port=%d' % (big, b)),
        ('seq 2^64', lure + b'&seq=18446744073709551616'),
        ('21 digits', b'v=1&ready=%021d&busy=0&port=%d' % (big, b)),
        ('40 digits', b'v=1&ready=%s&busy=0&port=%d' % (b'9' * 40, b)),
        ('port 0', b'v=1&ready=%d&busy=0&port=0' % big),
        ('port 2^16', b'v=1&ready=%d&busy=0&port=65536' % big),
        ('port 2^16+b', b'v=1&ready=%d&busy=0&port=%d' % (big, 65536 + b)),
        ('port 2^32+b', b'v=1&ready=%d&busy=0&port=%d' % (big, 2 ** 32 + b)),
        ('int 0', lure + b'&int=0'),
        ('int too big', lure + b'&int=3600001'),
        ('v 0', b'v=0&ready=%d&busy=0&port=%d' % (big, b)),
        ('v 2', b'v=2&ready=%d&busy=0&port=%d' % (big, b)),
        ('v 2^32+1', b'v=4294967297&ready=%d&busy=0&port=%d' % (big, b)),
        ('v 2^64+1', b'v=18446744073709551617&ready=%d&busy=0&port=%d' % (big, b)),
        ('v 1.0', b'v=1.0&ready=%d&busy=0&port=%d' % (big, b)),
        ('hex', b'v=1&ready=0x1869f&busy=0&port=%d' % b),
        ('exponent', b'v=1&ready=1e5&busy=0&port=%d' % b),
        ('decimal point', b'v=1&ready=99.5&busy=0&port=%d' % b),
        ('letters', b'v=1&ready=lots&busy=0&port=%d' % b),
        ('trailing letter', b'v=1&ready=%da&busy=0&port=%d' % (big, b)),
        ('leading space', b' v=1&ready=%d&busy=0&port=%d' % (big, b)),
        ('space in value', b'v=1&ready= %d&busy=0&port=%d' % (big, b)),
        ('space around =', b'v = 1&ready=%d&busy=0&port=%d' % (big, b)),
        ('tab', lure + b'\t'),
        ('newline', lure + b'\n'),
        ('crlf', lure + b'\r\n'),
        ('NUL after number', b'v=1&ready=%d\x00&busy=0&port=%d' % (big, b)),
        ('NUL inside number', b'v=1&ready=9\x009&busy=0&port=%d' % b),
        ('NUL at end', lure + b'\x00'),
        ('NUL only', b'\x00'),
        ('DEL', lure + b'&x=\x7f'),
        ('latin-1', lure + b'&x=\xe9'),
        ('UTF-8 in value', lure + b'&x=\xc3\xa9'),
        ('UTF-8 in key', lure + b'&\xc3\xa9=1'),
        ('zero-width space in state', lure + b'&state=\xe2\x80\x8bup'),
        ('UTF-8 digits', b'v=1&ready=\xd9\xa9\xd9\xa9&busy=0&port=%d' % b),
        ('fullwidth digit', b'v=1&ready=\xef\xbc\x99&busy=0&port=%d' % b),
        ('BOM', b'\xef\xbb\xbf' + lure),
        ('%-escaped number', b'v=1&ready=%%39%%39&busy=0&port=%d' % b),
        ('%-escaped v', b'v=%%31&ready=%d&busy=0&port=%d' % (big, b)),
        ('%-escaped &', lure + b'%26ready=1'),
        ('%-escaped state', lure + b'&state=u%70'),
        ('+ for space', b'v=1&ready=+99&busy=0&port=%d' % b),
        ('state UP', lure + b'&state=UP'),
        ('state empty', lure + b'&state='),
        ('state down', lure + b'&state=down'),
        ('state with NUL', lure + b'&state=up\x00'),
        ('JSON', b'{"v":1,"ready":%d,"busy":0,"port":%d}' % (big, b)),
        ('semicolons', b'v=1;ready=%d;busy=0;port=%d' % (big, b)),
        ('stock atoi bait', b'v=1&ready=99999junk&busy=0&port=%d' % b),
        ('1401 bytes', pad(lure, 1401)),
        ('1500 bytes', pad(lure, 1500)),
        ('4 KiB', pad(lure, 4096)),
        ('64 KiB', pad(lure, UDP_MAX)),
        ('64 KiB of NUL', b'\x00' * UDP_MAX),
    ]
    return cases


def random_malformed(rng, n):
    """n random byte strings, each with at least one byte no packet may hold."""
    out = []
    for i in range(n):
        size = rng.choice([1, 2, 8, 40, 200, 1399, 1400, 1401, rng.randint(1, 1500)])
        data = bytearray(rng.getrandbits(8) for _ in range(size))
        data[rng.randrange(size)] = rng.choice([0x00, 0x09, 0x0a, 0x20, 0x7f, 0x80, 0xff])
        out.append(('random %d' % i, bytes(data)))
    return out


_MUTATION_BYTES = b'&=-+%.0123456789 \x00\xffvyrbusdtaeinpoqk'


def mutated_malformed(rng, n, b):
    """n mutations of a report that would lure requests to b (ready=99999),
    each one malformed by the model."""
    base = report(b, 99999, 0, 123456789)
    out = []
    while len(out) < n:
        p = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(3)
            pos = rng.randrange(len(p) + (op == 0))
            if op == 0:
                p.insert(pos, rng.choice(_MUTATION_BYTES))
            elif op == 1 and len(p) > 1:
                del p[pos]
            else:
                p[pos] = rng.choice(_MUTATION_BYTES)
        p = bytes(p)
        if not valid_packet(p):
            out.append(('mutation %d' % len(out), p))
    return out


# --------------------------------------------------------------------------


class Client:
    """Requests /app/who through the balancer, one after another, until
    stopped; records (monotonic time, status, body) of each."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.results = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop.is_set():
            try:
                r = self.proxy.get('/app/who', timeout=10)
                res = (r.status, r.body.decode('latin-1').strip())
            except OSError as exc:
                res = ('error', str(exc))
            self.results.append((time.monotonic(), ) + res)

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.stop.set()
        self.thread.join(timeout=30)


class HostileCase(hbtest.HbTestCase):

    def setUp(self):
        super().setUp()
        self.a, self.b = [self.origin(n) for n in ('a', 'b')]
        self.seq = int(time.time() * 1000)
        self.valid = {self.a.port: 0, self.b.port: 0}
        self.last_seq = {}
        self.sent_valid = 0
        self.sent_bad = 0
        print('hostile: random seed %d (HB_HOSTILE_SEED)' % SEED, file=sys.stderr)

    def start_proxy(self, extra=''):
        self.hb_port = hbtest.free_port(kind='udp')
        members = '\n'.join('    BalancerMember http://127.0.0.1:%d' % o.port
                            for o in (self.a, self.b))
        conf = ('HeartbeatListen 127.0.0.1:%d\nHeartbeatMaxServers 20\n' % self.hb_port
                + extra + LOCATIONS + '<Proxy balancer://b>\n%s\n'
                '    ProxySet lbmethod=heartbeat\n</Proxy>\nProxyPass /app balancer://b\n'
                % members)
        self.proxy = self.httpd('proxy', conf, modules=PROXY).start()

    def origin(self, name):
        o = self.httpd(name)
        o.add_file('who', name + '\n')
        return o.start()

    # ---- the monitor's view

    def status(self):
        r = self.proxy.get('/hb-status?json')
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body.decode())

    def udp_drops(self):
        """The kernel's drop count for the monitor's UDP socket."""
        return hbtest.udp_socket_drops(self.hb_port)

    def wait_counted(self):
        """Wait until the counters have seen every heartbeat sent so far."""
        sent = self.sent_valid + self.sent_bad
        last = {}

        def counted():
            c = last['c'] = self.status()['counters']
            # rejected: refused by policy, here only the rate cap (no keys).
            return c['accepted'] + c['malformed'] + c['rejected'] >= sent
        try:
            hbtest.wait_until(counted, timeout=15, interval=0.02)
        except hbtest.HarnessTimeout:
            self.fail('the counters miss heartbeats: sent %d valid + %d malformed, counters %r; '
                      'kernel drops on the socket: %s'
                      % (self.sent_valid, self.sent_bad, last.get('c'), self.udp_drops()))

    def check_table(self, fresh_ms=None):
        """Exactly a and b, with the values of the last valid reports."""
        st = self.status()
        servers = {(s['ip'], s['port']): s for s in st['servers']}
        self.assertEqual(set(servers), {('127.0.0.1', self.a.port), ('127.0.0.1', self.b.port)},
                         st)
        for port, ready, busy in ((self.a.port, 10, 1), (self.b.port, 3, 2)):
            e = servers[('127.0.0.1', port)]
            self.assertEqual((e['ready'], e['busy'], e['state'], e['seq'], e['interval_ms'],
                              e['packets'], e['port_known']),
                             (ready, busy, 'up', self.last_seq[port], 1000, self.valid[port],
                              True), e)
            if fresh_ms is not None:
                self.assertLess(e['age_ms'], fresh_ms, e)
        return st

    # ---- sending

    def send_valid_udp(self):
        for port, ready, busy in ((self.a.port, 10, 1), (self.b.port, 3, 2)):
            self.seq += 1
            hbtest.send_udp('127.0.0.1', self.hb_port, report(port, ready, busy, self.seq))
            self.valid[port] += 1
            self.last_seq[port] = self.seq
            self.sent_valid += 1

    def send_valid_post(self):
        for port, ready, busy in ((self.a.port, 10, 1), (self.b.port, 3, 2)):
            self.seq += 1
            r = self.proxy.post('/hb', report(port, ready, busy, self.seq))
            self.assertEqual(r.status, 200, r.body)
            self.valid[port] += 1
            self.last_seq[port] = self.seq
            self.sent_valid += 1

    def all_malformed(self, n_random=150, n_mutated=250):
        rng = random.Random(SEED)
        cases = (handmade_malformed(self.a.port, self.b.port) + random_malformed(rng, n_random)
                 + mutated_malformed(rng, n_mutated, self.b.port))
        for name, p in cases:
            self.assertFalse(valid_packet(p), 'test bug: %s is not malformed: %r' % (name, p))
        return cases

    # ---- the error log

    def hm0202_by_pid(self):
        """{pid: [datetime of each HM0202 line]} from the proxy's error log."""
        out = {}
        for line in self.proxy.error_log().splitlines():
            if 'HM0202' not in line:
                continue
            m = re.match(r'\[(\w{3} \w{3} \d{2} [\d:.]+ \d{4})\].*\[pid (\d+)', line)
            self.assertIsNotNone(m, line)
            when = datetime.datetime.strptime(m.group(1), '%a %b %d %H:%M:%S.%f %Y')
            out.setdefault(int(m.group(2)), []).append(when)
        return out

    def check_log(self, bad_sent):
        log = self.proxy.error_log()
        for word in ('exit signal', 'AH00052', 'Segmentation', 'AddressSanitizer',
                     'runtime error', 'HM0201'):
            self.assertNotIn(word, log)
        by_pid = self.hm0202_by_pid()
        self.assertTrue(by_pid, 'no HM0202 warning at all for %d malformed heartbeats' % bad_sent)
        for pid, times in by_pid.items():
            for t0, t1 in zip(times, times[1:]):
                self.assertGreaterEqual((t1 - t0).total_seconds(), 59.0,
                                        'pid %d logged HM0202 twice within a minute' % pid)
        lines = [l for l in log.splitlines() if 'HM02' in l]
        self.assertLessEqual(len(lines), 2 * len(by_pid), '\n'.join(lines))
        # The one line a minute says how much it stands for.
        self.assertRegex(lines[0], r'HM0202: rejected heartbeat (packet|POST) from [0-9.]+: '
                         r'.*\(\d+ more rejected since the last report')

    def check_client(self, client, t0, t1):
        during = [r for r in client.results if t0 <= r[0] <= t1]
        self.assertGreaterEqual(len(during), 10, 'too few requests during the barrage')
        wrong = [r for r in client.results if r[1:] != (200, 'a')]
        self.assertEqual(wrong, [], 'requests that did not reach a with 200 (of %d)'
                         % len(client.results))
        # And after it, still.
        for _ in range(10):
            r = self.proxy.get('/app/who')
            self.assertEqual((r.status, r.body.strip()), (200, b'a'))


class UdpBarrageTest(HostileCase):

    def paced_barrage(self, cases, source_for, valid_due):
        """Send every malformed case (the i-th from source_for(i)), a valid
        heartbeat after it when valid_due(i), and wait for the monitor to
        count each small batch (the socket buffer is finite; big datagrams
        go alone), checking the table after each; then one last valid one."""
        batch = 0
        for i, (name, p) in enumerate(cases):
            if len(p) > 2048 and batch:
                self.wait_counted()
                batch = 0
            hbtest.send_udp('127.0.0.1', self.hb_port, p, source=source_for(i))
            self.sent_bad += 1
            batch += 1
            if valid_due(i):
                self.send_valid_udp()
                batch += 2
            if batch >= 24 or len(p) > 2048:
                self.wait_counted()
                batch = 0
                self.check_table()
        self.send_valid_udp()
        self.wait_counted()

    def test_malformed_datagrams(self):
        # Every datagram must reach the parser: HeartbeatRateLimit would
        # otherwise (rightly) drop most of a barrage from one address before
        # parsing; test_rate_limited_barrage covers the two together.
        self.start_proxy('HeartbeatRateLimit 0\n')
        self.send_valid_udp()
        self.wait_counted()
        hbtest.wait_until(lambda: self.proxy.get('/app/who').body.strip() == b'a', timeout=5)
        client = Client(self.proxy).start()
        self.addCleanup(client.close)

        # The longest barrage: datagrams are the cheapest input to send.
        cases = self.all_malformed(n_random=600, n_mutated=1000)
        t0 = time.monotonic()
        self.paced_barrage(
            cases, lambda i: STRANGERS[i % len(STRANGERS)] if i % 4 == 3 else '127.0.0.1',
            lambda i: i % 10 == 9)
        t1 = time.monotonic()
        client.close()

        st = self.check_table(fresh_ms=3000)
        c = st['counters']
        self.assertEqual(self.udp_drops(), 0, 'datagrams lost: the pacing is not enough')
        self.assertEqual((c['accepted'], c['malformed']), (self.sent_valid, self.sent_bad), c)
        self.assertEqual(c['accepted'] + c['malformed'], self.sent_valid + self.sent_bad)
        self.assertEqual((c['inserted'], c['replaced'], c['full'], c['rejected']), (2, 0, 0, 0), c)
        self.assertEqual(len(st['rejections']), 16)
        self.assertTrue({r['ip'] for r in st['rejections']} <= set(STRANGERS + ['127.0.0.1']))
        print('hostile: %d malformed and %d valid datagrams in %.1fs, %d requests served'
              % (self.sent_bad, self.sent_valid, t1 - t0, len(client.results)), file=sys.stderr)
        self.check_client(client, t0, t1)
        self.check_log(self.sent_bad)


    def test_rate_limited_barrage(self):
        """The default rate cap (100/s per address, bursts of 200) in front
        of the parser: a stranger's barrage is partly dropped unparsed,
        partly parsed and refused; the origin, sending at a sane rate from
        its own address, is never cut off."""
        self.start_proxy()
        self.send_valid_udp()
        self.wait_counted()
        client = Client(self.proxy).start()
        self.addCleanup(client.close)

        cases = self.all_malformed()
        t0 = time.monotonic()
        last_valid = [t0]

        def valid_due(i):  # at most 40/s from 127.0.0.1
            if time.monotonic() - last_valid[0] < 0.05:
                return False
            last_valid[0] = time.monotonic()
            return True

        self.paced_barrage(cases, lambda i: STRANGERS[0], valid_due)
        t1 = time.monotonic()
        client.close()

        st = self.check_table(fresh_ms=3000)
        c = st['counters']
        self.assertEqual(self.udp_drops(), 0, 'datagrams lost: the pacing is not enough')
        self.assertEqual(c['accepted'], self.sent_valid, c)
        self.assertEqual(c['malformed'] + c['ratelimited'], self.sent_bad, c)
        self.assertEqual(c['rejected'], c['ratelimited'], c)
        # At most a burst plus the rate's worth of the stranger's got through
        # (a little slack for the clocks); the rest was dropped unparsed.
        passed_max = 200 + 100 * (t1 - t0) + 5
        self.assertGreaterEqual(c['ratelimited'], self.sent_bad - passed_max, c)
        self.assertLessEqual(c['malformed'], passed_max, c)
        print('hostile: %d malformed datagrams in %.1fs from one address: %d parsed, %d over '
              'the rate cap' % (self.sent_bad, t1 - t0, c['malformed'], c['ratelimited']),
              file=sys.stderr)
        self.check_client(client, t0, t1)
        self.check_log(c['malformed'])


class PostBarrageTest(HostileCase):

    def post_chunked(self, body, source=None):
        """POST body with Transfer-Encoding: chunked (no Content-Length)."""
        conn = http.client.HTTPConnection('127.0.0.1', self.proxy.port, timeout=10,
                                          source_address=(source, 0) if source else None)
        try:
            chunks = [body[i:i + 1000] for i in range(0, len(body), 1000)]
            conn.request('POST', '/hb', body=iter(chunks), encode_chunked=True)
            return conn.getresponse().status
        finally:
            conn.close()

    def test_malformed_posts(self):
        self.start_proxy()
        self.send_valid_post()
        client = Client(self.proxy).start()
        self.addCleanup(client.close)

        cases = self.all_malformed()
        t0 = time.monotonic()
        statuses = {}
        for i, (name, p) in enumerate(cases):
            source = STRANGERS[i % len(STRANGERS)] if i % 4 == 3 else None
            if i % 5 == 4:
                status = self.post_chunked(p, source)
            else:
                status = self.proxy.post('/hb', p, source=source).status
            self.sent_bad += 1
            want = 413 if len(p) > 1400 else 400
            self.assertEqual(status, want, '%s: %r' % (name, p[:80]))
            statuses[status] = statuses.get(status, 0) + 1
            if i % 10 == 9:
                self.send_valid_post()
                self.check_table()
        # Not a heartbeat at all: refused, and not counted as one.
        self.assertEqual(self.proxy.get('/hb').status, 405)
        self.send_valid_post()
        t1 = time.monotonic()
        client.close()

        st = self.check_table(fresh_ms=3000)
        c = st['counters']
        self.assertEqual((c['accepted'], c['malformed']), (self.sent_valid, self.sent_bad), c)
        self.assertEqual((c['inserted'], c['replaced'], c['full'], c['rejected']), (2, 0, 0, 0), c)
        print('hostile: %d malformed POSTs (%r) and %d valid in %.1fs, %d requests served'
              % (self.sent_bad, statuses, self.sent_valid, t1 - t0, len(client.results)),
              file=sys.stderr)
        self.check_client(client, t0, t1)
        self.check_log(self.sent_bad)


class ModelTest(hbtest.HbTestCase):
    """The test's own model of the format, on the examples of docs/protocol.md,
    so that a too-lax model cannot make the barrage vacuous."""

    def test_model(self):
        ok = [b'v=1&ready=75&busy=0&port=8080&seq=1796003976160&int=1000&state=up',
              b'v=1&ready=75&busy=0', b'&&v=01&ready=0&busy=0&&x=%41&', b'v=1&ready=1&busy=0&'
              + b'k' * 32 + b'=1', b'v=1&ready=2147483647&busy=0&seq=18446744073709551615']
        for p in ok:
            self.assertTrue(valid_packet(p), p)
        a, b = 1000, 2000
        for name, p in handmade_malformed(a, b):
            self.assertFalse(valid_packet(p), name)
        self.assertTrue(valid_packet(report(b, 99999, 0, 1)))


if __name__ == '__main__':
    hbtest.main()
