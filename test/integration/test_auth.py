#!/usr/bin/python3
"""Authenticated heartbeats: only origins holding a key can steer traffic.

The test signs its own packets with Python's hmac module (an independent
implementation of HMAC-SHA256), so every rejection case can be built
exactly: unsigned, wrong key, modified field, replay, stale timestamp,
unknown key id; plus key rotation, migration mode, the source filter, the
rate cap, the POST handler, and a forged high `ready` that must not move
any request.
"""

import hashlib
import hmac
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

KEY_A = b'first-secret-key-0123456789abcdef'
KEY_B = b'second-secret-key-fedcba9876543210'

STATUS = """
<Location /hb-status>
    SetHandler heartbeat-status
</Location>
<Location /hb>
    SetHandler heartbeat
</Location>
"""


write_key = hbtest.write_key


def sign(body, key, kid, ts=None, addr='127.0.0.1'):
    """body signed as mod_heartbeat signs it: addr=<the address the packet
    is sent from> (after our other fields), then ts and kid inside the
    signed part, sig last. The tests send from 127.0.0.1 unless they say
    otherwise; addr=None signs as a sender older than addr= did."""
    ts = int(time.time() * 1000) if ts is None else ts
    if addr is not None:
        body = '%s&addr=%s' % (body, addr)
    body = '%s&ts=%d&kid=%s' % (body, ts, kid)
    return (body + '&sig=' + hmac.new(key, body.encode(), hashlib.sha256).hexdigest()).encode()


def sign_to_length(length, body, key, kid, addr='127.0.0.1'):
    """A signed packet of exactly `length` bytes, signature included: body
    padded with an unknown field (pad=, which parsers skip)."""
    ts = int(time.time() * 1000)
    short = sign(body + '&pad=', key, kid, ts=ts, addr=addr)
    packet = sign(body + '&pad=' + 'x' * (length - len(short)), key, kid, ts=ts, addr=addr)
    assert len(packet) == length, len(packet)
    return packet


class AuthCase(hbtest.HbTestCase):

    def monitor(self, keys, extra='', modules=()):
        self.hb_port = hbtest.free_port(kind='udp')
        m = self.httpd('monitor', modules=['watchdog', 'heartmonitor'] + list(modules))
        conf = 'HeartbeatListen 127.0.0.1:%d\n' % self.hb_port
        for name, material in keys:
            conf += 'HeartbeatSecret "%s"\n' % write_key(m, name + '.key', material)
        m.conf_body = conf + STATUS + extra
        return m

    def send(self, payload, source='127.0.0.1'):
        hbtest.send_udp('127.0.0.1', self.hb_port, payload, source=source)

    def status(self, m):
        return json.loads(m.get('/hb-status?json').body.decode())

    def entries(self, m):
        return {(s['ip'], s['port']): s for s in self.status(m)['servers']}

    def counter(self, m, name):
        return self.status(m)['counters'][name]

    def wait_counter(self, m, name, value):
        hbtest.wait_until(lambda: self.counter(m, name) == value, timeout=5,
                          message='%s == %d' % (name, value))


