#!/usr/bin/python3
"""mod_heartbeat, the origin side, against a UDP listener in the test.

Packet format and fields, interval, counts that follow held-open requests
(prefork and event), current-generation counting across a graceful restart,
the spare-capacity mode, the stopping packet on graceful stop, IPv6,
several addresses, the balancers announced (HeartbeatBalancer), and every
configuration error.
"""

import hashlib
import hmac
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

SENDER = ['watchdog', 'heartbeat']


def fields(dgram):
    text = dgram.data.decode('ascii')
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True))


def hold_workers(host, port, n):
    """Occupy n workers: each connection sends half a request and waits."""
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(b'GET /slow HTTP/1.1\r\nHost: x\r\n')
        socks.append(s)
    return socks


def release(socks):
    for s in socks:
        s.close()


EVENT_8 = """
StartServers 1
ServerLimit 1
ThreadsPerChild 8
MaxRequestWorkers 8
MinSpareThreads 1
MaxSpareThreads 8
"""

PREFORK_4 = """
StartServers 4
ServerLimit 4
MaxRequestWorkers 4
MinSpareServers 1
MaxSpareServers 4
"""


class SenderTest(hbtest.HbTestCase):

    def origin(self, listener_addrs, extra='', mpm='event', mpm_conf=EVENT_8, **kw):
        conf = ''.join('HeartbeatAddress %s\n' % hbtest.hostport(h, p) for h, p in listener_addrs)
        conf += 'HeartbeatInterval 100ms\n' + mpm_conf + extra
        return self.httpd('origin', conf, mpm=mpm, modules=SENDER, **kw)

    def listener(self, host='127.0.0.1'):
        lst = hbtest.UdpListener(host).start()
        self.addCleanup(lst.close)
        return lst

    def wait_fields(self, lst, pred, timeout=10, since=0):
        return fields(lst.wait_for(lambda d: pred(fields(d)), timeout=timeout, since=since))

    def test_format_fields_and_interval(self):
        lst = self.listener()
        origin = self.origin([(lst.host, lst.port)]).start()
        first = lst.wait_for(lambda d: True)
        f = fields(first)
        # The stock fields come first, so a stock receiver parses the packet.
        self.assertRegex(first.data.decode(), r'^v=1&ready=\d+&busy=\d+&')
        self.assertEqual(sorted(f), ['busy', 'int', 'port', 'ready', 'seq', 'state', 'v'])
        self.assertEqual(f['port'], str(origin.port))
        self.assertEqual(f['int'], '100')
        self.assertEqual(f['state'], 'up')
        self.assertEqual(first.addr[0], '127.0.0.1')

        hbtest.wait_until(lambda: len(lst) >= 12, timeout=10, message='12 packets')
        dgrams = lst.datagrams
        seqs = [int(fields(d)['seq']) for d in dgrams]
        self.assertEqual(seqs, sorted(set(seqs)), 'seq must strictly increase')
        self.assertEqual(seqs[-1] - seqs[0], len(seqs) - 1, 'one seq per packet')
        gaps = [b.time - a.time for a, b in zip(dgrams[1:], dgrams[2:])]
        self.assertTrue(0.07 <= statistics.median(gaps) <= 0.2,
                        'median gap %.3fs for a 100ms interval' % statistics.median(gaps))
        self.assertEqual(fields(dgrams[-1])['ready'], '8')
        # One socket, opened once and reused: the source port never changes
        # (stock opened a new socket for every packet).
        self.assertEqual(len({d.addr for d in dgrams}), 1, {d.addr for d in dgrams})

    def check_counts_follow_load(self, mpm, mpm_conf, total):
        lst = self.listener()
        origin = self.origin([(lst.host, lst.port)], mpm=mpm, mpm_conf=mpm_conf).start()
        self.wait_fields(lst, lambda f: f['ready'] == str(total) and f['busy'] == '0')
        socks = hold_workers(origin.host, origin.port, 3)
        try:
            since = len(lst)
            self.wait_fields(lst, lambda f: f['ready'] == str(total - 3) and f['busy'] == '3',
                             since=since)
        finally:
            release(socks)
        since = len(lst)
        self.wait_fields(lst, lambda f: f['ready'] == str(total) and f['busy'] == '0', since=since)

    def test_counts_follow_load_event(self):
        self.check_counts_follow_load('event', EVENT_8, 8)

    def test_counts_follow_load_prefork(self):
        self.check_counts_follow_load('prefork', PREFORK_4, 4)

    def test_full_origin_is_up_not_stopping(self):
        # With every worker taken the event MPM stops accepting in that
        # process; that is a full origin (ready=0), not one going away.
        lst = self.listener()
        origin = self.origin([(lst.host, lst.port)], allowed_errors=['AH00484']).start()
        self.wait_fields(lst, lambda f: f['ready'] == '8' and f['busy'] == '0')
        # A ninth connection makes the listener notice it has no idle
        # worker left and stop accepting.
        socks = hold_workers(origin.host, origin.port, 9)
        try:
            since = len(lst)
            self.wait_fields(lst, lambda f: f['busy'] == '8', since=since)
            # Several intervals at full load: each must say up.
            hbtest.wait_until(lambda: len(lst) >= since + 10, timeout=10,
                              message='ten packets at full load')
            full = [fields(d) for d in lst.datagrams[since:] if fields(d)['busy'] == '8']
            self.assertTrue(full)
            for f in full:
                self.assertEqual((f['state'], f['ready']), ('up', '0'), f)
        finally:
            release(socks)
        since = len(lst)
        self.wait_fields(lst, lambda f: f['ready'] == '8' and f['state'] == 'up', since=since)

    def test_graceful_restart_counts_only_current_generation(self):
        lst = self.listener()
        conf = EVENT_8.replace('ServerLimit 1', 'ServerLimit 2').replace(
            'MaxRequestWorkers 8', 'MaxRequestWorkers 16')
        origin = self.origin([(lst.host, lst.port)], mpm_conf=conf).start()
        self.wait_fields(lst, lambda f: f['ready'] == '8')
        # Requests held across the restart keep an old-generation process
        # alive beside the new one; its slots must not be reported.
        socks = hold_workers(origin.host, origin.port, 2)
        try:
            self.wait_fields(lst, lambda f: f['busy'] == '2', since=len(lst))
            origin.graceful_restart()
            since = len(lst)
            self.wait_fields(lst, lambda f: f['state'] == 'up' and f['ready'] == '8', since=since)
            hbtest.wait_until(lambda: len(lst) >= since + 10, timeout=10)
            for d in lst.datagrams[since:]:
                f = fields(d)
                self.assertLessEqual(int(f['ready']) + int(f['busy']), 8, f)
            # The held requests were still being served by the old process
            # all along: they complete now.
            for s in socks:
                s.sendall(b'\r\n')
                self.assertTrue(s.recv(100).startswith(b'HTTP/1.1 '))
        finally:
            release(socks)

    def test_spare_mode(self):
        lst = self.listener()
        # prefork starts 1 process of 6 allowed: idle mode would say 1 (or
        # the spares it has spawned), spare mode says 6 minus busy.
        conf = """
StartServers 1
ServerLimit 6
MaxRequestWorkers 6
MinSpareServers 1
MaxSpareServers 1
"""
        origin = self.origin([(lst.host, lst.port)], extra='HeartbeatReadyMode spare\n',
                             mpm='prefork', mpm_conf=conf).start()
        self.wait_fields(lst, lambda f: f['ready'] == '6' and f['busy'] == '0')
        socks = hold_workers(origin.host, origin.port, 1)
        try:
            self.wait_fields(lst, lambda f: f['ready'] == '5' and f['busy'] == '1',
                             since=len(lst))
        finally:
            release(socks)

    def test_state_drain_and_port_override(self):
        lst = self.listener()
        self.origin([(lst.host, lst.port)],
                    extra='HeartbeatState drain\nHeartbeatPort 8443\n').start()
        f = self.wait_fields(lst, lambda f: True)
        self.assertEqual(f['state'], 'drain')
        self.assertEqual(f['port'], '8443')

    def test_graceful_stop_sends_stopping(self):
        lst = self.listener()
        origin = self.origin([(lst.host, lst.port)]).start()
        self.wait_fields(lst, lambda f: f['state'] == 'up')
        since = len(lst)
        origin.graceful_stop()
        f = self.wait_fields(lst, lambda f: f['state'] == 'stopping', since=since, timeout=5)
        self.assertEqual(f['ready'], '0')

    def test_graceful_restart_says_stopping_then_up(self):
        lst = self.listener()
        origin = self.origin([(lst.host, lst.port)]).start()
        self.wait_fields(lst, lambda f: f['state'] == 'up')
        since = len(lst)
        origin.graceful_restart()
        stop = lst.wait_for(lambda d: fields(d)['state'] == 'stopping', since=since, timeout=5)
        self.assertEqual(fields(stop)['ready'], '0')
        up = fields(lst.wait_for(lambda d: fields(d)['state'] == 'up' and fields(d)['ready'] == '8',
                                 since=lst.datagrams.index(stop), timeout=5))
        self.assertGreater(int(up['seq']), int(fields(stop)['seq']))

    def test_stop_sends_stopping(self):
        lst = self.listener()
        # worker, not event: Debian's event MPM sometimes logs EBADF errors
        # (or worse) when stopped with SIGTERM, which is what stop() sends.
        origin = self.origin([(lst.host, lst.port)], mpm='worker').start()
        self.wait_fields(lst, lambda f: f['state'] == 'up')
        since = len(lst)
        origin.stop()
        f = self.wait_fields(lst, lambda f: f['state'] == 'stopping', since=since, timeout=5)
        self.assertEqual(f['ready'], '0')

    def test_ipv6_and_several_addresses(self):
        self.assertTrue(hbtest.ipv6_available(), 'IPv6 loopback is needed')
        v4a = self.listener()
        v4b = self.listener()
        v6 = self.listener('::1')
        self.origin([(v4a.host, v4a.port), (v4b.host, v4b.port), (v6.host, v6.port)]).start()
        for lst in (v4a, v4b, v6):
            d = lst.wait_for(lambda d: True)
            self.assertEqual(fields(d)['v'], '1')
        self.assertEqual(v6.datagrams[0].addr[0], '::1')

    def test_signed_packets_name_their_source(self):
        # A signed packet names (addr=, inside the signed part) the address
        # it is sent from, here HeartbeatSource's; unsigned packets stay as
        # they were (test_format_fields_and_interval).
        v4 = self.listener()
        origin = self.origin([(v4.host, v4.port)])
        key = os.path.join(origin.root, 'site.key')
        with open(key, 'wb') as f:
            f.write(b'0123456789abcdef0123456789abcdef\n')
        os.chmod(key, 0o600)
        origin.conf_body += 'HeartbeatSecret "%s"\nHeartbeatSource 127.0.0.1\n' % key
        origin.start()
        d = v4.wait_for(lambda d: True)
        self.assertEqual(fields(d)['addr'], d.addr[0])
        self.assertRegex(d.data.decode(),
                         r'&addr=127\.0\.0\.1&ts=\d+&kid=site&sig=[0-9a-f]{64}$')

    def test_signed_packets_name_their_source_v6(self):
        # Each destination gets its own signed packet, with the address
        # routing picks to reach it.
        self.assertTrue(hbtest.ipv6_available(), 'IPv6 loopback is needed')
        v4 = self.listener()
        v6 = self.listener('::1')
        origin = self.origin([(v4.host, v4.port), (v6.host, v6.port)])
        key = os.path.join(origin.root, 'site.key')
        with open(key, 'wb') as f:
            f.write(b'0123456789abcdef0123456789abcdef\n')
        os.chmod(key, 0o600)
        origin.conf_body += 'HeartbeatSecret "%s"\n' % key
        origin.start()
        for lst, want in ((v4, '127.0.0.1'), (v6, '::1')):
            d = lst.wait_for(lambda d: True)
            self.assertEqual(fields(d)['addr'], want)
            self.assertEqual(d.addr[0], want)

    def test_source_address(self):
        lst = hbtest.UdpListener('0.0.0.0').start()
        self.addCleanup(lst.close)
        self.origin([('127.0.0.1', lst.port)], extra='HeartbeatSource 127.0.0.7\n').start()
        d = lst.wait_for(lambda d: True)
        self.assertEqual(d.addr[0], '127.0.0.7')


