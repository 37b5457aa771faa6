#!/usr/bin/python3
"""The Debian package (debian/, docs/install.md) on the real package tools.

`make deb` builds it; lintian must find nothing (overrides are explained in
debian/*.lintian-overrides); debian/changelog carries configure.ac's
version. Then, as root, on the machine's own apache2 but in a mount
namespace of this process where /usr, /etc, /var and /run are overlays on
a tmpfs, so that neither the real dpkg database nor any real file changes
(checked at the end through directories opened before the overlays):

 - `apt install` of the .deb diverts apache2-bin's three modules and
   apache2's three .load files to FILE.stock, byte for byte, puts ours in
   their place with the .conf files, hbctl, its manual page and the docs,
   enables nothing and asks init for nothing (a policy-rc.d that refuses
   everything records what the maintainer scripts ask), and
   `apache2ctl configtest` passes;
 - a2enmod heartmonitor lbmethod_heartbeat also enables what they need;
   Debian's apache2, started with apache2ctl, balances a request through
   lbmethod=heartbeat to an origin that loads mod_heartbeat through the
   package's heartbeat.load and reports to it; hbctl reads its table;
   a2enmod heartbeat loads all three;
 - reinstalling apache2-bin and apache2 from their .deb files (an upgrade)
   leaves ours in place and the stock files beside them; reinstalling ours
   while our modules are enabled restarts apache2, once;
 - `apt remove` disables our modules and restarts apache2 once for that,
   gives back the stock files byte for byte, removes every diversion, keeps
   the .conf conffiles, and configtest passes; installing again puts
   everything back and restarts nothing;
 - `apt purge` leaves nothing: no diversion, no file of the package, no
   state of apache2's about our modules, and the stock files as they were.
"""

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

PKG = 'libapache2-mod-heartbeat-suite'
MODULES = ('heartbeat', 'heartmonitor', 'lbmethod_heartbeat')
MODDIR = '/usr/lib/apache2/modules'
AVAIL = '/etc/apache2/mods-available'
ENABLED = '/etc/apache2/mods-enabled'
STOCK = ['%s/mod_%s.so' % (MODDIR, m) for m in MODULES] + [
    '%s/%s.load' % (AVAIL, m) for m in MODULES]
# What a2enmod enables along with heartmonitor and lbmethod_heartbeat.
PROXY_DEPS = ('proxy_balancer', 'lbmethod_byrequests', 'proxy', 'slotmem_shm')

# The trees the package tools write to, each an overlay in our namespace.
OVERLAID = ('/usr', '/etc', '/var', '/run')
# Set (to the mount namespace we started in) when this script has re-run
# itself in a namespace of its own.
NS_ENV = 'HB_DEB_TEST_PARENT_NS'

BAD_LOG_LINE = re.compile(r'^\[[^\]]*\] \[(?:[^\]:]*:)?(emerg|alert|crit|error)\]', re.M)


def mount_ns():
    return os.stat('/proc/self/ns/mnt').st_ino


def enter_private_namespace():
    """As root, run this script again in a mount namespace of its own (exec:
    same process, same output). Its mounts vanish with it, however it ends.
    Without root, or where unshare does not work, stay: the tests then fail
    and say why."""
    if os.geteuid() != 0 or NS_ENV in os.environ:
        return
    probe = subprocess.run(['unshare', '--mount', 'true'], capture_output=True)
    if probe.returncode != 0:
        return
    os.environ[NS_ENV] = str(mount_ns())
    os.execvp('unshare', ['unshare', '--mount', '--propagation', 'private', '--',
                          sys.executable, '-u'] + sys.argv)


