#!/usr/bin/env bash
# Sets up everything the tests need (apt and pip packages) and runs lint, type checks and every test.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh dev
export PATH="$PWD/.venv/bin:$PATH"
nox --no-venv -s lint typecheck tests "$@"
