#!/usr/bin/env bash
# Sets up voxline and runs the voice agent on http://127.0.0.1:8000 (see README for keys and options).
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh app
exec .venv/bin/python examples/chat_loop.py "$@"
