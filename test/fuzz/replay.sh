#!/bin/sh
# Run each fuzz target once over its committed corpus (no fuzzing), so that
# every seed and every crash reproducer (regress-*) is checked by
# `make check`. Part of TESTS; `make fuzz-replay` runs it on its own.
#
# A missing clang is a failure, not a skip: without it nothing here was
# checked, and a skipped test reads as a passed one in most summaries.
#
# Environment (set by `make check`): HB_BUILD_DIR (where the targets were
# built, in test/fuzz/), HB_SRC_DIR (where the corpus is), FUZZ_CC.
top_src=${HB_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HB_BUILD_DIR:-.}
cc=${FUZZ_CC:-clang}
targets="fuzz_packet fuzz_storage fuzz_post fuzz_join"

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "FAIL: $cc was not found, so the fuzz targets in test/fuzz cannot be built or run." >&2
    echo "Install clang with libFuzzer (Debian: apt-get install clang libclang-rt-14-dev)," >&2
    echo "or name another compiler: make check FUZZ_CC=clang-15" >&2
    exit 1
fi

status=0
for t in $targets; do
    bin=$build/test/fuzz/$t
    corpus=$top_src/test/fuzz/corpus/$t
    if [ ! -x "$bin" ]; then
        echo "FAIL: $t: $bin was not built ($cc is there: see the build log below)" >&2
        if [ -f "$build/test/fuzz/build.log" ]; then
            tail -n 40 "$build/test/fuzz/build.log" >&2
        fi
        status=1
        continue
    fi
    set -- "$corpus"/*
    if [ ! -f "$1" ]; then
        echo "FAIL: $t: no corpus in $corpus" >&2
        status=1
        continue
    fi
    n=$#
    log=$build/test/fuzz/$t.replay.log
    # Files, not the directory: libFuzzer then runs each input once and
    # exits, instead of starting to fuzz. -timeout catches a hang.
    if "$bin" -timeout=20 "$@" >"$log" 2>&1; then
        ran=$(grep -c '^Executed ' "$log")
        if [ "$ran" -ne "$n" ]; then
            echo "FAIL: $t: ran $ran of $n inputs (see $log)" >&2
            status=1
        else
            echo "PASS: $t: $n inputs"
        fi
    else
        echo "FAIL: $t: crashed or broke a property on an input of $corpus:" >&2
        grep -E '^Running: ' "$log" | tail -n 1 >&2
        tail -n 60 "$log" >&2
        status=1
    fi
done
exit $status
