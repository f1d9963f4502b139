#!/usr/bin/env bash
# Install what the project needs on this machine, and nothing that is already there.
#
#   scripts/setup.sh            everything the test suite needs: system packages (chromium, nginx, redis-server),
#                               the .venv with the test and redis extras, and node_modules in js/ and e2e/
#   scripts/setup.sh --python   only the .venv (what `scripts/demo.sh` needs; no apt, no npm)
#
# Idempotent: a second run checks and returns in about a second. Quiet when all goes well; when a step fails,
# its full output is printed and the script exits non-zero.
#
# Environment:
#   PYTHON        the interpreter that creates .venv (default: python3.11, else python3; must be >= 3.11)
#   GATEWAY_SETUP_FORCE=1   reinstall the .venv packages and node_modules even if they look up to date
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WANT_SYSTEM=1
WANT_NODE=1
EXTRAS="test,redis,bench,otel,celery,arq"   # otel: /metrics and the trace tests; bench: the benchmark smoke test; celery, arq: the progress suites
for arg in "$@"; do
    case "$arg" in
        --python) WANT_SYSTEM=0; WANT_NODE=0; EXTRAS="redis,otel" ;;
        --no-system) WANT_SYSTEM=0 ;;
        -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup: unknown option: $arg" >&2; exit 2 ;;
    esac
done

SYSTEM_PACKAGES=(chromium nginx redis-server)
VENV="$ROOT/.venv"
STAMP="$VENV/.gateway-setup"
LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/gateway-setup.XXXXXX")"
trap 'rm -rf "$LOG_DIR"' EXIT

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# quietly NAME CMD...: run CMD with its output in a log; on failure print the log and stop.
quietly() {
    local name="$1"; shift
    local log="$LOG_DIR/${name//[^A-Za-z0-9_.-]/_}.log"
    if ! "$@" >"$log" 2>&1; then
        printf 'setup: error: %s failed: %s\n' "$name" "$*" >&2
        sed 's/^/  | /' "$log" >&2
        exit 1
    fi
}

# ---------------------------------------------------------------- system packages (apt)
have_deb() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

playwright_browser_present() {
    # A browser that `playwright install` put in its cache makes Debian's chromium unnecessary (laptops).
    local cache="${PLAYWRIGHT_BROWSERS_PATH:-$HOME/.cache/ms-playwright}"
    compgen -G "$cache/chromium*" >/dev/null 2>&1
}

missing_system_packages() {
    local pkg
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        case "$pkg" in
            chromium)
                command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
                    || playwright_browser_present || have_deb chromium || echo chromium ;;
            nginx) command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || have_deb nginx || echo nginx ;;
            redis-server) command -v redis-server >/dev/null 2>&1 || have_deb redis-server || echo redis-server ;;
        esac
    done
}

install_system_packages() {
    local missing
    mapfile -t missing < <(missing_system_packages)
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 \
        || die "missing ${missing[*]}, and there is no apt-get here: install them with your package manager"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            die "missing ${missing[*]}: run as root, or: sudo apt-get install ${missing[*]}"
        fi
    fi
    # With their recommended packages, as on the machines the suite was written on (fonts for screenshots).
    say "installing ${missing[*]} (apt)"
    # Installing nginx or redis-server must not start system-wide daemons on ports 80/6379: the tests start their
    # own on free ports. policy-rc.d answering 101 is Debian's documented way to say so; ours is removed after.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e "$policy" ]; then
        "${sudo[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy" && own_policy=1
    fi
    local rc=0
    (
        export DEBIAN_FRONTEND=noninteractive
        quietly apt-get-update "${sudo[@]}" apt-get update -q
        quietly apt-get-install "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q "${missing[@]}"
    ) || rc=$?
    [ "$own_policy" -eq 1 ] && "${sudo[@]}" rm -f "$policy"
    [ "$rc" -eq 0 ] || exit "$rc"
}

# ---------------------------------------------------------------- python venv
pick_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    local cand
    for cand in python3.11 python3.12 python3.13 python3; do
        if command -v "$cand" >/dev/null 2>&1 \
            && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$cand"; return
        fi
    done
    die "no Python >= 3.11 found (set PYTHON=/path/to/python3.11)"
}

venv_fingerprint() {
    # Reinstall when pyproject.toml, the interpreter or the extras change (a demo-only venv lacks the test ones).
    { cat pyproject.toml; "$VENV/bin/python" -c 'import sys; print(sys.version)'; echo "$EXTRAS"; } \
        | sha256sum | cut -d' ' -f1
}

setup_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        local py; py="$(pick_python)"
        say "creating .venv with $("$py" -c 'import sys; print(sys.executable)')"
        if ! "$py" -m venv "$VENV" >"$LOG_DIR/venv.log" 2>&1; then
            # Debian's own python3 ships venv's pip bootstrap separately (python3-venv).
            local where; where="$(command -v "$py" || true)"
            if [ "$WANT_SYSTEM" -eq 1 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 \
                && [[ "$where" == /usr/bin/python3* ]]; then
                say "installing python3-venv (apt)"
                rm -rf "$VENV"
                quietly apt-get-update apt-get update -q
                quietly apt-get-install-venv env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
                quietly venv "$py" -m venv "$VENV"
            else
                rm -rf "$VENV"
                sed 's/^/  | /' "$LOG_DIR/venv.log" >&2
                die "$py -m venv failed (on Debian: apt-get install python3-venv)"
            fi
        fi
    fi
    local want; want="$(venv_fingerprint)"
    # A venv set up with more extras serves a run that needs fewer (the demo after the tests).
    if [ "$EXTRAS" = "redis,otel" ] && [ -f "$STAMP.full" ] && "$VENV/bin/python" -c 'import gateway' >/dev/null 2>&1; then
        return 0
    fi
    if [ "${GATEWAY_SETUP_FORCE:-0}" != 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
        && "$VENV/bin/python" -c 'import gateway' >/dev/null 2>&1; then
        return 0
    fi
    say "installing the project into .venv (pip install -e '.[$EXTRAS]')"
    quietly pip-install "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[$EXTRAS]"
    echo "$want" >"$STAMP"
    if [ "$EXTRAS" != "redis,otel" ]; then echo "$want" >"$STAMP.full"; else rm -f "$STAMP.full"; fi
}

# ---------------------------------------------------------------- node_modules
setup_node_dir() {
    local dir="$1"
    [ -f "$dir/package.json" ] || return 0
    command -v npm >/dev/null 2>&1 || die "npm is needed for $dir (install Node.js 20 or newer)"
    # npm ci writes node_modules/.package-lock.json; when it is older than the lock, the lock has moved on.
    local marker="$dir/node_modules/.package-lock.json"
    if [ "${GATEWAY_SETUP_FORCE:-0}" != 1 ] && [ -f "$marker" ] \
        && { [ ! -f "$dir/package-lock.json" ] || [ ! "$dir/package-lock.json" -nt "$marker" ]; }; then
        return 0
    fi
    if [ -f "$dir/package-lock.json" ]; then
        say "npm ci in $dir"
        quietly "npm-ci-${dir//\//_}" npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    else
        say "npm install in $dir (it has no package-lock.json to install from)"
        quietly "npm-install-${dir//\//_}" npm install --prefix "$dir" --no-package-lock --no-audit --no-fund \
            --loglevel=error
    fi
}

[ "$WANT_SYSTEM" -eq 1 ] && install_system_packages
setup_venv
if [ "$WANT_NODE" -eq 1 ]; then
    setup_node_dir js
    setup_node_dir e2e
fi
exit 0
