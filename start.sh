#!/usr/bin/env bash
# Sets up voxline and runs the voice agent on http://127.0.0.1:8000 (see README for keys and options).
# Arguments go to `voxline serve` (e.g. ./start.sh --port 9000 --host 0.0.0.0).
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh app
exec .venv/bin/voxline serve "$@"
