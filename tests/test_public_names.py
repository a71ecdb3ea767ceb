"""The templates are written with the library's public names only: a private module
(``leverage._args``) may change without notice, so nothing outside ``leverage`` imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import leverage as lv

ROOT = Path(__file__).resolve().parent.parent


def _leverage_imports(path: Path) -> set[str]:
    """``module`` and ``module.name`` of each thing ``path`` imports from the library."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.split(".")[0] == "leverage"}


def test_templates_import_no_private_leverage_name() -> None:
    private = {
        f"{path.name}: {name}"
        for path in sorted((ROOT / "templates").glob("*.py"))
        for name in _leverage_imports(path)
        if any(part.startswith("_") for part in name.split(".")[1:])
    }
    assert private == set()


def test_what_the_templates_need_is_public() -> None:
    for name in ("fmt", "PERCENT_LIKE", "VOLATILITY_PERCENT_LIKE"):
        assert name in lv.__all__ and hasattr(lv, name), name
