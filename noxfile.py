"""Developer sessions. ./test.sh runs `lint`, `typecheck` and `tests` in the project's .venv (--no-venv).

`lint` also checks the browser page's JavaScript: tsc (JSDoc types, `// @ts-check`) and eslint, both pinned in
package-lock.json and installed into node_modules/ by `scripts/bootstrap.sh dev` (npm ci). The page's Node unit
tests (tests/js/) run inside `tests`, from tests/test_page_js.py.
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
# The page's modules, its AudioWorklet module (another global scope) and its Node tests: one tsc run each.
TS_PROJECTS = ["tsconfig.json", "tsconfig.worklet.json", "tests/js/tsconfig.json"]


def _node_tool(session: nox.Session, name: str) -> str:
    tool = ROOT / "node_modules" / ".bin" / name
    if not tool.exists():
        session.error(f"{name} is not installed: run scripts/bootstrap.sh dev (it runs npm ci)")
    return str(tool)


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    tsc = _node_tool(session, "tsc")
    for project in TS_PROJECTS:
        session.run(tsc, "-p", project, external=True)
    session.run(_node_tool(session, "eslint"), "--max-warnings", "0", ".", external=True)


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
