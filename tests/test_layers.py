"""Imports point down the documented layer order (docs/layers.rst), never up or sideways."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "deeplake_sdk"
LINE = re.compile(r"^ {3,4}(\d+)  (\S.*)$")


def documented_layers() -> dict[str, int]:
    """Unit -> layer number, from the code block of docs/layers.rst."""
    text = (ROOT / "docs" / "layers.rst").read_text()
    block = text.split(".. code-block:: text", 1)[1].split("\n\n", 2)[1]
    layers: dict[str, int] = {}
    for line in block.splitlines():
        match = LINE.match(line)
        assert match, f"unparsable layer line {line!r}"
        for unit in match.group(2).split():
            assert unit not in layers, f"{unit} listed twice"
            layers[unit] = int(match.group(1))
    return layers


def unit_of(module: str) -> str:
    """``deeplake_sdk.fs.core`` -> ``fs``; ``deeplake_sdk`` -> ``deeplake_sdk``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of the package in ``path``, wherever it is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith(PACKAGE.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == PACKAGE.name:  # from deeplake_sdk import x: module x, or the package
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.append((node.lineno, sub if is_module(sub) else node.module))
            elif node.module.startswith(PACKAGE.name + "."):
                found.append((node.lineno, node.module))
    return found


def test_every_unit_is_documented():
    layers = documented_layers()
    units = {unit_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert units - set(layers) == set(), "add these to the layer table of docs/layers.rst"


def test_imports_point_down_the_layers():
    layers = documented_layers()
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = unit_of(module_name(path))
        for line, target in imports_of(path):
            there = unit_of(target)
            if there != here and layers[there] >= layers[here]:
                rel = path.relative_to(ROOT)
                wrong.append(f"{rel}:{line}: {here} (layer {layers[here]}) imports {target}")
    assert wrong == []


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from deeplake_sdk.api import DeeplakeApi\n")
    assert imports_of(bad) == [(2, "deeplake_sdk.api")]
    layers = documented_layers()
    assert layers[unit_of("deeplake_sdk.api")] > layers[unit_of("deeplake_sdk.http_errors.x")]
