#!/usr/bin/python3
"""Self-test of the integration harness (test/harness/hbtest.py).

Uses only Debian's STOCK modules, so it can run before our modules are
built; if this fails, failures of the other integration tests say nothing
about the modules.
"""

import os
import re
import subprocess
import sys
import textwrap

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'harness'))
import hbtest  # noqa: E402

HEARTBEAT_RE = re.compile(r'^v=1&ready=\d+&busy=\d+$')


def is_heartbeat(dgram):
    return HEARTBEAT_RE.match(dgram.data.decode('latin-1')) is not None


class PlainHttpdTest(hbtest.HbTestCase):

    def test_start_get_graceful_restart_stop(self):
        # worker, not event: Debian's event MPM occasionally logs EBADF errors
        # or a child segfault on SIGTERM (see hbtest.EVENT_MPM_SIGTERM_NOISE),
        # and this test is about the harness, not about that race.
        httpd = self.httpd('plain', ours=False, access_log=True, mpm='worker')
        httpd.add_file('hello.txt', 'hello harness\n')
        httpd.start()
        pid = httpd.pid
        self.assertTrue(os.path.exists('/proc/%d' % pid))

        status, headers, body = httpd.get('/hello.txt')
        self.assertEqual(status, 200)
        self.assertEqual(body, b'hello harness\n')
        self.assertEqual(headers.get('content-length'), '14')
        self.assertEqual(httpd.get('/missing').status, 404)  # no exception

        children_before = set(httpd.children())
        self.assertTrue(children_before, 'httpd should have children')
        httpd.graceful_restart()
        self.assertEqual(httpd.error_log().count(hbtest.RESUMING), 2)
        self.assertEqual(httpd.pid, pid, 'graceful restart keeps the parent')
        self.assertEqual(httpd.get('/hello.txt').body, b'hello harness\n')
        self.assertIn('"GET /hello.txt HTTP/1.1" 200 14', httpd.access_log())

        httpd.stop()
        self.assertFalse(httpd.running)
        self.assertFalse(os.path.exists('/proc/%d' % pid), 'pid %d still there' % pid)
        self.assertEqual(hbtest._group_members(pid), [], 'children left behind')
        self.assertFalse(hbtest.tcp_open(httpd.host, httpd.port))

    def test_event_and_prefork_graceful_stop(self):
        for mpm in ('event', 'prefork'):
            httpd = self.httpd(mpm, mpm=mpm, ours=False)
            httpd.add_file('a.txt', 'a')
            httpd.start()
            self.assertEqual(httpd.get('/a.txt').body, b'a')
            httpd.graceful_restart()
            self.assertEqual(httpd.get('/a.txt').body, b'a')
            self.assertEqual(httpd.graceful_stop(), 0)
            self.assertFalse(httpd.running)
            self.assertEqual(hbtest._group_members(httpd.pid), [])

    def test_config_change_on_graceful_restart(self):
        httpd = self.httpd('reconf', ours=False, modules=['alias'])
        httpd.add_file('a.txt', 'a')
        httpd.start()
        self.assertEqual(httpd.get('/b.txt').status, 404)
        httpd.conf_body = 'Alias /b.txt "%s/a.txt"\n' % httpd.htdocs
        httpd.graceful_restart()
        self.assertEqual(httpd.get('/b.txt').body, b'a')
        # A broken change is refused before the signal; httpd keeps running.
        httpd.conf_body = 'Bogus directive\n'
        with self.assertRaisesRegex(hbtest.HttpdError, 'rejected'):
            httpd.graceful_restart()
        self.assertTrue(httpd.running)

    def test_ipv6_listen(self):
        self.assertTrue(hbtest.ipv6_available(), 'no IPv6 loopback here')
        port = hbtest.free_port6()
        httpd = self.httpd('v6', ours=False, listen=[('::1', port)])
        httpd.add_file('index.html', 'six')
        httpd.start()
        self.assertEqual(httpd.url('/'), 'http://[::1]:%d/' % port)
        self.assertEqual(hbtest.get(httpd.url('/index.html')).body, b'six')

    def test_error_scan(self):
        httpd = self.httpd('scan', ours=False).start()
        httpd.shutdown()
        self.assertEqual(httpd.find_errors(), [])
        with open(httpd.error_log_path, 'a') as f:
            f.write('[Mon Jan 01 00:00:00.000000 2024] [proxy:error] [pid 1] AH00959: boom\n'
                    '[Mon Jan 01 00:00:00.000000 2024] [core:notice] [pid 1] AH00052: '
                    'child pid 7 exit signal Segmentation fault (11)\n'
                    '[Mon Jan 01 00:00:00.000000 2024] [core:warn] [pid 1] just a warning\n')
        self.assertEqual(len(httpd.find_errors()), 2)
        self.assertEqual(len(httpd.find_errors(allowed=[r'AH00959'])), 1)
        with self.assertRaises(AssertionError):
            httpd.assert_no_errors()
        httpd.allowed_errors = [r'AH00959', r'AH00052']  # for the cleanup check


