"""The layering of docs/architecture.md: a lower layer never imports a higher one, not even
inside a function (a lazy import is still a dependency), and train/ knows nothing of tune/
(the training loop loads a tuning hook by name)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "hone"

#: docs/architecture.md's layers, by the first part of a module's path under hone/.
LAYERS = {
    "errors": 0,
    "config": 0,
    "ids": 0,
    "store": 1,
    "blobs": 1,
    "tracking": 2,
    "data": 2,
    "train": 3,
    "tune": 3,
    "registry": 2,
    "predictions": 2,
    "export": 3,
    "models": 3,
    "serve": 3,
    "loop": 3,
    "server": 4,
    "cli": 5,
    "api": 5,
    "__init__": 5,
    "__main__": 5,
}


def _layer(parts: tuple[str, ...]) -> int:
    return LAYERS[parts[0] if parts else "__init__"]


def _imports(path: Path) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = tuple(name.split("."))
            if parts[0] != "hone":
                continue
            if len(parts) > 1 and parts[1] in LAYERS:
                found.add(parts[1:])
            elif isinstance(node, ast.Import) or len(parts) > 1:
                # `import hone` and `from hone import start_run`: the public API, layer 5.
                found.add(("__init__",))
    return found


def test_no_module_imports_a_higher_layer() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        mine = _layer(parts)
        for imported in _imports(path):
            if _layer(imported) > mine:
                wrong.append(f"{'/'.join(parts)} (layer {mine}) imports hone.{'.'.join(imported)}")
    assert wrong == []


def test_training_does_not_import_tuning() -> None:
    for path in sorted((SRC / "train").rglob("*.py")):
        assert not any(i[0] == "tune" for i in _imports(path)), path