class RejectionTest(AuthCase):

    def test_every_rejection(self):
        m = self.monitor([('a', KEY_A)]).start()
        good = sign('v=1&ready=5&busy=0&port=8000&seq=100', KEY_A, 'a')
        self.send(good)
        hbtest.wait_until(lambda: ('127.0.0.1', 8000) in self.entries(m), timeout=5)
        e = self.entries(m)[('127.0.0.1', 8000)]
        self.assertEqual((e['ready'], e['signed']), (5, True))

        cases = [
            ('unsigned', b'v=1&ready=99&busy=0&port=8000&seq=101'),
            ('badsig', sign('v=1&ready=99&busy=0&port=8000&seq=102', KEY_B, 'a')),
            ('badsig', good.replace(b'ready=5', b'ready=9')),   # modified field
            ('badsig', sign('v=1&ready=99&busy=0&port=8000&seq=103', KEY_A, 'zz')),  # kid
            ('replay', good),                                       # same packet again
            ('replay', sign('v=1&ready=99&busy=0&port=8000&seq=99', KEY_A, 'a')),
            ('clock_skew', sign('v=1&ready=99&busy=0&port=8000&seq=104', KEY_A, 'a',
                                ts=int(time.time() * 1000) - 60000)),
            ('clock_skew', sign('v=1&ready=99&busy=0&port=8000&seq=105', KEY_A, 'a',
                                ts=int(time.time() * 1000) + 60000)),
        ]
        expected = {}
        for reason, packet in cases:
            self.send(packet)
            expected[reason] = expected.get(reason, 0) + 1
            self.wait_counter(m, reason, expected[reason])
        self.assertEqual(self.counter(m, 'rejected'), len(cases))
        e = self.entries(m)[('127.0.0.1', 8000)]
        self.assertEqual((e['ready'], e['seq'], e['packets']), (5, 100, 1))
        reasons = [r['reason'] for r in self.status(m)['rejections']]
        self.assertIn('replayed (sequence not newer)', reasons)
        self.assertIn('timestamp outside the window', reasons)

        # A signed packet without seq could be replayed forever: refused.
        self.send(sign('v=1&ready=99&busy=0&port=8000', KEY_A, 'a'))
        self.wait_counter(m, 'malformed', 1)
        # A newer signed one is accepted.
        self.send(sign('v=1&ready=7&busy=0&port=8000&seq=200', KEY_A, 'a'))
        hbtest.wait_until(lambda: self.entries(m)[('127.0.0.1', 8000)]['ready'] == 7, timeout=5)

    def test_signed_datagram_length_limit(self):
        """The 1,400-byte limit is the whole datagram's, signature included:
        1,400 bytes are accepted, 1,401 and 1,402 (which the receive buffer
        still holds whole) refused."""
        m = self.monitor([('a', KEY_A)]).start()
        seq = int(time.time() * 1000)

        def packet(length, ready, n):
            return sign_to_length(length, 'v=1&ready=%d&busy=0&port=8000&seq=%d'
                                  % (ready, seq + n), KEY_A, 'a')
        self.send(packet(1400, 1, 1))
        hbtest.wait_until(lambda: ('127.0.0.1', 8000) in self.entries(m), timeout=5,
                          message='1,400 signed bytes accepted')
        self.send(packet(1401, 2, 2))
        self.send(packet(1402, 3, 3))
        # Too long: malformed (as an unsigned one of that size is).
        hbtest.wait_until(lambda: self.counter(m, 'malformed') == 2, timeout=5,
                          message=lambda: '1,401 and 1,402 bytes refused: %r'
                          % self.status(m)['counters'])
        e = self.entries(m)[('127.0.0.1', 8000)]
        self.assertEqual((e['ready'], e['packets']), (1, 1))
        # Refused for their length, not lost: the next one of 1,400 passes.
        self.send(packet(1400, 4, 4))
        hbtest.wait_until(lambda: self.entries(m)[('127.0.0.1', 8000)]['ready'] == 4, timeout=5)
        self.assertEqual(self.counter(m, 'malformed'), 2)
        self.assertEqual(self.counter(m, 'rejected'), 0)

    def test_post_follows_the_same_rules(self):
        m = self.monitor([('a', KEY_A)]).start()
        r = m.post('/hb', b'v=1&ready=3&busy=0&port=9000&seq=1')
        self.assertEqual(r.status, 403)
        self.assertIn(b'unsigned', r.body)
        r = m.post('/hb', sign('v=1&ready=3&busy=0&port=9000&seq=1', KEY_B, 'a'))
        self.assertEqual(r.status, 403)
        good = sign('v=1&ready=3&busy=0&port=9000&seq=2', KEY_A, 'a')
        self.assertEqual(m.post('/hb', good).status, 200)
        self.assertEqual(m.post('/hb', good).status, 403)  # replay
        e = self.entries(m)[('127.0.0.1', 9000)]
        self.assertEqual((e['ready'], e['signed'], e['via']), (3, True, 'http'))


