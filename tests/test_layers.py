"""The packages of explorer/ are layers, and imports only point down: an attack never imports the evaluation that
runs it, as AutoAttack's attacks never import its orchestrator. Checked from the source, every import statement,
at module level or inside a function."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "explorer"
# Lower numbers are lower layers; a module may import its own layer and those below it.
LAYERS = {"files": 0, "provenance": 0, "runtime": 0, "data": 1, "models": 2, "attacks": 3, "training": 3,
          "latent": 4, "evaluation": 5, "plots": 6, "web": 6, "cli": 7}


def layer_of(module: str) -> int:
    """The layer of explorer.X...; a name of the package itself (explorer.__version__) is its lowest."""
    return LAYERS.get(module.split(".")[1], 0)


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "explorer" else [f"explorer.{a.name}" for a in node.names]
            found |= {name for name in names if name.startswith("explorer.")}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("explorer.")}
    return found


def test_every_module_of_the_package_has_a_layer():
    tops = {path.stem if path.is_file() else path.name for path in PACKAGE.iterdir()
            if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()}
    assert tops == set(LAYERS)


def test_imports_only_point_down():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = "explorer." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        if module == "explorer.__init__":
            continue
        upward += [f"{module} imports {name}" for name in sorted(imports_of(path)) if layer_of(name) > layer_of(module)]
    assert upward == []
