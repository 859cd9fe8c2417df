"""Developer sessions. ./test.sh runs `lint`, `typecheck` and `tests` in the project's .venv (--no-venv).

`nox -s bench` runs the benchmarks and prints one JSON object per line; docs/performance.md records them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "none"

ROOT = Path(__file__).parent
BENCHES = sorted((ROOT / "tests" / "bench").glob("bench_*.py"))


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(venv_backend="none")
def typecheck(session: nox.Session) -> None:
    session.run("mypy", "-p", "voxline")


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    session.run("pytest", "-q", "-ra", *session.posargs)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    for bench_file in BENCHES:
        session.run(sys.executable, str(bench_file), *session.posargs)
