#!/usr/bin/python3
"""The status page in the Prometheus text format (?prometheus), against
real httpd and the real tools of Debian's prometheus package.

The heartbeats are sent by hand (hbtest.Feeder, as in test_balancer.py), so the
values the page gives can be checked against what was sent: the origins'
reports and packet counts, the monitor's counters, the members' requests
and ejections, the balancers' picks by mode, their fallbacks and their
503s. promtool checks the text; a Prometheus server started here scrapes
the page with the configuration of docs/monitoring.md, answers queries
through its HTTP API (label values with a quote and a backslash included),
and evaluates the alert rules of docs/monitoring.md, one of which must
fire.
"""

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

# The proxy: mod_proxy's balancer with a slot provider, our monitor and
# lbmethod, and the status page at STATUS_PATH.
PROXY_MODULES = ('proxy proxy_http proxy_balancer slotmem_shm lbmethod_byrequests heartmonitor '
                 'lbmethod_heartbeat').split()
STATUS_PATH = '/hb-status'
STATUS_CONF = '<Location %s>\n    SetHandler heartbeat-status\n</Location>\n' % STATUS_PATH

CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
MONITORING_MD = os.path.join(os.environ.get('HB_SRC_DIR') or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..'), 'docs', 'monitoring.md')

# A balancer and a member URL that need escaping in a label value; httpd
# takes them in quotes with backslash escapes.
WEIRD_BALANCER = 'balancer://we"ird\\x'
WEIRD_PATH = '/a"b\\c'


def conf_quote(s):
    return '"%s"' % s.replace('\\', '\\\\').replace('"', '\\"')


# ---------------------------------------------------------------- parsing

Sample = collections.namedtuple('Sample', 'name labels value')

_SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|\})')


def _unescape(v):
    return re.sub(r'\\(.)', lambda m: {'n': '\n'}.get(m.group(1), m.group(1)), v)


def parse(text):
    """The samples of a page in the text format, strictly: every sample's
    family announced by HELP and TYPE lines before it, every family's
    samples together, each name and label set once. Returns (samples,
    {family: type})."""
    samples, types, helped, done, seen = [], {}, set(), set(), set()
    current = None
    assert text.endswith('\n'), 'no newline at the end'
    for line in text.splitlines():
        if line.startswith('# HELP '):
            name = line.split(' ')[2]
            assert name not in helped, 'HELP twice for %s' % name
            helped.add(name)
        elif line.startswith('# TYPE '):
            _, _, name, kind = line.split(' ')
            assert name in helped and name not in types, 'TYPE of %s' % name
            types[name] = kind
            if current:
                done.add(current)
            current = name
        else:
            m = _SAMPLE.match(line)
            assert m, 'not a sample: %r' % line
            name, labels, value = m.group(1), {}, float(m.group(3))
            assert name == current and name not in done, '%s outside its family' % name
            rest = (m.group(2) or '')[1:]
            while rest:
                lm = _LABEL.match(rest)
                assert lm, 'bad labels in %r' % line
                labels[lm.group(1)] = _unescape(lm.group(2))
                rest = rest[lm.end():]
            key = (name, tuple(sorted(labels.items())))
            assert key not in seen, 'duplicate sample %r' % (key,)
            seen.add(key)
            samples.append(Sample(name, labels, value))
    return samples, types


