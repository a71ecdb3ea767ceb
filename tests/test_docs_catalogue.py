"""The catalogue (leverage.CATALOGUE) drives every list of functions: docs/FORMULAS.md has a
section for each, and the README's function table a row for each, with its arguments as the
function takes them (``[...]`` for an optional one)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import leverage as lv

ROOT = Path(__file__).resolve().parent.parent


def _arguments(fn: object) -> list[str]:
    params = inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
    return [p.name if p.default is inspect.Parameter.empty else f"[{p.name}]"
            for p in params if p.kind is not p.KEYWORD_ONLY]


def test_formulas_md_has_a_section_for_every_function() -> None:
    text = (ROOT / "docs" / "FORMULAS.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## ([A-Z_]+)\s*$", text, re.M))
    assert sorted(set(lv.CATALOGUE) - sections) == []


def test_readme_table_lists_every_function_with_its_arguments() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|\s*$", text, re.M))
    assert sorted(set(lv.CATALOGUE) - set(rows)) == [], "functions missing from the README"
    assert sorted(set(rows) - set(lv.CATALOGUE)) == [], "README rows for no function"
    for name, fn in lv.CATALOGUE.items():
        listed = re.sub(r"\(.*\)", "", rows[name]).strip()  # a note in brackets is not one
        assert [a.strip() for a in listed.split(",")] == _arguments(fn), name