class FillingUpTest(hbtest.HbTestCase):
    """With HeartbeatResponseHeader on, an origin whose ready workers halve
    (or run out) between beats beats at once: a full origin answers
    nothing, so no response could carry the news."""

    def test_filling_up_beats_at_once(self):
        lst = SenderTest.listener(self)
        origin = self.httpd('origin', 'HeartbeatAddress %s\nHeartbeatInterval 3s\n'
                            'HeartbeatResponseHeader on\n%s'
                            % (hbtest.hostport(lst.host, lst.port), EVENT_8),
                            modules=SENDER).start()
        # A beat with every worker ready (the first may come before they
        # have all started), then the next one is 3 s away.
        full = lst.wait_for(lambda d: fields(d)['ready'] == '8', timeout=12)
        since = lst.datagrams.index(full) + 1
        socks = hold_workers(origin.host, origin.port, 5)
        try:
            d = lst.wait_for(lambda d: int(fields(d)['ready']) <= 4, since=since, timeout=5)
            self.assertLess(d.time - full.time, 2.0, 'not before the next scheduled beat')
            # One extra beat, not one per look (every 20 ms).
            self.assertEqual(len(lst) - since, 1, [fields(x) for x in lst.datagrams[since:]])
        finally:
            release(socks)


class ScheduleTest(SenderTest):
    """The sender keeps the configured interval exactly (mod_watchdog, which
    stock and our earlier sender used, steps in 100 ms: 250 ms became
    300 ms), and keeps sending across a graceful restart."""

    def test_intervals_are_exact(self):
        runs = []
        for ms in (250, 150, 1250):
            lst = self.listener()
            self.origin([(lst.host, lst.port)], extra='HeartbeatInterval %dms\n' % ms).start()
            runs.append((ms, lst))
        # At least 5 s of beats of every origin.
        hbtest.wait_until(lambda: all(len(lst) >= 5000 // ms + 2 for ms, lst in runs),
                          timeout=15, message='5 s of heartbeats')
        for ms, lst in runs:
            d = lst.datagrams[1:]  # the first may come as the child starts
            mean = (d[-1].time - d[0].time) / (len(d) - 1)
            gaps = [b.time - a.time for a, b in zip(d, d[1:])]
            # mod_watchdog's 100 ms steps were 50 ms off for all three;
            # the margin leaves room for a loaded machine's scheduling.
            self.assertLess(abs(mean - ms / 1000.0), 0.010,
                            '%d ms interval: mean gap %.4f s over %d beats' % (ms, mean, len(d)))
            self.assertLess(max(gaps), ms / 1000.0 + 0.1,
                            '%d ms interval: a gap of %.4f s' % (ms, max(gaps)))

    def test_no_gap_across_graceful_restart(self):
        lst = self.listener()
        # Room for the new generation's first child beside the old one
        # (with ServerLimit 1 it can only start once the old child has
        # gone). httpd starts it at its next maintenance pass, up to a
        # second after the restart; the old child, idle, would exit at once
        # with its sender: it waits for the new one's (hb_wait_handover).
        origin = self.origin([(lst.host, lst.port)],
                             mpm_conf=EVENT_8.replace('ServerLimit 1', 'ServerLimit 2')).start()
        hbtest.wait_until(lambda: len(lst) >= 5, timeout=5)
        since = len(lst)
        for _ in range(3):
            before = set(origin.children())
            origin.graceful_restart()
            # Each restart over (the old generation's child gone, the new
            # one's up) before the next: overlapping ones would need a slot
            # per generation.
            hbtest.wait_until(lambda: origin.children() and
                              not before & set(origin.children()), timeout=10,
                              message='the new generation has replaced the old')
        t_end = lst.datagrams[-1].time + 1.5
        hbtest.wait_until(lambda: lst.datagrams[-1].time >= t_end, timeout=10)
        d = lst.datagrams[since - 1:]
        gaps = [b.time - a.time for a, b in zip(d, d[1:])]
        # 100 ms beats; the old generation's sender keeps going until the
        # new one's is up (mod_watchdog's left gaps of up to a second).
        self.assertLess(max(gaps), 0.25, 'largest gap %.3f s' % max(gaps))
        seqs = [int(fields(x)['seq']) for x in d]
        self.assertEqual(seqs, sorted(set(seqs)), 'seq strictly rising across generations')


class StateFileTest(SenderTest):
    """HeartbeatStateFile: "drain" drains whatever HeartbeatState says;
    anything else leaves HeartbeatState in force; a change is sent at
    once, not at the next beat."""

    def state_origin(self, lst, extra='', interval='100ms'):
        statefile = os.path.join(self.sandbox.new_dir('state'), 'heartbeat.state')
        origin = self.origin([(lst.host, lst.port)],
                             extra='HeartbeatStateFile "%s"\nHeartbeatInterval %s\n%s'
                             % (statefile, interval, extra))
        return origin, statefile

    def write(self, path, text):
        # As hbctl does: a new file renamed into place.
        with open(path + '.tmp', 'w') as f:
            f.write(text)
        os.replace(path + '.tmp', path)

    def test_up_in_file_keeps_configured_drain(self):
        lst = self.listener()
        origin, statefile = self.state_origin(lst, extra='HeartbeatState drain\n')
        self.write(statefile, 'up\n')
        origin.start()
        hbtest.wait_until(lambda: len(lst) >= 4, timeout=5)
        self.assertEqual({fields(d)['state'] for d in lst.datagrams}, {'drain'})
        # "drain" in the file agrees; removing the file changes nothing.
        os.unlink(statefile)
        since = len(lst)
        hbtest.wait_until(lambda: len(lst) >= since + 3, timeout=5)
        self.assertEqual({fields(d)['state'] for d in lst.datagrams[since:]}, {'drain'})

    def test_file_drains_configured_up(self):
        lst = self.listener()
        origin, statefile = self.state_origin(lst)
        self.write(statefile, 'drain\n')
        origin.start()
        self.assertEqual(self.wait_fields(lst, lambda f: True)['state'], 'drain')
        self.write(statefile, 'up\n')
        self.wait_fields(lst, lambda f: f['state'] == 'up', since=len(lst), timeout=3)

    def test_change_is_sent_at_once(self):
        lst = self.listener()
        # Beats 3 s apart: a change must not wait for the next one.
        origin, statefile = self.state_origin(lst, interval='3s')
        origin.start()
        self.wait_fields(lst, lambda f: f['state'] == 'up')
        for state in ('drain', 'up', 'drain'):
            since = len(lst)
            t0 = time.monotonic()
            self.write(statefile, state + '\n')
            d = lst.wait_for(lambda x: fields(x)['state'] == state, since=since, timeout=5)
            self.assertLess(d.time - t0, 0.5, '%s sent %.3f s after the change'
                            % (state, d.time - t0))
        seqs = [int(fields(x)['seq']) for x in lst.datagrams]
        self.assertEqual(seqs, sorted(set(seqs)))


class StockInteropTest(hbtest.HbTestCase):
    """Debian's stock mod_heartmonitor receives our packets (multicast, as it
    only joins groups) and lists this origin with its real counts."""

    def test_stock_monitor_lists_our_origin(self):
        self.stock_monitor_lists_our_origin('')

    def test_stock_monitor_reads_signed_packets(self):
        """Signed packets (addr=, ts=, kid=, sig= after the stock fields)
        are still read by a stock monitor, which ignores our fields."""
        self.stock_monitor_lists_our_origin('secret')

    def stock_monitor_lists_our_origin(self, variant):
        lab = self.sandbox.netlab(['origin', 'proxy'])
        origin_host, proxy_host = lab['origin'], lab['proxy']
        monitor = self.httpd('stock-monitor', ours=False, netns=proxy_host,
                             modules=['watchdog', 'heartmonitor'])
        storage = os.path.join(monitor.run_dir, 'hb.dat')
        monitor.conf_body = ('HeartbeatListen 239.0.0.1:27999\n'
                             'HeartbeatMaxServers 0\n'
                             'HeartbeatStorage "%s"\n' % storage)
        monitor.start()
        origin = self.httpd('origin', 'HeartbeatAddress 239.0.0.1:27999\n'
                            'HeartbeatInterval 200ms\n' + EVENT_8,
                            modules=SENDER, netns=origin_host)
        if variant == 'secret':
            origin.conf_body += 'HeartbeatSecret "%s"\n' % hbtest.write_key(
                origin, 'site.key', b'0123456789abcdef0123456789abcdef')
        origin.start()

        def line():
            if not os.path.exists(storage):
                return None
            with open(storage) as f:
                for l in f:
                    if l.startswith(origin_host.ip + ' '):
                        return l.strip()
            return None
        # The stock monitor writes its file only every 5 seconds.
        hbtest.wait_until(lambda: line() and '&ready=8&' in line(), timeout=20,
                          message='stock monitor listing our origin')
        text = line()
        self.assertRegex(text, r'^198\.18\.0\.\d+ &ready=8&busy=0&lastseen=\d+&port=%d$'
                         % origin.port)


class MulticastTtlTest(hbtest.HbTestCase):
    """HeartbeatTTL sets the hop limit of multicast heartbeats (default 1)."""

    def received_ttl(self, ttl_conf):
        lab = self.sandbox.netlab(['origin', 'proxy'])
        sock = hbtest.make_socket(socket.AF_INET, socket.SOCK_DGRAM, lab['proxy'])
        self.addCleanup(sock.close)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(('239.0.0.2', 27999))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        socket.inet_aton('239.0.0.2') + socket.inet_aton('0.0.0.0'))
        sock.setsockopt(socket.IPPROTO_IP, getattr(socket, 'IP_RECVTTL', 12), 1)
        sock.settimeout(10)
        self.httpd('origin', 'HeartbeatAddress 239.0.0.2:27999\n' + ttl_conf + EVENT_8,
                   modules=SENDER, netns=lab['origin']).start()
        _data, anc, _flags, addr = sock.recvmsg(2048, socket.CMSG_SPACE(4))
        self.assertEqual(addr[0], lab['origin'].ip)
        for level, kind, value in anc:
            if level == socket.IPPROTO_IP and kind == socket.IP_TTL:
                return int.from_bytes(value[:4], sys.byteorder)
        self.fail('no TTL ancillary data')

    def test_default_ttl_is_1(self):
        self.assertEqual(self.received_ttl(''), 1)

    def test_configured_ttl(self):
        self.assertEqual(self.received_ttl('HeartbeatTTL 7\n'), 7)


