#!/usr/bin/python3
"""The suite builds inside an httpd 2.4 source tree, in place of the stock
modules: build/httpd-tree.sh drops it in, httpd's own buildconf and
configure pick up each module directory's config5.m4 (`--enable-heartbeat`
etc.), httpd's make builds the three modules warning-free, and the modules
so built pass the end-to-end chain test.

The httpd source is Debian's apache2 source package: $HB_HTTPD_SRC (a
tarball or an unpacked tree), else what build/httpd-source.sh fetched into
/var/cache/heartbeat-suite/httpd-src (test/run calls it)."""

import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

MODULES = ('heartbeat', 'heartmonitor', 'lbmethod_heartbeat')
SRC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')


def httpd_source():
    env = os.environ.get('HB_HTTPD_SRC')
    if env:
        return env
    found = sorted(glob.glob('/var/cache/heartbeat-suite/httpd-src/apache2_2.4.*.orig.tar.gz'))
    if not found:
        raise hbtest.HarnessError('no httpd 2.4 source: run build/httpd-source.sh (as root) '
                                  'or set HB_HTTPD_SRC to a tarball or tree')
    return found[-1]


class HttpdTreeTest(hbtest.HbTestCase):

    def run_in(self, cwd, cmd, timeout=600):
        env = dict(os.environ)
        env.pop('MAKEFLAGS', None)  # not the -j/-k of the make check running us
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env,
                           timeout=timeout)
        self.assertEqual(r.returncode, 0, '%s failed:\n%s%s' % (' '.join(cmd), r.stdout,
                                                                r.stderr[-4000:]))
        return r.stdout + r.stderr

    def unpack(self):
        src = httpd_source()
        work = os.path.join(self.sandbox.path, 'src')
        if os.path.isdir(src):
            tree = os.path.join(work, 'httpd')
            shutil.copytree(src, tree, symlinks=True)
            return tree
        os.makedirs(work)
        subprocess.run(['tar', '-xzf', src, '-C', work], check=True)
        trees = glob.glob(os.path.join(work, 'httpd-2.4.*'))
        self.assertEqual(len(trees), 1, trees)
        return trees[0]

    def test_build_in_httpd_tree(self):
        tree = self.unpack()
        out = self.run_in(SRC_DIR, ['sh', 'build/httpd-tree.sh', tree])
        self.assertIn('disabled the stock mod_heartbeat', out)
        self.assertIn('disabled the stock mod_lbmethod_heartbeat', out)
        for m in MODULES:
            self.assertTrue(os.path.isfile(os.path.join(tree, 'modules', m, 'config5.m4')))
        with open(os.path.join(tree, 'modules/proxy/balancers/config2.m4')) as f:
            self.assertNotIn('lbmethod_heartbeat', f.read())

        buildconf = ['./buildconf']
        if not os.path.isdir(os.path.join(tree, 'srclib', 'apr')):
            buildconf.append('--with-apr=apr-1-config')
        self.run_in(tree, buildconf)
        help_text = self.run_in(tree, ['./configure', '--help'])
        for m in MODULES:
            opt = '--enable-' + m.replace('_', '-')
            self.assertEqual(len(re.findall(r'^\s+%s\s' % re.escape(opt), help_text, re.M)), 1,
                             'configure --help must list %s exactly once' % opt)
        self.assertIn('heartbeat suite', help_text)

        # Only what the three modules need, to keep this test short.
        conf_out = self.run_in(tree, [
            './configure', '--with-apr=' + shutil.which('apr-1-config'),
            '--with-apr-util=' + shutil.which('apu-1-config'), '--enable-modules=none',
            '--enable-watchdog=shared', '--enable-slotmem-shm=shared', '--enable-proxy=shared',
            '--enable-proxy-balancer=shared', '--enable-heartbeat=shared',
            '--enable-heartmonitor=shared', '--enable-lbmethod-heartbeat=shared'])
        for m in MODULES:
            self.assertRegex(conf_out, r'checking whether to enable mod_%s\.\.\. shared' % m)

        for m in MODULES:
            out = self.run_in(os.path.join(tree, 'modules', m),
                              ['make', 'local-shared-build',
                               'CFLAGS=-O2 -Wall -Wextra -Wno-unused-parameter '
                               '-Wno-missing-field-initializers'])
            warnings = [l for l in out.splitlines() if 'warning:' in l]
            self.assertEqual(warnings, [], 'mod_%s in the httpd tree' % m)
            so = os.path.join(tree, 'modules', m, '.libs', 'mod_%s.so' % m)
            self.assertTrue(os.path.isfile(so), so)
            syms = subprocess.run(['nm', '-D', '--defined-only', so], capture_output=True,
                                  text=True, check=True).stdout.split()
            self.assertIn('%s_module' % m, syms)
            self.assertNotIn('hb_packet_parse', syms, 'the core must not be exported')

        # The modules built there work: the end-to-end chain test, run
        # against the tree (same .libs layout as our own build).
        env = dict(os.environ, HB_BUILD_DIR=tree)
        r = subprocess.run([sys.executable, os.path.join(SRC_DIR, 'test/integration/test_chain.py')],
                           capture_output=True, text=True, env=env, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        self.assertRegex(r.stdout, r'(?m)^[1-9]\d* passed, 0 failed$')


if __name__ == '__main__':
    hbtest.main()
