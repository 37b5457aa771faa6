#!/usr/bin/python3
"""Dynamic membership (HeartbeatJoin, issue 18): origins whose signed
heartbeats announce a balancer (join=NAME) become its members at run time,
with no BalancerMember line and no restart.

Origins are plain httpd processes on 127.0.0.x (one address per origin,
the same port), each serving a file that names it. Their heartbeats are
signed here with Python's hmac (as in test_identity.py) and sent from the
origin's own address, so each test controls exactly what is announced and
when; one test uses a real mod_heartbeat origin end to end.
"""

import collections
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

HBCTL = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tools', 'hbctl')
KEY = b'join-test-key-0123456789abcdef-xyz'
KID = 'site'

PROXY = ['proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm', 'lbmethod_heartbeat']

STATUS = """
<Location /hb-status>
    SetHandler heartbeat-status
</Location>
"""


def now_ms():
    return int(time.time() * 1000)


def sign(body, key=KEY, kid=KID):
    body = '%s&ts=%d&kid=%s' % (body, now_ms(), kid)
    return (body + '&sig=' + hmac.new(key, body.encode(), hashlib.sha256).hexdigest()).encode()


port_free_on = hbtest.port_free_on


class Origin:
    """An origin's heartbeats: seq grows, sent from its own address."""

    def __init__(self, case, ip, port, join='shop'):
        self.case, self.ip, self.port, self.join = case, ip, port, join
        self.seq = now_ms()
        self.ready = 10
        self.state = 'up'
        self.key = KEY

    def packet(self):
        self.seq += 1
        body = 'v=1&ready=%d&busy=0&port=%d&seq=%d&int=200&state=%s' % (
            self.ready, self.port, self.seq, self.state)
        if self.join:
            body += '&join=' + self.join
        body += '&addr=' + self.ip
        return sign(body, key=self.key)

    def beat(self):
        if ':' in self.ip:
            hbtest.send_udp('::1', self.case.hb_port6, self.packet(), source=self.ip)
        else:
            hbtest.send_udp('127.0.0.1', self.case.hb_port, self.packet(), source=self.ip)


class Beater:
    """Sends every origin's heartbeat every 200 ms until closed."""

    def __init__(self, origins):
        self.origins = list(origins)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop.is_set():
            with self.lock:
                for o in self.origins:
                    o.beat()
            self.stop.wait(0.2)

    def add(self, o):
        with self.lock:
            self.origins.append(o)

    def remove(self, o):
        with self.lock:
            self.origins.remove(o)

    def close(self):
        self.stop.set()
        self.t.join()


class JoinCase(hbtest.HbTestCase):

    GROWTH = 4

    def proxy(self, section_extra='', extra='', key=True, growth=None, name='shop',
              allowed_errors=()):
        self.hb_port = hbtest.free_port(kind='udp')
        # AH01171: requests before any origin joined find no member.
        p = self.httpd('proxy', modules=['heartmonitor'] + PROXY,
                       log_level_extra='lbmethod_heartbeat:info',
                       allowed_errors=[r'AH01171: balancer://\w+: No workers in balancer']
                       + list(allowed_errors))
        conf = 'HeartbeatListen 127.0.0.1:%d\n' % self.hb_port
        if key:
            conf += 'HeartbeatSecret "%s" %s\n' % (hbtest.write_key(p, 'site.key', KEY), KID)
        conf += STATUS + """
<Proxy balancer://%s>
    ProxySet lbmethod=heartbeat%s
    HeartbeatJoin on
%s
</Proxy>
ProxyPass /shop balancer://%s
%s
""" % (name, ' growth=%d' % (self.GROWTH if growth is None else growth) if growth != 0 else '',
       section_extra, name, extra)
        p.conf_body = conf
        self.p = p
        return p

    def origins(self, n):
        ips = ['127.0.0.%d' % (i + 2) for i in range(n)]
        port = port_free_on(ips)
        out = []
        for i, ip in enumerate(ips):
            o = self.httpd('o%d' % i, listen=[(ip, port)])
            o.add_file('who', 'o%d\n' % i)
            o.start()
            out.append(Origin(self, ip, port))
            out[-1].httpd = o
        return out

    def who(self, n=1):
        c = collections.Counter()
        for _ in range(n):
            r = self.p.get('/shop/who')
            c[r.body.decode().strip() if r.status == 200 else r.status] += 1
        return c

    def status(self):
        r = self.p.get('/hb-status?json')
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body.decode())

    def members(self):
        return {m['member']: m for m in self.status().get('members', [])}

    def wait_serving(self, names, timeout=5):
        """Until requests reach every origin named (and only those)."""
        def ok():
            seen = self.who(4 * len(names))
            return seen if set(seen) == set(names) else None
        return hbtest.wait_until(ok, timeout=timeout,
                                 message=lambda: 'requests spread over %s: %r; members %r'
                                 % (names, self.who(8), self.members()))


