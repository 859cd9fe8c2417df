#!/usr/bin/env bash
# Prepares a fresh Debian machine for voxline: system packages (only those missing), a .venv, an editable
# install and, for `dev`, the page's JavaScript checks (node_modules/ from package-lock.json). Used by ./start.sh (`bootstrap.sh app`) and ./test.sh (`bootstrap.sh dev`).
# Safe to run again: it skips whatever is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-app}"

need_apt=()
if [ "$mode" = "dev" ]; then
  # flite speaks the test audio, sox measures it, chromium runs the browser tests.
  command -v flite >/dev/null 2>&1 || need_apt+=(flite)
  command -v sox >/dev/null 2>&1 || need_apt+=(sox)
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  # The deployment tests (docs/deploy.md) run the real engines: nginx in front of two agents, Redis for sessions.
  # Debian starts neither as a service here (no init); the tests start their own on free ports.
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
  command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "bootstrap: installing ${need_apt[*]} with apt-get" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras="local,openai,server"
[ "$mode" = "dev" ] && extras="dev"
stamp=".venv/.voxline-$(cat pyproject.toml scripts/bootstrap.sh processors/turns/install.py | sha256sum | cut -c1-16)-$extras"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  .venv/bin/python -m pip install -q -e ".[$extras]" --config-settings editable_mode=strict
  # The smart-turn end-of-turn model: one wheel, pinned by hash, without its dependency tree (see the module).
  .venv/bin/python -m voxline.processors.turns.install -q
  rm -f .venv/.voxline-* && touch "$stamp"
else
  # Strict editable installs link each file: a re-link picks up modules added since the last install.
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . --config-settings editable_mode=strict
fi

if [ "$mode" = "dev" ]; then
  # tsc, eslint and their types for the browser page's checks (`nox -s lint`), exactly as package-lock.json pins
  # them. Node.js >= 20.19 with npm comes with the machine (Debian's own nodejs is too old for eslint 10).
  if ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: the page's checks need Node.js >= 20.19 and npm, and npm is not on PATH" >&2
    exit 1
  fi
  npm_stamp="node_modules/.voxline-$(sha256sum package-lock.json | cut -c1-16)"
  if [ ! -f "$npm_stamp" ]; then
    npm ci --no-audit --no-fund --loglevel=error
    touch "$npm_stamp"
  fi
fi
