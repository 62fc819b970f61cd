"""Optional extras (onnx, ray) installed as pyproject.toml pins them, for the tests that use them: the two
commands of the README never need them."""

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def install(extra: str, module: str) -> None:
    """pip install the extra's pinned packages unless `module` already imports."""
    try:
        importlib.import_module(module)
    except ImportError:
        pinned = re.search(rf"^{extra} = (\[.*\])$", (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *json.loads(pinned.group(1))], check=True)
        importlib.invalidate_caches()
