#!/usr/bin/python3
"""Signed heartbeats prove which origin sent them (issue 20, items 1-6).

A valid HMAC proves only that some key holder wrote the bytes. Each test
here is one of the attacks an audit ran against real httpd on loopback:
a genuine packet of one origin replayed from another origin's address, a
flood that starves an origin through its rate-limit bucket, junk (or
replays) filling the table, a replay after the entry expired, a POST keyed
by a forwarded header, and the rejection list wiped by outsiders. Each
test fails while the attack works.

Packets are signed here with Python's hmac module (as in test_auth.py) and
carry `addr=`, the address the origin sends from, inside the signed part:

    v=1&ready=R&busy=B&port=P&seq=S&int=1000&state=up&addr=IP&ts=MS&kid=K&sig=HEX

Addresses 127.0.0.x stand for distinct hosts: every datagram and POST is
sent from the address it claims (bind), except the attacker's replays.
The monitor's receiver reads its socket in order, so after a burst of
datagrams the tests send a barrier (a datagram whose effect is visible on
the status page) and wait for it instead of sleeping.
"""

import collections
import hashlib
import hmac
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

KEY = b'identity-test-key-0123456789abcdef'
KID = 'site'

PROXY = ['proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm', 'lbmethod_byrequests',
         'lbmethod_heartbeat']

STATUS = """
<Location /hb-status>
    SetHandler heartbeat-status
</Location>
<Location /hb>
    SetHandler heartbeat
</Location>
"""

A_IP, B_IP = '127.0.0.2', '127.0.0.3'


def now_ms():
    return int(time.time() * 1000)


write_key = hbtest.write_key


def sign(body, key=KEY, kid=KID, ts=None):
    ts = now_ms() if ts is None else ts
    body = '%s&ts=%d&kid=%s' % (body, ts, kid)
    return (body + '&sig=' + hmac.new(key, body.encode(), hashlib.sha256).hexdigest()).encode()


def signed(addr, port, seq, ready=5, busy=0, state='up', ts=None):
    """A genuine signed heartbeat of the origin sending from `addr`."""
    return sign('v=1&ready=%d&busy=%d&port=%d&seq=%d&int=1000&state=%s&addr=%s'
                % (ready, busy, port, seq, state, addr), ts=ts)


def unsigned(port, ready=1, seq=None):
    p = 'v=1&ready=%d&busy=0&port=%d' % (ready, port)
    if seq is not None:
        p += '&seq=%d' % seq
    return p.encode()


port_free_on = hbtest.port_free_on


class IdentityCase(hbtest.HbTestCase):

    def monitor(self, extra='', key=True, modules=()):
        self.hb_port = hbtest.free_port(kind='udp')
        m = self.httpd('monitor', modules=['watchdog', 'heartmonitor'] + list(modules))
        conf = 'HeartbeatListen 127.0.0.1:%d\n' % self.hb_port
        if key:
            conf += 'HeartbeatSecret "%s" %s\n' % (write_key(m, 'site.key', KEY), KID)
        m.conf_body = conf + STATUS + extra
        self.m = m
        return m

    def send(self, payload, source='127.0.0.1'):
        hbtest.send_udp('127.0.0.1', self.hb_port, payload, source=source)

    def status(self):
        r = self.m.get('/hb-status?json')
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body.decode())

    def entries(self, st=None):
        st = st or self.status()
        return {(s['ip'], s['port']): s for s in st['servers']}

    def entry(self, ip, port):
        return self.entries().get((ip, port))

    def counters(self):
        return self.status()['counters']

    def counter(self, name, st=None):
        c = (st or self.status())['counters']
        if name not in c:
            self.fail('the status page has no counter %r: %s' % (name, sorted(c)))
        return c[name]

    def wait_entry(self, ip, port, pred=lambda e: True, timeout=5):
        return hbtest.wait_until(
            lambda: (lambda e: e if e and pred(e) else None)(self.entry(ip, port)),
            timeout=timeout, message=lambda: 'entry %s:%d: %r' % (ip, port, self.entries()))

    def sync(self):
        """Wait until the receiver has handled every datagram sent so far:
        a datagram signed with a wrong key (nothing else the tests send is)
        goes after them through the same socket and is counted (`badsig`)
        when its turn comes. For monitors with a key."""
        before = self.counters()['badsig']
        self.send(sign('v=1&ready=0&busy=0&port=9&seq=%d&addr=127.0.0.1' % now_ms(),
                       key=b'not-the-key-' + KEY))
        hbtest.wait_until(lambda: self.counters()['badsig'] > before, timeout=10,
                          message='the barrier datagram to be counted')

    def start_origin(self, name, ip, port):
        o = self.httpd(name, listen=[(ip, port)])
        o.add_file('who', name + '\n')
        return o.start()


