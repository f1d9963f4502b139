#!/usr/bin/env bash
# Every check the project has, in the order CI runs them; stops at the first failure.
#   lint (ruff) -> types (mypy --strict gateway benchmarks) -> pytest tests (the import-layer test among them)
#   -> js: npm test (source, then the minified build) -> pytest e2e
#   -> pytest tests again on the lowest and the newest allowed starlette/uvicorn/h11/wsproto
# Extra arguments are passed to both pytest runs (e.g. -x, -k name). A pytest run that collects no test fails.
# Environment: GATEWAY_SKIP_SETUP=1 skips scripts/setup.sh (for a machine already set up).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ "${GATEWAY_SKIP_SETUP:-0}" != 1 ]; then
    bash scripts/setup.sh || { echo "test: setup failed" >&2; exit 1; }
fi
export PATH="$ROOT/.venv/bin:$PATH"
PY="$ROOT/.venv/bin/python"
LOGS="$(mktemp -d "${TMPDIR:-/tmp}/gateway-test.XXXXXX")"
trap 'rm -rf "$LOGS"' EXIT

# name|seconds|status lines for the summary; passed/failed counts read from each runner's report.
SUMMARY=()
TOTAL_PASSED=0
TOTAL_FAILED=0
TOTAL_SKIPPED=0

summary() {
    local rc="$1" line name secs status
    echo
    echo "==================== summary ===================="
    for line in "${SUMMARY[@]}"; do
        IFS='|' read -r name secs status <<<"$line"
        printf '  %-32s %-40s %5ss\n' "$name" "$status" "$secs"
    done
    if [ "$rc" -eq 0 ]; then
        echo "all checks passed"
    else
        echo "FAILED (exit $rc)"
    fi
    echo "tests: $TOTAL_PASSED passed, $TOTAL_FAILED failed, $TOTAL_SKIPPED skipped"
}

# junit_counts FILE -> "passed failed skipped" from a pytest junit XML report
junit_counts() {
    "$PY" - "$1" <<'PYEOF'
import sys
import xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("0 0 0"); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = s = 0
for su in suites:
    t += int(su.get("tests", 0)); f += int(su.get("failures", 0)) + int(su.get("errors", 0))
    s += int(su.get("skipped", 0))
print(t - f - s, f, s)
PYEOF
}

# step NAME KIND CMD...   KIND: pytest (junit counts), node (TAP counts) or plain
step() {
    local name="$1" kind="$2"; shift 2
    echo
    echo "==================== $name ===================="
    echo "\$ $*"
    local start=$SECONDS rc=0 counts="" p=0 f=0 s=0
    local log="$LOGS/${name//[^A-Za-z0-9]/_}.log"
    case "$kind" in
        pytest)
            local xml="$LOGS/${name//[^A-Za-z0-9]/_}.xml"
            "$@" --junitxml="$xml" -o junit_family=xunit2 || rc=$?
            read -r p f s <<<"$(junit_counts "$xml")"
            [ "$rc" -eq 5 ] && echo "test: $name collected no test: that counts as a failure" >&2
            counts="$p passed, $f failed"
            ;;
        node)
            "$@" 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
            # one report per node --test run (npm test runs two): add them up
            p=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$log" | awk '{n += $1} END {print n + 0}')
            f=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$log" | awk '{n += $1} END {print n + 0}')
            s=$(sed -n 's/^# skipped \([0-9][0-9]*\)$/\1/p' "$log" | awk '{n += $1} END {print n + 0}')
            p=${p:-0}; f=${f:-0}; s=${s:-0}
            [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && { echo "test: $name ran no test" >&2; rc=5; }
            counts="$p passed, $f failed"
            ;;
        *)
            "$@" || rc=$?
            ;;
    esac
    TOTAL_PASSED=$((TOTAL_PASSED + p)); TOTAL_FAILED=$((TOTAL_FAILED + f)); TOTAL_SKIPPED=$((TOTAL_SKIPPED + s))
    local status
    if [ "$rc" -eq 0 ]; then status="ok${counts:+ ($counts)}"; else status="FAILED rc=$rc${counts:+ ($counts)}"; fi
    SUMMARY+=("$name|$((SECONDS - start))|$status")
    if [ "$rc" -ne 0 ]; then
        summary "$rc"
        exit "$rc"
    fi
}

# Time limits keep a hung run from eating CI's budget: SIGINT first, so pytest runs its teardown and stops the
# servers it started, SIGKILL 30 s later.
limit() { timeout --signal=INT --kill-after=30 "$@"; }

step "ruff" plain ruff check gateway tests e2e benchmarks
step "mypy --strict gateway benchmarks" plain mypy --strict gateway benchmarks
step "pytest tests" pytest limit 900 "$PY" -m pytest tests -q -p no:cacheprovider "$@"
step "js: npm test" node limit 300 npm --prefix js test
step "pytest e2e" pytest limit 600 "$PY" -m pytest e2e -q -p no:cacheprovider "$@"
step "deps: lowest and newest" plain limit 900 bash scripts/deps-matrix.sh both -q -p no:cacheprovider
summary 0
