"""hbtest: integration-test harness for the heartbeat module suite.

The integration tests start real httpd instances (Debian's apache2 binary
with our modules or the stock ones), talk to them over HTTP and UDP, and
sometimes place them in network namespaces so that several "hosts" with
distinct source addresses can exchange heartbeats.  Everything here uses the
Python standard library only, so the tests run on a bare Debian system.

Conventions the tests rely on:

* Never sleep for a fixed time to wait for a condition: use wait_until(),
  UdpListener.wait_for() or Httpd.wait_log().  Fixed sleeps make tests slow
  on fast machines and flaky on slow ones.
* Every test script ends with ``hbtest.main()``: exit code 0 = pass,
  1 = fail, and a last stdout line "N passed, N failed".  automake's TESTS
  can run the scripts directly.
* Temporary trees are removed when a test passes and kept (path printed on
  stderr) when it fails or HB_KEEP=1.

See README.md next to this file for the environment variables.
"""

import atexit
import collections
import ctypes
import functools
import grp
import http.client
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))

#: Modules this project builds; anything else always comes from the system.
OUR_MODULES = ('heartbeat', 'heartmonitor', 'lbmethod_heartbeat')

MPMS = ('event', 'prefork', 'worker')

#: Logged by every MPM once (re)configuration is complete.  It is a notice,
#: and httpd writes notices to the error log whatever LogLevel says, so
#: counting it is a reliable way to see a restart finish.
RESUMING = 'resuming normal operations'

#: What Debian's 2.4.71 event MPM may log when stopped with SIGTERM after it
#: has accepted connections, even just the readiness probe: seen in about 3%
#: of start/GET/SIGTERM cycles with only stock modules loaded, never in
#: hundreds of cycles with worker or prefork or with a graceful stop.
#: Tests that must use stop() on the event MPM may pass these as allowed
#: errors; the child segfault it can also cause cannot be told apart from a
#: real crash, so such tests should prefer shutdown()/graceful_stop().
EVENT_MPM_SIGTERM_NOISE = (
    r'\(9\)Bad file descriptor: AH0(3093|3092|0468):',
)

#: Error-log content that always indicates a problem.
_BAD_LEVEL_RE = re.compile(r'^\[[^\]]*\] \[(?:[^\]:]*:)?(emerg|alert|crit|error)\]')
_BAD_TEXT_RE = re.compile(
    r'AddressSanitizer|LeakSanitizer|runtime error:|segmentation fault|exit signal',
    re.IGNORECASE)


class HarnessError(Exception):
    """The environment or the harness itself is not usable."""


class HttpdError(HarnessError):
    """An httpd did not start, stop or restart as asked."""


class HarnessTimeout(AssertionError):
    """A waited-for condition did not happen.

    An AssertionError so that unittest reports it as a FAIL of the behaviour
    under test rather than as an ERROR of the test code.
    """


# --------------------------------------------------------------------------
# Waiting
# --------------------------------------------------------------------------

