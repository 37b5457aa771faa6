#!/usr/bin/python3
"""`make install DESTDIR=...` puts exactly the three modules into apxs'
module directory (no libtool .la files), httpd loads the installed copies,
and `make uninstall` removes them again."""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

MODULES = ('heartbeat', 'heartmonitor', 'lbmethod_heartbeat')


class InstallTest(hbtest.HbTestCase):

    def make(self, *args):
        env = dict(os.environ)
        env.pop('MAKEFLAGS', None)  # not the -j/-k of the make check running us
        r = subprocess.run(['make', '-C', hbtest.build_dir()] + list(args),
                           capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_destdir_install_and_uninstall(self):
        dest = tempfile.mkdtemp(prefix='destdir-', dir=self.sandbox.path)
        moddir = hbtest.apxs_query('LIBEXECDIR')
        target = os.path.join(dest, moddir.lstrip('/'))
        self.make('install', 'DESTDIR=' + dest)
        self.assertEqual(sorted(f for f in os.listdir(target)),
                         sorted('mod_%s.so' % m for m in MODULES))

        # httpd accepts the installed copies.
        httpd = self.httpd('installed', ours=False, modules=[
            'proxy', 'proxy_balancer', 'slotmem_shm', 'lbmethod_byrequests', 'watchdog'] + [
            ('%s_module' % m, os.path.join(target, 'mod_%s.so' % m)) for m in MODULES])
        httpd.conf_body = 'HeartbeatMaxServers 5\n'
        rc, out = httpd.config_test()
        self.assertEqual(rc, 0, out)

        # Debian layout: .conf files with examples, and .load files (ours,
        # since this DESTDIR has none of the distribution's yet).
        mods = os.path.join(dest, hbtest.apxs_query('SYSCONFDIR').lstrip('/'), 'mods-available')
        if os.path.isdir(os.path.join(hbtest.apxs_query('SYSCONFDIR'), 'mods-available')):
            self.assertEqual(sorted(os.listdir(mods)), sorted(
                ['%s.%s' % (m, ext) for m in MODULES for ext in ('conf', 'load')]))
            # The .load lines, pointed at the DESTDIR copies, and the .conf
            # files parse with httpd -t.
            loads = []
            for m in MODULES:
                with open(os.path.join(mods, m + '.load')) as f:
                    text = f.read()
                self.assertIn('LoadModule %s_module %s/mod_%s.so' % (m, moddir, m), text)
                loads.append(text.replace(moddir, target))
            confs = []
            for m in MODULES:
                with open(os.path.join(mods, m + '.conf')) as f:
                    confs.append(f.read())
            check = self.httpd('debian', ours=False, modules=[
                'proxy', 'proxy_balancer', 'slotmem_shm', 'lbmethod_byrequests'])
            check.conf_body = '\n'.join(loads + confs)
            rc, out = check.config_test()
            self.assertEqual(rc, 0, out)

        self.make('uninstall', 'DESTDIR=' + dest)
        self.assertEqual(os.listdir(target), [])
        if os.path.isdir(mods):
            self.assertEqual(os.listdir(mods), [])
            # A distribution's own .load file is kept, not overwritten.
            stock = os.path.join(mods, 'heartbeat.load')
            with open(stock, 'w') as f:
                f.write('LoadModule heartbeat_module /usr/lib/apache2/modules/mod_heartbeat.so\n')
            self.make('install', 'DESTDIR=' + dest)
            with open(stock) as f:
                self.assertNotIn('heartbeat-suite', f.read())
            self.make('uninstall', 'DESTDIR=' + dest)
            self.assertEqual(os.listdir(mods), ['heartbeat.load'])


if __name__ == '__main__':
    hbtest.main()
