#!/bin/sh
# Run every test: the C unit tests (cmocka) and the system tests (pytest
# against a Dovecot started by the tests).  Ends with one line
# "N passed, N failed, N skipped" and a non-zero status on any failure.
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
export MAILSTOW_BUILD="$(pwd)/$BUILD"
passed=0 failed=0 skipped=0
log="$BUILD/unit.log"
: > "$log"
# One binary per source: a stale binary of a removed test does not count.
for src in tests/unit/test_*.c; do
	t="$BUILD/tests/$(basename "$src" .c)"
	if [ ! -x "$t" ]; then
		echo "unit $(basename "$t"): not built"
		failed=$((failed + 1))
		continue
	fi
	out=$("$t" 2>&1); rc=$?
	printf '%s\n' "$out" >> "$log"
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	p=${p:-0}; f=${f:-0}
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1	# crashed before cmocka could count
		printf '%s\n' "$out" | tail -20
	fi
	[ "$f" != 0 ] && printf '%s\n' "$out" | grep -E 'FAIL|ERROR|error' | head -20
	echo "unit $(basename "$t"): $p passed, $f failed"
	passed=$((passed + p)); failed=$((failed + f))
done
junit="$BUILD/pytest.xml"
rm -f "$junit"
$PYTHON -m pytest -q -rfE -p no:cacheprovider --junitxml="$junit" tests/system ${PYTEST_ARGS}
if [ -f "$junit" ]; then
	set -- $($PYTHON - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
s = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - s, f, s)
PY
)
	passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + $3))
else
	failed=$((failed + 1))
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