def value(samples, name, **labels):
    """The one sample of name whose labels include these."""
    got = [s for s in samples if s.name == name
           and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(got) == 1, '%s %r: %d samples: %r' % (name, labels, len(got), got)
    return got[0].value


def promtool(*args, stdin=None):
    tool = shutil.which('promtool')
    if not tool:
        raise AssertionError('promtool not found: apt-get install prometheus (build/deps.sh '
                             'installs it)')
    return subprocess.run([tool] + list(args), input=stdin, capture_output=True, text=True,
                          timeout=60)


def yaml_block(marker):
    """The ```yaml block of docs/monitoring.md that holds marker."""
    with open(MONITORING_MD) as f:
        blocks = re.findall(r'```yaml\n(.*?)```', f.read(), re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, 'docs/monitoring.md: %d yaml blocks with %r' % (len(found), marker)
    return found[0]


class MetricsCase(hbtest.HbTestCase):
    allowed_errors = [r'AH01170']  # 503 "All workers are in error state"

    def origin(self, name, conf=''):
        o = self.httpd(name, conf, modules=['alias'] if conf else ())
        o.add_file('who', name + '\n')
        return o.start()

    def proxy(self, balancers, extra=''):
        """balancers: (name, [member URLs], section lines, ProxyPass path or None)."""
        self.hb_port = hbtest.free_port(kind='udp')
        conf = ('HeartbeatListen 127.0.0.1:%d\nHeartbeatMaxServers 50\nHeartbeatWarmUp 0\n'
                % self.hb_port) + STATUS_CONF + extra
        for name, members, section, path in balancers:
            conf += '<Proxy %s>\n' % conf_quote(name)
            conf += ''.join('    BalancerMember %s\n' % conf_quote(m) for m in members)
            conf += '    ProxySet lbmethod=heartbeat\n%s</Proxy>\n' % section
            if path:
                conf += 'ProxyPass %s %s\n' % (path, conf_quote(name))
        p = self.httpd('proxy', conf, modules=PROXY_MODULES)
        p.start()
        return p

    def feeder(self, proxy):
        f = hbtest.Feeder(self.hb_port, status_url=proxy.url(STATUS_PATH + '?json')).start()
        self.addCleanup(f.close)
        return f

    def scrape(self, proxy, args='prometheus'):
        r = proxy.get(STATUS_PATH + '?' + args)
        self.assertEqual(r.status, 200, r.body[:500])
        self.assertEqual(r.headers.get('Content-Type'), CONTENT_TYPE)
        text = r.body.decode('utf-8')
        res = promtool('check', 'metrics', stdin=text)
        # promtool prints lint problems and exits non-zero; nothing is
        # tolerated.
        self.assertEqual((res.returncode, res.stdout + res.stderr), (0, ''), text[:2000])
        samples, types = parse(text)
        return text, samples, types

    def who(self, proxy, path, n):
        out = []
        for _ in range(n):
            r = proxy.get(path)
            out.append(r.body.decode().strip() if r.status == 200 else r.status)
        return out


class ValuesTest(MetricsCase):

    def test_values_are_what_was_sent(self):
        a, b, z = self.origin('a'), self.origin('b'), self.origin('z')
        url = 'http://127.0.0.1:%d'
        proxy = self.proxy([
            ('balancer://app', [url % a.port, url % b.port], '', '/app'),
            ('balancer://pc', [url % a.port, url % b.port], '    HeartbeatPickMode p2c\n', '/pc'),
            # z never reports: 503, or rotation with the fallback.
            ('balancer://nodata', [url % z.port], '', '/nodata'),
            ('balancer://rr', [url % z.port], '    HeartbeatFallback roundrobin\n', '/rr')])
        f = self.feeder(proxy)
        f.set(a.port, 7, busy=3)
        f.set(b.port, 2, busy=1, state='drain')
        f.wait_rounds()
        self.assertEqual(self.who(proxy, '/app/who', 6), ['a'] * 6)
        self.assertEqual(self.who(proxy, '/pc/who', 2), ['a'] * 2)
        self.assertEqual(self.who(proxy, '/nodata/who', 3), [503] * 3)
        self.assertEqual(self.who(proxy, '/rr/who', 4), ['z'] * 4)
        hbtest.send_udp('127.0.0.1', self.hb_port, b'v=1&ready=x&busy=0')
        f.close()
        sent = sum(f.packets.values())
        hbtest.wait_until(
            lambda: json.loads(proxy.get(STATUS_PATH + '?counters').body)['counters']['accepted']
            == sent, timeout=5, message='every heartbeat applied')
        hbtest.wait_until(
            lambda: json.loads(proxy.get(STATUS_PATH + '?counters').body)['counters']['malformed']
            == 1, timeout=5, message='the malformed one counted')
        status = json.loads(proxy.get(STATUS_PATH + '?json').body)
        text, s, types = self.scrape(proxy)

        # The origins: what they reported, as sent.
        for o, ready, busy, state in ((a, 7, 3, 'up'), (b, 2, 1, 'drain')):
            origin = '127.0.0.1:%d' % o.port
            entry = [e for e in status['servers'] if e['port'] == o.port][0]
            self.assertEqual(value(s, 'heartbeat_origin_ready', origin=origin), ready)
            self.assertEqual(value(s, 'heartbeat_origin_busy', origin=origin), busy)
            for st in ('up', 'drain', 'stopping'):
                self.assertEqual(value(s, 'heartbeat_origin_state', origin=origin, state=st),
                                 1 if st == state else 0, st)
            self.assertEqual(value(s, 'heartbeat_origin_packets_total', origin=origin),
                             f.packets[o.port])
            self.assertEqual(value(s, 'heartbeat_origin_packets_total', origin=origin),
                             entry['packets'])
            self.assertEqual(value(s, 'heartbeat_origin_interval_seconds', origin=origin), 0.1)
            self.assertEqual(value(s, 'heartbeat_origin_signed', origin=origin), 0)
            age = value(s, 'heartbeat_origin_report_age_seconds', origin=origin)
            self.assertGreaterEqual(age, entry['age_ms'] / 1000.0)
            self.assertLess(age, entry['age_ms'] / 1000.0 + 2)
        self.assertEqual(len([x for x in s if x.name == 'heartbeat_origin_ready']), 2)

        # The monitor.
        self.assertEqual(value(s, 'heartbeat_monitor_packets_accepted_total'), sent)
        rejected = {x.labels['reason']: x.value for x in s
                    if x.name == 'heartbeat_monitor_packets_rejected_total'}
        self.assertEqual(rejected, {r: 1 if r == 'malformed' else 0 for r in (
            'malformed', 'full', 'per_address', 'unsigned', 'badsig', 'replay', 'clock_skew',
            'notallowed', 'ratelimited', 'identity', 'unbound')})
        self.assertEqual(value(s, 'heartbeat_monitor_origins_inserted_total'), 2)
        self.assertEqual(value(s, 'heartbeat_monitor_table_entries'), 2)
        self.assertEqual(value(s, 'heartbeat_monitor_table_capacity'), 50)
        self.assertEqual(value(s, 'heartbeat_monitor_storage_errors_total'), 0)
        self.assertEqual(value(s, 'heartbeat_monitor_receiver_starts_total'),
                         status['counters']['receiver_starts'])
        self.assertGreaterEqual(value(s, 'heartbeat_monitor_receiver_starts_total'), 1)
        listen = '127.0.0.1:%d' % self.hb_port
        self.assertEqual(value(s, 'heartbeat_monitor_receive_drops_total', listen=listen),
                         hbtest.udp_socket_drops(self.hb_port))
        self.assertEqual(value(s, 'heartbeat_monitor_receive_queue_bytes', listen=listen), 0)

        # The members: requests sent to each, in flight, ejections.
        picked = {(x.labels['balancer'], x.labels['member']): x.value for x in s
                  if x.name == 'heartbeat_member_picked_total'}
        self.assertEqual(picked, {
            ('balancer://app', url % a.port): 6, ('balancer://app', url % b.port): 0,
            ('balancer://pc', url % a.port): 2, ('balancer://pc', url % b.port): 0,
            ('balancer://nodata', url % z.port): 0, ('balancer://rr', url % z.port): 4})
        for bal, member in picked:
            m = {'balancer': bal, 'member': member}
            self.assertEqual(value(s, 'heartbeat_member_info', joined='static', **m), 1)
            self.assertEqual(value(s, 'heartbeat_member_in_flight', **m), 0)
            self.assertEqual(value(s, 'heartbeat_member_ejected', **m), 0)
            self.assertEqual(value(s, 'heartbeat_member_ejections_total', **m), 0)
            self.assertEqual(value(s, 'heartbeat_member_failure_ratio', **m), 0)
            for result in ('taken', 'ignored'):
                self.assertEqual(value(s, 'heartbeat_member_load_reports_total', result=result,
                                       **m), 0)

        # The balancers: picks by mode, fallbacks, 503s for lack of data.
        picks = {(x.labels['balancer'], x.labels['mode']): x.value for x in s
                 if x.name == 'heartbeat_balancer_picks_total'}
        self.assertEqual({k: v for k, v in picks.items() if v}, {
            ('balancer://app', 'most'): 6, ('balancer://pc', 'p2c'): 2})
        self.assertEqual(len(picks), 4 * 3)
        for bal, fallback, no_data in (('balancer://app', 0, 0), ('balancer://pc', 0, 0),
                                       ('balancer://nodata', 0, 3), ('balancer://rr', 4, 0)):
            self.assertEqual(value(s, 'heartbeat_balancer_fallback_picks_total', balancer=bal),
                             fallback, bal)
            self.assertEqual(value(s, 'heartbeat_balancer_no_data_total', balancer=bal),
                             no_data, bal)

        # Every family is documented in docs/monitoring.md with its type,
        # and every documented one is here.
        with open(MONITORING_MD) as md:
            documented = dict(re.findall(r'^\| `(heartbeat_[a-z_]+)` \| (counter|gauge) \|',
                                         md.read(), re.M))
        self.assertEqual(types, documented)

    def test_ejections_counted(self):
        a, b = self.origin('a'), self.origin('b')
        c = self.origin('c', 'Redirect 503 /who\n')
        members = ['http://127.0.0.1:%d' % o.port for o in (a, b, c)]
        proxy = self.proxy([('balancer://b', members, '', '/app')])
        f = self.feeder(proxy)
        f.set(a.port, 10)
        f.set(b.port, 10)
        f.set(c.port, 50)  # always free: it fails at once
        f.wait_rounds()
        got = collections.Counter(self.who(proxy, '/app/who', 100))
        proxy.wait_log(r'LB0310: http://127.0.0.1:%d ejected' % c.port)
        _, s, _ = self.scrape(proxy)
        m = {'balancer': 'balancer://b', 'member': members[2]}
        self.assertEqual(value(s, 'heartbeat_member_ejected', **m), 1)
        self.assertEqual(value(s, 'heartbeat_member_ejections_total', **m), 1)
        self.assertEqual(value(s, 'heartbeat_member_ejections_in_a_row', **m), 1)
        self.assertGreater(value(s, 'heartbeat_member_failure_ratio', **m), 0.3)
        self.assertEqual(value(s, 'heartbeat_member_picked_total', **m), got[503])
        for member in members[:2]:
            self.assertEqual(value(s, 'heartbeat_member_ejected', balancer='balancer://b',
                                   member=member), 0)
        self.assertEqual(sum(x.value for x in s if x.name == 'heartbeat_member_picked_total'),
                         100)
        self.assertEqual(value(s, 'heartbeat_balancer_picks_total', balancer='balancer://b',
                               mode='most'), 100)

    def test_monitor_alone_and_receiver_starts(self):
        # No balancer module: no member or balancer families; an empty
        # table: no origin ones either.
        self.hb_port = hbtest.free_port(kind='udp')
        m = self.httpd('monitor', 'HeartbeatListen 127.0.0.1:%d\n' % self.hb_port + STATUS_CONF,
                       modules=['heartmonitor']).start()

        def starts():
            return value(self.scrape(m)[1], 'heartbeat_monitor_receiver_starts_total')
        before = hbtest.wait_until(starts, timeout=5, message='the receiver started')
        text, s, types = self.scrape(m)
        self.assertEqual({n for n in types if not n.startswith('heartbeat_monitor_')}, set())
        self.assertEqual(value(s, 'heartbeat_monitor_table_entries'), 0)
        # A graceful restart starts a new generation's receiver. (The MPM
        # may also retire an idle child that holds one: that counts too, so
        # the count is not exact.)
        m.graceful_restart()
        hbtest.wait_until(lambda: starts() > before, timeout=10,
                          message=lambda: 'receiver_starts above %d after a graceful restart, '
                          'not %d' % (before, starts()))
        # HEAD gets the headers only.
        r = hbtest.request('HEAD', m.url(STATUS_PATH + '?prometheus'))
        self.assertEqual((r.status, r.body), (200, b''))


class EscapingTest(MetricsCase):

    def test_quote_and_backslash_in_names(self):
        a = self.origin('a')
        member = 'http://127.0.0.1:%d%s' % (a.port, WEIRD_PATH)
        proxy = self.proxy([(WEIRD_BALANCER, [member], '', None)])
        text, s, _ = self.scrape(proxy)
        # Escaped in the text, the names themselves once read back.
        self.assertIn('balancer="balancer://we\\"ird\\\\x",member="http://127.0.0.1:%d/a\\"b\\\\c"'
                      % a.port, text)
        self.assertEqual(value(s, 'heartbeat_member_info', balancer=WEIRD_BALANCER,
                               member=member, joined='static'), 1)
        self.assertEqual(value(s, 'heartbeat_balancer_no_data_total', balancer=WEIRD_BALANCER), 0)
        # The JSON form carries the same names.
        members = json.loads(proxy.get(STATUS_PATH + '?json').body)['members']
        self.assertEqual([(x['balancer'], x['member']) for x in members],
                         [(WEIRD_BALANCER, member)])


class PrometheusTest(MetricsCase):
    """A real Prometheus server scrapes the page with the scrape
    configuration of docs/monitoring.md and evaluates its alert rules."""

    def start_prometheus(self, target):
        binary = shutil.which('prometheus')
        if not binary:
            raise AssertionError('prometheus not found: apt-get install prometheus '
                                 '(build/deps.sh installs it)')
        d = self.sandbox.new_dir('prometheus')
        rules = yaml_block('groups:')
        with open(os.path.join(d, 'heartbeat-rules.yml'), 'w') as f:
            f.write(rules)
        res = promtool('check', 'rules', os.path.join(d, 'heartbeat-rules.yml'))
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn('SUCCESS: 3 rules found', res.stdout)
        # The documented configuration, scraping every second this proxy's
        # status page (at STATUS_PATH here).
        config = yaml_block('scrape_configs:')
        for old, new in (('scrape_interval: 15s', 'scrape_interval: 1s'),
                         ('evaluation_interval: 15s', 'evaluation_interval: 1s'),
                         ('metrics_path: /heartbeat-status', 'metrics_path: ' + STATUS_PATH),
                         ('          - proxy1.example.net:80\n', '          - %s\n' % target),
                         ('          - proxy2.example.net:80\n', '')):
            self.assertEqual(config.count(old), 1, old)
            config = config.replace(old, new)
        path = os.path.join(d, 'prometheus.yml')
        with open(path, 'w') as f:
            f.write(config)
        res = promtool('check', 'config', path)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.prom_url = 'http://127.0.0.1:%d' % hbtest.free_port()
        log = open(os.path.join(d, 'prometheus.log'), 'w')
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            [binary, '--config.file=' + path, '--storage.tsdb.path=' + os.path.join(d, 'data'),
             '--web.listen-address=' + self.prom_url[len('http://'):]],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=d)
        self.addCleanup(self.stop_prometheus, proc)

        def ready():
            self.assertIsNone(proc.poll(), 'prometheus exited, see %s' % log.name)
            try:
                return hbtest.get(self.prom_url + '/-/ready').status == 200
            except OSError:
                return False
        hbtest.wait_until(ready, timeout=30, message='prometheus ready')
        return proc

    @staticmethod
    def stop_prometheus(proc):
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

    def api(self, path, **params):
        r = hbtest.get(self.prom_url + '/api/v1/' + path + (
            '?' + urllib.parse.urlencode(params) if params else ''))
        self.assertEqual(r.status, 200, r.body[:500])
        body = json.loads(r.body)
        self.assertEqual(body['status'], 'success', body)
        return body['data']

    def query(self, q):
        return {tuple(sorted((k, v) for k, v in x['metric'].items()
                             if k not in ('__name__', 'instance', 'job'))): x['value'][1]
                for x in self.api('query', query=q)['result']}

    def test_scraped_queried_and_alerted(self):
        a, z = self.origin('a'), self.origin('z')
        weird_member = 'http://127.0.0.1:%d%s' % (a.port, WEIRD_PATH)
        proxy = self.proxy([
            ('balancer://app', ['http://127.0.0.1:%d' % a.port], '', '/app'),
            ('balancer://nodata', ['http://127.0.0.1:%d' % z.port], '', '/nodata'),
            (WEIRD_BALANCER, [weird_member], '', None)])
        f = self.feeder(proxy)
        f.set(a.port, 7, busy=3)
        f.wait_rounds()
        target = '127.0.0.1:%d' % proxy.port
        self.start_prometheus(target)

        origin = (('origin', '127.0.0.1:%d' % a.port),)
        hbtest.wait_until(lambda: self.query('heartbeat_origin_ready') == {origin: '7'},
                          timeout=30, message=lambda: 'heartbeat_origin_ready 7 in prometheus: '
                          '%r, targets %r' % (self.query('heartbeat_origin_ready'),
                                              self.api('targets')))
        self.assertEqual(self.query('heartbeat_origin_busy'), {origin: '3'})
        targets = self.api('targets')['activeTargets']
        self.assertEqual([(t['labels']['instance'], t['health'], t['lastError'])
                          for t in targets], [(target, 'up', '')])
        self.assertEqual(targets[0]['scrapeUrl'], 'http://%s%s?prometheus=' % (target, STATUS_PATH))
        # The escaped names arrive as they are in the configuration.
        info = self.query('heartbeat_member_info')
        self.assertIn((('balancer', WEIRD_BALANCER), ('joined', 'static'),
                       ('member', weird_member)), info)
        self.assertEqual(len(info), 3)

        # Every rule evaluates without error...
        def rules_health():
            rules = [r for g in self.api('rules')['groups'] for r in g['rules']]
            return {r['name']: (r['health'], r.get('lastError', '')) for r in rules}
        hbtest.wait_until(lambda: set(rules_health().values()) == {('ok', '')}, timeout=15,
                          message=lambda: 'every rule evaluated: %r' % rules_health())
        self.assertEqual(sorted(rules_health()), ['HeartbeatBalancerWithoutData',
                                                  'HeartbeatMonitorLosingPackets',
                                                  'HeartbeatOriginSilent'])
        self.assertEqual(self.api('alerts')['alerts'], [])
        # ... and 503s for lack of data fire the balancer's alert.
        hbtest.wait_until(lambda: self.query('heartbeat_balancer_no_data_total{'
                                             'balancer="balancer://nodata"}') == {
            (('balancer', 'balancer://nodata'),): '0'}, timeout=10, message='scraped at 0')
        self.assertEqual(self.who(proxy, '/nodata/who', 3), [503] * 3)

        def firing():
            return [(x['labels']['alertname'], x['labels'].get('balancer'), x['state'])
                    for x in self.api('alerts')['alerts']]
        hbtest.wait_until(lambda: firing() == [('HeartbeatBalancerWithoutData',
                                                'balancer://nodata', 'firing')],
                          timeout=20, message=lambda: 'the alert fires: %r' % firing())


if __name__ == '__main__':
    hbtest.main()
