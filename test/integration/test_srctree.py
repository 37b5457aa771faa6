#!/usr/bin/python3
"""The README's commands in the order an administrator may run them: the
build for a real server in the source directory (`autoreconf -fi &&
./configure`, as README's "Build and install" says), then the quick start,
test/run and demo/run. Those build out of the tree, in _build/, which
configure refuses from a source directory configured in place ("source
directory already configured") and where make would take the in-tree
objects for its own; they build from a private copy of the sources instead
(build/srcdir.py), keep it in step with the tree (new, changed and removed
files), and leave the in-tree build as it was.

One build (test/run with HB_BUILD_ONLY=1), then a short demo on it."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

SRC = os.path.abspath(os.environ.get('HB_SRC_DIR') or
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))

# What the outer `make check` (or test/run-sanitizers) sets for its own build;
# the commands under test must find their own way, as for a user.
OUTER_ENV = ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'HB_BUILD_DIR', 'HB_SRC_DIR', 'HB_BUILDDIR',
             'HB_SAN_BUILDDIR', 'HB_CONFIGURE', 'HB_BUILD_ONLY', 'HB_APXS', 'HB_HTTPD',
             'HB_HTTPD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'PYTHONPATH')


def build_dir(path):
    """A build directory (configured) or build/srcdir.py's copy of the sources."""
    return any(os.path.exists(os.path.join(path, f)) for f in ('config.status', '.hb-origin'))


def source_files(src):
    """The sources of the tree under test (HB_SRC_DIR: the tree itself, or the
    private copy test/run made of it), without build directories: what git
    lists in a checkout, else every file but caches and srcdir.py's own."""
    top = subprocess.run(['git', '-C', src, 'rev-parse', '--show-toplevel'],
                         capture_output=True, text=True) if shutil.which('git') else None
    if top and top.returncode == 0 and os.path.realpath(top.stdout.strip()) == \
            os.path.realpath(src):
        out = subprocess.run(['git', '-C', src, 'ls-files', '-z', '--cached', '--others',
                              '--exclude-standard'], capture_output=True, check=True).stdout
        names = [os.fsdecode(n) for n in out.split(b'\0') if n]
        return [n for n in names if os.path.isfile(os.path.join(src, n)) and
                not any(build_dir(os.path.join(src, *n.split('/')[:i]))
                        for i in range(1, n.count('/') + 1))]
    files = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if d not in ('.git', '__pycache__', 'autom4te.cache')
                       and not build_dir(os.path.join(dirpath, d))]
        rel = os.path.relpath(dirpath, src)
        files += [os.path.normpath(os.path.join(rel, f)) for f in filenames
                  if not (rel == '.' and f in ('.hb-origin', '.hb-files'))]
    return files


def read(path):
    with open(path, 'rb') as f:
        return f.read()