class ConfigTest(hbtest.HbTestCase):

    def test_bogus_directive_is_rejected(self):
        httpd = self.httpd('bogus', 'ThisIsNotADirective on\n', ours=False)
        rc, out = httpd.config_test()
        self.assertNotEqual(rc, 0)
        self.assertIn('ThisIsNotADirective', out)
        self.assertIn('Invalid command', out)
        # start() refuses too, with httpd's message.
        with self.assertRaisesRegex(hbtest.HttpdError, 'ThisIsNotADirective'):
            httpd.start()
        # The module-level form works on any file.
        rc2, out2 = hbtest.config_test(httpd.conf_path)
        self.assertEqual((rc2, out2), (rc, out))

    def test_valid_config(self):
        rc, out = self.httpd('good', ours=False).config_test()
        self.assertEqual(rc, 0, out)
        self.assertIn('Syntax OK', out)

    def test_death_during_start_is_reported_at_once(self):
        # Passes httpd -t but cannot bind: the port is taken by a listener.
        blocker = self.httpd('blocker', ours=False).start()
        clash = self.httpd('clash', ours=False, listen=[('127.0.0.1', blocker.port)])
        with self.assertRaisesRegex(hbtest.HttpdError, 'exited with status'):
            clash.start(timeout=30)
        clash.allowed_errors = [r'AH00072|AH00451|AH00015|Address already in use']


class StockHeartbeatTest(hbtest.HbTestCase):

    def test_stock_heartbeat_unicast(self):
        udp_port = hbtest.free_port(kind='udp')
        listener = self.sandbox.udp_listener('127.0.0.1', udp_port)
        origin = self.httpd('origin', 'HeartbeatAddress 127.0.0.1:%d\n' % udp_port,
                            modules=['watchdog', 'heartbeat'], ours=False)
        self.assertIn(hbtest.stock_module_path('heartbeat'),
                      '\n'.join(origin.load_module_lines()))
        origin.start()
        first = listener.wait_for(is_heartbeat, timeout=10)
        self.assertEqual(first.addr[0], '127.0.0.1')
        second = listener.wait_for(is_heartbeat, timeout=10,
                                   since=listener.datagrams.index(first) + 1)
        self.assertGreater(second.time, first.time)


class ModulePathTest(hbtest.HbTestCase):
    check_error_logs = False

    def test_paths(self):
        moddir = hbtest.sys_moddir()
        self.assertEqual(hbtest.stock_module_path('mod_proxy'),
                         os.path.join(moddir, 'mod_proxy.so'))
        ours = hbtest.our_module_path('heartmonitor')
        self.assertEqual(ours, os.path.join(hbtest.build_dir(), 'modules', 'heartmonitor',
                                            '.libs', 'mod_heartmonitor.so'))
        self.assertEqual(hbtest.module_path('heartmonitor', ours=True), ours)
        self.assertEqual(hbtest.module_path('heartmonitor', ours=False),
                         os.path.join(moddir, 'mod_heartmonitor.so'))
        self.assertEqual(hbtest.module_path('heartmonitor', ours=['heartbeat']),
                         os.path.join(moddir, 'mod_heartmonitor.so'))
        self.assertEqual(hbtest.module_path('proxy', ours=True),
                         os.path.join(moddir, 'mod_proxy.so'))
        self.assertTrue(os.path.exists(hbtest.httpd_binary()))
        self.assertIn('unixd', hbtest.builtin_modules())


