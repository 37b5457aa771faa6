#!/usr/bin/python3
"""Prepare the sources a build directory is configured from, and print their path.

    build/srcdir.py BUILDDIR

test/run, test/run-sanitizers and demo/run build out of the source tree
(a VPATH build in BUILDDIR, _build/ by default). That cannot work from a
source directory that was configured in place (the README's
`./configure && make`): configure refuses ("source directory already
configured") and make would take the in-tree objects for its own through
VPATH. So, when the source directory has a config.status or a Makefile,
this script keeps a private copy of the sources without any build product
in BUILDDIR/hb-src and prints that path; the in-tree build stays as it is.
The copy is brought up to date on every run: new and changed files are
copied, files that went away are removed (files generated in the copy,
such as autoreconf's, are left alone).

 - In a git checkout the sources are the files git tracks or would add
   (`git ls-files --cached --others --exclude-standard`).
 - Otherwise (a release tarball, say) they are the whole tree, after
   `make distclean` in a scratch copy of it.

Either way build directories inside the tree (those with a config.status)
and compiled programs (ELF files) are left out. BUILDDIR/hb-src/.hb-origin
holds the path of the source directory the copy was made from (`make bench`
writes its report there).

When the source directory is not configured in place (or BUILDDIR is the
source directory itself), it prints the source directory, as before.

In both cases it then runs autoreconf in the directory it prints if
configure is missing or older than configure.ac or Makefile.am, and if
BUILDDIR was configured from the other one (the in-place build came or
went), runs `make distclean` in BUILDDIR first, so that no object or
dependency file made from the other sources is reused.
"""

import filecmp
import os
import shutil
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COPY_NAME = 'hb-src'
ORIGIN = '.hb-origin'      # in the copy: the source directory it mirrors
MANIFEST = '.hb-files'     # in the copy: the files last copied into it
OWN = {ORIGIN, MANIFEST}


def say(msg):
    sys.stderr.write('srcdir.py: %s\n' % msg)


def configured_in_place(path):
    return any(os.path.lexists(os.path.join(path, f)) for f in ('config.status', 'Makefile'))


def is_under(path, parent):
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def is_elf(path):
    try:
        with open(path, 'rb') as f:
            return f.read(4) == b'\x7fELF'
    except OSError:
        return False


def is_build_dir(path):
    """A configured build directory, or a copy this script made."""
    return (os.path.exists(os.path.join(path, 'config.status')) or
            os.path.exists(os.path.join(path, ORIGIN)))


def inner(root, builddir):
    """BUILDDIR if it lies inside root (so must be left out), else None."""
    root = os.path.realpath(root)
    return builddir if builddir != root and is_under(builddir, root) else None


def keep(root, rel, exclude, build_trees):
    """Whether root/rel is a source file: not in a build directory (exclude,
    or any directory with a config.status but the top), not a compiled program."""
    path = os.path.join(root, rel)
    if exclude and is_under(os.path.realpath(path), exclude):
        return False
    parts = rel.split('/')
    for i in range(1, len(parts)):
        d = '/'.join(parts[:i])
        if d not in build_trees:
            build_trees[d] = is_build_dir(os.path.join(root, d))
        if build_trees[d]:
            return False
    if os.path.islink(path):
        return True
    return os.path.isfile(path) and not is_elf(path)


