"""The test engine's lean path gives the ``formulas`` model's values.

Every workbook test computes through :func:`xl_engine.compute`, which compiles each distinct
formula once instead of building the engine's whole model: a wrong value here would make
those tests compare the core with something that is not the engine. So a small add-in
journal and a native rebalance (array formulas, ROW() with and without argument, other
sheets, text that looks like a reference) are computed both ways, cell for cell.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import test_templates as T
import xl_engine
from xl_engine import _compute_lean, _split_references, compute

from leverage import layout as L


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def _compare(path: Path, functions: dict[str, Any] | None) -> int:
    """Both ways, cell for cell; returns how many formula cells the lean path computed."""
    model = compute(path, functions, engine="model")
    key = xl_engine.functions_key(functions)
    xl_engine._COMPILED.pop(key, None)  # compiled here, not by an earlier test
    with xl_engine.registered(functions):
        lean = _compute_lean(path, key)  # the lean path itself, never the model it falls back to
    differ = {k: (lean.get(k, "<none>"), model.get(k, "<none>")) for k in set(lean) | set(model)
              if not _same(lean.get(k), model.get(k))}
    assert not differ, sorted(differ.items())[:10]
    return sum(1 for c in xl_engine._Book(path, key).formulas)


def test_lean_path_gives_the_models_values_on_an_addin_journal(tmp_path: Path) -> None:
    # SOL-1's rows (margin moves, partial closes) and the inverse position: the add-in's
    # column calls are array formulas; the journal's helpers use ROW() both ways
    events = T.TYPED_EVENTS[:1] + [e for e in T.TYPED_EVENTS if e["position_id"] == "INV-9"][:1]
    ids = {e["position_id"] for e in events}
    positions = [p for p in T.TYPED_POSITIONS if p["position_id"] in ids]
    path = T.templates.build_journal(tmp_path / "j.xlsx", mode="udf", positions=positions,
                                     events=events, rule_values=T.templates.sample_journal()[2],
                                     rows=len(events) + 1)
    path = T._events_only(path)
    book = openpyxl.load_workbook(path)
    sheet = book[L.JOURNAL_EVENTS.title]
    assert sheet.array_formulae, "the add-in journal's column calls are array formulas"
    texts = [c.value for row in sheet.iter_rows() for c in row if c.data_type == "f"
             and isinstance(c.value, str)]
    assert any("ROW()" in t for t in texts) and any("ROW($" in t for t in texts)
    assert _compare(path, T._udfs()) > 100


def test_lean_path_gives_the_models_values_on_a_native_rebalance(tmp_path: Path) -> None:
    # a position whose rate the native workbook looks up in its Tiers sheet
    _, wallet, free = T.templates.sample_portfolio()
    tiered = next(p for p in T.FIGURE_PORTFOLIO if p["position_id"].startswith("T"))
    path = T.templates.build_rebalance(tmp_path / "r.xlsx", mode="native",
                                       positions=[tiered], wallet_balance=wallet,
                                       free_balance=free, rows=1, **T.MARKET)
    assert _compare(path, None) > 50


@pytest.mark.parametrize(("formula", "references"), [
    ('=IF(A1="B2 is text",$C$3,Positions!D4:D9)', ["A1", "$C$3", "Positions!D4:D9"]),
    ("='My Sheet'!A1+LOG10(B2)*SUM(AB12:AC13)", ["'My Sheet'!A1", "B2", "AB12:AC13"]),
    ('=""""&A1&"""="&LEN("A1")', ["A1"]),  # quotes inside a string literal
    ("=1E+300+ROW()-TIER(A2)", ["A2"]),  # exponents and function names are not references
])
def test_references_are_found_outside_string_literals(formula: str, references: list[str]
                                                      ) -> None:
    texts, refs = _split_references(formula)
    assert refs == references
    assert "".join(t + r for t, r in zip(texts, [*refs, ""], strict=True)) == formula
