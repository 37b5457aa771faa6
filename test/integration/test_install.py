#!/usr/bin/python3
"""`make install` and `make uninstall`.

With DESTDIR (a staged install, as for packaging): exactly the three modules
go into apxs' module directory (no libtool .la files), our .load and .conf
files into mods-available, plainly, nothing is diverted; httpd loads the
installed copies and `make uninstall` removes them again.

Without DESTDIR, on Debian, as root: the real system paths, but inside a
private mount namespace with writable copies of /usr/lib/apache2/modules,
/etc/apache2 and /var/lib/dpkg bind-mounted over them, so the real ones are
never touched (checked). apache2-bin's modules of the same names and
apache2's .load files are diverted to *.distrib with dpkg-divert before ours
are installed (even with make -j), the output says so and how to undo it,
and has no libtool "LD_LIBRARY_PATH" notice; a2enmod and apache2ctl -t load
the installed modules; `make uninstall` removes ours and the diversions and
gives back the distribution's files byte for byte."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

MODULES = ('heartbeat', 'heartmonitor', 'lbmethod_heartbeat')

# libtool's notice after installing a library outside the linker's path.
LIBTOOL_NOTICE = re.compile(r'LD_LIBRARY_PATH|Libraries have been installed')

DPKG_DIR = '/var/lib/dpkg'


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def tree_digest(top):
    """{relative path: content hash, symlink target or 'dir'} of a tree
    (empty if there is none)."""
    out = {}
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, top)
            if os.path.islink(path):
                out[rel] = 'link:' + os.readlink(path)
            elif os.path.isdir(path):
                out[rel] = 'dir'
            elif os.path.isfile(path):
                out[rel] = sha256(path)
            else:
                out[rel] = 'special'
    return out


class MakeMixin:
    """self.make(ARGS...): `make ARGS` in the build tree must succeed; its
    output. (test_a2enmod.py uses this too.)"""

    def make(self, *args):
        env = dict(os.environ)
        env.pop('MAKEFLAGS', None)  # not the -j/-k of the make check running us
        r = subprocess.run(['make', '-C', hbtest.build_dir()] + list(args),
                           capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout + r.stderr


def owner(path):
    """The Debian package that owns path, or None."""
    r = subprocess.run(['dpkg-query', '-S', path], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if 'diversion' not in line and line.endswith(': ' + path):
            return line[:-len(': ' + path)]
    return None


def mount_points(tops):
    """The mount points at or below any of tops (other tests running at the
    same time mount elsewhere, e.g. /run/netns)."""
    with open('/proc/self/mountinfo') as f:
        points = {line.split()[4] for line in f}
    return {p for p in points if any(p == t or p.startswith(t + '/') for t in tops)}


# Runs in the private mount namespace: each step's output goes to
# $T/NAME.out, its exit status to $T/NAME.rc.
NS_SCRIPT = r'''
set -u
T=$1 BUILD=$2 MODDIR=$3 CONFDIR=$4
step() { name=$1; shift; "$@" >"$T/$name.out" 2>&1; echo $? >"$T/$name.rc"; }
mount --make-rprivate / &&
mount --bind "$T/copy/modules" "$MODDIR" &&
mount --bind "$T/copy/apache2" "$CONFDIR" &&
mount --bind "$T/copy/dpkg" /var/lib/dpkg || exit 3
unset MAKEFLAGS MAKELEVEL MFLAGS
cd "$BUILD" || exit 4
export APACHE_STATE_DIRECTORY="$T/state"
step install make -j4 install bindir="$T/bin"
step divert-list-installed dpkg-divert --list
step a2enmod a2enmod heartmonitor lbmethod_heartbeat heartbeat
# An ASan build of our modules needs its runtime first in httpd
# (test/run-sanitizers sets HB_HTTPD_PRELOAD, as the harness does for httpd).
step configtest env LD_PRELOAD="${HB_HTTPD_PRELOAD:-}" apache2ctl -t
step modules env LD_PRELOAD="${HB_HTTPD_PRELOAD:-}" apache2ctl -M
step a2dismod a2dismod heartbeat lbmethod_heartbeat heartmonitor
cp -a "$MODDIR" "$T/installed-modules" && cp -a "$CONFDIR/mods-available" "$T/installed-avail"
step uninstall make -j4 uninstall bindir="$T/bin"
step divert-list-uninstalled dpkg-divert --list
cp -a "$MODDIR" "$T/uninstalled-modules" && cp -a "$CONFDIR/mods-available" "$T/uninstalled-avail"
'''


class InstallTest(MakeMixin, hbtest.HbTestCase):

    def test_destdir_install_and_uninstall(self):
        dest = tempfile.mkdtemp(prefix='destdir-', dir=self.sandbox.path)
        moddir = hbtest.apxs_query('LIBEXECDIR')
        target = os.path.join(dest, moddir.lstrip('/'))
        out = self.make('install', 'DESTDIR=' + dest)
        self.assertEqual(sorted(f for f in os.listdir(target)),
                         sorted('mod_%s.so' % m for m in MODULES))
        self.assertNotRegex(out, LIBTOOL_NOTICE)
        # A staged install diverts nothing.
        self.assertNotIn('diversion', out)
        self.assertNotIn('.distrib', out)

        # httpd accepts the installed copies.
        httpd = self.httpd('installed', ours=False, modules=[
            'proxy', 'proxy_balancer', 'slotmem_shm', 'lbmethod_byrequests', 'watchdog'] + [
            ('%s_module' % m, os.path.join(target, 'mod_%s.so' % m)) for m in MODULES])
        httpd.conf_body = 'HeartbeatMaxServers 5\n'
        rc, out = httpd.config_test()
        self.assertEqual(rc, 0, out)

        # Debian layout: .conf files with examples, and our .load files.
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
            # A staged install is plain: a .load file already in DESTDIR
            # (say, from an earlier staging) is replaced by ours, and
            # removed by make uninstall.
            stale = os.path.join(mods, 'heartbeat.load')
            with open(stale, 'w') as f:
                f.write('LoadModule heartbeat_module %s/mod_heartbeat.so\n' % moddir)
            self.make('install', 'DESTDIR=' + dest)
            with open(stale) as f:
                self.assertIn('heartbeat-suite', f.read())
            self.assertFalse([f for f in os.listdir(mods) if f.endswith('.distrib')])
            self.make('uninstall', 'DESTDIR=' + dest)
            self.assertEqual(os.listdir(mods), [])

    def test_system_install_diverts_package_files(self):
        if os.geteuid() != 0:
            self.skipTest('needs root: bind mounts in a private mount namespace '
                          'and dpkg-divert on copies of the system directories')
        for tool in ('unshare', 'mount', 'dpkg-divert', 'dpkg-query', 'a2enmod',
                     'apache2ctl', 'sha256sum'):
            self.assertTrue(shutil.which(tool), tool + ' not found')
        moddir = hbtest.apxs_query('LIBEXECDIR')
        confdir = hbtest.apxs_query('SYSCONFDIR')
        avail = os.path.join(confdir, 'mods-available')
        stock = ['%s/mod_%s.so' % (moddir, m) for m in MODULES] + [
            '%s/%s.load' % (avail, m) for m in MODULES]
        for path in stock:
            self.assertTrue(owner(path), '%s belongs to no package: this test needs '
                            "Debian's apache2 (apt-get install apache2)" % path)
        tops = (moddir, confdir, DPKG_DIR)
        before = {top: tree_digest(top) for top in tops}
        mounts = mount_points(tops)
        original = {path: sha256(path) for path in stock}
        ours = {'%s/mod_%s.so' % (moddir, m): sha256(os.path.join(
            hbtest.build_dir(), 'modules', m, '.libs', 'mod_%s.so' % m)) for m in MODULES}

        # Writable copies of the three system directories.
        t = self.sandbox.new_dir('system')
        copy = os.path.join(t, 'copy')
        os.makedirs(copy)
        for src, name in ((moddir, 'modules'), (confdir, 'apache2'), (DPKG_DIR, 'dpkg')):
            subprocess.run(['cp', '-a', src, os.path.join(copy, name)], check=True)
        # apache2ctl makes its run and lock directories: in the sandbox.
        with open(os.path.join(copy, 'apache2', 'envvars'), 'a') as f:
            f.write('\nexport APACHE_RUN_DIR=%s/run APACHE_LOCK_DIR=%s/lock '
                    'APACHE_LOG_DIR=%s APACHE_PID_FILE=%s/run/apache2.pid\n' % (t, t, t, t))
        script = os.path.join(t, 'ns.sh')
        with open(script, 'w') as f:
            f.write(NS_SCRIPT)

        r = subprocess.run(['unshare', '--mount', '--propagation', 'private',
                            'sh', script, t, hbtest.build_dir(), moddir, confdir],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           stdin=subprocess.DEVNULL, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout)

        def result(name):
            with open(os.path.join(t, name + '.rc')) as f:
                rc = int(f.read())
            with open(os.path.join(t, name + '.out')) as f:
                out = f.read()
            self.assertEqual(rc, 0, '%s failed:\n%s' % (name, out))
            return out

        def diversion(path):
            return 'local diversion of %s to %s.distrib' % (path, path)

        # make install: diverted first, then ours, and it says so.
        out = result('install')
        self.assertNotRegex(out, LIBTOOL_NOTICE)
        self.assertIn('heartbeat-suite: ours replace these files of Debian packages', out)
        self.assertIn('make uninstall', out)
        self.assertIn('dpkg-divert --local --rename --remove', out)
        listed = result('divert-list-installed')
        for path in stock:
            self.assertIn('%s (%s) -> %s.distrib' % (path, owner(path), path), out)
            self.assertIn(diversion(path), listed)
        inst_mods = os.path.join(t, 'installed-modules')
        inst_avail = os.path.join(t, 'installed-avail')
        for path in stock:
            where = inst_mods if path.startswith(moddir + '/') else inst_avail
            name = os.path.basename(path)
            self.assertEqual(sha256(os.path.join(where, name + '.distrib')), original[path],
                             path + '.distrib is not the distribution\'s file')
        for path, digest in ours.items():
            self.assertEqual(sha256(os.path.join(inst_mods, os.path.basename(path))), digest,
                             path + ' is not ours')
        self.assertFalse([f for f in os.listdir(inst_mods) if f.endswith('.la')])
        for m in MODULES:
            with open(os.path.join(inst_avail, m + '.load')) as f:
                text = f.read()
            self.assertIn('heartbeat-suite', text)
            self.assertIn('LoadModule %s_module %s/mod_%s.so' % (m, moddir, m), text)
            self.assertTrue(os.path.exists(os.path.join(inst_avail, m + '.conf')))

        # httpd loads the installed modules through a2enmod's links.
        result('a2enmod')
        self.assertIn('Syntax OK', result('configtest'))
        loaded = result('modules')
        for m in MODULES:
            self.assertIn(' %s_module (shared)' % m, loaded)
        result('a2dismod')

        # make uninstall: ours gone, the distribution's back, no diversion.
        out = result('uninstall')
        self.assertNotIn('keeping', out)
        listed = result('divert-list-uninstalled')
        un_mods = os.path.join(t, 'uninstalled-modules')
        un_avail = os.path.join(t, 'uninstalled-avail')
        for path in stock:
            self.assertNotIn(path, listed)
            where = un_mods if path.startswith(moddir + '/') else un_avail
            name = os.path.basename(path)
            self.assertEqual(sha256(os.path.join(where, name)), original[path], path)
            self.assertFalse(os.path.exists(os.path.join(where, name + '.distrib')))
        for m in MODULES:
            self.assertFalse(os.path.exists(os.path.join(un_avail, m + '.conf')))

        # The real directories were never touched, and no mount is left.
        for top, digest in before.items():
            self.assertEqual(tree_digest(top), digest, top + ' changed')
        self.assertEqual(mount_points(tops), mounts)


if __name__ == '__main__':
    hbtest.main()
