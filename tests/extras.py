"""Optional extras (onnx, ray) installed as pyproject.toml pins them, for the tests that use them: the two
commands of the README never need them."""

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def pinned(extra: str) -> list[str]:
    """The requirements the installed explorer declares for `extra`, read from its metadata (pyproject.toml as pip
    installed it), so comments and formatting in the TOML never matter."""
    requirements = [Requirement(line) for line in importlib.metadata.requires("explorer") or []]
    found = [f"{r.name}{r.specifier}" for r in requirements if r.marker and r.marker.evaluate({"extra": extra})]
    if not found:
        raise LookupError(f"the installed explorer declares no extra {extra!r}: pip install -e . again")
    return found


def install(extra: str, module: str) -> None:
    """pip install the extra's pinned packages unless `module` already imports."""
    try:
        importlib.import_module(module)
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *pinned(extra)], check=True)
        importlib.invalidate_caches()
