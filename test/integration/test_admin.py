#!/usr/bin/python3
"""What a new administrator trips over, against real httpd.

A heartbeat port given to a second server on the same host (refused
unless it is a multicast group both servers share on purpose), pick
settings placed where no balancer reads them (a config error), why no
member can be picked (LB0304 says which of the reasons it is; LB0308 at
start-up when there is no data source at all), the default storage file on
a runtime directory only root may write (as Debian's /run/apache2), an
unwritable storage path found by configtest, and a failing storage file
reported once, not once per child or generation.
"""

import grp
import json
import os
import pwd
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

PROXY = ['proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm', 'lbmethod_byrequests',
         'heartmonitor', 'lbmethod_heartbeat']

STATUS = """
<Location /hb-status>
    SetHandler heartbeat-status
</Location>
"""


def packet(ready, port, state='up', seq=None):
    p = 'v=1&ready=%d&busy=0&port=%d&int=100&state=%s' % (ready, port, state)
    if seq is not None:
        p += '&seq=%d' % seq
    return p.encode()


class AdminCase(hbtest.HbTestCase):

    def monitor(self, name='monitor', hb_listen=None, extra='', modules=(), **kw):
        if hb_listen is None:
            self.hb_port = hbtest.free_port(kind='udp')
            hb_listen = '127.0.0.1:%d' % self.hb_port
        conf = 'HeartbeatListen %s\n' % hb_listen + STATUS + extra
        return self.httpd(name, conf, modules=['heartmonitor'] + list(modules), **kw)

    def status(self, m, netns=None):
        r = hbtest.get(m.url('/hb-status?json'), netns=netns)
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body.decode())

    def entry_ready(self, m, port, netns=None):
        for s in self.status(m, netns)['servers']:
            if s['port'] == port:
                return s['ready']
        return None


class ListenTest(AdminCase):

    def test_unicast_port_in_use_is_refused(self):
        a = self.monitor('a').start()
        listen = '127.0.0.1:%d' % self.hb_port
        b = self.monitor('b', hb_listen=listen)
        b.allowed_errors = [r'HM0206', r'AH00016|AH00020|Configuration Failed']
        with self.assertRaises(hbtest.HttpdError):
            b.start()
        self.assertRegex(b.error_log() + open(b.stderr_path).read(),
                         r'HM0206: HeartbeatListen %s: cannot listen for heartbeats '
                         r'\(another server on this host has the port' % re.escape(listen))
        # The first server still gets every datagram...
        hbtest.send_udp('127.0.0.1', self.hb_port, packet(7, 81))
        hbtest.wait_until(lambda: self.entry_ready(a, 81) == 7, timeout=5,
                          message='first monitor still receives')
        # ... also after a graceful restart, which keeps its socket.
        a.graceful_restart()
        hbtest.send_udp('127.0.0.1', self.hb_port, packet(9, 81))
        hbtest.wait_until(lambda: self.entry_ready(a, 81) == 9, timeout=5,
                          message='received after a graceful restart')

    def test_shared_only_for_multicast(self):
        port = hbtest.free_port(kind='udp')
        m = self.monitor(hb_listen='127.0.0.1:%d shared' % port)
        rc, out = m.config_test()
        self.assertNotEqual(rc, 0, out)
        self.assertIn('only a multicast group can be shared', out)
        m = self.monitor(hb_listen='239.0.0.9:%d sharing' % port)
        rc, out = m.config_test()
        self.assertNotEqual(rc, 0, out)
        self.assertIn("'sharing' is not an option", out)

    def test_multicast_group_shared_on_request(self):
        lab = self.sandbox.netlab(['origin', 'proxy'])
        proxy = lab['proxy']
        group = '239.0.0.1:27999'
        a = self.monitor('a', hb_listen=group + ' shared', netns=proxy,
                         listen=[(proxy.ip, 8081)]).start()
        b = self.monitor('b', hb_listen=group + ' shared', netns=proxy,
                         listen=[(proxy.ip, 8082)]).start()
        # One not asking to share cannot take the group's port.
        c = self.monitor('c', hb_listen=group, netns=proxy, listen=[(proxy.ip, 8083)])
        c.allowed_errors = [r'HM0206', r'AH00016|AH00020|Configuration Failed']
        with self.assertRaises(hbtest.HttpdError):
            c.start()
        # Each shared one gets every datagram.
        for ready in range(1, 11):
            hbtest.send_udp('239.0.0.1', 27999, packet(ready, 80, seq=1000 + ready),
                            netns=lab['origin'])
        for m in (a, b):
            hbtest.wait_until(
                lambda: self.status(m, proxy)['counters']['accepted'] == 10, timeout=5,
                message='all 10 datagrams accepted by %s' % m.name)
            self.assertEqual(self.entry_ready(m, 80, proxy), 10)