def wait_until(predicate, timeout=10.0, interval=0.05, message=None):
    """Poll predicate() until it returns something truthy; return that value.

    Raises HarnessTimeout after `timeout` seconds.  `message` may be a string
    or a callable returning one (evaluated only on timeout, so it can include
    expensive diagnostics such as a log tail).  Exceptions raised by the
    predicate propagate immediately: a predicate can abort the wait when it
    sees that the condition can never become true (e.g. the process died).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise HarnessTimeout('timed out after %.1fs waiting for %s'
                                 % (timeout, text or _describe(predicate)))
        time.sleep(interval)


def _describe(fn):
    return getattr(fn, '__name__', None) or repr(fn)


# --------------------------------------------------------------------------
# Discovery of httpd, apxs and module files
# --------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def apxs():
    """Path of apxs: $HB_APXS, else `apxs` (or `apxs2`) on PATH."""
    path = (os.environ.get('HB_APXS') or shutil.which('apxs')
            or shutil.which('apxs2'))
    if not path:
        raise HarnessError('apxs not found: install apache2-dev or set HB_APXS')
    return path


@functools.lru_cache(maxsize=None)
def apxs_query(var):
    """`apxs -q VAR`, one variable per call.

    Several names in one call come back joined with ';', which is easy to
    misparse, hence one call each (results are cached).
    """
    res = subprocess.run([apxs(), '-q', var], capture_output=True, text=True)
    if res.returncode != 0:
        raise HarnessError('apxs -q %s failed: %s' % (var, res.stderr.strip()))
    return res.stdout.strip()


@functools.lru_cache(maxsize=None)
def httpd_binary():
    """The httpd to run: $HB_HTTPD, else apxs SBINDIR/TARGET (Debian: /usr/sbin/apache2)."""
    path = os.environ.get('HB_HTTPD') or os.path.join(
        apxs_query('SBINDIR'), apxs_query('TARGET'))
    if not os.access(path, os.X_OK):
        raise HarnessError('httpd binary %s is not executable (set HB_HTTPD)' % path)
    return path


@functools.lru_cache(maxsize=None)
def sys_moddir():
    """Directory of the stock modules: $HB_SYS_MODDIR, else apxs LIBEXECDIR."""
    return os.environ.get('HB_SYS_MODDIR') or apxs_query('LIBEXECDIR')


def build_dir():
    """Top of the build tree: $HB_BUILD_DIR, else two levels above this file."""
    return os.path.abspath(os.environ.get('HB_BUILD_DIR')
                           or os.path.join(HARNESS_DIR, '..', '..'))


@functools.lru_cache(maxsize=None)
def builtin_modules():
    """Names of the modules compiled into httpd (from `httpd -l`).

    Debian's apache2 has mod_watchdog, mod_unixd, mod_log_config, mod_logio,
    mod_version and mod_so built in, and refuses a LoadModule for any of
    them ("module unixd_module is built-in and can't be loaded"), so those
    LoadModule lines must be left out.
    """
    res = subprocess.run([httpd_binary(), '-l'], capture_output=True, text=True)
    names = set()
    for line in res.stdout.splitlines():
        m = re.match(r'\s*mod_(\w+)\.c\s*$', line)
        if m:
            names.add(m.group(1))
    return frozenset(names)


def module_name(name):
    """Normalise 'mod_proxy', 'proxy' or 'mod_proxy.so' to 'proxy'."""
    name = os.path.basename(name)
    if name.endswith('.so'):
        name = name[:-3]
    if name.startswith('mod_'):
        name = name[4:]
    return name


def our_module_path(name):
    """Where the build tree puts our module `name` (libtool's .libs dir)."""
    name = module_name(name)
    if name not in OUR_MODULES:
        raise ValueError('%r is not one of our modules %s' % (name, OUR_MODULES))
    return os.path.join(build_dir(), 'modules', name, '.libs', 'mod_%s.so' % name)


def stock_module_path(name):
    """Path of the system (stock) module `name`."""
    return os.path.join(sys_moddir(), 'mod_%s.so' % module_name(name))


def module_path(name, ours=True):
    """Path of module `name`: ours from the build tree if `ours` selects it.

    `ours` is True (all of OUR_MODULES come from the build tree), False
    (everything stock) or a collection of names to take from the build tree.
    """
    name = module_name(name)
    if name in OUR_MODULES and _selects(ours, name):
        return our_module_path(name)
    return stock_module_path(name)


def _selects(ours, name):
    if isinstance(ours, bool):
        return ours
    return name in {module_name(n) for n in ours}


# --------------------------------------------------------------------------
# Ports and addresses
# --------------------------------------------------------------------------

_handed_out_ports = set()
_ports_lock = threading.Lock()


def _family(host):
    return socket.AF_INET6 if ':' in host else socket.AF_INET


def free_port(host='127.0.0.1', kind='tcp', netns=None):
    """A port that is free on `host` now (bind to port 0, read it, close).

    Ports handed out before in this process are never returned again, so two
    calls in one test cannot collide with each other.  Another process could
    still take the port before httpd binds it; that race is accepted.
    """
    sock_type = {'tcp': socket.SOCK_STREAM, 'udp': socket.SOCK_DGRAM}[kind]
    for _ in range(100):
        sock = make_socket(_family(host), sock_type, netns=netns)
        with sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        with _ports_lock:
            if port not in _handed_out_ports:
                _handed_out_ports.add(port)
                return port
    raise HarnessError('could not find a fresh free %s port on %s' % (kind, host))


def port_free_on(hosts):
    """One TCP port number free on every address in `hosts` (origins on
    127.0.0.x that share a port, as real hosts would)."""
    for _ in range(50):
        port = free_port(hosts[0])
        try:
            for host in hosts[1:]:
                with socket.socket(_family(host)) as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue
    raise HarnessError('no port free on all of %s' % (hosts,))


@functools.lru_cache(maxsize=None)
def ipv6_available(host='::1'):
    """Whether IPv6 `host` (default the loopback ::1) can be bound here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
        return True
    except OSError:
        return False


def write_key(httpd, name, material, mode=0o600):
    """A HeartbeatSecret key file named name in httpd's root (mode 0600 by
    default, as the modules require); returns its path."""
    path = os.path.join(httpd.root, name)
    with open(path, 'wb') as f:
        f.write(material + b'\n')
    os.chmod(path, mode)
    return path


def udp_socket_drops(port):
    """The kernel's drop count for the IPv4 UDP socket bound to port (this
    network namespace), or None if there is none."""
    with open('/proc/net/udp') as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].split(':')[1], 16) == port:
                return int(fields[-1])
    return None


def free_port6(kind='tcp'):
    """free_port() on the IPv6 loopback ::1 (check ipv6_available() first)."""
    return free_port('::1', kind)


def hostport(host, port):
    """'host:port' with IPv6 literals bracketed, as URLs and Listen want."""
    if ':' in host:
        return '[%s]:%d' % (host, port)
    return '%s:%d' % (host, port)


def _connect_host(host):
    """Where to connect to reach a server listening on `host`."""
    if host in ('', '*', '0.0.0.0'):
        return '127.0.0.1'
    if host == '::':
        return '::1'
    return host


# --------------------------------------------------------------------------
# Running code inside a network namespace
# --------------------------------------------------------------------------

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _ns_name(netns):
    """Accept a namespace name or anything with an `ns` attribute (NetHost)."""
    if netns is None or isinstance(netns, str):
        return netns
    return netns.ns


def _netns_file(ns):
    for base in ('/run/netns', '/var/run/netns'):
        path = os.path.join(base, ns)
        if os.path.exists(path):
            return path
    raise HarnessError('network namespace %r does not exist' % ns)


def in_netns(netns, fn, *args, **kwargs):
    """Call fn(*args, **kwargs) with the calling context in namespace `netns`.

    setns() moves only the calling thread, so the call runs in a short-lived
    helper thread; sockets it creates stay bound to that namespace and can
    then be used from any thread.  This avoids a subprocess per client
    socket.  With netns=None fn is simply called.
    """
    ns = _ns_name(netns)
    if ns is None:
        return fn(*args, **kwargs)
    outcome = {}

    def runner():
        try:
            fd = os.open(_netns_file(ns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, 'setns(%s): %s' % (ns, os.strerror(err)))
            finally:
                os.close(fd)
            outcome['value'] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome['error'] = exc

    thread = threading.Thread(target=runner, name='netns-' + ns)
    thread.start()
    thread.join()
    if 'error' in outcome:
        raise outcome['error']
    return outcome['value']


def make_socket(family, sock_type, netns=None):
    """socket.socket(family, sock_type), created inside `netns` if given."""
    return in_netns(netns, socket.socket, family, sock_type)


def tcp_open(host, port, netns=None, timeout=0.5):
    """Whether a TCP connect to host:port succeeds (from inside `netns`)."""
    try:
        sock = make_socket(_family(host), socket.SOCK_STREAM, netns)
    except OSError:
        return False
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
            return True
        except OSError:
            return False


# --------------------------------------------------------------------------
# HTTP client
# --------------------------------------------------------------------------

class Response(collections.namedtuple('Response', 'status headers body')):
    """(status, headers, body): headers is an http.client.HTTPMessage
    (case-insensitive .get()), body is bytes."""

    __slots__ = ()

    @property
    def text(self):
        return self.body.decode('utf-8', 'replace')


class _HTTPConnection(http.client.HTTPConnection):
    """HTTPConnection whose socket may be created inside a network namespace."""

    def __init__(self, host, port, timeout, netns=None, source_address=None):
        super().__init__(host, port, timeout=timeout, source_address=source_address)
        self._netns = netns

    def connect(self):
        self.sock = in_netns(self._netns, socket.create_connection,
                             (self.host, self.port), self.timeout, self.source_address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def request(method, url, body=None, headers=None, timeout=5.0, netns=None,
            source=None):
    """One HTTP request; returns Response and never raises on 4xx/5xx.

    `source` is an optional local address to bind (string).  Connection
    errors and timeouts do raise (OSError), since there is no status then.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != 'http':
        raise ValueError('only http:// URLs are supported: %s' % url)
    path = parts.path or '/'
    if parts.query:
        path += '?' + parts.query
    if isinstance(body, str):
        body = body.encode('utf-8')
    conn = _HTTPConnection(parts.hostname, parts.port or 80, timeout, netns=netns,
                           source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def get(url, timeout=5.0, headers=None, netns=None, source=None):
    """GET url -> Response(status, headers, body)."""
    return request('GET', url, headers=headers, timeout=timeout, netns=netns,
                   source=source)


def post(url, body, timeout=5.0, headers=None, netns=None, source=None,
         content_type='application/x-www-form-urlencoded'):
    """POST body (str or bytes) to url -> Response(status, headers, body)."""
    hdrs = {'Content-Type': content_type}
    hdrs.update(headers or {})
    return request('POST', url, body=body, headers=hdrs, timeout=timeout,
                   netns=netns, source=source)


# --------------------------------------------------------------------------
# UDP
# --------------------------------------------------------------------------

#: One received datagram: payload bytes, source (host, port), and arrival
#: time from time.monotonic() (compare intervals, not wall clock).
Datagram = collections.namedtuple('Datagram', 'data addr time')


class UdpListener:
    """Collects UDP datagrams on host:port in a background thread.

    port=None binds an ephemeral port (read .port).  join=GROUP also joins
    that multicast group (bind host to the group address or to 0.0.0.0);
    `interface` is the local address to join on (default: by routing).
    Use as a context manager, or call start()/close().
    """

    def __init__(self, host='127.0.0.1', port=None, netns=None, join=None,
                 interface=None):
        self.host = host
        self.netns = netns
        self.join = join
        self.interface = interface
        self._sock = make_socket(_family(host), socket.SOCK_DGRAM, netns)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port or 0))
        self.port = self._sock.getsockname()[1]
        if join:
            self._join_group()
        self._sock.settimeout(0.1)
        self._received = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = None

    def _join_group(self):
        if ':' in self.join:
            group = socket.inet_pton(socket.AF_INET6, self.join)
            ifindex = socket.if_nametoindex(self.interface) if self.interface else 0
            self._sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                                  group + struct.pack('@I', ifindex))
        else:
            mreq = socket.inet_aton(self.join) + socket.inet_aton(self.interface or '0.0.0.0')
            self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)

    def start(self):
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='udp-%d' % self.port)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                break
            with self._cond:
                self._received.append(Datagram(data, addr[:2], time.monotonic()))
                self._cond.notify_all()

    def close(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    @property
    def datagrams(self):
        """A snapshot list of everything received so far."""
        with self._cond:
            return list(self._received)

    def __len__(self):
        with self._cond:
            return len(self._received)

    def clear(self):
        with self._cond:
            self._received.clear()

    def wait_for(self, predicate, timeout=10.0, since=0):
        """First datagram (at index >= since) for which predicate(dgram) is
        true; raises HarnessTimeout.  Wakes on arrival, no polling delay."""
        deadline = time.monotonic() + timeout
        index = since
        with self._cond:
            while True:
                while index < len(self._received):
                    dgram = self._received[index]
                    index += 1
                    if predicate(dgram):
                        return dgram
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    last = [d.data for d in self._received[-3:]]
                    raise HarnessTimeout(
                        'no matching datagram on %s within %.1fs (%d received, last: %r)'
                        % (hostport(self.host, self.port), timeout,
                           len(self._received), last))
                self._cond.wait(remaining)

    def wait_for_match(self, regex, timeout=10.0, since=0):
        """wait_for() a datagram whose payload (decoded) matches regex."""
        pattern = re.compile(regex)
        return self.wait_for(
            lambda d: pattern.search(d.data.decode('latin-1')), timeout, since)


def send_udp(host, port, payload, source=None, netns=None):
    """Send one datagram; `source` is an address or (address, port) to bind.

    Binding a source address is what lets a test impersonate several
    origins on one machine (e.g. 127.0.0.2, 127.0.0.3).
    """
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    sock = make_socket(_family(host), socket.SOCK_DGRAM, netns)
    with sock:
        if source is not None:
            sock.bind(source if isinstance(source, tuple) else (source, 0))
        return sock.sendto(payload, (host, port))


class Feeder:
    """Plays the origins' senders: every 100 ms, one heartbeat per origin
    port with the fields the test sets, from `source` to the monitor's
    hb_port on 127.0.0.1; set(port, None) silences that origin.
    `packets[port]` counts what was sent for each port, `sent` the rounds.
    With status_url (a heartbeat-status page's ?json), wait_rounds() also
    waits until the table holds what was set."""

    def __init__(self, hb_port, source='127.0.0.1', status_url=None, interval_ms=100):
        self.hb_port = hb_port
        self.source = source
        self.status_url = status_url
        # The interval the reports announce (int=): what the monitor's
        # freshness goes by; they are sent every 100 ms whatever it says.
        self.interval_ms = interval_ms
        self.held = False
        self.reports = {}
        self.seq_jump = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sent = 0
        self.packets = collections.Counter()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def set(self, port, ready=None, busy=0, state='up'):
        with self.lock:
            if ready is None:
                self.reports.pop(port, None)
            else:
                self.reports[port] = (ready, busy, state)

    def restart(self, port):
        """The origin on port restarts: its report numbers jump, as
        mod_heartbeat's do (they count from its start time in ms)."""
        with self.lock:
            self.seq_jump[port] = self.seq_jump.get(port, 0) + 3600 * 1000

    def hold(self):
        """Send nothing more (the last reports stay the newest, until they
        are older than the monitor's freshness allows)."""
        with self.lock:
            self.held = True

    def loop(self):
        seq = int(time.time() * 1000)
        while not self.stop.is_set():
            with self.lock:
                reports = {} if self.held else dict(self.reports)
                jumps = dict(self.seq_jump)
            for port, (ready, busy, state) in reports.items():
                seq += 1
                p = 'v=1&ready=%d&busy=%d&port=%d&seq=%d&int=%d&state=%s' % (
                    ready, busy, port, seq + jumps.get(port, 0), self.interval_ms, state)
                send_udp('127.0.0.1', self.hb_port, p.encode(), source=self.source)
                with self.lock:
                    self.packets[port] += 1
            self.sent += 1
            self.stop.wait(0.1)

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.stop.set()
        self.thread.join()

    def wait_rounds(self, n=3):
        """Let n more rounds of reports go out, and (when the proxy's status
        page is known) wait until its table holds what was set: counting
        rounds alone raced a proxy whose receiver was still starting."""
        target = self.sent + n
        wait_until(lambda: self.sent >= target, timeout=5)
        if self.status_url:
            wait_until(self.applied, timeout=5, message='the proxy has the reports')

    def applied(self):
        r = get(self.status_url)
        if r.status != 200:
            return False
        have = {s['port']: (s['ready'], s['busy'], s['state'])
                for s in json.loads(r.body.decode())['servers'] if s['ip'] == self.source}
        with self.lock:
            want = dict(self.reports)
        return all(have.get(port) == report for port, report in want.items())


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

def _group_members(pgid):
    """Live (non-zombie) pids in process group pgid, read from /proc."""
    members = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(')') + 2:].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ('Z', 'X'):
            members.append(int(entry))
    return members


