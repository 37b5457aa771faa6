#!/bin/sh
# Fetch an httpd 2.4 source tarball (Debian's apache2 source package) for
# the in-tree build test (test/integration/test_httpd_tree.py), and print
# its path.
#
#   build/httpd-source.sh [DIR]      default DIR: /var/cache/heartbeat-suite/httpd-src
#
# Does nothing but print the path when DIR already holds a tarball. Else,
# as root, it enables the deb-src twin of each Debian source in
# /etc/apt/sources.list.d/debian.sources (in a file of its own,
# heartbeat-suite-src.sources), installs dpkg-dev and runs
# `apt-get source --download-only apache2`, trying each version the
# archive lists, newest first, until one downloads.
set -e
dir=${1:-/var/cache/heartbeat-suite/httpd-src}

found() {
    for f in "$dir"/apache2_*.orig.tar.gz "$dir"/httpd-2.4.*.tar.gz; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}
found && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "httpd-source.sh: no httpd source in $dir; run me as root to fetch one" >&2
    exit 1
fi
src=/etc/apt/sources.list.d/heartbeat-suite-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ &&
    ! grep -qs '^deb-src' /etc/apt/sources.list; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$src"
    elif [ -f /etc/apt/sources.list ]; then
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"${src%.sources}.list"
    fi
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
command -v dpkg-source >/dev/null || apt-get install -y -qq dpkg-dev >&2
mkdir -p "$dir"
cd "$dir"
for v in $(apt-cache showsrc apache2 | sed -n 's/^Version: //p' | sort -rV); do
    # A mirror may list a version whose files it does not carry.
    if apt-get source -qq --download-only "apache2=$v" >&2 2>/dev/null; then
        break
    fi
    echo "httpd-source.sh: apache2 $v is listed but not downloadable; trying the next" >&2
done
found || {
    echo "httpd-source.sh: could not download the apache2 source package" >&2
    exit 1
}
