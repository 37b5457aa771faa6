#!/bin/sh
# Stands in for the unit tests when configure did not find Check, so that
# `make check` fails loudly instead of passing with nothing run.
echo "The Check unit-test framework was not found when ./configure ran." >&2
echo "Install it (Debian/Ubuntu: apt-get install check pkg-config) and re-run ./configure." >&2
exit 1
