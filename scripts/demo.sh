#!/usr/bin/env bash
# Serve the demo on http://127.0.0.1:${PORT:-8000}. Extra arguments go to `gateway demo` (see --help).
# Needs only the project's .venv, which it creates or updates first: no browser, no nginx, no redis.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --python
exec .venv/bin/python -m gateway demo --host 127.0.0.1 --port "${PORT:-8000}" "$@"