class ContextTest(AdminCase):
    """Pick settings work in the main server or a <Proxy balancer://>
    section; anywhere else they are a config error naming the place."""

    SETTINGS = ['HeartbeatPickMode p2c', 'HeartbeatMaxAge 2s', 'HeartbeatFallback roundrobin']

    def config(self, where):
        p = self.httpd('proxy', '', modules=PROXY)
        p.conf_body = ('<Proxy balancer://b>\n    BalancerMember http://127.0.0.1:9\n'
                       '    ProxySet lbmethod=heartbeat\n</Proxy>\n' + where)
        return p.config_test()

    def test_accepted_where_they_work(self):
        for setting in self.SETTINGS:
            rc, out = self.config(setting + '\n')
            self.assertEqual(rc, 0, out)
            rc, out = self.config('<Proxy balancer://c>\n    BalancerMember http://127.0.0.1:9\n'
                                  '    %s\n</Proxy>\n' % setting)
            self.assertEqual(rc, 0, out)
            rc, out = self.config('<VirtualHost 127.0.0.1:80>\n<Proxy balancer://v>\n'
                                  '    BalancerMember http://127.0.0.1:9\n    %s\n</Proxy>\n'
                                  '</VirtualHost>\n' % setting)
            self.assertEqual(rc, 0, out)

    def test_refused_where_no_balancer_reads_them(self):
        places = [('<Location /app>\n    %s\n</Location>\n', r'in <Location /app>'),
                  ('<Directory /tmp>\n    %s\n</Directory>\n', r'in <Directory /tmp>'),
                  ('<VirtualHost 127.0.0.1:80>\n    %s\n</VirtualHost>\n',
                   r'in <VirtualHost 127.0.0.1:80>'),
                  ('<Proxy http://example.invalid/>\n    %s\n</Proxy>\n', r'in <Proxy')]
        for setting in self.SETTINGS:
            name = setting.split()[0]
            for template, where in places:
                rc, out = self.config(template % setting)
                self.assertNotEqual(rc, 0, '%s accepted: %s' % (template % setting, out))
                self.assertRegex(out, r'%s is not allowed %s.*belongs in the main server '
                                      r'configuration .* or in a <Proxy balancer://name> section'
                                 % (name, re.escape(where)))


class NoDataTest(AdminCase):
    """LB0304 says why no member can be picked; LB0308 warns at start-up
    when the balancer has nothing to read at all."""

    def proxy(self, with_monitor=True, extra=''):
        self.origin = self.httpd('origin')
        self.origin.add_file('who', 'origin\n')
        self.origin.start()
        modules = PROXY if with_monitor else [m for m in PROXY if m != 'heartmonitor']
        conf = STATUS if with_monitor else ''
        if with_monitor:
            self.hb_port = hbtest.free_port(kind='udp')
            conf += 'HeartbeatListen 127.0.0.1:%d\nHeartbeatMaxServers 10\n' % self.hb_port
        conf += ('%s<Proxy balancer://b>\n    BalancerMember http://127.0.0.1:%d\n'
                 '    ProxySet lbmethod=heartbeat\n</Proxy>\nProxyPass /app balancer://b\n'
                 % (extra, self.origin.port))
        p = self.httpd('proxy', conf, modules=modules)
        p.allowed_errors = [r'AH01170']
        return p

    def test_no_monitor_and_no_file(self):
        # Without the warm-up: members not heard from yet would otherwise
        # take requests for the first 10 s.
        p = self.proxy(with_monitor=False, extra='HeartbeatWarmUp 0\n').start()
        p.wait_log(r'LB0308: balancer://b uses lbmethod=heartbeat, but this server has no '
                   r'heartbeat data: mod_heartmonitor is not loaded and HeartbeatStorage '
                   r'.*run/heartbeat/hb\.dat does not exist')
        self.assertEqual(p.get('/app/who').status, 503)
        p.wait_log(r'LB0304: no member of balancer://b can be picked: there is no heartbeat '
                   r'data to read: .*HeartbeatStorage .*hb\.dat has not been read')

    def test_members_draining(self):
        p = self.proxy().start()
        hbtest.send_udp('127.0.0.1', self.hb_port, packet(5, self.origin.port, state='drain'))
        hbtest.wait_until(lambda: self.entry_ready(p, self.origin.port) == 5, timeout=5)
        self.assertEqual(p.get('/app/who').status, 503)
        p.wait_log(r'LB0304: no member of balancer://b can be picked: every member with '
                   r'heartbeat data \(1\) is draining or stopping; refusing with 503')
        self.assertNotIn('LB0308', p.error_log())

    def test_data_too_old(self):
        p = self.proxy(extra='HeartbeatMaxAge 500ms\n').start()
        hbtest.send_udp('127.0.0.1', self.hb_port, packet(5, self.origin.port))
        hbtest.wait_until(lambda: self.entry_ready(p, self.origin.port) == 5, timeout=5)
        hbtest.wait_until(lambda: p.get('/app/who').status == 503, timeout=5,
                          message='stale after HeartbeatMaxAge')
        p.wait_log(r'LB0304: no member of balancer://b can be picked: the newest heartbeat '
                   r'data is \d+\.\d s old, older than its max age of 0\.5 s')


