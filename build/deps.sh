#!/bin/sh
# Install the Debian packages the suite needs to build, test and demo, if
# any is missing. Needs root (or sudo) only when something must be installed.
# Extra package names given as arguments are installed too (bench/deps.sh).
set -e

PKGS="$* apache2 apache2-dev libapr1-dev libaprutil1-dev check autoconf automake libtool
pkg-config make gcc python3 iproute2 curl libssl-dev wrk clang libclang-rt-14-dev
libpcre2-dev dpkg-dev debhelper help2man lintian"
# promtool and the Prometheus server, for test_metrics.py (docs/monitoring.md).
PKGS="$PKGS prometheus"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "Installing missing packages:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        echo "These Debian packages are needed:$missing" >&2
        echo "Run as root: apt-get update && apt-get install -y$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $missing
# The apache2 package may start the system's own server; ours never need it
# and it would hold port 80. Stop it only if this script just installed it.
case "$missing" in
*apache2\ *|*apache2) (command -v apache2ctl >/dev/null && $SUDO apache2ctl stop) >/dev/null 2>&1 || true ;;
esac