# ---------------------------------------------------------------------------
# 1. Cross-origin replay


class CrossOriginReplayTest(IdentityCase):
    """Origins A (127.0.0.2) and B (127.0.0.3) on the same port behind a
    heartbeat balancer. A started later, so its sequence numbers are higher
    than B's; a captured packet of A re-sent from B's address must not
    become B's report."""

    def setUp(self):
        super().setUp()
        self.port = port_free_on([A_IP, B_IP])
        self.start_origin('a', A_IP, self.port)
        self.start_origin('b', B_IP, self.port)
        self.monitor("""
<Proxy balancer://app>
    BalancerMember http://%s:%d
    BalancerMember http://%s:%d
    ProxySet lbmethod=heartbeat
</Proxy>
ProxyPass /app balancer://app
""" % (A_IP, self.port, B_IP, self.port), modules=PROXY).start()
        t = now_ms()
        self.seq = {A_IP: t + 600000, B_IP: t}   # A started ten minutes after B
        self.pa = self.beat(A_IP, 5)
        self.beat(B_IP, 5)
        self.wait_entry(A_IP, self.port, lambda e: e['seq'] == self.seq[A_IP])
        self.wait_entry(B_IP, self.port, lambda e: e['seq'] == self.seq[B_IP])
        split = self.who(20)
        self.assertTrue(split['a'] >= 5 and split['b'] >= 5,
                        'test setup: equal reports should share the requests: %r' % split)

    def beat(self, ip, ready, state='up', deliver=True):
        self.seq[ip] += 1
        p = signed(ip, self.port, self.seq[ip], ready=ready, state=state)
        if deliver:
            self.send(p, source=ip)
        return p

    def who(self, n):
        return collections.Counter(self.m.get('/app/who').body.decode().strip()
                                   for _ in range(n))

    def test_replayed_packet_does_not_take_over_other_origin(self):
        # The attacker re-sends A's captured packet from B's address.
        self.send(self.pa, source=B_IP)
        # B's next genuine report: more free slots than A.
        self.beat(B_IP, 8)
        self.sync()
        e = self.entry(B_IP, self.port)
        self.assertEqual((e['seq'], e['ready'], e['state']), (self.seq[B_IP], 8, 'up'),
                         "B's genuine heartbeat after the replay was not accepted "
                         "(B's entry took A's seq): %r; counters %r" % (e, self.counters()))
        self.beat(A_IP, 5)
        self.beat(B_IP, 8)
        self.sync()
        split = self.who(10)
        self.assertEqual(split, {'b': 10}, 'requests do not follow B\'s report (ready 8 > 5)')
        st = self.status()
        self.assertEqual(self.counter('identity', st), 1, st['counters'])
        self.assertEqual(self.counter('replay', st), 0, st['counters'])
        self.assertEqual(self.entries(st)[(A_IP, self.port)]['seq'], self.seq[A_IP])

    def test_replayed_stopping_does_not_stop_other_origin(self):
        # A's parent stops: its state=stopping packet (seq = now in ms beats
        # every running origin) is captured and re-sent from B's address.
        stopping = self.beat(A_IP, 0, state='stopping', deliver=False)
        self.send(stopping, source=B_IP)
        self.sync()
        e = self.entry(B_IP, self.port)
        self.assertEqual((e['state'], e['seq'], e['ready']), ('up', self.seq[B_IP], 5),
                         "A's replayed stopping packet changed B's entry: %r" % e)
        self.beat(A_IP, 5)
        self.beat(B_IP, 5)
        self.sync()
        split = self.who(20)
        self.assertTrue(split['a'] >= 5 and split['b'] >= 5, split)
        self.assertEqual(self.counter('identity'), 1)

    def test_unbound_packet_refused(self):
        # A packet of a sender that signs without addr= (before the identity
        # field existed) proves no origin: in required mode it is refused,
        # from B's address and from A's own.
        self.seq[A_IP] += 1
        old_format = sign('v=1&ready=5&busy=0&port=%d&seq=%d&int=1000&state=up'
                          % (self.port, self.seq[A_IP]))
        self.send(old_format, source=B_IP)
        self.sync()
        e = self.entry(B_IP, self.port)
        self.assertEqual((e['seq'], e['packets']), (self.seq[B_IP], 1),
                         "a signed packet without addr= updated B's entry: %r" % e)
        self.send(old_format, source=A_IP)
        self.sync()
        st = self.status()
        self.assertEqual(self.entries(st)[(A_IP, self.port)]['packets'], 1)
        self.assertEqual(self.counter('unbound', st), 2, st['counters'])
        self.assertEqual(self.counter('identity', st), 0, st['counters'])
        self.beat(B_IP, 5)
        self.wait_entry(B_IP, self.port, lambda e: e['seq'] == self.seq[B_IP])


