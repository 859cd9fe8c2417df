"""Installs the smart-turn model: the ``pipecat-ai`` 1.14.0 wheel, pinned by hash, **without** its dependencies.

``python -m voxline.processors.turns.install`` (``scripts/bootstrap.sh`` runs it). pip has no per-package
``--no-deps`` in an extra or a requirements file, so ``pip install 'voxline[local]'`` cannot do this by
itself; Pipecat's own dependency tree (aiohttp, pydantic, numba, openai, ...) is not wanted: voxline only
reads the ONNX file out of the wheel. ``--require-hashes`` makes the install reproducible: any other file
under that name is refused.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["REQUIREMENT", "main"]

REQUIREMENT = "pipecat-ai==1.14.0 --hash=sha256:0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory() as folder:
        requirements = Path(folder) / "smart-turn.txt"
        requirements.write_text(REQUIREMENT + "\n")
        command = [sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes", "-r", str(requirements)]
        return subprocess.call([*command, *args])


if __name__ == "__main__":
    sys.exit(main())
