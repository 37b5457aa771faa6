#!/bin/sh
# Print what `make check` ran: each Check program's own summary line, each
# failed test's log, and one closing "N passed, N failed" line.
builddir=${1:-.}
cd "$builddir" || exit 1
[ -f test-suite.log ] || { echo "0 passed, 1 failed"; exit 1; }

echo "== Check unit-test summaries"
for f in test/unit/*.log; do
    [ -f "$f" ] && grep -H -E '^[0-9]+%: Checks:' "$f"
done
echo "== Integration test summaries"
for f in test/integration/*.log; do
    [ -f "$f" ] && grep -H -E '^[0-9]+ passed, [0-9]+ failed' "$f"
done

fail=0
for f in $(find test -name '*.trs'); do
    if grep -q '^:test-result: \(FAIL\|ERROR\|XPASS\)' "$f"; then
        log=${f%.trs}.log
        echo "== FAILED: ${f%.trs}"
        tail -n 80 "$log"
        fail=1
    fi
done
pass=$(sed -n 's/^# PASS: *//p' test-suite.log | head -n1)
failn=$(sed -n 's/^# FAIL: *//p' test-suite.log | head -n1)
err=$(sed -n 's/^# ERROR: *//p' test-suite.log | head -n1)
skip=$(sed -n 's/^# SKIP: *//p' test-suite.log | head -n1)
: "${pass:=0}" "${failn:=0}" "${err:=0}" "${skip:=0}"
# A skipped test did not prove anything: count it as a failure.
total_fail=$((failn + err + skip))
echo "$pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$fail" -eq 0 ]