class MigrateUnboundTest(IdentityCase):

    def test_unbound_packet_is_unsigned_in_migrate_mode(self):
        self.monitor('HeartbeatAuthMode migrate\n').start()
        t = now_ms()
        self.send(signed(B_IP, 80, t), source=B_IP)
        self.wait_entry(B_IP, 80, lambda e: e['signed'])
        # A's packet in the old format (signed, no addr=), newer seq, re-sent
        # from B's address: an unsigned packet cannot update a signed origin.
        old_format = sign('v=1&ready=50&busy=0&port=80&seq=%d&int=1000&state=up' % (t + 600000))
        self.send(old_format, source=B_IP)
        self.sync()
        e = self.entry(B_IP, 80)
        self.assertEqual((e['seq'], e['ready'], e['packets']), (t, 5, 1),
                         "a signed packet without addr= updated B's signed entry: %r" % e)
        self.assertEqual(self.counter('unsigned'), 1)
        # From an address no signed origin holds: taken, but as unsigned.
        self.send(old_format, source='127.0.0.7')
        e = self.wait_entry('127.0.0.7', 80)
        self.assertFalse(e['signed'], 'a packet without addr= made a signed entry: %r' % e)
        self.assertEqual(self.counter('unbound'), 0)


# ---------------------------------------------------------------------------
# 2. Starving one origin through its rate-limit bucket


class Flood:
    """1-byte datagrams from `source` (its own socket and port) at `rate`
    per second until stopped."""

    def __init__(self, port, source, rate):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.port = port
        self.rate = rate
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        t0 = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - t0) * self.rate)
            while self.sent < due:
                try:
                    self.sock.sendto(b'x', ('127.0.0.1', self.port))
                except OSError:
                    pass
                self.sent += 1
            self.stop.wait(0.002)  # pacing, not waiting for a condition

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)
        self.sock.close()


class StarvationTest(IdentityCase):

    def udp_drops(self):
        """The kernel's drop count for the monitor's UDP socket."""
        return hbtest.udp_socket_drops(self.hb_port)

    def test_flood_from_origin_address_does_not_starve_it(self):
        self.monitor().start()   # HeartbeatRateLimit 100 (the default)
        port = 8080
        seq = now_ms()
        mark = now_ms()
        self.send(signed(B_IP, port, seq), source=B_IP)
        self.send(signed('127.0.0.1', 1, mark), source='127.0.0.1')
        self.wait_entry(B_IP, port)
        self.wait_entry('127.0.0.1', 1)

        flood = Flood(self.hb_port, B_IP, 4000).start()
        self.addCleanup(flood.close)
        hbtest.wait_until(lambda: self.counters()['ratelimited'] > 0, timeout=5,
                          message='the flood to reach the rate cap')
        sent = 20
        t0 = time.monotonic()
        for i in range(sent):
            seq += 1
            self.send(signed(B_IP, port, seq, ready=7), source=B_IP)
            # Pacing B's heartbeats over 4 s, not waiting for a condition.
            time.sleep(max(0, t0 + 0.2 * (i + 1) - time.monotonic()))
        flood.close()
        # Barrier: a signed heartbeat of another origin, from 127.0.0.1.
        mark += 1
        self.send(signed('127.0.0.1', 1, mark), source='127.0.0.1')
        self.wait_entry('127.0.0.1', 1, lambda e: e['seq'] == mark, timeout=10)

        st = self.status()
        e = self.entries(st)[(B_IP, port)]
        got = e['packets'] - 1
        self.assertGreaterEqual(
            got, sent - 1,
            'only %d of %d signed heartbeats of B got in during a flood of %d 1-byte datagrams '
            'from its address (entry %r, counters %r, kernel drops on the socket %s)'
            % (got, sent, flood.sent, e, st['counters'], self.udp_drops()))
        if got == sent:
            self.assertEqual(e['seq'], seq)
        self.assertIn('ratelimited', st, 'no list of rate-limited sources on the status page')
        limited = {r['ip']: r for r in st['ratelimited']}
        self.assertIn(B_IP, limited, st['ratelimited'])
        self.assertGreater(limited[B_IP]['dropped'], 0, limited[B_IP])
        self.assertIn('age_ms', limited[B_IP])


