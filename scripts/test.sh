#!/usr/bin/env bash
# Install everything the tests need from this repository's files, then lint, type-check and test.
# Usage: bash scripts/test.sh [pytest args]      (.ci/run calls exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests drive for real: promtool + a Prometheus server (Debian package `prometheus`).
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "error: promtool not found: install Debian's 'prometheus' package (sudo apt-get install prometheus)" >&2
    exit 2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[train,monitor,mine,mlflow,dev]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