def git_sources(builddir):
    """The files of a git checkout at TOP, or None if TOP is not one."""
    try:
        top = subprocess.run(['git', '-C', TOP, 'rev-parse', '--show-toplevel'],
                             capture_output=True, text=True)
        if top.returncode != 0 or os.path.realpath(top.stdout.strip()) != os.path.realpath(TOP):
            return None
        out = subprocess.run(['git', '-C', TOP, 'ls-files', '-z', '--cached', '--others',
                              '--exclude-standard'], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    trees = {}
    exclude = inner(TOP, builddir)
    names = sorted({os.fsdecode(n) for n in out.split(b'\0') if n})
    return [n for n in names if keep(TOP, n, exclude, trees)]


def tree_sources(root, builddir):
    """Every file under root but in .git, build directories and caches."""
    files = []
    trees = {}
    exclude = inner(root, builddir)
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = '' if rel_dir == '.' else rel_dir + '/'
        for d in list(dirnames):
            p = os.path.join(dirpath, d)
            if (d in ('.git', '__pycache__') or is_build_dir(p) or
                    (exclude and is_under(os.path.realpath(p), exclude))):
                dirnames.remove(d)
            elif os.path.islink(p):
                filenames.append(d)     # copied as the link it is
        for f in filenames:
            if rel_dir + f not in OWN and keep(root, rel_dir + f, exclude, trees):
                files.append(rel_dir + f)
    return sorted(files)


def distcleaned_sources(builddir, scratch):
    """A tree that is not a git checkout: copy it to scratch, `make distclean`
    there (so whatever configure and make left behind goes), list what is left."""
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    for rel in tree_sources(TOP, builddir):
        dst = os.path.join(scratch, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        src = os.path.join(TOP, rel)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    if os.path.exists(os.path.join(scratch, 'Makefile')):
        make_distclean(scratch, 'a scratch copy of %s (try `make distclean` in %s)'
                       % (TOP, TOP))
    for leftover in ('config.status', 'Makefile'):
        if os.path.lexists(os.path.join(scratch, leftover)):
            say('`make distclean` in a scratch copy of %s left %s behind' % (TOP, leftover))
            sys.exit(1)
    return tree_sources(scratch, builddir)


def make_distclean(where, what):
    """`make distclean` in where; on failure, say so (what) and exit."""
    # -o Makefile: clean with the Makefile as it is, never regenerate it
    # first (that would run configure or autoconf again).
    env = dict(os.environ)
    for v in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL'):
        env.pop(v, None)
    r = subprocess.run(['make', '-o', 'Makefile', 'distclean'], cwd=where, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:])
        say('`make distclean` failed in %s' % what)
        sys.exit(1)


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def prune_empty_dirs(path, stop):
    path = os.path.dirname(path)
    while is_under(path, stop) and path != stop:
        try:
            os.rmdir(path)
        except OSError:
            return
        path = os.path.dirname(path)


def make_parents(root, rel):
    """Create root/rel's directory, replacing any file in the way."""
    d = root
    for part in rel.split('/')[:-1]:
        d = os.path.join(d, part)
        if os.path.lexists(d) and not (os.path.isdir(d) and not os.path.islink(d)):
            os.unlink(d)
        if not os.path.exists(d):
            os.mkdir(d)


def same_file(src, dst):
    if os.path.islink(src) or os.path.islink(dst):
        return (os.path.islink(src) and os.path.islink(dst) and
                os.readlink(src) == os.readlink(dst))
    if not os.path.isfile(dst):
        return False
    return filecmp.cmp(src, dst, shallow=False)


def sync(src_root, files, copy):
    """Make copy hold exactly files (from src_root), plus what was generated
    in it. Only new and changed files are written, so make rebuilds what
    they feed and nothing else."""
    os.makedirs(copy, exist_ok=True)
    manifest_path = os.path.join(copy, MANIFEST)
    try:
        with open(manifest_path, 'rb') as f:
            before = {os.fsdecode(n) for n in f.read().split(b'\0') if n}
    except FileNotFoundError:
        before = set()
    wanted = set(files)
    removed = 0
    for rel in sorted(before - wanted, reverse=True):
        path = os.path.join(copy, rel)
        if os.path.lexists(path):
            remove(path)
            prune_empty_dirs(path, copy)
            removed += 1
    copied = 0
    for rel in files:
        src = os.path.join(src_root, rel)
        dst = os.path.join(copy, rel)
        if same_file(src, dst):
            if not os.path.islink(src):
                mode = os.stat(src).st_mode & 0o7777
                if os.stat(dst).st_mode & 0o7777 != mode:
                    os.chmod(dst, mode)
            continue
        make_parents(copy, rel)
        old_mtime = os.lstat(dst).st_mtime if os.path.lexists(dst) else None
        if os.path.lexists(dst):
            remove(dst)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
            # The source's own time, so that autotools' outputs keep their
            # order; but never older than the file it replaces, or make
            # would keep what it built from that one.
            if old_mtime is not None and os.stat(dst).st_mtime <= old_mtime:
                now = time.time()
                os.utime(dst, (now, max(now, old_mtime + 1)))
        copied += 1
    with open(manifest_path + '.tmp', 'wb') as f:
        f.write(b''.join(os.fsencode(n) + b'\0' for n in files))
    os.replace(manifest_path + '.tmp', manifest_path)
    with open(os.path.join(copy, ORIGIN), 'w') as f:
        f.write(TOP + '\n')
    return copied, removed


def newer(a, b):
    return os.path.getmtime(a) > os.path.getmtime(b)


def autoreconf_if_needed(srcdir):
    conf = os.path.join(srcdir, 'configure')
    if (os.access(conf, os.X_OK) and newer(conf, os.path.join(srcdir, 'configure.ac')) and
            newer(conf, os.path.join(srcdir, 'Makefile.am'))):
        return
    r = subprocess.run(['autoreconf', '-fi'], cwd=srcdir, stdout=subprocess.DEVNULL)
    if r.returncode != 0:
        say('autoreconf -fi failed in %s' % srcdir)
        sys.exit(1)


def configured_from(builddir):
    """The source directory BUILDDIR's Makefile was made for, or None."""
    try:
        with open(os.path.join(builddir, 'Makefile')) as f:
            for line in f:
                if line.startswith('abs_top_srcdir = '):
                    return line.split('=', 1)[1].strip()
    except OSError:
        pass
    return None


def main(argv):
    if len(argv) != 2 or argv[1].startswith('-'):
        sys.stderr.write(__doc__)
        return 2
    builddir = os.path.realpath(argv[1])
    os.makedirs(builddir, exist_ok=True)
    copy = os.path.join(builddir, COPY_NAME)
    in_place = builddir == os.path.realpath(TOP)

    if configured_in_place(TOP) and not in_place:
        files = git_sources(builddir)
        if files is None:
            scratch = copy + '.scratch'
            files = distcleaned_sources(builddir, scratch)
            copied, removed = sync(scratch, files, copy)
            shutil.rmtree(scratch)
        else:
            copied, removed = sync(TOP, files, copy)
        srcdir = copy
        say('%s is configured in place: building from a copy of its sources in %s '
            '(%d file(s) copied, %d removed)' % (TOP, copy, copied, removed))
    else:
        srcdir = TOP

    autoreconf_if_needed(srcdir)
    before = configured_from(builddir)
    if not in_place and before is not None and \
            os.path.realpath(before) != os.path.realpath(srcdir):
        say('%s was configured from %s: make distclean there first' % (builddir, before))
        make_distclean(builddir, '%s (remove it and run again)' % builddir)
    if srcdir == TOP and os.path.exists(os.path.join(copy, ORIGIN)):
        shutil.rmtree(copy)     # a copy no longer used (the in-place build went)
    print(srcdir)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