# ---------------------------------------------------------------------------
# 3. Filling the table to lock real origins out


class LockOutTest(IdentityCase):

    def test_unsigned_junk_does_not_lock_out_signed_origin(self):
        self.monitor('HeartbeatAuthMode migrate\nHeartbeatMaxServers 4\n').start()
        for port in range(1, 5):
            self.send(unsigned(port), source='127.0.0.5')
        hbtest.wait_until(lambda: self.status()['count'] == 4, timeout=5)
        # A genuine signed origin arrives: the table is full of unsigned junk.
        self.send(signed('127.0.0.6', 80, now_ms()), source='127.0.0.6')
        self.sync()
        st = self.status()
        t = self.entries(st)
        self.assertIn(('127.0.0.6', 80), t,
                      'the signed origin was locked out by unsigned junk: %r' % st['counters'])
        self.assertTrue(t[('127.0.0.6', 80)]['signed'])
        self.assertEqual(st['count'], 4)
        self.assertEqual(st['counters']['replaced'], 1, st['counters'])

    def test_silent_signed_origin_not_evicted_by_junk(self):
        # Stale after a third of the expiry: 2 s; expired after 6 s.
        self.monitor('HeartbeatAuthMode migrate\nHeartbeatMaxServers 4\n'
                     'HeartbeatExpiry 6s\n').start()
        seq = now_ms()
        self.send(signed('127.0.0.6', 80, seq), source='127.0.0.6')
        self.wait_entry('127.0.0.6', 80)

        def junk_and_stale():
            for port in range(1, 4):
                self.send(unsigned(port), source='127.0.0.5')
            e = self.entry('127.0.0.6', 80)
            return e and e['age_ms'] >= 2300 and self.status()['count'] == 4
        hbtest.wait_until(junk_and_stale, timeout=5, interval=0.2,
                          message='the signed origin to be silent for 2.3 s')
        # New unsigned junk while the signed origin is silent (stale).
        self.send(unsigned(4), source='127.0.0.5')
        self.sync()
        st = self.status()
        self.assertIn(('127.0.0.6', 80), self.entries(st),
                      'unsigned junk evicted a silent signed origin: %r' % st['counters'])
        self.assertNotIn(('127.0.0.5', 4), self.entries(st))
        self.assertEqual(st['counters']['full'], 1, st['counters'])
        # The origin speaks again: accepted into its own entry.
        self.send(signed('127.0.0.6', 80, seq + 1, ready=9), source='127.0.0.6')
        self.sync()
        e = self.entry('127.0.0.6', 80)
        self.assertEqual((e['seq'], e['ready'], e['packets']), (seq + 1, 9, 2), e)

    def test_replayed_signed_packet_creates_no_entries(self):
        self.monitor('HeartbeatMaxServers 4\n').start()   # required mode
        p = signed('127.0.0.2', 80, now_ms())
        self.send(p, source='127.0.0.2')
        self.wait_entry('127.0.0.2', 80)
        # The captured packet, re-sent from three addresses, POSTed from two.
        for src in ('127.0.0.3', '127.0.0.4', '127.0.0.5'):
            self.send(p, source=src)
        posts = [self.m.post('/hb', p, source=src).status for src in ('127.0.0.6', '127.0.0.7')]
        self.sync()
        st = self.status()
        self.assertEqual(set(self.entries(st)), {('127.0.0.2', 80)},
                         'one captured packet made entries for other addresses: %r'
                         % st['counters'])
        self.assertEqual(posts, [403, 403])
        self.assertEqual(self.counter('identity', st), 5, st['counters'])
        # A new genuine origin still gets in.
        self.send(signed('127.0.0.8', 80, now_ms()), source='127.0.0.8')
        self.wait_entry('127.0.0.8', 80, lambda e: e['signed'])

    def test_unsigned_entries_capped_per_address(self):
        # HeartbeatMaxPerAddress 16 is the default.
        self.monitor('HeartbeatAuthMode migrate\nHeartbeatMaxServers 40\n').start()
        for port in range(1, 21):
            self.send(unsigned(port), source='127.0.0.5')
        self.sync()
        st = self.status()
        mine = [k for k in self.entries(st) if k[0] == '127.0.0.5']
        self.assertEqual(len(mine), 16,
                         'one address holds %d unsigned entries: %r' % (len(mine), st['counters']))
        self.assertEqual(self.counter('per_address', st), 4, st['counters'])
        # The cap is per address: another one still gets in, and so does a
        # signed origin.
        self.send(unsigned(1), source='127.0.0.4')
        self.send(signed('127.0.0.6', 80, now_ms()), source='127.0.0.6')
        self.wait_entry('127.0.0.4', 1)
        self.wait_entry('127.0.0.6', 80)

        # The cap is configurable (a second monitor).
        m = self.monitor('HeartbeatAuthMode migrate\nHeartbeatMaxServers 40\n'
                         'HeartbeatMaxPerAddress 2\n')
        rc, out = m.config_test()
        self.assertEqual(rc, 0, 'HeartbeatMaxPerAddress is not accepted: %s' % out)
        m.start()
        for port in range(1, 6):
            self.send(unsigned(port), source='127.0.0.5')
        self.sync()
        st = self.status()
        self.assertEqual(sorted(k for k in self.entries(st) if k[0] == '127.0.0.5'),
                         [('127.0.0.5', 1), ('127.0.0.5', 2)])
        self.assertEqual(self.counter('per_address', st), 3, st['counters'])
        # Entries already held are updated as before.
        self.send(unsigned(2, ready=9), source='127.0.0.5')
        self.wait_entry('127.0.0.5', 2, lambda e: e['ready'] == 9)

    def test_post_rate_limited(self):
        self.monitor('HeartbeatRateLimit 2\n', key=False).start()
        statuses = collections.Counter(
            self.m.post('/hb', unsigned(9000, ready=i), source='127.0.0.7').status
            for i in range(60))
        self.assertIn(429, statuses, 'POSTs are not rate-limited: %r' % statuses)
        self.assertEqual(set(statuses), {200, 429}, statuses)
        self.assertEqual(self.counter('ratelimited'), statuses[429])