class SourceTreeTest(hbtest.HbTestCase):

    def run_cmd(self, cmd, cwd, timeout=900, **extra_env):
        env = {k: v for k, v in os.environ.items() if k not in OUTER_ENV}
        env.update(extra_env)
        r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout)
        self.assertEqual(r.returncode, 0, '%s failed in %s:\n%s'
                         % (' '.join(cmd), cwd, r.stdout[-6000:]))
        return r.stdout

    def test_quick_start_after_an_in_place_build(self):
        tree = os.path.join(self.sandbox.path, 'tree')
        for rel in source_files(SRC):
            os.makedirs(os.path.dirname(os.path.join(tree, rel)), exist_ok=True)
            shutil.copy2(os.path.join(SRC, rel), os.path.join(tree, rel))
        with open(os.path.join(tree, 'docs', 'going-away.md'), 'w') as f:
            f.write('removed after the first build\n')
        if shutil.which('git'):     # a checkout, as after git clone
            self.run_cmd(['git', 'init', '-q'], tree)
            self.run_cmd(['git', 'add', '-A'], tree)

        # The administrator's build for a real server, in the source directory.
        self.run_cmd(['autoreconf', '-fi'], tree)
        self.run_cmd(['./configure'], tree)
        # What an in-tree `make` leaves that must never reach the other
        # build: an up-to-date-looking module (through VPATH it would stand
        # for the one to build) and a program git does not ignore.
        in_tree = {'modules/heartbeat/mod_heartbeat.la': 'not a libtool library\n',
                   'bench/pick_bench': None}
        for rel, text in in_tree.items():
            path = os.path.join(tree, rel)
            if text is None:
                shutil.copy2('/bin/true', path)
            else:
                with open(path, 'w') as f:
                    f.write(text)
            os.utime(path, (2**31, 2**31))    # newer than any source
        before = {rel: read(os.path.join(tree, rel))
                  for rel in list(in_tree) + ['config.status', 'Makefile']}

        # test/run, build only.
        out = self.run_cmd(['test/run'], tree, HB_BUILD_ONLY='1')
        self.assertIn('test/run: built in %s/_build' % tree, out)
        copy = os.path.join(tree, '_build', 'hb-src')
        with open(os.path.join(tree, '_build', 'Makefile')) as f:
            self.assertIn('abs_top_srcdir = %s\n' % copy, f.read())
        for rel in in_tree:
            self.assertFalse(os.path.lexists(os.path.join(copy, rel)), rel)
        for name in ('config.status', 'Makefile'):
            self.assertFalse(os.path.lexists(os.path.join(copy, name)), name)

        # Edit the tree: the copy follows on the next run.
        with open(os.path.join(tree, 'modules', 'common', 'hb_net.c'), 'a') as f:
            f.write('/* edited after the first build */\n')
        with open(os.path.join(tree, 'docs', 'new-note.md'), 'w') as f:
            f.write('added after the first build\n')
        os.unlink(os.path.join(tree, 'docs', 'going-away.md'))

        # demo/run, for a few seconds, on the same build directory.
        out = self.run_cmd(['demo/run', '--duration', '3'], tree, timeout=300)
        self.assertIn('heartbeat demo, ', out)
        self.assertIn('Stopped: every httpd of the demo has exited.', out)
        with open(os.path.join(copy, 'modules', 'common', 'hb_net.c')) as f:
            self.assertIn('edited after the first build', f.read())
        self.assertTrue(os.path.isfile(os.path.join(copy, 'docs', 'new-note.md')))
        self.assertFalse(os.path.lexists(os.path.join(copy, 'docs', 'going-away.md')))
        with open(os.path.join(tree, '_build', 'make.out')) as f:
            self.assertIn('hb_net', f.read(), 'the edited file must be compiled again')

        # The in-tree build is as it was.
        for rel, data in before.items():
            self.assertEqual(read(os.path.join(tree, rel)), data, rel)

        # Not a git checkout (a release tarball): the copy is what is left
        # after `make distclean` in a scratch copy of the tree.
        shutil.rmtree(os.path.join(tree, '.git'), ignore_errors=True)
        other = os.path.join(self.sandbox.path, 'other-build')
        printed = self.run_cmd([sys.executable, 'build/srcdir.py', other], tree)
        copy = os.path.join(other, 'hb-src')
        self.assertEqual(printed.splitlines()[-1], copy, printed)
        for rel in ('configure.ac', 'Makefile.am', 'modules/common/hb_net.c', 'docs/new-note.md'):
            self.assertTrue(os.path.isfile(os.path.join(copy, rel)), rel)
        for rel in list(in_tree) + ['config.status', 'Makefile', 'config.log', 'libtool',
                                    'build/autoconf_defs.h', '_build']:
            self.assertFalse(os.path.lexists(os.path.join(copy, rel)), rel)
        self.assertFalse(os.path.lexists(other + '/hb-src.scratch'))


if __name__ == '__main__':
    hbtest.main()
