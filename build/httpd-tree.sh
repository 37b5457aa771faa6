#!/bin/sh
# Drop the heartbeat suite into an httpd 2.4 source tree, in place of the
# stock mod_heartbeat, mod_heartmonitor and mod_lbmethod_heartbeat.
#
#   build/httpd-tree.sh /path/to/httpd-2.4.x
#
# then, in the httpd tree (docs/httpd-tree.md has the whole story):
#
#   ./buildconf [--with-apr=apr-1-config]
#   ./configure --enable-heartbeat --enable-heartmonitor \
#               --enable-proxy-balancer --enable-lbmethod-heartbeat ...
#   make && make install
#
# What it does:
#  - copies modules/common, modules/heartbeat, modules/heartmonitor and
#    modules/lbmethod_heartbeat into the tree's modules/ (each module
#    directory has the config5.m4 and Makefile.in httpd's build reads);
#  - takes the stock modules out of httpd's build, since they have the
#    same names: modules/cluster/config5.m4 is renamed config5.m4.stock,
#    and the lbmethod_heartbeat line of modules/proxy/balancers/config2.m4
#    is removed (the original is kept as config2.m4.stock). The stock
#    sources stay where they are.
# Running it again refreshes the copies; it never touches anything else.
set -e

if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,24s/^# \{0,1\}//p' "$0"
    [ $# -eq 1 ] && exit 0
    exit 2
fi
tree=$1
top=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -f "$tree/include/ap_release.h" ] || [ ! -f "$tree/build/special.mk" ]; then
    echo "httpd-tree.sh: $tree is not an httpd source tree (no include/ap_release.h or build/special.mk)" >&2
    exit 1
fi
major=$(sed -n 's/^#define AP_SERVER_MAJORVERSION_NUMBER \([0-9]*\).*/\1/p' "$tree/include/ap_release.h")
minor=$(sed -n 's/^#define AP_SERVER_MINORVERSION_NUMBER \([0-9]*\).*/\1/p' "$tree/include/ap_release.h")
if [ "$major.$minor" != "2.4" ]; then
    echo "httpd-tree.sh: $tree is httpd $major.$minor; the suite is for httpd 2.4" >&2
    exit 1
fi

for dir in common heartbeat heartmonitor lbmethod_heartbeat; do
    rm -rf "$tree/modules/$dir"
    mkdir -p "$tree/modules/$dir"
    for f in "$top/modules/$dir"/*.c "$top/modules/$dir"/*.h "$top/modules/$dir"/config5.m4 \
        "$top/modules/$dir"/Makefile.in; do
        [ -f "$f" ] && cp "$f" "$tree/modules/$dir/"
    done
done
echo "copied modules/common, heartbeat, heartmonitor, lbmethod_heartbeat into $tree/modules"

stock=$tree/modules/cluster/config5.m4
if [ -f "$stock" ]; then
    mv "$stock" "$stock.stock"
    echo "disabled the stock mod_heartbeat and mod_heartmonitor ($stock -> config5.m4.stock)"
fi
bal=$tree/modules/proxy/balancers/config2.m4
if [ -f "$bal" ] && grep -q 'APACHE_MODULE(lbmethod_heartbeat' "$bal"; then
    cp "$bal" "$bal.stock"
    grep -v 'APACHE_MODULE(lbmethod_heartbeat' "$bal.stock" >"$bal"
    echo "disabled the stock mod_lbmethod_heartbeat in $bal (original: config2.m4.stock)"
fi

cat <<EOF

Next, in $tree:
  ./buildconf                 (add --with-apr=apr-1-config without srclib/apr)
  ./configure --enable-heartbeat --enable-heartmonitor \\
              --enable-proxy --enable-proxy-balancer --enable-lbmethod-heartbeat ...
  make && make install
EOF