class RotationTest(AuthCase):

    def test_two_keys_then_one(self):
        m = self.monitor([('old', KEY_A), ('new', KEY_B)]).start()
        self.send(sign('v=1&ready=1&busy=0&port=1&seq=1', KEY_A, 'old'))
        self.send(sign('v=1&ready=2&busy=0&port=2&seq=1', KEY_B, 'new'))
        hbtest.wait_until(lambda: len(self.entries(m)) == 2, timeout=5,
                          message='both keys accepted')
        # The old key is retired: a graceful restart with only the new one.
        m.conf_body = '\n'.join(l for l in m.conf_body.splitlines() if 'old.key' not in l)
        m.graceful_restart()
        # Just after a graceful restart the old generation's receiver may
        # still take a packet with the old keys: resend (same ready, newer
        # seq) until the new one refuses it.
        seq = [1]

        def refused():
            seq[0] += 1
            self.send(sign('v=1&ready=1&busy=0&port=1&seq=%d' % seq[0], KEY_A, 'old'))
            return self.counter(m, 'badsig') >= 1
        hbtest.wait_until(refused, timeout=10, interval=0.2, message='old key refused')
        self.send(sign('v=1&ready=8&busy=0&port=2&seq=2', KEY_B, 'new'))
        hbtest.wait_until(lambda: self.entries(m)[('127.0.0.1', 2)]['ready'] == 8, timeout=5)
        self.assertEqual(self.entries(m)[('127.0.0.1', 1)]['ready'], 1)

    def test_sender_signs_and_monitor_verifies(self):
        m = self.monitor([('site', KEY_A)]).start()
        origin = self.httpd('origin', modules=['watchdog', 'heartbeat'])
        origin.conf_body = ('HeartbeatAddress 127.0.0.1:%d\nHeartbeatInterval 100ms\n'
                            'HeartbeatSecret "%s"\n'
                            % (self.hb_port, write_key(origin, 'site.key', KEY_A)))
        origin.start()
        hbtest.wait_until(lambda: ('127.0.0.1', origin.port) in self.entries(m), timeout=10,
                          message='signed origin in the table')
        e = self.entries(m)[('127.0.0.1', origin.port)]
        self.assertTrue(e['signed'])
        # Many packets, none refused (sequence numbers keep rising).
        hbtest.wait_until(lambda: self.entries(m)[('127.0.0.1', origin.port)]['packets'] >= 10,
                          timeout=10)
        self.assertEqual(self.counter(m, 'rejected'), 0)
        # A graceful restart of the origin keeps its packets newer.
        origin.graceful_restart()
        before = self.entries(m)[('127.0.0.1', origin.port)]['packets']
        hbtest.wait_until(
            lambda: self.entries(m)[('127.0.0.1', origin.port)]['packets'] >= before + 5,
            timeout=10)
        self.assertEqual(self.counter(m, 'rejected'), 0)


class MigrationTest(AuthCase):

    def test_migrate_mode(self):
        m = self.monitor([('a', KEY_A)], 'HeartbeatAuthMode migrate\n').start()
        self.send(b'v=1&ready=4&busy=0&port=1&seq=1')
        self.send(sign('v=1&ready=5&busy=0&port=2&seq=1', KEY_A, 'a'))
        hbtest.wait_until(lambda: len(self.entries(m)) == 2, timeout=5)
        t = self.entries(m)
        self.assertFalse(t[('127.0.0.1', 1)]['signed'])
        self.assertTrue(t[('127.0.0.1', 2)]['signed'])
        self.assertIn('<b>no</b>', m.get('/hb-status').body.decode())
        # Bad signatures are still refused in migration mode...
        self.send(sign('v=1&ready=50&busy=0&port=1&seq=2', KEY_B, 'a'))
        self.wait_counter(m, 'badsig', 1)
        # ...and once an origin has signed, unsigned packets cannot speak for it.
        self.send(b'v=1&ready=50&busy=0&port=2&seq=9')
        self.wait_counter(m, 'unsigned', 1)
        self.assertEqual(self.entries(m)[('127.0.0.1', 2)]['ready'], 5)

        # Migration over: unsigned refused.
        m.conf_body = m.conf_body.replace('HeartbeatAuthMode migrate\n', '')
        m.graceful_restart()
        # The old generation's receiver may still apply the old (migrate)
        # setting for a moment: resend until the new one refuses.

        def refused():
            self.send(b'v=1&ready=4&busy=0&port=1&seq=3')
            return self.counter(m, 'unsigned') >= 2
        hbtest.wait_until(refused, timeout=10, interval=0.2, message='unsigned refused')
        self.assertEqual(self.entries(m)[('127.0.0.1', 1)]['ready'], 4)