class JoinTest(JoinCase):

    def test_origins_join_within_two_intervals(self):
        self.proxy().start()
        a, b = self.origins(2)
        self.assertEqual(self.who(2), {503: 2}, 'no member before any announcement')
        t0 = time.monotonic()
        a.beat()
        b.beat()
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o0', 'o1'}, timeout=3)
        took = time.monotonic() - t0
        # Two intervals of the origins' 200 ms, plus the time to ask.
        self.assertLess(took, 2.0, 'joining took %.2f s' % took)
        ms = self.members()
        joined = {k: v['joined'] for k, v in ms.items()}
        self.assertEqual(joined, {'http://127.0.0.2:%d' % a.port: 'joined',
                                  'http://127.0.0.3:%d' % a.port: 'joined'}, ms)
        self.p.wait_log(r'LB0315: http://127\.0\.0\.2:%d joined balancer://shop' % a.port)
        out = subprocess.run([HBCTL, 'members', self.p.url('/hb-status')], check=True,
                             capture_output=True, text=True).stdout
        self.assertRegex(out, r'balancer://shop +http://127\.0\.0\.2:%d +joined +no' % a.port)
        self.assertIn('balancer://shop: 2 joined, 0 left, 0 refused', out)
        out = subprocess.run([HBCTL, 'table', self.p.url('/hb-status')], check=True,
                             capture_output=True, text=True).stdout
        self.assertRegex(out, r'127\.0\.0\.3 +%d .* yes +shop\n' % a.port)

    def test_static_and_joined_members_mixed(self):
        a, b = self.origins(2)
        self.proxy(section_extra='    BalancerMember http://%s:%d' % (a.ip, a.port)).start()
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o0', 'o1'})
        joined = {k: v['joined'] for k, v in self.members().items()}
        self.assertEqual(joined, {'http://127.0.0.2:%d' % a.port: 'static',
                                  'http://127.0.0.3:%d' % a.port: 'joined'})

    def test_every_child_uses_joined_members(self):
        self.proxy(extra='StartServers 3\nMinSpareThreads 75\nThreadsPerChild 25\n').start()
        (a,) = self.origins(1)
        beater = Beater([a])
        self.addCleanup(beater.close)
        self.wait_serving({'o0'})
        # Many parallel requests land on several children; none may 503.
        results = collections.Counter()
        lock = threading.Lock()

        def hammer():
            for _ in range(20):
                r = self.p.get('/shop/who')
                with lock:
                    results[r.status] += 1
        ts = [threading.Thread(target=hammer) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(results, {200: 160})

    def test_wrong_key_and_unsigned_never_join(self):
        self.proxy().start()
        a, b, c = self.origins(3)
        a.key = b'not-the-key-' + KEY
        beater = Beater([a, c])
        self.addCleanup(beater.close)
        # b announces without a signature at all.
        stop = threading.Event()

        def unsigned_b():
            while not stop.is_set():
                hbtest.send_udp('127.0.0.1', self.hb_port,
                                ('v=1&ready=50&busy=0&port=%d&join=shop' % b.port).encode(),
                                source=b.ip)
                stop.wait(0.2)
        t = threading.Thread(target=unsigned_b, daemon=True)
        t.start()
        self.addCleanup(lambda: (stop.set(), t.join()))
        self.wait_serving({'o2'})
        self.assertEqual(set(self.who(30)), {'o2'})
        self.assertEqual(set(self.members()), {'http://127.0.0.4:%d' % c.port})

    def test_outside_allow_never_joins(self):
        self.proxy(extra='HeartbeatAllow 127.0.0.3/32\n').start()
        a, b = self.origins(2)
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o1'})
        time.sleep(0)  # the beater has sent a's announcements all along
        self.assertEqual(set(self.who(20)), {'o1'})
        self.assertNotIn('http://127.0.0.2:%d' % a.port, self.members())

    def test_other_balancer_name_does_not_join(self):
        self.proxy().start()
        a, b = self.origins(2)
        a.join = 'other'
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o1'})
        self.assertEqual(set(self.who(20)), {'o1'})

    def test_announcing_another_port_moves_the_member(self):
        self.proxy().start()
        (a,) = self.origins(1)
        beater = Beater([a])
        self.addCleanup(beater.close)
        self.wait_serving({'o0'})
        old, new = 'http://127.0.0.2:%d' % a.port, 'https://127.0.0.2:8443'
        a.join = 'shop:https:8443'
        hbtest.wait_until(lambda: {k: v['joined'] for k, v in self.members().items()}
                          == {old: 'left', new: 'joined'}, timeout=5,
                          message=lambda: self.members())

    def test_stopping_origin_is_drained_at_once(self):
        self.proxy().start()
        a, b = self.origins(2)
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o0', 'o1'})
        a.state = 'stopping'
        a.beat()
        hbtest.wait_until(lambda: set(self.who(10)) == {'o1'}, timeout=2,
                          message=lambda: 'a stopping origin still gets requests: %r'
                          % self.who(10))

    def test_full_balancer_refuses_and_says_so(self):
        self.GROWTH = 2
        self.proxy(growth=2).start()
        os_ = self.origins(3)
        beater = Beater(os_)
        self.addCleanup(beater.close)
        hbtest.wait_until(lambda: len(set(self.who(12))) == 2, timeout=5,
                          message=lambda: 'two members: %r' % self.who(12))
        self.p.wait_log(r'LB0316: .* cannot join balancer://shop: all its 2 slots are taken '
                        r'\(raise ProxySet growth=N')
        st = self.status()
        bal = {b['balancer']: b for b in st['balancers']}['balancer://shop']
        self.assertGreaterEqual(bal['join_full'], 1, bal)
        self.assertEqual(bal['joined'], 2, bal)
        self.assertEqual(len(self.members()), 2)
        prom = self.p.get('/hb-status?prometheus').body.decode()
        self.assertRegex(prom, r'heartbeat_balancer_join_refused_total\{balancer="balancer://shop"\} [1-9]')
        self.assertRegex(prom, r'heartbeat_balancer_joined_total\{balancer="balancer://shop"\} 2\b')
        self.assertRegex(prom, r'heartbeat_member_info\{balancer="balancer://shop",member="http://127\.0\.0\.\d:\d+",joined="joined"\} 1')
        html = self.p.get('/hb-status').body.decode()
        self.assertRegex(html, r'every slot taken: raise ProxySet growth')
        auto = self.p.get('/hb-status?auto').body.decode()
        self.assertRegex(auto, r'Member: balancer://shop http://127\.0\.0\.\d:\d+ joined=joined ')

    def test_silent_member_disabled_and_slot_reused_when_it_returns(self):
        self.proxy(section_extra='    HeartbeatJoinExpire 2s').start()
        a, b = self.origins(2)
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o0', 'o1'})
        beater.remove(a)
        # Unusable after its max age (3 intervals + 0.5 s), disabled after 2 s.
        hbtest.wait_until(lambda: set(self.who(10)) == {'o1'}, timeout=3)
        key = 'http://127.0.0.2:%d' % a.port
        hbtest.wait_until(lambda: self.members()[key]['joined'] == 'left',
                          timeout=8, message=lambda: self.members())
        self.p.wait_log(r'LB0317: the member in slot \d+ of balancer://shop is disabled')
        beater.add(a)
        self.wait_serving({'o0', 'o1'})
        ms = self.members()
        self.assertEqual(ms[key]['joined'], 'joined', ms)
        self.assertEqual(len(ms), 2, 'the returning origin took its own slot again: %r' % ms)


    def test_member_in_error_serves_again_when_it_joins_again(self):
        # The origin's server goes down: mod_proxy puts its member in error
        # state (retry: 60 s). It stops announcing, so it leaves; when it
        # is back and announces again, it serves at once.
        self.proxy(allowed_errors=[r'AH00957', r'AH00959', r'AH01114', r'AH00940',
                                   r'AH01170']).start()
        a, b = self.origins(2)
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o0', 'o1'})
        a.httpd.shutdown()
        self.p.get('/shop/who')
        hbtest.wait_until(lambda: set(self.who(6)) == {'o1'}, timeout=5)
        self.p.wait_log(r'AH00959: ap_proxy_connect_backend disabling worker for '
                        r'\(127\.0\.0\.2:%d\)' % a.port)
        key = 'http://127.0.0.2:%d' % a.port
        a.join = None
        hbtest.wait_until(lambda: self.members()[key]['joined'] == 'left',
                          timeout=5, message=lambda: self.members())
        a.httpd.start()
        a.join = 'shop'
        self.wait_serving({'o0', 'o1'}, timeout=5)


class JoinTopologyTest(JoinCase):
    """Several balancers, virtual hosts that inherit a balancer, several
    proxies, IPv6, and the operator's views."""

    def test_two_balancers_each_gets_its_announcers(self):
        self.proxy(extra="""
<Proxy balancer://api>
    ProxySet lbmethod=heartbeat growth=4
    HeartbeatJoin on
</Proxy>
ProxyPass /api balancer://api
""").start()
        a, b = self.origins(2)
        a.join = 'shop,api'
        b.join = 'api'
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o0'})
        hbtest.wait_until(
            lambda: set(self.p.get('/api/who').body.decode().strip() for _ in range(10))
            == {'o0', 'o1'}, timeout=5)
        ms = self.status()['members']
        self.assertEqual(sorted((m['balancer'], m['member']) for m in ms),
                         [('balancer://api', 'http://127.0.0.2:%d' % a.port),
                          ('balancer://api', 'http://127.0.0.3:%d' % a.port),
                          ('balancer://shop', 'http://127.0.0.2:%d' % a.port)])
        # The table shows what each origin announced, by name.
        servers = {s['ip']: s for s in self.status()['servers']}
        self.assertEqual([j['balancer'] for j in servers['127.0.0.2']['join']],
                         ['balancer://shop', 'balancer://api'])

    def test_virtual_host_copy_of_the_balancer(self):
        vport = hbtest.free_port()
        self.proxy(extra="""
Listen 127.0.0.1:%d
<VirtualHost 127.0.0.1:%d>
    ProxyPass /v balancer://shop
</VirtualHost>
""" % (vport, vport))
        # A ProxyPass in a virtual host defines the balancer there too
        # (with mod_proxy's default lbmethod) before it inherits the main
        # server's: requests use the inherited copy, found first.
        self.p.modules.append('lbmethod_byrequests')
        self.p.start()
        a, b = self.origins(2)
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o0', 'o1'})
        # The virtual host routes through its own copy of the balancer
        # (BalancerInherit): the same members, the same slots.
        url = 'http://127.0.0.1:%d/v/who' % vport
        hbtest.wait_until(lambda: set(hbtest.get(url).body.decode().strip()
                                      for _ in range(10)) == {'o0', 'o1'}, timeout=5)

    def test_two_proxies_each_let_the_origins_join(self):
        p1 = self.proxy().start()
        port1 = self.hb_port
        self.p = None
        p2 = self.proxy().start()
        a, b = self.origins(2)

        class Both(Origin):
            def beat(o):
                for port in (port1, self.hb_port):
                    hbtest.send_udp('127.0.0.1', port, o.packet(), source=o.ip)
        for o in (a, b):
            o.__class__ = Both
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        for px in (p1, p2):
            self.p = px
            self.wait_serving({'o0', 'o1'})

    def test_ipv6_origin_joins(self):
        if not hbtest.ipv6_available():
            self.skipTest('no IPv6 on loopback')
        self.hb_port6 = hbtest.free_port('::1', kind='udp')
        self.proxy(extra='HeartbeatListen [::1]:%d\n' % self.hb_port6)
        self.p.start()
        port = hbtest.free_port('::1')
        o = self.httpd('o6', listen=[('::1', port)])
        o.add_file('who', 'o6\n')
        o.start()
        six = Origin(self, '::1', port)
        beater = Beater([six])
        self.addCleanup(beater.close)
        self.wait_serving({'o6'})
        self.assertIn('http://[::1]:%d' % port, self.members())

    def test_drained_origin_gets_nothing_and_balancer_manager_shows_members(self):
        self.proxy(extra="""
<Location /balancer-manager>
    SetHandler balancer-manager
</Location>
""", allowed_errors=[r'AH10187'])
        self.p.modules.append('status')
        self.p.start()
        a, b = self.origins(2)
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o0', 'o1'})
        page = self.p.get('/balancer-manager').body.decode()
        for o in (a, b):
            self.assertIn('http://%s:%d' % (o.ip, o.port), page)
        # hbctl drain on the origin makes it report state=drain.
        a.state = 'drain'
        hbtest.wait_until(lambda: set(self.who(10)) == {'o1'}, timeout=3)
        a.state = 'up'
        self.wait_serving({'o0', 'o1'})
        # balancer-manager's Drain on a joined member, as on any member.
        nonce = re.search(r'nonce=([0-9a-f-]+)', page).group(1)
        member = 'http://%s:%d' % (a.ip, a.port)
        r = self.p.post('/balancer-manager',
                        ('b=shop&w=%s&w_status_N=1&nonce=%s' % (member, nonce)).encode(),
                        headers={'Referer': self.p.url('/balancer-manager'),
                                 'Content-Type': 'application/x-www-form-urlencoded'})
        self.assertEqual(r.status, 200, r.body)
        hbtest.wait_until(lambda: set(self.who(10)) == {'o1'}, timeout=3,
                          message=lambda: 'balancer-manager drained %s: %r' % (member, self.who(10)))


class JoinRestartTest(JoinCase):

    def test_graceful_restart_keeps_joined_members_serving(self):
        self.proxy().start()
        a, b = self.origins(2)
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o0', 'o1'})
        results = collections.Counter()
        stop = threading.Event()
        lock = threading.Lock()

        def load():
            while not stop.is_set():
                r = self.p.get('/shop/who')
                with lock:
                    results[r.status] += 1
        ts = [threading.Thread(target=load) for _ in range(4)]
        for t in ts:
            t.start()
        try:
            # The table survives; the balancer's slots are made anew and
            # filled from it before the new children serve.
            self.p.graceful_restart()
            for _ in range(20):
                r = self.p.get('/shop/who')
                with lock:
                    results[r.status] += 1
        finally:
            stop.set()
            for t in ts:
                t.join()
        self.assertEqual(set(results), {200}, 'failed requests across the restart: %r' % results)
        self.assertGreater(results[200], 40)
        # Put back by the parent from the table, before the new children ran.
        self.p.wait_log(r'\[pid %d:tid \d+\] LB0315: http://127\.0\.0\.2:%d joined'
                        % (self.p.pid, a.port))
        self.assertEqual(set(self.members()), {'http://127.0.0.2:%d' % a.port,
                                               'http://127.0.0.3:%d' % a.port})

    def test_full_restart_rejoins_within_two_intervals(self):
        self.proxy().start()
        a, b = self.origins(2)
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o0', 'o1'})
        self.p.stop()
        self.p.start()
        t0 = time.monotonic()
        self.wait_serving({'o0', 'o1'}, timeout=3)
        self.assertLess(time.monotonic() - t0, 2.0)


class JoinReuseTest(JoinCase):

    GROWTH = 2

    def test_slot_of_a_gone_origin_goes_to_a_new_one_and_never_to_two(self):
        self.proxy(growth=2, section_extra='    HeartbeatJoinExpire 2s').start()
        a, b, c = self.origins(3)
        beater = Beater([a, b])
        self.addCleanup(beater.close)
        self.wait_serving({'o0', 'o1'})
        beater.remove(a)
        beater.add(c)      # no slot for c yet: refused as full
        self.p.wait_log(r'LB0316: http://127\.0\.0\.4:\d+ cannot join')
        hbtest.wait_until(lambda: set(self.who(10)) == {'o1'}, timeout=3)
        # a is disabled after 2 s, and its slot goes to c 2 s later.
        self.wait_serving({'o1', 'o2'}, timeout=8)
        self.p.wait_log(r'LB0315: http://127\.0\.0\.4:\d+ joined balancer://shop \(slot \d+, '
                        r'given up by a member gone since\)')
        ms = self.members()
        self.assertEqual(set(ms), {'http://127.0.0.3:%d' % a.port,
                                   'http://127.0.0.4:%d' % a.port}, ms)
        # Every child sends c's requests to c: the old member's objects are
        # skipped, and a cannot take the slot back while c holds it.
        beater.add(a)
        self.assertEqual(set(self.who(40)), {'o1', 'o2'})


class RealOriginTest(JoinCase):
    """mod_heartbeat origins with HeartbeatBalancer, end to end."""

    def real_origins(self, n, interval='200ms', state_file=False):
        ips = ['127.0.0.%d' % (i + 2) for i in range(n)]
        port = port_free_on(ips)
        out = []
        self.origin_ports = {}
        for i, ip in enumerate(ips):
            o = self.httpd('r%d' % i, listen=[(ip, port)], modules=['heartbeat'])
            key = hbtest.write_key(o, 'site.key', KEY)
            o.conf_body = ('HeartbeatAddress 127.0.0.1:%d\nHeartbeatSource %s\n'
                           'HeartbeatInterval %s\nHeartbeatSecret "%s" %s\n'
                           'HeartbeatBalancer shop\n' % (self.hb_port, ip, interval, key, KID))
            if state_file:
                o.state_file = os.path.join(o.run_dir, 'heartbeat.state')
                o.conf_body += 'HeartbeatStateFile %s\n' % o.state_file
            self.origin_ports['r%d' % i] = (ip, port)
            o.add_file('who', 'r%d\n' % i)
            out.append(o.start())
        return out

    def test_drain_then_graceful_stop_under_load_fails_nothing(self):
        # The operator's way out for an origin (docs/deployment.md): hbctl
        # drain on the origin (its next heartbeat, sent at once, says
        # drain: no new requests from any proxy), then graceful-stop. A
        # stop without the drain closes the origin's listener while the
        # proxy may still be connecting: those connections are reset
        # (AH01102), whatever the balancer knows.
        self.proxy().start()
        r0, r1 = self.real_origins(2, state_file=True)
        self.wait_serving({'r0', 'r1'})
        results = collections.Counter()
        stop = threading.Event()
        lock = threading.Lock()

        def load():
            while not stop.is_set():
                r = self.p.get('/shop/who')
                with lock:
                    results[(r.status, r.body.decode().strip())] += 1
        ts = [threading.Thread(target=load) for _ in range(6)]
        for t in ts:
            t.start()
        try:
            time.sleep(0.5)
            subprocess.run([HBCTL, 'drain', r0.state_file], check=True)
            hbtest.wait_until(lambda: self.members_state('r0') == 'drain', timeout=3)
            # The answers in flight to r0 come back; the next ones go to r1.
            with lock:
                before = results[(200, 'r0')]
            time.sleep(0.5)
            with lock:
                self.assertLessEqual(results[(200, 'r0')] - before, 6)
            r0.graceful_stop()
            time.sleep(1.0)
        finally:
            stop.set()
            for t in ts:
                t.join()
        self.assertEqual({k for k in results if k[0] != 200}, set(),
                         'failed requests: %r' % results)
        self.assertGreater(results[(200, 'r1')], 50)
        self.assertEqual(set(self.who(20)), {'r1'})

    def members_state(self, name):
        port = self.origin_ports[name]
        for srv in self.status()['servers']:
            if (srv['ip'], srv['port']) == port:
                return srv['state']
        return None


class JoinConfigTest(JoinCase):

    def proxy(self, **kw):
        return super().proxy(allowed_errors=[r'LB0314', r'AH00020'], **kw)

    def config_error(self, p):
        with self.assertRaises(hbtest.HttpdError) as cm:
            p.start()
        return str(cm.exception) + p.diagnostics()

    def test_join_needs_secret(self):
        err = self.config_error(self.proxy(key=False))
        self.assertIn('HeartbeatJoin on in <Proxy balancer://shop>', err)
        self.assertIn('HeartbeatSecret', err)

    def test_join_needs_growth(self):
        err = self.config_error(self.proxy(growth=0))
        self.assertIn('growth=N', err)

    def test_join_outside_balancer_section(self):
        p = self.proxy(extra='<Location /x>\nHeartbeatJoin on\n</Location>\n')
        err = self.config_error(p)
        self.assertIn('HeartbeatJoin belongs in a <Proxy balancer://name> section', err)

    def test_join_member_parameters_checked(self):
        p = self.proxy(section_extra='    HeartbeatJoinMember retry=1 flushpackets=on')
        rc, out = p.config_test()
        self.assertNotEqual(rc, 0)
        self.assertIn("HeartbeatJoinMember: unknown parameter 'flushpackets'", out)
        p.conf_body = p.conf_body.replace('flushpackets=on', 'lbset=100')
        rc, out = p.config_test()
        self.assertIn('HeartbeatJoinMember: lbset must be 0 to 99', out)
        p.conf_body = p.conf_body.replace('lbset=100', 'disablereuse=on timeout=5 lbset=1')
        rc, out = p.config_test()
        self.assertEqual(rc, 0, out)

    def test_join_without_shared_table(self):
        err = self.config_error(self.proxy(extra='HeartbeatMaxServers 0\n'))
        self.assertIn("mod_heartmonitor's shared table", err)


if __name__ == '__main__':
    hbtest.main()