def _holds_socket(pid, inodes):
    """Whether process pid has one of the sockets `inodes` open."""
    try:
        fds = os.listdir('/proc/%d/fd' % pid)
    except OSError:
        return False  # gone
    for fd in fds:
        try:
            link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if link.startswith('socket:[') and link[8:-1] in inodes:
            return True
    return False


@functools.lru_cache(maxsize=None)
def run_user():
    """(user, group) the httpd children should switch to, or None.

    Only root can switch users; as root we use www-data if it exists, else
    nobody/nogroup (or nobody's primary group).
    """
    if os.geteuid() != 0:
        return None
    for user, group in (('www-data', 'www-data'), ('nobody', 'nogroup')):
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            continue
        try:
            grp.getgrnam(group)
        except KeyError:
            group = grp.getgrgid(pw.pw_gid).gr_name
        return user, group
    raise HarnessError('running as root but neither www-data nor nobody exists')


def chown_to_run_user(path):
    """Give path to the user and group httpd's children run as (see
    run_user()), so that they can write there; nothing when not root."""
    who = run_user()
    if who:
        shutil.chown(path, who[0], who[1])


def _tail(path, lines=40):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return ''


def httpd_env(extra=None):
    """Environment for httpd: ours, plus LD_PRELOAD=$HB_HTTPD_PRELOAD (e.g.
    libasan.so when our modules are built with ASan but apache2 is not),
    plus `extra`.  Only httpd gets it, not the test process."""
    env = dict(os.environ)
    preload = os.environ.get('HB_HTTPD_PRELOAD')
    if preload:
        env['LD_PRELOAD'] = preload
    env.update(extra or {})
    return env


