#!/usr/bin/env bash
# Run the unit and contract suites (pytest tests) on the lowest and on the newest versions that pyproject.toml
# allows of the runtime dependencies: starlette, uvicorn, h11, wsproto.
#
#   scripts/deps-matrix.sh                 both passes: lowest, then newest
#   scripts/deps-matrix.sh lowest|newest   one pass
#   scripts/deps-matrix.sh both -x -k shutdown     arguments after the pass name go to pytest
#
# Each pass makes a throwaway venv (removed at exit) and installs the dependencies into it, not the project: the
# tests import the tree through PYTHONPATH. "lowest" pins each runtime dependency to its lower bound (">=X" becomes
# "==X", with pip --constraint); "newest" takes the newest release each range admits (pip -U). The test tools
# (pytest, hypothesis, redis, uvicorn[standard]'s httptools and websockets) are the newest allowed in both.
# The pip cache makes a second run fast. Exit status: non-zero if either pass fails.
#
# Environment: PYTHON  the interpreter for the venvs (default: the one .venv was made from, else python3)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PASSES=(lowest newest)
case "${1:-both}" in
    lowest|newest) PASSES=("$1"); shift ;;
    both) [ $# -gt 0 ] && shift ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
RUNTIME=(starlette uvicorn h11 wsproto)

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gateway-deps.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# requirements.txt (runtime + the tools tests/ needs) and lowest.txt (each runtime dependency at its lower bound),
# both read from pyproject.toml.
"$PYTHON" - "$WORK" "${RUNTIME[@]}" <<'PYEOF' || { echo "deps-matrix: cannot read pyproject.toml" >&2; exit 1; }
import re, sys, tomllib
work, runtime = sys.argv[1], sys.argv[2:]
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
name = lambda req: re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower()
# the suite's optional parts too: metrics and tracing (otel), the queue suites (celery, arq), psutil (bench)
suite = extras["test"] + extras["redis"] + extras["otel"] + extras["celery"] + extras["arq"]
tools = [r for r in suite + [r for r in extras["bench"] if name(r) == "psutil"]
         if name(r) not in ("playwright", "ruff", "mypy")]
standard = [r for r in extras["bench"] if name(r) == "uvicorn"]  # uvicorn[standard]: httptools, websockets
lowest = []
for req in project["dependencies"]:
    if name(req) in runtime:
        low = re.search(r">=\s*([0-9][^,;\s]*)", req)
        if low is None:
            sys.exit(f"{req}: no lower bound")
        lowest.append(f"{name(req)}=={low.group(1)}")
open(f"{work}/requirements.txt", "w").write("\n".join(project["dependencies"] + tools + standard) + "\n")
open(f"{work}/lowest.txt", "w").write("\n".join(lowest) + "\n")
PYEOF

RESULTS=()
run_pass() {
    local pass="$1"; shift
    local venv="$WORK/$pass" start=$SECONDS rc=0
    echo "==================== deps-matrix: $pass ===================="
    "$PYTHON" -m venv "$venv" || return 1
    local pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$WORK/requirements.txt")
    if [ "$pass" = lowest ]; then
        sed 's/^/  constraint: /' "$WORK/lowest.txt"
        pip+=(--constraint "$WORK/lowest.txt")
    else
        pip+=(-U)
    fi
    "${pip[@]}" || { RESULTS+=("$pass: pip install failed"); return 1; }
    local versions
    versions="$("$venv/bin/python" -c 'import sys; from importlib.metadata import version
print(", ".join(f"{n} {version(n)}" for n in sys.argv[1:]))' "${RUNTIME[@]}" websockets httptools)"
    echo "  installed: $versions"
    PYTHONPATH="$ROOT" timeout --signal=INT --kill-after=30 600 \
        "$venv/bin/python" -m pytest tests -q -p no:cacheprovider "$@" || rc=$?
    RESULTS+=("$pass ($versions): $([ $rc -eq 0 ] && echo ok || echo "FAILED rc=$rc"), $((SECONDS - start)) s")
    return $rc
}

STATUS=0
for pass in "${PASSES[@]}"; do
    run_pass "$pass" "$@" || STATUS=1
done
echo
echo "==================== deps-matrix summary ===================="
printf '  %s\n' "${RESULTS[@]}"
exit $STATUS
