#!/usr/bin/python3
"""hbctl, the operator tool: table from a file and from a status URL, send
(plain and signed), and drain/undrain through HeartbeatStateFile with a
real origin and proxy."""

import hashlib
import hmac
import http.server
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

SRC = os.environ.get('HB_SRC_DIR') or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   '..', '..')
HBCTL = os.path.join(SRC, 'tools', 'hbctl')
KEY = b'0123456789abcdef0123456789abcdef'
PROXY = ['proxy', 'proxy_http', 'proxy_balancer', 'slotmem_shm', 'lbmethod_byrequests',
         'watchdog', 'heartmonitor', 'lbmethod_heartbeat']


def stated_status(text, what):
    """The exit status text gives for `what` ('usage error', 'failure'):
    the number in "N on a usage error", or None."""
    m = re.search(r'\b(\d+) on (?:an? )?%s' % re.escape(what), ' '.join(text.split()))
    return int(m.group(1)) if m else None


def hbctl(*args, check=True):
    r = subprocess.run(['/usr/bin/python3', HBCTL] + list(args), capture_output=True, text=True,
                       timeout=30)
    if check and r.returncode != 0:
        raise AssertionError('hbctl %s: %s%s' % (args, r.stdout, r.stderr))
    return r


class WrongJson(http.server.BaseHTTPRequestHandler):

    def do_GET(self):
        body = b'{"servers": [{"ip": "10.0.0.1"}]}'
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HbctlTest(hbtest.HbTestCase):

    def test_help_and_usage_errors(self):
        r = hbctl('--help')
        self.assertIn('hbctl table SOURCE', r.stdout)
        self.assertNotEqual(hbctl('send', 'nohostport', check=False).returncode, 0)
        self.assertNotEqual(hbctl('table', '/nonexistent', check=False).returncode, 0)

    def test_exit_status_is_what_help_and_manual_say(self):
        """Every usage error exits with the status --help and docs/hbctl.md
        give for one (argparse's 2), every failure with theirs (1), each with
        a message and no traceback."""
        help_text = hbctl('--help').stdout
        with open(os.path.join(SRC, 'docs', 'hbctl.md')) as f:
            manual = f.read().split('## EXIT STATUS', 1)[1].split('\n## ', 1)[0]
        usage = stated_status(help_text, 'usage error')
        failure = stated_status(help_text, 'failure')
        self.assertEqual((usage, failure), (2, 1), help_text)
        self.assertEqual((stated_status(manual, 'usage error'),
                          stated_status(manual, 'failure')), (usage, failure), manual)

        garbage = os.path.join(self.sandbox.path, 'garbage.dat')
        with open(garbage, 'w') as f:
            f.write('10.0.0.1 &ready=1&busy=0&seen=notanumber\n')
        open_key = os.path.join(self.sandbox.path, 'open.key')
        with open(open_key, 'w') as f:
            f.write('0123456789abcdef\n')
        os.chmod(open_key, 0o644)
        # A web server whose "status" answer is JSON of the wrong shape.
        server = http.server.HTTPServer(('127.0.0.1', 0), WrongJson)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        wrong_json = 'http://127.0.0.1:%d/heartbeat-status' % server.server_port

        cases = [
            (usage, []),
            (usage, ['bogus']),
            (usage, ['table']),
            (usage, ['table', 'a', 'b']),
            (usage, ['send', '--ready', 'many', '127.0.0.1:9']),
            (usage, ['send', 'nohostport']),
            (usage, ['send', '127.0.0.1:70000']),
            (usage, ['send', '127.0.0.1:9', '--ttl', '999']),
            (usage, ['send', '127.0.0.1:9', '--state', 'sideways']),
            (usage, ['drain']),
            (failure, ['table', '/nonexistent']),
            (failure, ['table', garbage]),
            (failure, ['table', 'http://127.0.0.1:%d/' % hbtest.free_port()]),
            (failure, ['table', wrong_json]),
            (failure, ['send', '127.0.0.1:9', '--key', '/nonexistent.key']),
            (failure, ['send', '127.0.0.1:9', '--key', open_key]),
            (failure, ['drain', '/nonexistent/dir/a.state']),
        ]
        for want, args in cases:
            r = hbctl(*args, check=False)
            self.assertEqual(r.returncode, want, 'hbctl %s: %s' % (' '.join(args), r.stderr))
            self.assertNotIn('Traceback', r.stderr, 'hbctl %s' % ' '.join(args))
            self.assertRegex(r.stderr, r'^(usage: hbctl|hbctl: )' if want == usage
                             else r'^hbctl: ', 'hbctl %s' % ' '.join(args))

    def test_table_from_stock_file(self):
        path = os.path.join(self.sandbox.path, 'hb.dat')
        with open(path, 'w') as f:
            f.write('# comment\n10.0.0.11 &ready=75&busy=3&lastseen=2&port=8080\n')
        old = time.time() - 10
        os.utime(path, (old, old))
        out = hbctl('table', path).stdout
        self.assertRegex(out, r'10\.0\.0\.11\s+8080\s+75\s+3\s+up\s+12\.\d')

    def test_send_and_table_from_url_signed(self):
        hb_port = hbtest.free_port(kind='udp')
        m = self.httpd('monitor', modules=['watchdog', 'heartmonitor'])
        key = os.path.join(m.root, 'site.key')
        with open(key, 'w') as f:
            f.write('0123456789abcdef0123456789abcdef\n')
        os.chmod(key, 0o600)
        m.conf_body = ('HeartbeatListen 127.0.0.1:%d\nHeartbeatSecret "%s"\n'
                       '<Location /hb-status>\n SetHandler heartbeat-status\n</Location>\n'
                       % (hb_port, key))
        m.start()
        sent = hbctl('send', '127.0.0.1:%d' % hb_port, '--ready', '7', '--port', '81',
                     '--key', key).stdout
        # Signed, it names the address it is sent from (the monitor
        # checks it against the source).
        self.assertIn('&state=up&addr=127.0.0.1&ts=', sent)
        hbctl('send', '127.0.0.1:%d' % hb_port, '--ready', '9', '--port', '82')  # unsigned
        hbtest.wait_until(lambda: '127.0.0.1' in hbctl('table', m.url('/hb-status')).stdout,
                          timeout=5)
        out = hbctl('table', m.url('/hb-status')).stdout
        self.assertRegex(out, r'127\.0\.0\.1\s+81\s+7\s+0\s+up\s+[\d.]+\s+yes')
        self.assertNotRegex(out, r'\s82\s')

    def test_signed_send_names_its_source(self):
        """hbctl send --key puts addr=<the address it sends from> inside
        the signed part, after state= and before ts, kid and sig, as
        mod_heartbeat does; --source chooses that address. Unsigned packets
        carry no addr=."""
        key = os.path.join(self.sandbox.path, 'site.key')
        with open(key, 'wb') as f:
            f.write(KEY + b'\n')
        os.chmod(key, 0o600)
        with hbtest.UdpListener('127.0.0.1') as lst:
            target = '127.0.0.1:%d' % lst.port
            for extra, source in (([], '127.0.0.1'), (['--source', '127.0.0.3'], '127.0.0.3')):
                with self.subTest(source=source):
                    lst.clear()
                    printed = hbctl('send', target, '--port', '81', '--key', key,
                                    *extra).stdout.strip()
                    d = lst.wait_for(lambda d: True, timeout=5)
                    text = d.data.decode()
                    self.assertEqual(printed, text)
                    self.assertEqual(d.addr[0], source)
                    names = [kv.split('=', 1)[0] for kv in text.split('&')]
                    self.assertEqual(names, ['v', 'ready', 'busy', 'port', 'seq', 'int',
                                             'state', 'addr', 'ts', 'kid', 'sig'], text)
                    fields = dict(kv.split('=', 1) for kv in text.split('&'))
                    self.assertEqual(fields['addr'], d.addr[0], text)
                    signed, sig = text.rsplit('&sig=', 1)
                    self.assertIn('&addr=%s&' % source, signed + '&')
                    self.assertEqual(sig, hmac.new(KEY, signed.encode(),
                                                   hashlib.sha256).hexdigest())
            lst.clear()
            hbctl('send', target, '--port', '81')
            d = lst.wait_for(lambda d: True, timeout=5)
            self.assertNotIn(b'addr=', d.data)

    def test_pasted_key_is_not_echoed(self):
        """Key material given to --key in place of a path fails like a
        missing file, without repeating it; a path is still named."""
        r = hbctl('send', '127.0.0.1:9', '--key', KEY.decode(), check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn('not repeated here', r.stderr)
        self.assertNotIn(KEY.decode()[:16], r.stdout + r.stderr)
        r = hbctl('send', '127.0.0.1:9', '--key', '/nonexistent/site.key', check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn('/nonexistent/site.key', r.stderr)

    def test_drain_and_undrain(self):
        hb_port = hbtest.free_port(kind='udp')
        origins = []
        for name in ('a', 'b'):
            o = self.httpd(name, modules=['watchdog', 'heartbeat'])
            o.add_file('who', name + '\n')
            origins.append(o)
        a, b = origins
        state = a.make_dir('state')
        statefile = os.path.join(state, 'a.state')
        a.conf_body = ('HeartbeatAddress 127.0.0.1:%d\nHeartbeatInterval 100ms\n'
                       'HeartbeatStateFile "%s"\n' % (hb_port, statefile))
        # b reports fewer ready slots, so a wins unless it drains.
        b.conf_body = ('HeartbeatAddress 127.0.0.1:%d\nHeartbeatInterval 100ms\n'
                       'StartServers 1\nServerLimit 1\nThreadsPerChild 4\n'
                       'MaxRequestWorkers 4\nMinSpareThreads 1\nMaxSpareThreads 4\n' % hb_port)
        proxy = self.httpd('proxy', """
HeartbeatListen 127.0.0.1:%d
<Proxy balancer://b>
    BalancerMember http://127.0.0.1:%d
    BalancerMember http://127.0.0.1:%d
    ProxySet lbmethod=heartbeat
</Proxy>
ProxyPass /app balancer://b
""" % (hb_port, a.port, b.port), modules=PROXY)
        proxy.allowed_errors = [r'AH01170']
        proxy.start()
        a.start()
        b.start()

        def who():
            return proxy.get('/app/who').body.decode().strip()
        hbtest.wait_until(lambda: who() == 'a', timeout=10, message='a preferred')
        hbctl('drain', statefile)
        hbtest.wait_until(lambda: who() == 'b', timeout=5, message='a drained')
        self.assertEqual({who() for _ in range(5)}, {'b'})
        # undrain lifts the file's drain only, and says so.
        self.assertIn('configured HeartbeatState', hbctl('undrain', statefile).stdout)
        hbtest.wait_until(lambda: who() == 'a', timeout=5, message='a back')


if __name__ == '__main__':
    hbtest.main()