class RefusedRetryTest(hbtest.HbTestCase):
    """A unicast monitor that is down answers "port unreachable": the
    sender then beats every 100 ms instead of every interval, so that a
    proxy starting (for the first time, with nothing saved) hears from its
    origins at once, not up to an interval later."""

    def origin(self, port, interval='10s'):
        return self.httpd('origin', EVENT_8 + 'HeartbeatAddress 127.0.0.1:%d\n'
                          'HeartbeatInterval %s\n' % (port, interval), modules=SENDER)

    def test_monitor_that_starts_late_hears_at_once(self):
        port = hbtest.free_port(kind='udp')
        self.origin(port).start()
        time.sleep(1.0)  # its first beat is refused; the next would be 9 s away
        t0 = time.monotonic()
        lst = hbtest.UdpListener('127.0.0.1', port).start()
        self.addCleanup(lst.close)
        lst.wait_for(lambda d: True, timeout=2)
        took = time.monotonic() - t0
        self.assertLess(took, 0.5, 'the first heartbeat came %.2f s after the monitor opened '
                        'its port (interval 10 s)' % took)
        # Heard: back to the interval once no refusal came for 2.5 s (a
        # host rate-limits its "port unreachable" answers, loopback aside).
        time.sleep(3.0)
        n = len(lst)
        time.sleep(1.5)
        self.assertLessEqual(len(lst) - n, 1, 'still beating fast: %d in 1.5 s' % (len(lst) - n))

    def test_rate_limited_refusals_between_hosts(self):
        # Between hosts (not over loopback) Linux answers a closed port only
        # about once a second after a burst of six: the fast beats must go
        # on between the answers, or a proxy down for more than a moment
        # would be heard only at the next interval again.
        lab = self.sandbox.netlab(['origin', 'proxy'])
        port = 27991
        self.httpd('origin', EVENT_8 + 'HeartbeatAddress %s:%d\nHeartbeatInterval 10s\n'
                   % (lab['proxy'].ip, port), modules=SENDER, netns=lab['origin']).start()
        time.sleep(4.0)  # well past the burst of answers
        t0 = time.monotonic()
        lst = self.sandbox.udp_listener(lab['proxy'].ip, port, netns=lab['proxy'])
        lst.wait_for(lambda d: True, timeout=3)
        took = time.monotonic() - t0
        self.assertLess(took, 0.5, 'the first heartbeat came %.2f s after the monitor opened '
                        'its port, 4 s after the origin started (interval 10 s)' % took)

    def test_no_fast_beats_while_the_monitor_listens(self):
        lst = hbtest.UdpListener('127.0.0.1').start()
        self.addCleanup(lst.close)
        self.origin(lst.port).start()
        lst.wait_for(lambda d: True, timeout=5)
        time.sleep(1.5)
        self.assertEqual(len(lst), 1, [d.data for d in lst.datagrams])