class MigrationBalancerTest(AuthCase):
    """Migration mode, balancer side: a member heard signed is never spoken
    for by an unsigned entry afterwards, such as the portless one (a stock
    sender's) that anyone sending from its address can make once its
    signed entry has expired."""

    def test_no_unsigned_fallback_after_signed(self):
        a = self.httpd('a')
        a.add_file('who', 'a\n')
        b = self.httpd('b')
        b.add_file('who', 'b\n')
        a.start()
        b.start()
        m = self.monitor([('k', KEY_A)], 'HeartbeatAuthMode migrate\nHeartbeatExpiry 1\n',
                         modules=['proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm',
                                  'lbmethod_byrequests', 'lbmethod_heartbeat'])
        m.conf_body += """
HeartbeatWarmUp 0
<Proxy balancer://b>
    BalancerMember http://127.0.0.1:%d
    BalancerMember http://127.0.0.1:%d
    ProxySet lbmethod=heartbeat
</Proxy>
ProxyPass /app balancer://b
""" % (a.port, b.port)
        m.allowed_errors = [r'AH01170']     # 503s while no member is usable
        m.start()
        seq = [int(time.time() * 1000)]

        def beat(*members):
            for port, ready in members:
                seq[0] += 1
                self.send(sign('v=1&ready=%d&busy=0&port=%d&seq=%d&int=100'
                               % (ready, port, seq[0]), KEY_A, 'k'))

        def who(n):
            return [m.get('/app/who').body.decode().strip() for _ in range(n)]

        # Both signed; a reports more room and gets the requests.
        beat((a.port, 5), (b.port, 1))
        hbtest.wait_until(lambda: len(self.entries(m)) == 2, timeout=5)
        self.assertEqual(who(3), ['a'] * 3)

        # a goes silent: its entry expires (b keeps reporting).
        def a_expired():
            beat((b.port, 1))
            return ('127.0.0.1', a.port) not in self.entries(m)
        hbtest.wait_until(a_expired, timeout=10, interval=0.1, message='a expired')

        # An unsigned heartbeat without port= from a's address, as a stock
        # sender (or anyone on that host) sends: a portless entry, which
        # the balancer used to take for any member of that address.
        self.send(b'v=1&ready=1000&busy=0')
        hbtest.wait_until(lambda: ('127.0.0.1', 80) in self.entries(m), timeout=5,
                          message='portless unsigned entry')
        self.assertFalse(self.entries(m)[('127.0.0.1', 80)]['signed'])
        beat((b.port, 1))
        self.assertEqual(who(10), ['b'] * 10)
        m.wait_log(r'LB0312: BalancerMember http://127\.0\.0\.1:%d ' % a.port, timeout=5)

        # Signed again, a is used again.
        beat((a.port, 5), (b.port, 1))
        hbtest.wait_until(lambda: who(1) == ['a'], timeout=5, message='a back once signed')


class AdmissionTest(AuthCase):

    def test_allow_and_rate_limit(self):
        m = self.monitor([], 'HeartbeatAllow 127.0.0.1 127.0.0.16/28\nHeartbeatRateLimit 5\n')
        m.start()
        self.send(b'v=1&ready=1&busy=0&port=1', source='127.0.0.1')
        self.send(b'v=1&ready=1&busy=0&port=2', source='127.0.0.17')
        self.send(b'v=1&ready=1&busy=0&port=3', source='127.0.0.9')
        hbtest.wait_until(lambda: self.counter(m, 'notallowed') == 1 and
                          len(self.entries(m)) == 2, timeout=5)
        self.assertNotIn(('127.0.0.9', 3), self.entries(m))
        # 5/s with a burst of 10: of 60 at once, about 10 pass.
        for i in range(60):
            self.send(b'v=1&ready=%d&busy=0&port=4' % i, source='127.0.0.18')
        hbtest.wait_until(lambda: self.counter(m, 'accepted') +
                          self.counter(m, 'ratelimited') >= 62, timeout=5)
        limited = self.counter(m, 'ratelimited')
        self.assertTrue(45 <= limited <= 51, limited)
        # Another source is not affected.
        self.send(b'v=1&ready=3&busy=0&port=5', source='127.0.0.1')
        hbtest.wait_until(lambda: ('127.0.0.1', 5) in self.entries(m), timeout=5)


