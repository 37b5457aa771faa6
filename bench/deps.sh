#!/bin/sh
# Install the Debian packages `make bench` needs, if any is missing (the
# build's own dependencies are build/deps.sh's). Needs root (or sudo) only
# when something must be installed.
#   wrk          closed-loop HTTP load for the request-path benchmark
#   apache2-bin  httpd, the stock modules, mod_lua (the 20 ms service handler)
#   iproute2     network namespaces for the stock monitor (multicast only)
#   linux-perf   optional: where the monitor's time goes (skipped if absent)
set -e

PKGS="wrk apache2 apache2-bin iproute2 python3 linux-perf"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "bench: installing missing packages:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        echo "bench needs these Debian packages:$missing" >&2
        echo "Run as root: apt-get update && apt-get install -y$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $missing
# A freshly installed apache2 package starts the system's server on port 80;
# the benchmark starts its own servers and never needs it.
case "$missing" in
*apache2\ * | *apache2) (command -v apache2ctl >/dev/null && $SUDO apache2ctl stop) >/dev/null 2>&1 || true ;;
esac