def sha256(path, dir_fd=None):
    fd = os.open(path, os.O_RDONLY, dir_fd=dir_fd)
    with os.fdopen(fd, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def mounts():
    """(mount point, fs type) of every mount, in mount order."""
    with open('/proc/self/mountinfo') as f:
        out = []
        for line in f:
            fields = line.split()
            out.append((fields[4], fields[fields.index('-') + 1]))
        return out


class DebTest(hbtest.HbTestCase):

    # ---- set-up: the package, the stock packages' files, the overlays ----

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if os.geteuid() != 0:
            raise unittest.SkipTest('needs root: dpkg and apt in a private mount '
                                    'namespace with overlays over /usr, /etc, /var, /run')
        for tool in ('dpkg-buildpackage', 'dh', 'help2man', 'lintian', 'apt', 'dpkg-divert',
                     'a2enmod', 'apache2ctl', 'unshare', 'mount'):
            if not shutil.which(tool):
                raise AssertionError('%s not found: build/deps.sh installs what this '
                                     'test needs' % tool)
        if os.environ.get(NS_ENV) in (None, str(mount_ns())):
            raise AssertionError('not in a mount namespace of its own (unshare --mount '
                                 'failed?): refusing to run dpkg on the real system')
        for path in STOCK:
            if not os.path.exists(path):
                raise AssertionError("%s is missing: this test needs Debian's apache2 "
                                     '(apt-get install apache2)' % path)
        installed = subprocess.run(['dpkg-query', '-W', '-f', '${Status}', PKG],
                                   capture_output=True, text=True).stdout
        if installed and not installed.endswith('not-installed'):
            raise AssertionError('%s is on this machine (%s): this test installs it in '
                                 'its namespace, from the stock state' % (PKG, installed))
        cls.work = hbtest.TestRun.current().new_dir('package')
        cls.env = dict(os.environ, DEBIAN_FRONTEND='noninteractive', LC_ALL='C.UTF-8')
        cls.env.pop('MAKEFLAGS', None)  # not the -j/-k of the make check running us
        cls.build_package()
        cls.find_stock_debs()
        cls.open_host_view()
        cls.mount_overlays()
        cls.prepare_system()

    @classmethod
    def run_cmd(cls, cmd, ok=True, timeout=600, cwd=None):
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, text=True, errors='replace',
                           env=cls.env, timeout=timeout, cwd=cwd)
        if ok and r.returncode != 0:
            tail = '\n'.join(r.stdout.splitlines()[-150:])
            raise AssertionError('%s: exit %d\n%s' % (' '.join(cmd), r.returncode, tail))
        return r.returncode, r.stdout

    @classmethod
    def build_package(cls):
        """`make deb` in the build tree; the .deb, .changes and the files
        the .deb holds (unpacked with dpkg-deb -x)."""
        out_dir = os.path.join(hbtest.build_dir(), 'deb')
        cls.run_cmd(['make', '-C', hbtest.build_dir(), 'deb'])
        debs = glob.glob(os.path.join(out_dir, PKG + '_*.deb'))
        changes = glob.glob(os.path.join(out_dir, '*.changes'))
        if len(debs) != 1 or len(changes) != 1:
            raise AssertionError('make deb made %s' % os.listdir(out_dir))
        cls.deb, cls.changes = debs[0], changes[0]
        cls.unpacked = os.path.join(cls.work, 'unpacked')
        cls.run_cmd(['dpkg-deb', '-x', cls.deb, cls.unpacked])
        _, listing = cls.run_cmd(['dpkg-deb', '-c', cls.deb])
        # Every file and symlink the package installs (not directories).
        cls.deb_paths = [re.sub(r' -> .*$', '', line.split(None, 5)[5])[1:]
                         for line in listing.splitlines() if line[0] in '-l']

    @classmethod
    def find_stock_debs(cls):
        """The .deb files of the installed apache2-bin and apache2, for the
        reinstall: from apt's cache, else downloaded (before the overlays,
        with the machine's own network configuration)."""
        cls.stock_debs = []
        for pkg in ('apache2-bin', 'apache2'):
            _, fields = cls.run_cmd(['dpkg-query', '-W', '-f', '${Version} ${Architecture}', pkg])
            version, arch = fields.split()
            name = '%s_%s_%s.deb' % (pkg, version.replace(':', '%3a'), arch)
            cached = os.path.join('/var/cache/apt/archives', name)
            if not os.path.exists(cached):
                rc, out = cls.run_cmd(['apt-get', 'download', '%s=%s' % (pkg, version)],
                                      ok=False, cwd=cls.work)
                cached = os.path.join(cls.work, name)
                if rc != 0 or not os.path.exists(cached):
                    raise AssertionError('%s %s is neither in /var/cache/apt/archives nor '
                                         'downloadable:\n%s' % (pkg, version, out))
            cls.stock_debs.append(cached)

    @classmethod
    def open_host_view(cls):
        """Directories of the real system, opened before the overlays hide
        them, and what they hold now (host_state())."""
        cls.host_fds = {}
        for path in ('/var/lib/dpkg', MODDIR, AVAIL, '/usr/bin', '/usr/share', '/usr/share/doc'):
            cls.host_fds[path] = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            cls.addClassCleanup(os.close, cls.host_fds[path])
        cls.host_before = cls.host_state()

    @classmethod
    def host_state(cls):
        """What the package would change on the real system (not the whole
        dpkg status: apt may be used there meanwhile)."""
        fds = cls.host_fds
        fd = os.open('status', os.O_RDONLY, dir_fd=fds['/var/lib/dpkg'])
        with os.fdopen(fd) as f:
            state = {'status of ' + PKG: re.findall(r'^Package: %s\n(?:.+\n)*' % re.escape(PKG),
                                                   f.read(), re.M)}
        state['diversions'] = sha256('diversions', fds['/var/lib/dpkg'])
        for path in STOCK:
            state[path] = sha256(os.path.basename(path), fds[os.path.dirname(path)])
        for d in (MODDIR, AVAIL):
            state[d + '/*.stock'] = sorted(f for f in os.listdir(fds[d]) if f.endswith('.stock'))
        for d, name in (('/usr/bin', 'hbctl'), ('/usr/share', PKG), ('/usr/share/doc', PKG)):
            state[d + '/' + name] = name in os.listdir(fds[d])
        return state

    @classmethod
    def mount_overlays(cls):
        """Overlays over OVERLAID with their upper layers on a tmpfs; unmounted
        (lazily: this process still has files open there) at the end, though
        they would go with the namespace anyway."""
        layers = os.path.join(cls.work, 'layers')
        os.mkdir(layers)
        cls.run_cmd(['mount', '-t', 'tmpfs', '-o', 'size=2g,mode=0755', 'hb-deb-layers', layers])
        cls.addClassCleanup(cls.unmount_all, layers)
        for top in OVERLAID:
            name = top.strip('/')
            upper, work = os.path.join(layers, 'up', name), os.path.join(layers, 'work', name)
            os.makedirs(upper)
            os.makedirs(work)
            cls.run_cmd(['mount', '-t', 'overlay', 'hb-deb-' + name, '-o',
                         'lowerdir=%s,upperdir=%s,workdir=%s' % (top, upper, work), top])
        # No maintainer script may reach the machine's systemd (daemon-reload,
        # deb-systemd-invoke): without /run/systemd they take it for absent.
        if os.path.isdir('/run/systemd'):
            cls.run_cmd(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'hb-deb-nosystemd',
                         '/run/systemd'])
        cls.assert_isolated()

    @classmethod
    def unmount_all(cls, layers):
        for point in ['/run/systemd'] + list(reversed(OVERLAID)) + [layers]:
            if any(p == point and t in ('overlay', 'tmpfs') for p, t in mounts()):
                subprocess.run(['umount', '-l', point], check=False)
        # The work directory (apache2's logs, the unpacked package) stays
        # for a look when something failed, as hbtest keeps a sandbox.
        keep = hbtest.TestRun.current().any_failed or os.environ.get('HB_KEEP') == '1'
        if not keep and not any(p == layers or p.startswith(layers + '/') for p, _ in mounts()):
            shutil.rmtree(cls.work, ignore_errors=True)

    @classmethod
    def assert_isolated(cls):
        """Before every package command: each of OVERLAID is an overlay here,
        and here is not the namespace the script started in."""
        if str(mount_ns()) == os.environ.get(NS_ENV):
            raise AssertionError('back in the original mount namespace')
        top_fs = {}
        for point, fstype in mounts():
            top_fs[point] = fstype
        for top in OVERLAID:
            if top_fs.get(top) != 'overlay':
                raise AssertionError('%s is not an overlay (%s): refusing to go on'
                                     % (top, top_fs.get(top)))

    @classmethod
    def prepare_system(cls):
        """In the overlays: a policy-rc.d that refuses every init action and
        records it, and apache2ctl's run, lock and log directories (envvars)
        in our work directory."""
        cls.rc_log = os.path.join(cls.work, 'policy-rc.d.log')
        with open('/usr/sbin/policy-rc.d', 'w') as f:
            f.write('#!/bin/sh\n# test_deb.py: record, refuse\necho "$*" >> %s\nexit 101\n'
                    % cls.rc_log)
        os.chmod('/usr/sbin/policy-rc.d', 0o755)
        apache = os.path.join(cls.work, 'apache2')
        cls.apache_log = os.path.join(apache, 'log')
        os.makedirs(cls.apache_log)
        envvars = os.path.join(apache, 'envvars')
        with open(envvars, 'w') as f:
            f.write('. /etc/apache2/envvars\n')
            for name, sub in (('APACHE_RUN_DIR', 'run'), ('APACHE_LOCK_DIR', 'lock'),
                              ('APACHE_LOG_DIR', 'log'), ('APACHE_PID_FILE', 'run/apache2.pid')):
                f.write('export %s=%s/%s\n' % (name, apache, sub))
        cls.pid_file = os.path.join(apache, 'run', 'apache2.pid')
        # man-db's trigger rebuilds the whole manual index after each
        # package command (our manual page), slowly: not in this copy.
        cls.assert_isolated()
        if os.path.exists('/var/lib/man-db/auto-update'):
            os.unlink('/var/lib/man-db/auto-update')
        # apache2ctl, in our commands and in the maintainer scripts.
        cls.env['APACHE_ENVVARS'] = envvars

    # ---- helpers ------------------------------------------------------------

    def sh(self, *cmd, ok=True):
        rc, out = self.run_cmd(list(cmd), ok=False)
        if ok:
            self.assertEqual(rc, 0, '%s: exit %d\n%s' % (' '.join(cmd), rc, out))
        return rc, out

    def pkg(self, *cmd):
        """A package command (apt, dpkg): only inside the overlays. Its
        output goes to the test's log."""
        self.assert_isolated()
        out = self.sh(*cmd)[1]
        progress = re.compile(r'^\(Reading database \.\.\. (\d+%)?$')
        sys.stderr.write('$ %s\n%s\n' % (' '.join(cmd), '\n'.join(
            line for line in out.splitlines() if not progress.match(line))))
        return out

    def rc_actions(self):
        """What maintainer scripts asked init for since the last call."""
        try:
            with open(self.rc_log) as f:
                text = f.read()
        except FileNotFoundError:
            return []
        os.unlink(self.rc_log)
        return text.splitlines()

    def enabled(self, mod):
        return self.sh('a2query', '-q', '-m', mod, ok=False)[0] == 0

    def our_diversions(self):
        out = self.sh('dpkg-divert', '--list')[1]
        return sorted(line for line in out.splitlines()
                      if PKG in line or any(p in line for p in STOCK))

    def owners(self):
        """{path: (whether dpkg-query -S says it is diverted, the packages
        it names as owners)} for the STOCK paths (one dpkg-query: it is slow)."""
        out = self.sh('dpkg-query', '-S', *STOCK)[1].splitlines()
        result = {}
        for path in STOCK:
            names = [line[:-len(': ' + path)].split(', ') for line in out
                     if line.endswith(': ' + path) and not line.startswith('diversion by')]
            diverted = any(line.startswith('diversion by') and
                           (line.endswith(' ' + path) or line.endswith(' %s.stock' % path))
                           for line in out)
            result[path] = (diverted, sorted(sum(names, [])))
        return result

    def configtest(self):
        rc, out = self.sh('apache2ctl', 'configtest', ok=False)
        self.assertEqual(rc, 0, out)
        self.assertIn('Syntax OK', out)

    def status(self):
        return self.sh('dpkg-query', '-W', '-f', '${Status}', PKG, ok=False)

    # ---- the checks ---------------------------------------------------------

    def assert_installed(self, stock):
        self.assertEqual(self.status(), (0, 'install ok installed'))
        self.assertEqual(self.our_diversions(), sorted(
            'diversion of %s to %s.stock by %s' % (p, p, PKG) for p in STOCK))
        for path in STOCK:
            self.assertEqual(sha256(path + '.stock'), stock[path],
                             path + '.stock is not the stock file')
        for m in MODULES:
            so = '%s/mod_%s.so' % (MODDIR, m)
            self.assertEqual(sha256(so), sha256(self.unpacked + so), so + ' is not ours')
            load = '%s/%s.load' % (AVAIL, m)
            self.assertEqual(os.path.realpath(load), '/usr/share/%s/%s.load' % (PKG, m))
            with open(load) as f:
                text = f.read()
            self.assertIn('heartbeat-suite', text)
            self.assertIn('LoadModule %s_module %s/mod_%s.so' % (m, MODDIR, m), text)
            conf = '%s/%s.conf' % (AVAIL, m)
            self.assertEqual(sha256(conf), sha256(self.unpacked + conf))
        for path, (diverted, owners) in self.owners().items():
            self.assertTrue(diverted, path)
            self.assertIn(PKG, owners, path)
        self.assertIn('usage: hbctl', self.sh('hbctl', '--help')[1])
        for path in ('/usr/bin/hbctl', '/usr/share/man/man1/hbctl.1.gz',
                     '/usr/share/doc/%s/copyright' % PKG,
                     '/usr/share/doc/%s/changelog.gz' % PKG,
                     '/usr/share/doc/%s/README.md.gz' % PKG):
            self.assertTrue(os.path.exists(path), path)
        self.assertTrue(glob.glob('/usr/share/doc/%s/docs/install.md*' % PKG))
        self.configtest()

    def assert_stock_back(self, stock):
        """The stock files in place, byte for byte, and no diversion."""
        self.assertEqual(self.our_diversions(), [])
        owners = self.owners()
        for path in STOCK:
            self.assertEqual(sha256(path), stock[path], path + ' is not the stock file')
            self.assertFalse(os.path.lexists(path + '.stock'), path + '.stock')
            self.assertEqual(owners[path], (False, [self.stock_owner[path]]), path)
        for m in MODULES:
            self.assertFalse(self.enabled(m), m)
            self.assertFalse(os.path.lexists('%s/%s.load' % (ENABLED, m)), m)
        self.configtest()

    def test_changelog_version(self):
        src = os.environ.get('HB_SRC_DIR') or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), '..', '..')
        with open(os.path.join(src, 'configure.ac')) as f:
            ac_version = re.search(r'^AC_INIT\(\[[^]]*\],\s*\[([^]]*)\]', f.read(), re.M).group(1)
        _, version = self.sh('dpkg-deb', '-f', self.deb, 'Version')
        self.assertEqual(version.strip(), ac_version)

    def test_lintian(self):
        rc, out = self.sh('lintian', '--display-info', '--pedantic', '--fail-on',
                          'error,warning,info', self.changes, ok=False)
        tags = [line for line in out.splitlines() if re.match(r'^[EWIPX]: ', line)]
        self.assertEqual((rc, tags), (0, []), out)

    def test_install_use_upgrade_remove_purge(self):
        stock = {path: sha256(path) for path in STOCK}
        self.stock_owner = {path: owners[0] for path, (_, owners) in self.owners().items()}
        self.assertEqual(self.our_diversions(), [])
        self.rc_actions()

        # Install: ours in place of the stock files, nothing enabled, no
        # restart asked for.
        self.pkg('apt', 'install', '-y', self.deb)
        self.assert_installed(stock)
        for m in MODULES:
            self.assertFalse(self.enabled(m), m + ' enabled by the package')
        self.assertEqual(self.rc_actions(), [])

        # A proxy: a2enmod follows our Depends: lines.
        out = self.sh('a2enmod', 'heartmonitor', 'lbmethod_heartbeat', 'proxy_http')[1]
        for mod in ('heartmonitor', 'lbmethod_heartbeat', 'proxy_http') + PROXY_DEPS:
            self.assertTrue(self.enabled(mod), '%s not enabled:\n%s' % (mod, out))
        self.configtest()
        loaded = self.sh('apache2ctl', '-M')[1]
        for mod in ('heartmonitor', 'lbmethod_heartbeat', 'proxy_balancer',
                    'lbmethod_byrequests'):
            self.assertIn(' %s_module (shared)' % mod, loaded)
        self.balance_a_request()

        # An origin: a2enmod heartbeat (all three on one server now).
        self.sh('a2enmod', 'heartbeat')
        self.configtest()
        loaded = self.sh('apache2ctl', '-M')[1]
        for m in MODULES:
            self.assertIn(' %s_module (shared)' % m, loaded)

        # An upgrade of apache2-bin and apache2 updates the .stock files
        # and leaves ours alone.
        self.pkg('dpkg', '-i', '--force-confdef', '--force-confold', *self.stock_debs)
        self.assert_installed(stock)
        for m in MODULES:
            self.assertTrue(self.enabled(m), m)
        self.rc_actions()

        # An upgrade of ours (the same .deb again) while they are enabled:
        # one restart, so that apache2 runs the new modules.
        self.pkg('dpkg', '-i', self.deb)
        self.assert_installed(stock)
        self.assertEqual([a for a in self.rc_actions() if a.startswith('apache2 ')],
                         ['apache2 (restart)'])

        # Remove: our modules disabled (restarting apache2 for that), the
        # stock files back, the conffiles kept.
        self.pkg('apt', 'remove', '-y', PKG)
        # One restart for the three (invoke-rc.d asks policy-rc.d about
        # "apache2 (restart)").
        self.assertEqual([a for a in self.rc_actions() if a.startswith('apache2 ')],
                         ['apache2 (restart)'])
        self.assert_stock_back(stock)
        self.assertEqual(self.status(), (0, 'deinstall ok config-files'))
        for m in MODULES:
            self.assertTrue(os.path.exists('%s/%s.conf' % (AVAIL, m)), m + '.conf')
        for path in ('/usr/bin/hbctl', '/usr/share/' + PKG):
            self.assertFalse(os.path.lexists(path), path)

        # Installed again over the kept configuration: all of it back.
        self.pkg('apt', 'install', '-y', self.deb)
        self.assert_installed(stock)
        self.assertEqual(self.rc_actions(), [])

        # Purge: nothing of ours left.
        self.pkg('apt', 'purge', '-y', PKG)
        self.assertEqual(self.rc_actions(), [])
        self.assert_stock_back(stock)
        rc, out = self.status()
        self.assertTrue(rc != 0 or 'not-installed' in out, out)
        left = [p for p in self.deb_paths if os.path.lexists(p) and p not in STOCK]
        self.assertEqual(left, [])
        for path in ['/usr/share/' + PKG, '/usr/share/doc/' + PKG] + glob.glob(
                '/var/lib/dpkg/info/%s.*' % PKG):
            self.assertFalse(os.path.lexists(path), path)
        for m in MODULES:
            self.assertEqual(glob.glob('/var/lib/apache2/module/*/' + m), [])
            self.assertEqual(glob.glob('%s/%s.*' % (ENABLED, m)), [])
            self.assertEqual(glob.glob('%s/%s.*.dpkg-*' % (AVAIL, m)), [])

        # None of it reached the real system.
        self.assertEqual(self.host_state(), self.host_before)

    def balance_a_request(self):
        """Debian's apache2 (apache2ctl start, /etc/apache2 as a2enmod left
        it) as the proxy, an origin loading mod_heartbeat through the
        package's heartbeat.load: one request through lbmethod=heartbeat."""
        hb_port = hbtest.free_port(kind='udp')
        origin = self.httpd('origin', '\n'.join([
            'Include %s/heartbeat.load' % AVAIL,
            'HeartbeatAddress 127.0.0.1:%d' % hb_port,
            'HeartbeatInterval 100ms', '']))
        origin.add_file('who', 'origin\n')
        origin.start()

        port = hbtest.free_port()
        test_conf = '/etc/apache2/conf-available/hb-deb-test.conf'
        with open(test_conf, 'w') as f:
            f.write('\n'.join([
                'HeartbeatListen 127.0.0.1:%d' % hb_port,
                'HeartbeatMaxServers 10',
                '<Location /hb-status>',
                '    SetHandler heartbeat-status',
                '    Require local',
                '</Location>',
                '<Proxy balancer://app>',
                '    BalancerMember http://127.0.0.1:%d' % origin.port,
                '    ProxySet lbmethod=heartbeat',
                '</Proxy>',
                'ProxyPass /app balancer://app', '']))
        with open('/etc/apache2/ports.conf', 'rb') as f:
            ports = f.read()
        with open('/etc/apache2/ports.conf', 'w') as f:
            f.write('Listen 127.0.0.1:%d\n' % port)
        self.sh('a2enconf', 'hb-deb-test')
        self.configtest()
        self.sh('apache2ctl', 'start')
        self.addCleanup(self.kill_apache2)
        base = 'http://127.0.0.1:%d' % port

        def origin_reported():
            try:
                r = hbtest.get(base + '/hb-status?json')
            except OSError:
                return None
            servers = json.loads(r.text)['servers'] if r.status == 200 else []
            return [s for s in servers if s['port'] == origin.port and s['ready'] > 0]
        hbtest.wait_until(origin_reported, timeout=15,
                          message='the origin in the proxy table (%s/error.log)' % self.apache_log)
        r = hbtest.get(base + '/app/who')
        self.assertEqual((r.status, r.text), (200, 'origin\n'))
        table = self.sh('hbctl', 'table', base + '/hb-status')[1]
        self.assertIn(str(origin.port), table)

        self.stop_apache2()
        with open(os.path.join(self.apache_log, 'error.log')) as f:
            self.assertEqual(BAD_LOG_LINE.findall(f.read()), [])
        # The administrator's test set-up goes again.
        self.sh('a2disconf', 'hb-deb-test')
        os.unlink(test_conf)
        with open('/etc/apache2/ports.conf', 'wb') as f:
            f.write(ports)
        origin.shutdown()

    def apache2_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def stop_apache2(self):
        pid = self.apache2_pid()
        self.sh('apache2ctl', 'stop')
        if pid:
            hbtest.wait_until(lambda: not os.path.exists('/proc/%d' % pid), timeout=15,
                              message='apache2 (pid %d) to stop' % pid)

    def kill_apache2(self):
        """After a failure: the apache2 that apache2ctl started (its own
        process group), by its pid file."""
        pid = self.apache2_pid()
        if pid and os.path.exists('/proc/%d' % pid):
            try:
                os.killpg(pid, 9)
            except ProcessLookupError:
                pass


if __name__ == '__main__':
    enter_private_namespace()
    hbtest.main()