# ---------------------------------------------------------------------------
# 4. Eviction forgets the sequence number


class TombstoneTest(IdentityCase):

    def test_expired_entry_packet_replay_refused(self):
        # HeartbeatAuthWindow is 30 s, far longer than the expiry.
        self.monitor('HeartbeatExpiry 2s\n').start()
        seq = now_ms()
        p = signed('127.0.0.2', 80, seq, ready=80)
        self.send(p, source='127.0.0.2')
        self.wait_entry('127.0.0.2', 80)
        hbtest.wait_until(lambda: self.entry('127.0.0.2', 80) is None, timeout=10,
                          message='the silent origin to expire')
        self.assertGreaterEqual(self.counters()['expired'], 1)
        # The dead origin's own packet, a few seconds old, sent again.
        self.send(p, source='127.0.0.2')
        self.sync()
        st = self.status()
        self.assertNotIn(('127.0.0.2', 80), self.entries(st),
                         'the expired origin\'s old packet was accepted again: %r'
                         % self.entries(st).get(('127.0.0.2', 80)))
        self.assertEqual(st['counters']['replay'], 1, st['counters'])
        self.assertIn('replay', ' '.join(r['reason'] for r in st['rejections']))
        # The origin itself comes back with a newer packet.
        self.send(signed('127.0.0.2', 80, seq + 1), source='127.0.0.2')
        self.wait_entry('127.0.0.2', 80, lambda e: e['seq'] == seq + 1)


# ---------------------------------------------------------------------------
# 5. POSTs keyed and filtered by the connection's peer