def config_test(conf, netns=None, env=None):
    """`httpd -t -f conf` -> (returncode, combined output).

    For tests that expect a configuration to be rejected.  `env`: extra
    environment variables, as for Httpd.
    """
    cmd = _netns_prefix(netns) + [httpd_binary(), '-t', '-f', conf]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, text=True, errors='replace',
                         cwd=os.path.dirname(conf), env=httpd_env(env), timeout=60)
    return res.returncode, res.stdout


def _netns_prefix(netns):
    ns = _ns_name(netns)
    return ['ip', 'netns', 'exec', ns] if ns else []


class Httpd:
    """One httpd instance with its own ServerRoot tree.

    Layout of the tree: httpd.conf, htdocs/, logs/ (error_log, access_log,
    stdout.log and stderr.log of the parent process), run/ (pid file,
    DefaultRuntimeDir; owned by the children's user).

    conf_body is appended to the generated configuration; it may be changed
    (attribute conf_body) before start() or graceful_restart().  `modules`
    lists extra modules by name ('proxy', 'mod_heartbeat', ...); ours come
    from the build tree when `ours` selects them (see module_path()).
    Modules built into httpd are skipped.  `listen` is a list of
    (host, port) tuples or plain ports (on 127.0.0.1); the first one is used
    for readiness checks and url().  `netns` (a name or NetHost) runs httpd
    inside that namespace; then `listen` defaults to the host's address on
    port 80.  `access_log` is None (no CustomLog), True (common format) or a
    LogFormat string.  Errors matching `allowed_errors` (regexes) are not
    reported by assert_no_errors().  `env` adds environment variables for
    httpd (see httpd_env()).
    """

    DEFAULT_ACCESS_FORMAT = '%h %l %u %t "%r" %>s %b'

    def __init__(self, name, conf_body='', *, modules=(), mpm='event', listen=None,
                 sandbox=None, root=None, ours=True, log_level='warn',
                 log_level_extra=(), access_log=None, netns=None,
                 server_name='localhost', allowed_errors=(), start_timeout=15.0,
                 env=None):
        if mpm not in MPMS:
            raise ValueError('mpm must be one of %s' % (MPMS,))
        self.name = name
        self.conf_body = conf_body
        self.modules = list(modules)
        self.mpm = mpm
        self.ours = ours
        self.log_level = log_level
        if isinstance(log_level_extra, str):
            log_level_extra = log_level_extra.split()
        self.log_level_extra = list(log_level_extra)
        self.access_log_format = (self.DEFAULT_ACCESS_FORMAT if access_log is True
                                  else access_log)
        self.netns = netns
        self.server_name = server_name
        self.allowed_errors = list(allowed_errors)
        self.start_timeout = start_timeout
        self.env = dict(env or {})
        self.listen = self._normalise_listen(listen)
        if root is None:
            sandbox = sandbox or TestRun.current().default_sandbox()
            root = sandbox.new_dir(name)
        self.sandbox = sandbox
        self.root = os.path.abspath(root)
        self.conf_path = os.path.join(self.root, 'httpd.conf')
        self.htdocs = os.path.join(self.root, 'htdocs')
        self.logs = os.path.join(self.root, 'logs')
        self.run_dir = os.path.join(self.root, 'run')
        self.pid_file = os.path.join(self.run_dir, 'httpd.pid')
        self.error_log_path = os.path.join(self.logs, 'error_log')
        self.access_log_path = os.path.join(self.logs, 'access_log')
        self.stdout_path = os.path.join(self.logs, 'stdout.log')
        self.stderr_path = os.path.join(self.logs, 'stderr.log')
        self.proc = None
        self.started = False
        self._outputs = []
        self._make_tree()
        if sandbox is not None:
            sandbox.register(self)
        TestRun.current().register_httpd(self)
        lab = getattr(netns, 'lab', None)
        if lab is not None:
            lab.register_httpd(self)

    def _normalise_listen(self, listen):
        if listen is None:
            if self.netns is not None and hasattr(self.netns, 'ip'):
                return [(self.netns.ip, 80)]
            return [('127.0.0.1', free_port(netns=self.netns))]
        result = []
        for item in listen:
            if isinstance(item, int):
                item = ('127.0.0.1', item)
            result.append((item[0], int(item[1])))
        return result

    def _make_tree(self):
        for path in (self.root, self.htdocs, self.logs, self.run_dir):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o755)
        chown_to_run_user(self.run_dir)

    # ---- files ----------------------------------------------------------

    def add_file(self, relpath, content, mode=0o644):
        """Create htdocs/relpath (str or bytes content); returns its path."""
        path = os.path.join(self.htdocs, relpath.lstrip('/'))
        parent = os.path.dirname(path)
        os.makedirs(parent, exist_ok=True)
        os.chmod(parent, 0o755)
        with open(path, 'wb') as f:
            f.write(content.encode('utf-8') if isinstance(content, str) else content)
        os.chmod(path, mode)
        return path

    def make_dir(self, relpath, writable=True):
        """Create root/relpath; owned by the children's user if `writable`
        (e.g. for HeartbeatStorage files that children rewrite)."""
        path = os.path.join(self.root, relpath)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o755)
        if writable:
            chown_to_run_user(path)
        return path

    # ---- configuration --------------------------------------------------

    def load_module_lines(self):
        """LoadModule lines: the MPM, authz_core, unixd, then self.modules.

        Built-in modules are skipped (Debian refuses to load them twice).
        An entry may also be a (identifier, path) tuple, used verbatim.
        """
        wanted = ['mpm_' + self.mpm, 'authz_core', 'unixd'] + self.modules
        builtin = builtin_modules()
        lines, seen = [], set()
        for entry in wanted:
            if isinstance(entry, tuple):
                ident, path = entry
            else:
                name = module_name(entry)
                if name in builtin or name in seen:
                    continue
                seen.add(name)
                ident, path = name + '_module', module_path(name, self.ours)
            if not os.path.exists(path):
                hint = (' (our module is not built: run make)'
                        if path.startswith(build_dir()) else '')
                raise HarnessError('module file %s not found%s' % (path, hint))
            lines.append('LoadModule %s "%s"' % (ident, path))
        return lines

    def _uses_module(self, name):
        return any(not isinstance(m, tuple) and module_name(m) == name
                   for m in self.modules)

    def render_conf(self):
        """The complete httpd.conf text."""
        lines = [
            '# Generated by hbtest for %r.' % self.name,
            'ServerRoot "%s"' % self.root,
            'ServerName %s' % self.server_name,
            'DefaultRuntimeDir "%s"' % self.run_dir,
            'PidFile "%s"' % self.pid_file,
            'ErrorLog "%s"' % self.error_log_path,
            'LogLevel %s' % ' '.join([self.log_level] + self.log_level_extra),
            '',
        ]
        lines += self.load_module_lines()
        lines.append('')
        who = run_user()
        if who:
            lines += ['User %s' % who[0], 'Group %s' % who[1]]
        for host, port in self.listen:
            lines.append('Listen %s' % (port if host in ('', '*') else hostport(host, port)))
        if self._uses_module('mime'):
            # Debian's default TypesConfig is relative to ServerRoot.
            types = '/etc/mime.types'
            if not os.path.exists(types):
                types = os.path.join(self.root, 'mime.types')
                open(types, 'a').close()
            lines.append('TypesConfig "%s"' % types)
        lines += [
            'DocumentRoot "%s"' % self.htdocs,
            '<Directory "%s">' % self.htdocs,
            '    Require all granted',
            '</Directory>',
        ]
        if self.access_log_format:
            fmt = self.access_log_format.replace('\\', '\\\\').replace('"', '\\"')
            lines.append('CustomLog "%s" "%s"' % (self.access_log_path, fmt))
        lines += ['', '# ---- test configuration ----', self.conf_body, '']
        return '\n'.join(lines)

    def write_conf(self):
        with open(self.conf_path, 'w') as f:
            f.write(self.render_conf())
        os.chmod(self.conf_path, 0o644)
        return self.conf_path

    def config_test(self):
        """Write httpd.conf and run `httpd -t` on it -> (returncode, output)."""
        return config_test(self.write_conf(), self.netns, self.env)

    # ---- lifecycle ------------------------------------------------------

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def host(self):
        return _connect_host(self.listen[0][0])

    @property
    def port(self):
        return self.listen[0][1]

    def url(self, path='/', index=0):
        host, port = self.listen[index]
        return 'http://%s%s' % (hostport(_connect_host(host), port), path)

    def start(self, timeout=None):
        """Check the config, start httpd in the foreground, wait until ready.

        Returns self.  Raises HttpdError on a config error or if httpd dies
        while starting, HarnessTimeout if it does not become ready.
        """
        if self.running:
            raise HttpdError('%s is already running' % self.name)
        rc, out = self.config_test()
        if rc != 0:
            raise HttpdError('%s: httpd -t failed (exit %d):\n%s' % (self.name, rc, out))
        if os.path.exists(self.pid_file):
            os.unlink(self.pid_file)  # stale after a SIGKILL
        stdout = open(self.stdout_path, 'ab')
        stderr = open(self.stderr_path, 'ab')
        self._outputs = [stdout, stderr]
        cmd = _netns_prefix(self.netns) + [httpd_binary(), '-f', self.conf_path,
                                           '-DFOREGROUND']
        # A session of its own: the pid is also the process group id, so
        # every child can be found and, if need be, killed together.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout,
                                     stderr=stderr, cwd=self.root, env=httpd_env(self.env),
                                     start_new_session=True)
        self.started = True
        try:
            self.wait_ready(timeout or self.start_timeout)
        except BaseException:
            self._kill()
            raise
        return self

    def _read_pid_file(self):
        try:
            with open(self.pid_file) as f:
                text = f.read().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def _check_alive(self, doing):
        if self.proc.poll() is not None:
            raise HttpdError('%s exited with status %s while %s\n%s'
                             % (self.name, self.proc.returncode, doing, self.diagnostics()))

    def wait_ready(self, timeout=15.0):
        """Wait until alive, the pid file names our pid, and the first
        Listen address accepts TCP connections."""
        def ready():
            self._check_alive('starting')
            pid = self._read_pid_file()
            if pid is None:
                return False
            if pid != self.pid:
                # Would mean something forked between Popen and httpd
                # (ip netns exec execs, so it must not happen).
                raise HttpdError('%s: pid file says %d but we started %d'
                                 % (self.name, pid, self.pid))
            host, port = self.listen[0]
            return tcp_open(_connect_host(host), port, self.netns)
        wait_until(ready, timeout,
                   message=lambda: '%s to become ready\n%s' % (self.name, self.diagnostics()))

    def stop(self, timeout=10.0):
        """SIGTERM and wait for httpd and all its children to exit.

        On timeout the whole process group is SIGKILLed and HttpdError is
        raised (a server that ignores SIGTERM is a bug worth seeing).
        Returns httpd's exit status.  A no-op if not running.

        Note: Debian's 2.4.71 event MPM sometimes logs AH03093/AH03092/
        AH00468 "(9)Bad file descriptor" or a child segfault when it gets
        SIGTERM after having served requests (see EVENT_MPM_SIGTERM_NOISE);
        cleanup therefore uses shutdown(), which stops gracefully.
        """
        return self._terminate(signal.SIGTERM, timeout, 'SIGTERM')

    def graceful_stop(self, timeout=15.0):
        """SIGWINCH (graceful-stop) and wait for everything to exit;
        like stop() on timeout."""
        return self._terminate(signal.SIGWINCH, timeout, 'SIGWINCH')

    def shutdown(self, timeout=15.0):
        """Stop for cleanup: graceful stop, then stop() if that takes longer
        than `timeout` (e.g. a request hangs).  Used by Sandbox, NetLab and
        the context manager, because a graceful stop does not trip the event
        MPM's SIGTERM race described in stop()."""
        if self.proc is None:
            return None
        if self._signal_and_wait(signal.SIGWINCH, timeout):
            self._close_outputs()
            return self.proc.returncode
        return self.stop()

    def _signal_and_wait(self, sig, timeout):
        """Send sig (unless exited); True if httpd and all its children are
        gone within timeout."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        deadline = time.monotonic() + timeout
        try:
            self.proc.wait(timeout=timeout)
            wait_until(lambda: not _group_members(self.proc.pid),
                       max(0.5, deadline - time.monotonic()))
        except (subprocess.TimeoutExpired, HarnessTimeout):
            return False
        return True

    def _terminate(self, sig, timeout, what):
        if self.proc is None:
            return None
        if not self._signal_and_wait(sig, timeout):
            self._kill()
            raise HttpdError('%s did not exit within %.1fs of %s; killed\n%s'
                             % (self.name, timeout, what, self.diagnostics()))
        self._close_outputs()
        return self.proc.returncode

    def _kill(self):
        """SIGKILL the whole process group and reap."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._close_outputs()

    def _close_outputs(self):
        for f in self._outputs:
            f.close()
        self._outputs = []

    def graceful_restart(self, timeout=15.0, wait_old_generation=True):
        """Rewrite httpd.conf, check it, SIGUSR1, wait until restarted.

        "Restarted" means one more "resuming normal operations" in the
        error log, the first Listen address answering again and, unless
        wait_old_generation is false, no child of the old generation still
        holding a listening socket: until then an old child may accept a
        request and answer it with the old configuration.  Old children
        busy with requests do not matter, only whether they can accept.
        """
        self._signal_restart(signal.SIGUSR1, timeout, wait_old_generation)

    def restart(self, timeout=15.0):
        """Like graceful_restart() but with SIGHUP (children are killed)."""
        self._signal_restart(signal.SIGHUP, timeout, True)

    def _signal_restart(self, sig, timeout, wait_old_generation):
        self._check_alive('about to restart')
        rc, out = self.config_test()
        if rc != 0:
            raise HttpdError('%s: new configuration rejected (exit %d):\n%s'
                             % (self.name, rc, out))
        before = self.error_log().count(RESUMING)
        old_children = self.children()
        deadline = time.monotonic() + timeout
        os.kill(self.proc.pid, sig)

        def restarted():
            self._check_alive('restarting')
            if self.error_log().count(RESUMING) <= before:
                return False
            host, port = self.listen[0]
            return tcp_open(_connect_host(host), port, self.netns)
        wait_until(restarted, timeout,
                   message=lambda: '%s to restart\n%s' % (self.name, self.diagnostics()))
        if not wait_old_generation:
            return
        inodes = self._listen_inodes()

        def old_ones_stopped_accepting():
            self._check_alive('restarting')
            return not any(_holds_socket(pid, inodes) for pid in old_children)
        wait_until(old_ones_stopped_accepting, max(1.0, deadline - time.monotonic()),
                   message=lambda: 'old-generation children of %s to close their listening '
                   'sockets (wait_old_generation=False skips this)\n%s'
                   % (self.name, self.diagnostics()))

    def _listen_inodes(self):
        """Socket inodes of httpd's listening sockets on our Listen ports.

        Read from /proc/<httpd pid>/net, which shows httpd's own network
        namespace.
        """
        ports = {port for _, port in self.listen}
        inodes = set()
        for table in ('tcp', 'tcp6'):
            try:
                with open('/proc/%d/net/%s' % (self.proc.pid, table)) as f:
                    lines = f.read().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if fields[3] == '0A' and int(fields[1].rsplit(':', 1)[1], 16) in ports:
                    inodes.add(fields[9])
        return inodes

    def children(self):
        """Pids of httpd's live child processes."""
        if not self.running:
            return []
        return [p for p in _group_members(self.proc.pid) if p != self.proc.pid]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.shutdown()

    # ---- logs -----------------------------------------------------------

    def error_log(self):
        """The error log's text ('' if not written yet)."""
        try:
            with open(self.error_log_path, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def access_log(self):
        try:
            with open(self.access_log_path, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def diagnostics(self, lines=40):
        """Tails of error_log and of the parent's stderr, for messages."""
        text = '--- %s: tail of %s ---\n%s' % (self.name, self.error_log_path,
                                              _tail(self.error_log_path, lines))
        err = _tail(self.stderr_path, lines)
        if err:
            text += '--- stderr ---\n%s' % err
        return text

    def wait_log(self, regex, timeout=10.0, count=1):
        """Wait until `regex` matches at least `count` times in the error
        log; returns the list of match objects."""
        pattern = re.compile(regex, re.MULTILINE)

        def found():
            matches = list(pattern.finditer(self.error_log()))
            return matches if len(matches) >= count else None
        return wait_until(found, timeout, message=lambda: '%d x %r in %s error log\n%s'
                          % (count, regex, self.name, self.diagnostics()))

    def find_errors(self, allowed=()):
        """Error-log (and stderr) lines that look like errors or crashes and
        match neither `allowed` nor self.allowed_errors."""
        allowed_re = [re.compile(a) for a in list(allowed) + self.allowed_errors]
        bad = []
        for path in (self.error_log_path, self.stderr_path):
            try:
                with open(path, errors='replace') as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                continue
            for line in lines:
                if not (_BAD_LEVEL_RE.search(line) or _BAD_TEXT_RE.search(line)):
                    continue
                if not any(a.search(line) for a in allowed_re):
                    bad.append(line)
        return bad

    def assert_no_errors(self, allowed=()):
        """Raise AssertionError listing unexpected error/crash lines."""
        bad = self.find_errors(allowed)
        if bad:
            raise AssertionError('%s: unexpected errors in %s:\n%s'
                                 % (self.name, self.logs, '\n'.join(bad[:50])))

    # ---- HTTP shortcuts -------------------------------------------------

    def get(self, path='/', **kwargs):
        kwargs.setdefault('netns', self.netns)
        return get(self.url(path), **kwargs)

    def post(self, path, body, **kwargs):
        kwargs.setdefault('netns', self.netns)
        return post(self.url(path), body, **kwargs)


# --------------------------------------------------------------------------
# Network namespaces
# --------------------------------------------------------------------------

#: Every namespace created by this process, for the atexit fallback.
_created_netns = []


def run_ip(*args, check=True):
    """Run iproute2's `ip` with args (e.g. run_ip('-n', ns, 'link', 'set',
    'lo', 'up')) -> the CompletedProcess; raises HarnessError if it fails,
    unless check is false."""
    res = subprocess.run(('ip',) + args, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=30)
    if check and res.returncode != 0:
        raise HarnessError('ip %s failed (%d): %s'
                           % (' '.join(args), res.returncode, res.stderr.strip()))
    return res


def _delete_netns(ns):
    if ns in _created_netns:
        _created_netns.remove(ns)
    return run_ip('netns', 'del', ns, check=False).returncode == 0


@atexit.register
def _cleanup_netns_at_exit():
    for ns in list(reversed(_created_netns)):
        _delete_netns(ns)


def netns_list():
    """Names of the existing network namespaces."""
    out = run_ip('netns', 'list', check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@functools.lru_cache(maxsize=None)
def netns_unavailable_reason():
    """None if NetLab can work here, else a sentence saying why not.

    Probes exactly what NetLab needs: a namespace, a bridge and a veth pair
    in it, and setns() from this process.
    """
    if os.geteuid() != 0:
        return 'network namespaces need root (euid is %d)' % os.geteuid()
    if not shutil.which('ip'):
        return 'the ip command (iproute2) is not installed'
    ns = 'hbt-probe-' + secrets.token_hex(4)
    try:
        run_ip('netns', 'add', ns)
        _created_netns.append(ns)
        run_ip('-n', ns, 'link', 'add', 'br0', 'type', 'bridge')
        run_ip('-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1')
        in_netns(ns, lambda: None)
    except (HarnessError, OSError, subprocess.SubprocessError) as exc:
        return 'cannot create network namespaces here: %s' % exc
    finally:
        _delete_netns(ns)
    return None


def netns_available():
    """Whether NetLab can create namespaces, bridges and veths here."""
    return netns_unavailable_reason() is None


def require_netns():
    """Fail (not skip) the calling test with the reason if namespaces are
    unavailable: a multi-host test that silently passes proves nothing."""
    reason = netns_unavailable_reason()
    if reason:
        raise AssertionError('this test needs network namespaces: ' + reason)


class NetHost:
    """One host of a NetLab: namespace `ns`, interface eth0 with address
    `ip` (198.18.0.N/24) and, if enabled, `ip6` (2001:2::N/64)."""

    def __init__(self, lab, name, ns, index, ipv6):
        self.lab = lab
        self.name = name
        self.ns = ns
        self.index = index
        self.ifname = 'eth0'
        self.ip = '%s%d' % (NetLab.NET_PREFIX, index)
        self.ip6 = '%s%x' % (NetLab.NET6_PREFIX, index) if ipv6 else None

    def __repr__(self):
        return '<NetHost %s %s ns=%s>' % (self.name, self.ip, self.ns)

    def command(self, cmd):
        """cmd prefixed with `ip netns exec <ns>`."""
        return ['ip', 'netns', 'exec', self.ns] + list(cmd)

    def run(self, cmd, check=False, timeout=60, **kwargs):
        """subprocess.run() inside the namespace (text output captured)."""
        kwargs.setdefault('capture_output', True)
        kwargs.setdefault('text', True)
        return subprocess.run(self.command(cmd), check=check, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kwargs)

    def popen(self, cmd, **kwargs):
        """subprocess.Popen() inside the namespace; killed by lab.close()."""
        kwargs.setdefault('start_new_session', True)
        proc = subprocess.Popen(self.command(cmd), **kwargs)
        self.lab.register_process(proc)
        return proc

    def url(self, port=80, path='/'):
        return 'http://%s%s' % (hostport(self.ip, port), path)


class NetLab:
    """Several "hosts" on one private L2 segment, built from namespaces.

    A hub namespace holds bridge br0; each host namespace has eth0, one end
    of a veth pair whose other end is a port of br0.  Addresses come from
    198.18.0.0/24 (RFC 2544 benchmarking range) and 2001:2::/64 (RFC 5180),
    which never leave the namespaces.  Multicast works between hosts: the
    bridge floods it (snooping off) and each host routes 224.0.0.0/4 via
    eth0, which is also what a stock receiver's unqualified group join uses.

    Needed because stock senders cannot choose a source address: distinct
    origins need distinct hosts.  Namespace names are
    hbt-<run token><lab number>-<host>, unique per run.  close() (also on
    exceptions in `with`, and at exit as a fallback) stops httpds and
    processes started in the lab, then deletes every namespace it created.
    """

    NET_PREFIX = '198.18.0.'
    NET6_PREFIX = '2001:2::'
    _counter = 0

    def __init__(self, hosts=2, ipv6=True, run=None):
        names = ['h%d' % (i + 1) for i in range(hosts)] if isinstance(hosts, int) \
            else list(hosts)
        if not 1 <= len(names) <= 250:
            raise ValueError('between 1 and 250 hosts')
        NetLab._counter += 1
        run = run or TestRun.current()
        self.tag = 'hbt-%s%d' % (run.token, NetLab._counter)
        self.hub = self.tag + '-hub'
        self.hosts = [NetHost(self, name, '%s-%s' % (self.tag, name), i + 1, ipv6)
                      for i, name in enumerate(names)]
        self.ipv6 = ipv6
        self.namespaces = []
        self._httpds = []
        self._procs = []
        self.closed = False

    def __getitem__(self, key):
        if isinstance(key, int):
            return self.hosts[key]
        for host in self.hosts:
            if host.name == key:
                return host
        raise KeyError(key)

    def _add_ns(self, ns):
        run_ip('netns', 'add', ns)
        self.namespaces.append(ns)
        _created_netns.append(ns)
        run_ip('-n', ns, 'link', 'set', 'lo', 'up')

    def open(self):
        """Create everything; on any failure undo what was done and raise."""
        try:
            self._add_ns(self.hub)
            run_ip('-n', self.hub, 'link', 'add', 'br0', 'type', 'bridge',
                'mcast_snooping', '0')
            run_ip('-n', self.hub, 'link', 'set', 'br0', 'up')
            for host in self.hosts:
                self._add_host(host)
            wait_until(self._links_up, 10, message='veth links of %s to come up' % self.tag)
        except BaseException:
            self.close()
            raise
        return self

    def _add_host(self, host):
        ns, port = host.ns, 'v%d' % host.index
        self._add_ns(ns)
        # Created inside the hub so no interface ever appears in the root
        # namespace (no name clashes with the host system or other runs).
        run_ip('-n', self.hub, 'link', 'add', port, 'type', 'veth',
            'peer', 'name', host.ifname, 'netns', ns)
        run_ip('-n', self.hub, 'link', 'set', port, 'master', 'br0')
        run_ip('-n', self.hub, 'link', 'set', port, 'up')
        run_ip('-n', ns, 'link', 'set', host.ifname, 'multicast', 'on')
        run_ip('-n', ns, 'addr', 'add', host.ip + '/24', 'dev', host.ifname)
        if host.ip6:
            # nodad: usable at once instead of after duplicate detection.
            run_ip('-n', ns, 'addr', 'add', host.ip6 + '/64', 'dev', host.ifname, 'nodad')
        run_ip('-n', ns, 'link', 'set', host.ifname, 'up')
        run_ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', host.ifname)

    def _links_up(self):
        for host in self.hosts:
            out = run_ip('-n', host.ns, 'link', 'show', host.ifname).stdout
            if 'LOWER_UP' not in out:
                return False
        return True

    def register_httpd(self, httpd):
        self._httpds.append(httpd)

    def register_process(self, proc):
        self._procs.append(proc)

    def close(self):
        """Stop what runs in the lab, delete its namespaces.  Idempotent."""
        if self.closed:
            return
        self.closed = True
        errors = []
        for httpd in reversed(self._httpds):
            try:
                httpd.shutdown()
            except Exception as exc:  # keep cleaning up
                errors.append(exc)
        for proc in self._procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        for ns in reversed(self.namespaces):
            _delete_netns(ns)
        self.namespaces = []
        if errors:
            raise errors[0]

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# Run and sandbox bookkeeping
# --------------------------------------------------------------------------

def _keep_requested():
    return os.environ.get('HB_KEEP') == '1'


def _safe_name(name):
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('._')[:80] or 'x'


class TestRun:
    """Per-process state: one temp dir (hbt-<script>-XXXX under $HB_TMPDIR
    or the system temp dir) holding every sandbox, a random token for
    namespace names, and the list of httpds to stop at exit."""

    _current = None

    @classmethod
    def current(cls):
        if cls._current is None:
            cls._current = cls()
        return cls._current

    def __init__(self):
        script = os.path.splitext(os.path.basename(sys.argv[0] or 'python'))[0]
        base = os.environ.get('HB_TMPDIR') or tempfile.gettempdir()
        self.path = tempfile.mkdtemp(prefix='hbt-%s-' % _safe_name(script), dir=base)
        os.chmod(self.path, 0o755)
        self._check_traversable()
        self.token = secrets.token_hex(3)
        self.any_failed = False
        self._httpds = []
        self._default_sandbox = None
        self.finished = False
        atexit.register(self._at_exit)

    def _check_traversable(self):
        """httpd children run unprivileged and must reach htdocs/ and run/."""
        if run_user() is None:
            return
        path = os.path.dirname(self.path)
        while True:
            if not os.stat(path).st_mode & 0o001:
                raise HarnessError('%s is not searchable by others, so httpd children '
                                   'cannot reach %s; set HB_TMPDIR' % (path, self.path))
            if path == os.path.dirname(path):
                return
            path = os.path.dirname(path)

    def new_dir(self, name, parent=None):
        """A fresh 0755 directory named after `name` (suffixed if taken)."""
        parent = parent or self.path
        base = os.path.join(parent, _safe_name(name))
        path, n = base, 1
        while os.path.exists(path):
            n += 1
            path = '%s-%d' % (base, n)
        os.makedirs(path)
        os.chmod(path, 0o755)
        return path

    def register_httpd(self, httpd):
        self._httpds.append(httpd)

    def default_sandbox(self):
        """Sandbox for httpds created without one."""
        if self._default_sandbox is None:
            self._default_sandbox = Sandbox('default', run=self)
        return self._default_sandbox

    def stop_all(self):
        for httpd in reversed(self._httpds):
            if httpd.running:
                try:
                    httpd.shutdown()
                except Exception as exc:
                    sys.stderr.write('hbtest: %s\n' % exc)

    def finish(self, failed=None):
        """Stop leftovers and remove the run dir unless something is kept."""
        if self.finished:
            return
        self.finished = True
        if failed:
            self.any_failed = True
        self.stop_all()
        if self._default_sandbox:
            self._default_sandbox.close(raise_errors=False)
            self._default_sandbox.finish()
        _cleanup_netns_at_exit()
        if _keep_requested() or os.listdir(self.path):
            sys.stderr.write('hbtest: kept test files in %s\n' % self.path)
        else:
            os.rmdir(self.path)

    def _at_exit(self):
        self.finish()


class Sandbox:
    """A directory for one test (or test class) and the things it started.

    Create httpds, labs and listeners through it; close() stops them all
    (httpds first, then labs), finish(failed) removes the directory or keeps
    it (path printed) when the test failed or HB_KEEP=1.  As a context
    manager it does both, treating an exception as a failure.
    """

    def __init__(self, name, run=None):
        self.run = run or TestRun.current()
        self.name = name
        self.path = self.run.new_dir(name)
        self.httpds = []
        self.labs = []
        self.listeners = []
        self.closed = False
        self.finished = False

    def new_dir(self, name):
        return self.run.new_dir(name, parent=self.path)

    def register(self, httpd):
        self.httpds.append(httpd)

    def httpd(self, name, conf_body='', **kwargs):
        """A new (not yet started) Httpd in this sandbox."""
        return Httpd(name, conf_body, sandbox=self, **kwargs)

    def netlab(self, hosts=2, **kwargs):
        """A new, opened NetLab, closed with the sandbox."""
        lab = NetLab(hosts, run=self.run, **kwargs)
        self.labs.append(lab)
        return lab.open()

    def udp_listener(self, *args, **kwargs):
        """A started UdpListener, closed with the sandbox."""
        listener = UdpListener(*args, **kwargs).start()
        self.listeners.append(listener)
        return listener

    def check_error_logs(self, allowed=()):
        """assert_no_errors() on every httpd that was started."""
        for httpd in self.httpds:
            if httpd.started:
                httpd.assert_no_errors(allowed)

    def close(self, raise_errors=True):
        """Stop everything started here; re-raise the first failure after
        all cleanup has been attempted."""
        if self.closed:
            return
        self.closed = True
        errors = []
        for listener in self.listeners:
            listener.close()
        for httpd in reversed(self.httpds):
            try:
                httpd.shutdown()
            except Exception as exc:
                errors.append(exc)
        for lab in reversed(self.labs):
            try:
                lab.close()
            except Exception as exc:
                errors.append(exc)
        if errors and raise_errors:
            raise errors[0]

    def finish(self, failed=None):
        """Remove the directory, or keep it if failed (None: if anything in
        the run failed so far) or HB_KEEP=1."""
        if self.finished:
            return
        self.finished = True
        if failed is None:
            failed = self.run.any_failed
        if failed or _keep_requested():
            why = 'failed' if failed else 'HB_KEEP=1'
            sys.stderr.write('hbtest: %s (%s): files kept in %s\n' % (self.name, why, self.path))
        else:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.close(raise_errors=exc_type is None)
        finally:
            self.finish(failed=exc_type is not None)


# --------------------------------------------------------------------------
# unittest integration
# --------------------------------------------------------------------------

class HbTestCase(unittest.TestCase):
    """TestCase with a per-test Sandbox in self.sandbox.

    After the test, everything in the sandbox is stopped and, if
    check_error_logs is true, every started httpd's error log is checked
    (allowed_errors: regexes to tolerate).  The sandbox directory is kept
    only if the test failed.
    """

    check_error_logs = True
    allowed_errors = ()

    def setUp(self):
        super().setUp()
        self.sandbox = Sandbox(self.id().split('.', 1)[-1])
        self.addCleanup(self._close_sandbox)

    def _close_sandbox(self):
        self.sandbox.close()
        if self.check_error_logs:
            self.sandbox.check_error_logs(self.allowed_errors)

    def httpd(self, name, conf_body='', **kwargs):
        """Shortcut for self.sandbox.httpd()."""
        return self.sandbox.httpd(name, conf_body, **kwargs)

    def run(self, result=None):
        result = result or self.defaultTestResult()
        before = _problem_count(result)
        try:
            return super().run(result)
        finally:
            failed = _problem_count(result) > before
            if failed:
                TestRun.current().any_failed = True
            sandbox = getattr(self, 'sandbox', None)
            if sandbox is not None:
                sandbox.close(raise_errors=False)
                sandbox.finish(failed)


def _problem_count(result):
    count = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    if os.environ.get('HB_ALLOW_SKIP') != '1':
        count += len(result.skipped)
    return count


def raise_interrupt(signum, frame):
    """Signal handler that turns a signal into KeyboardInterrupt, so that
    cleanups run (main() installs it for SIGTERM and SIGHUP)."""
    raise KeyboardInterrupt('signal %d' % signum)


def main(argv=None):
    """Run the calling script's tests (unittest, verbosity 2) and exit.

    Prints "N passed, N failed" as the last stdout line and exits 0 only if
    at least one test ran and none failed.  Skipped tests count as failures
    unless HB_ALLOW_SKIP=1.  SIGTERM/SIGHUP become KeyboardInterrupt so that
    httpds and namespaces are still cleaned up when a harness times out.
    """
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_interrupt)
    run = TestRun.current()
    allow_skip = os.environ.get('HB_ALLOW_SKIP') == '1'
    try:
        prog = unittest.main(module='__main__', argv=argv, exit=False, verbosity=2)
    except KeyboardInterrupt:
        sys.stderr.write('hbtest: interrupted\n')
        run.finish(failed=True)
        sys.stdout.write('0 passed, 1 failed\n')
        sys.stdout.flush()
        sys.exit(1)
    result = prog.result
    # A test can fail more than once (e.g. in the test and in its cleanup):
    # count test methods, as the summary line promises.
    bad = {test.id(): test for test, _ in result.failures + result.errors}
    bad.update((test.id(), test) for test in result.unexpectedSuccesses)
    skipped = {test.id(): test for test, _ in result.skipped if test.id() not in bad}
    failed = len(bad)
    ran_and_bad = sum(isinstance(t, unittest.TestCase) for t in bad.values())
    passed = max(0, result.testsRun - ran_and_bad - len(skipped))
    if skipped and not allow_skip:
        failed += len(skipped)
        for test, reason in result.skipped:
            sys.stderr.write('hbtest: skipped test counts as a failure '
                             '(HB_ALLOW_SKIP=1 to allow): %s: %s\n' % (test.id(), reason))
    if result.testsRun == 0:
        sys.stderr.write('hbtest: no tests ran\n')
    ok = failed == 0 and result.testsRun > 0
    run.finish(failed=not ok)
    sys.stderr.flush()
    sys.stdout.write('%d passed, %d failed\n' % (passed, failed))
    sys.stdout.flush()
    sys.exit(0 if ok else 1)
