#!/usr/bin/python3
"""The first end-to-end chain: origin heartbeat -> monitor table -> pick.

Two origins with our mod_heartbeat and different worker counts (a prefork
origin with 3 processes, an event origin with 12 threads), one proxy with
our mod_heartmonitor and lbmethod=heartbeat:

* the monitor's table (status page and storage file) shows both origins with
  exactly the ready counts their MPMs have, so a sender that miscounts fails;
* requests through the proxy all go to the origin with more ready slots, so
  a balancer that picks at random fails (8 requests: chance 1/256).
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

SMALL_READY = 3   # prefork: one ready slot per process
BIG_READY = 12    # event: one ready slot per worker thread
REQUESTS = 8

PROXY_MODULES = ['proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm',
                 'lbmethod_byrequests', 'heartmonitor', 'lbmethod_heartbeat']


def origin_conf(hb_port, mpm_conf):
    return '\n'.join([
        'HeartbeatAddress 127.0.0.1:%d' % hb_port,
        'HeartbeatInterval 100ms',
        mpm_conf,
    ])


PREFORK_SMALL = """
StartServers %d
ServerLimit %d
MaxRequestWorkers %d
MinSpareServers 1
MaxSpareServers %d
""" % (SMALL_READY, SMALL_READY, SMALL_READY, SMALL_READY)

EVENT_BIG = """
StartServers 1
ServerLimit 1
ThreadsPerChild %d
MaxRequestWorkers %d
MinSpareThreads 1
MaxSpareThreads %d
""" % (BIG_READY, BIG_READY, BIG_READY)


class ChainTest(hbtest.HbTestCase):

    def start_chain(self):
        hb_port = hbtest.free_port(kind='udp')
        small = self.httpd('small', origin_conf(hb_port, PREFORK_SMALL),
                           mpm='prefork', modules=['watchdog', 'heartbeat'])
        big = self.httpd('big', origin_conf(hb_port, EVENT_BIG),
                         mpm='event', modules=['watchdog', 'heartbeat'])
        small.add_file('who', 'small\n')
        big.add_file('who', 'big\n')

        proxy = self.httpd('proxy', modules=PROXY_MODULES)
        storage = os.path.join(proxy.run_dir, 'hb.dat')
        proxy.conf_body = '\n'.join([
            'HeartbeatListen 127.0.0.1:%d' % hb_port,
            'HeartbeatMaxServers 10',
            'HeartbeatStorage "%s"' % storage,
            '<Location /hb-status>',
            '    SetHandler heartbeat-status',
            '</Location>',
            '<Proxy balancer://chain>',
            '    BalancerMember http://127.0.0.1:%d' % small.port,
            '    BalancerMember http://127.0.0.1:%d' % big.port,
            '    ProxySet lbmethod=heartbeat',
            '</Proxy>',
            'ProxyPass /app balancer://chain',
        ])
        proxy.start()
        small.start()
        big.start()
        return proxy, small, big, storage

    def table(self, proxy):
        status, _headers, body = proxy.get('/hb-status?json')
        self.assertEqual(status, 200, body)
        data = json.loads(body.decode())
        return {(s['ip'], s['port']): s for s in data['servers']}

    def wait_for_table(self, proxy, small, big):
        want = {('127.0.0.1', small.port): SMALL_READY, ('127.0.0.1', big.port): BIG_READY}

        def settled():
            t = self.table(proxy)
            return all(k in t and t[k]['ready'] == v and t[k]['busy'] == 0
                       for k, v in want.items())
        try:
            hbtest.wait_until(settled, timeout=15, message='both origins in the table')
        except AssertionError:
            self.fail('table never showed ready=%d and ready=%d: %r'
                      % (SMALL_READY, BIG_READY, self.table(proxy)))
        return self.table(proxy)

    def test_table_shows_real_counts_and_requests_go_to_most_ready(self):
        proxy, small, big, storage = self.start_chain()
        table = self.wait_for_table(proxy, small, big)

        for port in (small.port, big.port):
            entry = table[('127.0.0.1', port)]
            self.assertTrue(entry['port_known'])
            self.assertEqual(entry['state'], 'up')
            self.assertEqual(entry['interval_ms'], 100)
            self.assertEqual(entry['via'], 'udp')
        self.assertEqual(len(table), 2, table)

        # The storage file, in the stock line format, agrees.
        def file_lines():
            if not os.path.exists(storage):
                return {}
            with open(storage) as f:
                lines = [l for l in f.read().splitlines() if l and not l.startswith('#')]
            out = {}
            for line in lines:
                m = re.match(r'^(\S+) &ready=(\d+)&busy=(\d+)&lastseen=(\d+)&port=(\d+)(&.*)?$',
                             line)
                self.assertIsNotNone(m, 'not in the stock format: %r' % line)
                out[int(m.group(5))] = int(m.group(2))
            return out
        hbtest.wait_until(lambda: file_lines() == {small.port: SMALL_READY,
                                                   big.port: BIG_READY},
                          timeout=10, message='storage file with both origins')

        answers = []
        for _ in range(REQUESTS):
            status, _h, body = proxy.get('/app/who')
            self.assertEqual(status, 200, body)
            answers.append(body.decode().strip())
        self.assertEqual(answers, ['big'] * REQUESTS,
                         'requests must go to the origin with %d ready slots, not the one '
                         'with %d' % (BIG_READY, SMALL_READY))

        # Both origins were reached through real proxied requests only.
        self.assertEqual(small.get('/who').body, b'small\n')

    def test_stopped_origin_leaves_rotation(self):
        proxy, small, big, _storage = self.start_chain()
        self.wait_for_table(proxy, small, big)
        big.graceful_stop()

        # The stopping packet marks it at once, long before it goes stale.
        hbtest.wait_until(
            lambda: self.table(proxy)[('127.0.0.1', big.port)]['state'] == 'stopping',
            timeout=5, message='big marked stopping')
        for _ in range(4):
            status, _h, body = proxy.get('/app/who')
            self.assertEqual((status, body), (200, b'small\n'))


if __name__ == '__main__':
    hbtest.main()