class ForgeryTest(AuthCase):
    """A forged ready=1000000 never changes where requests go."""

    def test_forged_ready_is_ignored(self):
        a = self.httpd('a')
        a.add_file('who', 'a\n')
        b = self.httpd('b')
        b.add_file('who', 'b\n')
        a.start()
        b.start()
        m = self.monitor([('k', KEY_A)], modules=[
            'proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm', 'lbmethod_byrequests',
            'lbmethod_heartbeat'])
        m.conf_body += """
<Proxy balancer://b>
    BalancerMember http://127.0.0.1:%d
    BalancerMember http://127.0.0.1:%d
    ProxySet lbmethod=heartbeat
</Proxy>
ProxyPass /app balancer://b
""" % (a.port, b.port)
        m.start()
        seq = [int(time.time() * 1000)]

        def beat():
            for port, ready in ((a.port, 5), (b.port, 1)):
                seq[0] += 1
                self.send(sign('v=1&ready=%d&busy=0&port=%d&seq=%d&int=100'
                               % (ready, port, seq[0]), KEY_A, 'k'))

        def who(n):
            return [m.get('/app/who').body.decode().strip() for _ in range(n)]
        beat()
        hbtest.wait_until(lambda: len(self.entries(m)) == 2, timeout=5)
        self.assertEqual(who(4), ['a'] * 4)
        forged = [
            # from the member's own address, unsigned, signed with a guess, replayed
            ('127.0.0.1', b'v=1&ready=1000000&busy=0&port=%d&seq=%d' % (b.port, seq[0] + 50)),
            ('127.0.0.1', sign('v=1&ready=1000000&busy=0&port=%d&seq=%d'
                               % (b.port, seq[0] + 51), b'guessed-key-material-xxxx', 'k')),
            # from a non-member address
            ('127.0.0.66', b'v=1&ready=1000000&busy=0&port=%d&seq=%d' % (b.port, seq[0] + 52)),
        ]
        for source, packet in forged:
            self.send(packet, source=source)
        hbtest.wait_until(lambda: self.counter(m, 'rejected') == len(forged), timeout=5)
        beat()
        self.assertEqual(who(6), ['a'] * 6)
        self.assertEqual(self.entries(m)[('127.0.0.1', b.port)]['ready'], 1)
        self.assertNotIn(('127.0.0.66', b.port), self.entries(m))


class ConfigTest(AuthCase):

    def test_bad_configs(self):
        probe = self.httpd('probe', modules=['watchdog', 'heartmonitor'])
        ok_key = write_key(probe, 'ok.key', KEY_A)
        loose = write_key(probe, 'loose.key', KEY_A, mode=0o644)
        short = write_key(probe, 'short.key', b'tiny')
        for body, words in [
                ('HeartbeatSecret %s' % KEY_A.decode(), 'never the key itself'),
                ('HeartbeatSecret "%s"' % loose, 'chmod 600'),
                ('HeartbeatSecret "%s"' % short, 'bytes of key'),
                ('HeartbeatSecret "%s" "bad id"' % ok_key, 'key id'),
                ('HeartbeatSecret "%s" x\nHeartbeatSecret "%s" x' % (ok_key, ok_key), 'twice'),
                ('HeartbeatAuthMode sometimes', 'required or migrate'),
                ('HeartbeatAuthWindow 0', 'HeartbeatAuthWindow'),
                ('HeartbeatAllow example.com', 'not an IP address'),
                ('HeartbeatAllow 10.0.0.0/99', 'not an IP address'),
                # APR's shorthand took these for 10.0.0.0/8, 10.1.0.0/16 ...
                ('HeartbeatAllow 10', "HeartbeatAllow: '10' is not a whole IPv4 address"),
                ('HeartbeatAllow 10.1', "HeartbeatAllow: '10.1' is not a whole IPv4 address"),
                ('HeartbeatAllow 10.0.0', "HeartbeatAllow: '10.0.0' is not a whole IPv4"),
                ('HeartbeatAllow 127.0.0.1 10/8', "HeartbeatAllow: '10/8'"),
                ('HeartbeatRateLimit fast', 'packets per second')]:
            with self.subTest(body=body):
                probe.conf_body = body + '\n'
                rc, out = probe.config_test()
                self.assertNotEqual(rc, 0, body)
                self.assertIn(words, out)
                # A key pasted in place of its file's path is never repeated.
                self.assertNotIn(KEY_A.decode()[-16:], out)
        probe.conf_body = ('HeartbeatSecret "%s"\nHeartbeatAllow ::1 10.0.0.0/8 '
                           '127.0.0.1 2001:db8::/32\n' % ok_key)
        rc, out = probe.config_test()
        self.assertEqual(rc, 0, out)
        # The sender refuses the same mistakes.
        sender = self.httpd('sender', 'HeartbeatAddress 127.0.0.1:9\nHeartbeatSecret "%s"\n'
                            % loose, modules=['watchdog', 'heartbeat'])
        rc, out = sender.config_test()
        self.assertNotEqual(rc, 0)
        self.assertIn('chmod 600', out)
        sender.conf_body = 'HeartbeatAddress 127.0.0.1:9\nHeartbeatSecret %s\n' % KEY_B.decode()
        rc, out = sender.config_test()
        self.assertNotEqual(rc, 0)
        self.assertIn('never the key itself', out)
        self.assertNotIn(KEY_B.decode()[-16:], out)


if __name__ == '__main__':
    hbtest.main()