class StorageTest(AdminCase):

    def root_owned_run_dir(self, m):
        # As Debian's /run/apache2: root's, 0755.
        os.chown(m.run_dir, 0, 0)
        os.chmod(m.run_dir, 0o755)

    def test_default_file_works_on_a_root_owned_runtime_dir(self):
        origin = self.httpd('origin')
        origin.add_file('who', 'origin\n')
        origin.start()
        hb_port = hbtest.free_port(kind='udp')
        p = self.httpd('proxy', 'HeartbeatListen 127.0.0.1:%d\nHeartbeatMaxServers 0\n'
                       '<Proxy balancer://b>\n    BalancerMember http://127.0.0.1:%d\n'
                       '    ProxySet lbmethod=heartbeat\n</Proxy>\nProxyPass /app balancer://b\n'
                       % (hb_port, origin.port), modules=PROXY)
        self.root_owned_run_dir(p)
        p.start()
        path = os.path.join(p.run_dir, 'heartbeat', 'hb.dat')
        st = os.stat(os.path.dirname(path))
        user, group = hbtest.run_user()
        self.assertEqual((st.st_uid, st.st_gid),
                         (pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid))
        hbtest.send_udp('127.0.0.1', hb_port, packet(4, origin.port))
        hbtest.wait_until(lambda: os.path.exists(path) and
                          '&ready=4&' in open(path).read(), timeout=5,
                          message='default storage file written')
        hbtest.wait_until(lambda: p.get('/app/who').body == b'origin\n', timeout=5,
                          message='balancer reads the default file')
        self.assertNotIn('HM0212', p.error_log())
        self.assertNotIn('HM0207', p.error_log())

    def test_configtest_reports_unwritable_path(self):
        m = self.monitor(extra='HeartbeatMaxServers 0\n')
        ro = os.path.join(m.root, 'readonly')
        os.makedirs(ro, mode=0o755)
        m.conf_body += 'HeartbeatStorage "%s/hb.dat"\n' % ro
        rc, out = m.config_test()
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r'HM0212: HeartbeatStorage .*readonly/hb\.dat cannot be written: '
                              r'directory .*readonly/ is not writable by user')
        # With the shared table it is a warning: configtest passes but says so.
        m = self.monitor(extra='HeartbeatMaxServers 5\nHeartbeatStorage "%s/hb.dat"\n' % ro)
        rc, out = m.config_test()
        self.assertEqual(rc, 0, out)
        self.assertIn('HM0212', out)
        # A missing directory too.
        m = self.monitor(extra='HeartbeatMaxServers 0\nHeartbeatStorage /nonexistent/hb.dat\n')
        rc, out = m.config_test()
        self.assertNotEqual(rc, 0, out)
        self.assertIn('directory /nonexistent/ does not exist', out)
        # The default needs no directory yet: it is made at start-up.
        m = self.monitor(extra='HeartbeatMaxServers 0\n')
        self.root_owned_run_dir(m)
        rc, out = m.config_test()
        self.assertEqual(rc, 0, out)
        self.assertNotIn('HM0212', out)
        self.assertFalse(os.path.exists(os.path.join(m.run_dir, 'heartbeat')))

    def test_failing_file_reported_once(self):
        m = self.monitor(extra='HeartbeatStorageInterval 100ms\n')
        ro = os.path.join(m.root, 'readonly')
        os.makedirs(ro, mode=0o755)
        m.conf_body += 'HeartbeatStorage "%s/hb.dat"\n' % ro
        m.allowed_errors = [r'HM0212', r'HM0207']
        m.start()

        def errors():
            return self.status(m)['counters']['storage_errors']
        for round_ in range(3):
            before = errors()
            hbtest.send_udp('127.0.0.1', self.hb_port, packet(round_ + 1, 80))
            hbtest.wait_until(lambda: errors() > before, timeout=5,
                              message='another failed write')
            # A new generation, so a new child runs the receiver.
            m.graceful_restart()
        self.assertGreaterEqual(errors(), 3)
        self.assertEqual(m.error_log().count('HM0207'), 1, m.error_log())


if __name__ == '__main__':
    hbtest.main()