class NetLabTest(hbtest.HbTestCase):

    def setUp(self):
        super().setUp()
        hbtest.require_netns()

    def test_two_hosts(self):
        lab = hbtest.NetLab(2)
        with lab:
            h1, h2 = lab.hosts
            namespaces = [lab.hub, h1.ns, h2.ns]
            for ns in namespaces:
                self.assertTrue(ns.startswith('hbt-'))
                self.assertIn(ns, hbtest.netns_list())

            httpd = self.httpd('in-h1', ours=False, netns=h1)
            httpd.add_file('where.txt', 'h1\n')
            httpd.start()
            self.assertEqual(httpd.url('/'), 'http://198.18.0.1:80/')
            # ip netns exec execs: the Popen pid is httpd itself.
            self.assertEqual(os.path.realpath('/proc/%d/exe' % httpd.pid),
                             os.path.realpath(hbtest.httpd_binary()))
            with open(httpd.pid_file) as f:
                self.assertEqual(int(f.read()), httpd.pid)

            # From host2 with a separate process ...
            snippet = textwrap.dedent('''
                import urllib.request
                print(urllib.request.urlopen(%r, timeout=5).read().decode(), end='')
            ''' % httpd.url('/where.txt'))
            res = h2.run(['/usr/bin/python3', '-c', snippet])
            self.assertEqual((res.returncode, res.stdout), (0, 'h1\n'), res.stderr)
            # ... and with a socket created inside host2's namespace.
            self.assertEqual(hbtest.get(httpd.url('/where.txt'), netns=h2).body, b'h1\n')
            # The lab's addresses do not exist in the root namespace.  (Do not
            # probe them with connect(): some sandboxes answer any outbound
            # TCP connection through a transparent proxy.)
            root_addrs = subprocess.run(['ip', '-o', 'addr'], capture_output=True,
                                        text=True).stdout
            self.assertNotIn(h1.ip + '/', root_addrs)

            # Unicast with the sender's own address as source.
            listener = self.sandbox.udp_listener(h2.ip, 5000, netns=h2)
            hbtest.send_udp(h2.ip, 5000, 'ping', netns=h1)
            dgram = listener.wait_for(lambda d: d.data == b'ping')
            self.assertEqual(dgram.addr[0], h1.ip)

            httpd.shutdown()
            self.assertFalse(httpd.running)
        remaining = hbtest.netns_list()
        for ns in namespaces:
            self.assertNotIn(ns, remaining)

    def test_stock_heartbeat_multicast_between_hosts(self):
        lab = self.sandbox.netlab(['origin', 'proxy'])
        origin, proxy = lab['origin'], lab['proxy']
        listener = self.sandbox.udp_listener('239.0.0.1', 27999, netns=proxy,
                                             join='239.0.0.1')
        self.httpd('origin', 'HeartbeatAddress 239.0.0.1:27999\n',
                   modules=['watchdog', 'heartbeat'], ours=False, netns=origin).start()
        dgram = listener.wait_for(is_heartbeat, timeout=10)
        self.assertEqual(dgram.addr[0], origin.ip)

    def test_cleanup_on_exception(self):
        lab = hbtest.NetLab(1)
        with self.assertRaises(RuntimeError):
            with lab:
                ns = lab.hosts[0].ns
                self.assertIn(ns, hbtest.netns_list())
                raise RuntimeError('boom')
        self.assertNotIn(ns, hbtest.netns_list())


class RunnerConventionTest(hbtest.HbTestCase):
    """main() must print the summary line and turn skips into failures."""

    SCRIPT = textwrap.dedent('''
        import sys, unittest
        sys.path.insert(0, %r)
        import hbtest

        class T(hbtest.HbTestCase):
            def test_pass(self):
                pass
            def test_fail(self):
                self.fail('expected')
            def test_skip(self):
                self.skipTest('because')
            def test_fail_twice(self):
                self.addCleanup(self.fail, 'in cleanup too')
                self.fail('expected')

        hbtest.main()
    ''')

    def run_script(self, **env):
        path = os.path.join(self.sandbox.path, 'test_sample.py')
        with open(path, 'w') as f:
            f.write(self.SCRIPT % hbtest.HARNESS_DIR)
        full_env = dict(os.environ, HB_TMPDIR=self.sandbox.path, **env)
        full_env.pop('HB_KEEP', None)
        return subprocess.run(['/usr/bin/python3', path], capture_output=True, text=True,
                              env=full_env, cwd='/', timeout=60)

    def test_summary_and_exit_code(self):
        res = self.run_script(HB_ALLOW_SKIP='0')
        self.assertEqual(res.returncode, 1)
        self.assertEqual(res.stdout.splitlines()[-1], '1 passed, 3 failed')
        res = self.run_script(HB_ALLOW_SKIP='1')
        self.assertEqual(res.returncode, 1)
        self.assertEqual(res.stdout.splitlines()[-1], '1 passed, 2 failed')
        self.assertIn('files kept in', res.stderr)  # the failed test's sandbox



if __name__ == '__main__':
    hbtest.main()