class PostPeerTest(IdentityCase):

    REMOTEIP = ('RemoteIPHeader X-Forwarded-For\nRemoteIPInternalProxy 127.0.0.1\n')

    def test_post_keyed_by_connection_peer(self):
        self.monitor('HeartbeatAuthMode migrate\n' + self.REMOTEIP,
                     modules=['remoteip']).start()
        r = self.m.post('/hb', unsigned(8000, ready=3, seq=1), source='127.0.0.1')
        self.assertEqual(r.status, 200, r.body)
        xff = {'X-Forwarded-For': '127.0.0.9'}
        r = self.m.post('/hb', unsigned(8000, ready=7, seq=2), headers=xff, source='127.0.0.1')
        self.assertEqual(r.status, 200, r.body)
        t = self.entries()
        self.assertNotIn(('127.0.0.9', 8000), t,
                         'X-Forwarded-For chose the entry a POST updated')
        self.assertEqual((t[('127.0.0.1', 8000)]['ready'], t[('127.0.0.1', 8000)]['packets']),
                         (7, 2))
        # Signed: addr= must be the connection's peer, not the forwarded one.
        r = self.m.post('/hb', signed('127.0.0.1', 8001, now_ms()), headers=xff,
                        source='127.0.0.1')
        self.assertEqual(r.status, 200, r.body)
        r = self.m.post('/hb', signed('127.0.0.9', 8002, now_ms()), headers=xff,
                        source='127.0.0.1')
        self.assertEqual(r.status, 403, r.body)
        t = self.entries()
        self.assertIn(('127.0.0.1', 8001), t)
        self.assertFalse({('127.0.0.9', 8001), ('127.0.0.9', 8002), ('127.0.0.1', 8002)} & set(t))
        self.assertEqual(self.counter('identity'), 1)

    def test_post_obeys_heartbeat_allow(self):
        self.monitor('HeartbeatAllow 127.0.0.0/26\n' + self.REMOTEIP, key=False,
                     modules=['remoteip']).start()
        r = self.m.post('/hb', unsigned(8000), source='127.0.0.66')
        self.assertEqual(r.status, 403, 'a POST from outside HeartbeatAllow got %d' % r.status)
        st = self.status()
        self.assertEqual(self.entries(st), {})
        self.assertEqual(st['counters']['notallowed'], 1, st['counters'])
        # Judged by the peer, not by X-Forwarded-For, either way.
        r = self.m.post('/hb', unsigned(8001), source='127.0.0.1',
                        headers={'X-Forwarded-For': '127.0.0.66'})
        self.assertEqual(r.status, 200, r.body)
        r = self.m.post('/hb', unsigned(8002), source='127.0.0.66',
                        headers={'X-Forwarded-For': '127.0.0.1'})
        self.assertEqual(r.status, 403)
        self.assertEqual(set(self.entries()), {('127.0.0.1', 8001)})


# ---------------------------------------------------------------------------
# 6. The rejection list cannot be wiped from outside HeartbeatAllow


class RejectionListTest(IdentityCase):

    def test_outsiders_do_not_wipe_replay_record(self):
        self.monitor('HeartbeatAllow 127.0.0.0/26\n').start()
        p = signed('127.0.0.2', 80, now_ms())
        self.send(p, source='127.0.0.2')
        self.wait_entry('127.0.0.2', 80)
        self.send(p, source='127.0.0.2')   # the attacked origin's replay
        hbtest.wait_until(lambda: self.counters()['replay'] == 1, timeout=5)
        for i in range(20):
            self.send(unsigned(80 + i), source='127.0.0.66')
        hbtest.wait_until(lambda: self.counters()['notallowed'] == 20, timeout=5,
                          message=lambda: 'notallowed == 20: %r' % self.counters())
        st = self.status()
        replays = [r for r in st['rejections']
                   if r['ip'] == '127.0.0.2' and 'replay' in r['reason']]
        self.assertTrue(replays, 'the replay record was wiped by 20 datagrams from outside '
                        'HeartbeatAllow: %r' % st['rejections'])
        self.assertNotIn('127.0.0.66', [r['ip'] for r in st['rejections']])
        self.assertIn('rejections_outside', st)
        self.assertTrue(st['rejections_outside'])
        self.assertEqual({r['ip'] for r in st['rejections_outside']}, {'127.0.0.66'})


if __name__ == '__main__':
    hbtest.main()