class BalancerTest(hbtest.HbTestCase):
    """HeartbeatBalancer: the balancers an origin announces (join=) in
    every heartbeat it sends, signed or not, placed after state= and before
    addr=, so that a signature covers it; and every configuration error."""

    KEY = b'0123456789abcdef0123456789abcdef'

    def listener(self):
        lst = hbtest.UdpListener('127.0.0.1').start()
        self.addCleanup(lst.close)
        return lst

    def origin(self, lst, balancers, signed=True, mpm='event'):
        conf = 'HeartbeatAddress %s\nHeartbeatInterval 100ms\n' % hbtest.hostport(lst.host,
                                                                                lst.port)
        conf += EVENT_8 if mpm == 'event' else ''
        conf += ''.join('HeartbeatBalancer %s\n' % b for b in balancers)
        origin = self.httpd('origin', conf, mpm=mpm, modules=SENDER)
        if signed:
            key = os.path.join(origin.root, 'site.key')
            with open(key, 'wb') as f:
                f.write(self.KEY + b'\n')
            os.chmod(key, 0o600)
            origin.conf_body += 'HeartbeatSecret "%s"\n' % key
        return origin

    def assert_signed_over_join(self, text):
        """The signature covers every byte before &sig=, join= included."""
        body, _, sig = text.rpartition('&sig=')
        self.assertIn('&join=', body)
        self.assertEqual(hmac.new(self.KEY, body.encode(), hashlib.sha256).hexdigest(), sig)

    def test_signed_packets_announce(self):
        lst = self.listener()
        self.origin(lst, ['shop', 'api https://*:8443']).start()
        d = lst.wait_for(lambda d: True)
        text = d.data.decode()
        self.assertEqual(fields(d)['join'], 'shop,api:https:8443')
        self.assertRegex(text, r'&state=up&join=shop,api:https:8443&addr=127\.0\.0\.1'
                               r'&ts=\d+&kid=site&sig=[0-9a-f]{64}$')
        self.assert_signed_over_join(text)
        # Every beat, not only the first.
        hbtest.wait_until(lambda: len(lst) >= 5, timeout=10, message='5 packets')
        for d in lst.datagrams:
            self.assertEqual(fields(d)['join'], 'shop,api:https:8443', d.data)

    def test_stopping_packet_announces(self):
        lst = self.listener()
        origin = self.origin(lst, ['shop', 'api https://*:8443']).start()
        self.assertEqual(fields(lst.wait_for(lambda d: True))['state'], 'up')
        since = len(lst)
        origin.graceful_stop()
        d = lst.wait_for(lambda d: fields(d)['state'] == 'stopping', since=since, timeout=5)
        self.assertEqual(fields(d)['join'], 'shop,api:https:8443')
        self.assert_signed_over_join(d.data.decode())

    def test_unsigned_packets_announce_and_warn(self):
        # Sent all the same (a proxy may log what it ignores), but the
        # origin says at start-up that no proxy will act on it.
        lst = self.listener()
        origin = self.origin(lst, ['shop', 'api https://*:8443'], signed=False).start()
        d = lst.wait_for(lambda d: True)
        self.assertRegex(d.data.decode(), r'&state=up&join=shop,api:https:8443$')
        origin.wait_log(r'HB0112: HeartbeatBalancer is set but no HeartbeatSecret')

    def test_name_and_url_forms(self):
        # balancer:// is dropped, the name's case kept, http and the
        # advertised port are left out, a trailing slash is allowed.
        lst = self.listener()
        self.origin(lst, ['balancer://Shop http://*/', 'x.y-z_1 H2C://*:8080/',
                          'ws ws://*', '%s uwsgi://*:65535' % ('n' * 64)]).start()
        d = lst.wait_for(lambda d: True)
        self.assertEqual(fields(d)['join'], 'Shop,x.y-z_1:h2c:8080,ws:ws,%s:uwsgi:65535'
                         % ('n' * 64))
        self.assert_signed_over_join(d.data.decode())

    def test_hbctl_sends_the_same(self):
        # hbctl send --join puts it where mod_heartbeat does: after state=,
        # before addr=, ts, kid and sig.
        lst = self.listener()
        key = os.path.join(self.sandbox.path, 'site.key')
        with open(key, 'wb') as f:
            f.write(self.KEY)
        os.chmod(key, 0o600)
        hbctl = os.path.join(os.environ.get('HB_SRC_DIR') or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), '..', '..'), 'tools', 'hbctl')
        r = subprocess.run(['/usr/bin/python3', hbctl, 'send', hbtest.hostport(lst.host, lst.port),
                            '--key', key, '--join', 'shop,api:https:8443', '-q'],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        d = lst.wait_for(lambda d: True)
        self.assertRegex(d.data.decode(), r'&state=up&join=shop,api:https:8443&addr=127\.0\.0\.1'
                                          r'&ts=\d+&kid=site&sig=[0-9a-f]{64}$')
        self.assert_signed_over_join(d.data.decode())
        for bad in ('shop,', 'a,b,c,d,e', 'shop,SHOP', 'a:gopher', 'a:http:0', 'sh/op'):
            with self.subTest(join=bad):
                r = subprocess.run(['/usr/bin/python3', hbctl, 'send',
                                    hbtest.hostport(lst.host, lst.port), '--join', bad],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn('--join', r.stderr)

    FIVE = ''.join('HeartbeatBalancer b%d\n' % i for i in range(5))

    CASES = [
        ('HeartbeatBalancer sh/op', "'sh/op' is not a balancer name"),
        ('HeartbeatBalancer balancer://', "'balancer://' is not a balancer name"),
        ('HeartbeatBalancer %s' % ('n' * 65), "'%s' is not a balancer name" % ('n' * 65)),
        ('HeartbeatBalancer shop http://10.0.0.1:8080', "'http://10.0.0.1:8080' must be "
                                                        "scheme://* or scheme://*:port"),
        ('HeartbeatBalancer shop http://localhost', "'http://localhost' must be"),
        ('HeartbeatBalancer shop http://*.example', "'http://*.example' must be"),
        ('HeartbeatBalancer shop http://*:80/x', "'http://*:80/x' must be"),
        ('HeartbeatBalancer shop *:80', "'*:80' must be"),
        ('HeartbeatBalancer shop gopher://*', "the scheme of 'gopher://*' must be"),
        ('HeartbeatBalancer shop balancer://*', "the scheme of 'balancer://*' must be"),
        ('HeartbeatBalancer shop http://*:0', "the port of 'http://*:0' must be from 1 to 65535"),
        ('HeartbeatBalancer shop http://*:65536', "the port of 'http://*:65536' must be"),
        ('HeartbeatBalancer shop https://*:', "'https://*:' must be"),
        (FIVE, "'b4' is one too many: an origin announces at most 4"),
        ('HeartbeatBalancer shop\nHeartbeatBalancer balancer://SHOP https://*',
         "balancer 'SHOP' is given twice"),
        ('<VirtualHost *:80>\nHeartbeatBalancer shop\n</VirtualHost>', 'VirtualHost'),
    ]

    def test_bad_values_fail_configtest(self):
        for i, (body, words) in enumerate(self.CASES):
            with self.subTest(body=body):
                httpd = self.httpd('bad%d' % i, 'HeartbeatAddress 127.0.0.1:27999\n' + body,
                                   modules=SENDER)
                rc, out = httpd.config_test()
                self.assertNotEqual(rc, 0, 'accepted: %r' % body)
                self.assertIn('HeartbeatBalancer', out)
                self.assertIn(words, out)

    def test_good_values_pass(self):
        body = '\n'.join([
            'HeartbeatAddress 127.0.0.1:27999',
            'HeartbeatBalancer shop',
            'HeartbeatBalancer balancer://api https://*:8443',
            'HeartbeatBalancer B-2 AJP://*:8009/',
            'HeartbeatBalancer b_3.x wss://*',
        ])
        rc, out = self.httpd('good', body, modules=SENDER).config_test()
        self.assertEqual(rc, 0, out)


class ConfigErrorTest(hbtest.HbTestCase):
    """Each bad value fails `httpd -t` with a message naming the directive."""

    CASES = [
        ('HeartbeatAddress 127.0.0.1', 'HeartbeatAddress', 'no port'),
        ('HeartbeatAddress not_an_address:99999', 'HeartbeatAddress', ''),
        ('HeartbeatAddress 127.0.0.1:27999\nHeartbeatAddress 127.0.0.1:27999',
         'HeartbeatAddress', 'twice'),
        ('HeartbeatInterval 50ms', 'HeartbeatInterval', 'out of range'),
        ('HeartbeatInterval 2h', 'HeartbeatInterval', 'out of range'),
        ('HeartbeatInterval soon', 'HeartbeatInterval', 'not a time'),
        ('HeartbeatTTL 0', 'HeartbeatTTL', '1 to 255'),
        ('HeartbeatTTL 256', 'HeartbeatTTL', '1 to 255'),
        ('HeartbeatTTL -1', 'HeartbeatTTL', '1 to 255'),
        ('HeartbeatPort 0', 'HeartbeatPort', '1 to 65535'),
        ('HeartbeatPort 65536', 'HeartbeatPort', '1 to 65535'),
        ('HeartbeatPort 80x', 'HeartbeatPort', '1 to 65535'),
        ('HeartbeatState sleeping', 'HeartbeatState', 'must be up or drain'),
        ('HeartbeatReadyMode all', 'HeartbeatReadyMode', 'must be idle or spare'),
        ('HeartbeatSource 127.0.0.1:80', 'HeartbeatSource', 'without a port'),
        ('<VirtualHost *:80>\nHeartbeatAddress 127.0.0.1:27999\n</VirtualHost>',
         'HeartbeatAddress', 'VirtualHost'),
    ]

    def test_bad_values_fail_configtest(self):
        for body, directive, words in self.CASES:
            with self.subTest(body=body):
                httpd = self.httpd('bad%d' % self.CASES.index((body, directive, words)), body,
                                   modules=SENDER)
                rc, out = httpd.config_test()
                self.assertNotEqual(rc, 0, 'accepted: %r' % body)
                self.assertIn(directive, out)
                self.assertIn(words, out)

    def test_good_values_pass(self):
        body = '\n'.join([
            'HeartbeatAddress 239.0.0.1:27999',
            'HeartbeatAddress [ff02::1]:27999',
            'HeartbeatAddress localhost:27999',
            'HeartbeatInterval 250ms',
            'HeartbeatTTL 4',
            'HeartbeatPort 8080',
            'HeartbeatState drain',
            'HeartbeatReadyMode spare',
        ])
        rc, out = self.httpd('good', body, modules=SENDER).config_test()
        self.assertEqual(rc, 0, out)

    def test_mixed_families_fail_start(self):
        httpd = self.httpd('mixed', 'HeartbeatAddress [::1]:27999\nHeartbeatSource 127.0.0.1\n',
                           modules=SENDER)
        httpd.allowed_errors = [r'HB0104', r'AH00016|AH00020|Configuration Failed']
        with self.assertRaisesRegex(hbtest.HttpdError, 'HB0104|different address families'):
            httpd.start()


if __name__ == '__main__':
    hbtest.main()
