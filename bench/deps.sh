#!/bin/sh
# Install the Debian packages `make bench` needs, if any is missing (the
# build's own dependencies are build/deps.sh's). Needs root (or sudo) only
# when something must be installed.
#   wrk          closed-loop HTTP load for the request-path benchmark
#   apache2-bin  httpd, the stock modules, mod_lua (the 20 ms service handler)
#   iproute2     network namespaces for the stock monitor (multicast only)
#   linux-perf   optional: where the monitor's time goes (skipped if absent)
set -e

# The same check-and-install as the build's own list, plus these.
exec "$(dirname "$0")/../build/deps.sh" wrk apache2-bin iproute2 python3 linux-perf
