#!/usr/bin/python3
"""The .load and .conf files `make install` puts into mods-available work
with Debian's real a2enmod and a2dismod: on a throwaway copy of /etc/apache2
(APACHE_CONFDIR, marker files under APACHE_STATE_DIRECTORY), enabling
heartmonitor and lbmethod_heartbeat (a proxy), then heartbeat (an origin),
enables their dependencies too, `apache2ctl -t` accepts the result with our
modules loaded, and a2dismod takes them out again. The real /etc/apache2 and
/var/lib/apache2 are not touched."""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402
from test_install import MakeMixin, tree_digest  # noqa: E402

MODULES = ('heartbeat', 'heartmonitor', 'lbmethod_heartbeat')
# What a2enmod must enable along with them (Debian's own Depends: lines:
# proxy_balancer needs proxy, alias and slotmem_shm).
PROXY_DEPS = ('proxy_balancer', 'lbmethod_byrequests', 'proxy', 'slotmem_shm')

REAL_CONFDIR = '/etc/apache2'
REAL_STATEDIR = '/var/lib/apache2'


class A2enmodTest(MakeMixin, hbtest.HbTestCase):

    def run_tool(self, cmd, expect_ok=True):
        env = dict(self.env)
        if cmd[0] == 'apache2ctl' and os.environ.get('HB_HTTPD_PRELOAD'):
            # httpd loads our modules: an ASan build needs its runtime first
            # (test/run-sanitizers), as the harness gives every httpd.
            env['LD_PRELOAD'] = os.environ['HB_HTTPD_PRELOAD']
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, text=True, env=env, timeout=60)
        if expect_ok:
            self.assertEqual(r.returncode, 0, '%s:\n%s' % (' '.join(cmd), r.stdout))
            self.assertNotIn('ERROR', r.stdout, ' '.join(cmd))
        return r.returncode, r.stdout

    def enabled(self, name, ext='load'):
        """The mods-enabled link for name.ext, checked to point at ours."""
        link = os.path.join(self.conf, 'mods-enabled', '%s.%s' % (name, ext))
        if not os.path.lexists(link):
            return False
        self.assertTrue(os.path.islink(link), link)
        self.assertEqual(os.readlink(link), '../mods-available/%s.%s' % (name, ext))
        self.assertTrue(os.path.exists(link), 'dangling ' + link)
        return True

    def configtest(self):
        rc, out = self.run_tool(['apache2ctl', '-t'], expect_ok=False)
        self.assertEqual(rc, 0, out)
        self.assertIn('Syntax OK', out)
        rc, out = self.run_tool(['apache2ctl', '-M'], expect_ok=False)
        self.assertEqual(rc, 0, out)
        return out

    def test_a2enmod_a2dismod(self):
        for tool in ('a2enmod', 'a2dismod', 'apache2ctl'):
            self.assertTrue(shutil.which(tool), '%s not found: apt-get install apache2' % tool)
        self.assertTrue(os.path.isdir(os.path.join(REAL_CONFDIR, 'mods-available')),
                        'no Debian layout in %s: apt-get install apache2' % REAL_CONFDIR)
        real_conf = tree_digest(REAL_CONFDIR)
        real_state = tree_digest(REAL_STATEDIR)

        # Our files, as make install writes them (staged).
        dest = tempfile.mkdtemp(prefix='destdir-', dir=self.sandbox.path)
        self.make('install', 'DESTDIR=' + dest)
        moddir = hbtest.apxs_query('LIBEXECDIR')
        staged_mods = os.path.join(dest, moddir.lstrip('/'))
        staged_avail = os.path.join(dest, hbtest.apxs_query('SYSCONFDIR').lstrip('/'),
                                    'mods-available')

        # The throwaway configuration: a copy of /etc/apache2 with its run,
        # lock and log directories in the sandbox (apache2ctl creates them).
        self.conf = os.path.join(self.sandbox.path, 'apache2')
        shutil.copytree(REAL_CONFDIR, self.conf, symlinks=True)
        var = self.sandbox.new_dir('var')
        with open(os.path.join(self.conf, 'envvars'), 'a') as f:
            f.write('\n# test_a2enmod: keep out of the real /run and /var\n')
            for name, sub in (('APACHE_RUN_DIR', 'run'), ('APACHE_LOCK_DIR', 'lock'),
                              ('APACHE_LOG_DIR', 'log')):
                f.write('export %s=%s/%s\n' % (name, var, sub))
            f.write('export APACHE_PID_FILE=%s/run/apache2.pid\n' % var)
        os.makedirs(os.path.join(var, 'log'))
        state = os.path.join(self.sandbox.path, 'state')
        self.env = dict(os.environ, APACHE_CONFDIR=self.conf, APACHE_STATE_DIRECTORY=state)
        self.env.pop('APACHE_ENVVARS', None)

        # Start with none of ours or their dependencies enabled in the copy.
        self.run_tool(['a2dismod', '-f', '-q'] + list(MODULES) + list(PROXY_DEPS))
        for name in MODULES + PROXY_DEPS:
            self.assertFalse(self.enabled(name), name)
        self.configtest()

        # Ours in place of the distribution's, loading the staged modules.
        for m in MODULES:
            shutil.copy(os.path.join(staged_avail, m + '.conf'),
                        os.path.join(self.conf, 'mods-available'))
            with open(os.path.join(staged_avail, m + '.load')) as f:
                text = f.read()
            self.assertIn('LoadModule %s_module %s/mod_%s.so' % (m, moddir, m), text)
            with open(os.path.join(self.conf, 'mods-available', m + '.load'), 'w') as f:
                f.write(text.replace(moddir + '/', staged_mods + '/'))
        # A balancer with lbmethod=heartbeat: mod_proxy_balancer refuses to
        # define one without mod_lbmethod_byrequests.
        with open(os.path.join(self.conf, 'conf-available', 'hb-test.conf'), 'w') as f:
            f.write('<Proxy balancer://app>\n'
                    '    BalancerMember http://127.0.0.1:9\n'
                    '    ProxySet lbmethod=heartbeat\n'
                    '</Proxy>\n')
        os.symlink('../conf-available/hb-test.conf',
                   os.path.join(self.conf, 'conf-enabled', 'hb-test.conf'))

        # A proxy: heartmonitor and lbmethod_heartbeat, with dependencies.
        rc, out = self.run_tool(['a2enmod', 'heartmonitor', 'lbmethod_heartbeat'])
        for name in ('heartmonitor', 'lbmethod_heartbeat') + PROXY_DEPS:
            self.assertTrue(self.enabled(name), '%s not enabled:\n%s' % (name, out))
        for name in ('heartmonitor', 'lbmethod_heartbeat'):
            self.assertTrue(self.enabled(name, 'conf'), name + '.conf')
            self.assertTrue(os.path.exists(os.path.join(
                state, 'module', 'enabled_by_admin', name)), name)
        self.assertFalse(self.enabled('heartbeat'))
        out = self.configtest()
        for name in ('heartmonitor', 'lbmethod_heartbeat', 'proxy_balancer',
                     'lbmethod_byrequests'):
            self.assertIn(' %s_module (shared)' % name, out)

        # An origin: heartbeat (on the same copy, so all three together).
        rc, out = self.run_tool(['a2enmod', 'heartbeat'])
        self.assertTrue(self.enabled('heartbeat'), out)
        self.assertTrue(self.enabled('heartbeat', 'conf'), out)
        out = self.configtest()
        for m in MODULES:
            self.assertIn(' %s_module (shared)' % m, out)

        # a2dismod sees our Depends: line the other way round too.
        rc, out = self.run_tool(['a2dismod', 'proxy_balancer'], expect_ok=False)
        self.assertNotEqual(rc, 0, out)
        self.assertIn('lbmethod_heartbeat', out)
        self.assertTrue(self.enabled('proxy_balancer'))

        self.run_tool(['a2dismod', 'heartbeat', 'lbmethod_heartbeat', 'heartmonitor'])
        for m in MODULES:
            self.assertFalse(self.enabled(m), m)
            self.assertFalse(self.enabled(m, 'conf'), m + '.conf')
            self.assertTrue(os.path.exists(os.path.join(
                state, 'module', 'disabled_by_admin', m)), m)
        os.unlink(os.path.join(self.conf, 'conf-enabled', 'hb-test.conf'))
        out = self.configtest()
        for m in MODULES:
            self.assertNotIn(' %s_module ' % m, out)

        self.make('uninstall', 'DESTDIR=' + dest)
        self.assertEqual(tree_digest(REAL_CONFDIR), real_conf, REAL_CONFDIR + ' changed')
        self.assertEqual(tree_digest(REAL_STATEDIR), real_state, REAL_STATEDIR + ' changed')


if __name__ == '__main__':
    hbtest.main()
