"""Running the code of a Markdown document: its ```python blocks, in order, as one module (docs that are tested)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def run_blocks(doc: Path, module: str, *, at_least: int) -> dict[str, Any]:
    """The namespace left by ``doc``'s Python blocks run as the module ``module``."""
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.DOTALL)
    assert len(blocks) >= at_least, f"{doc.name} lost its code"
    namespace: dict[str, Any] = {"__name__": module}
    exec(compile("\n".join(blocks), str(doc), "exec"), namespace)
    return namespace


def checks_in(namespace: dict[str, Any], module: str) -> list[str]:
    """The ``check_*`` functions the document defines (not the ones it imports)."""
    return sorted(
        name
        for name, value in namespace.items()
        if name.startswith("check_") and getattr(value, "__module__", None) == module
    )
