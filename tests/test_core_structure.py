"""The public shape other code builds on: argument rules, column checks, exchange conventions,
structured journal reasons."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import leverage as lv
from leverage.conventions.base import Convention, Isolated
from leverage.journal import INVALID_INPUT, UNKNOWN_POSITION, replay
from leverage.portfolio import COLUMN_RULES as rebalance_rules

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (lv.Number(), "must be a finite number"),
        (lv.Number(gt=0), "must be > 0"),
        (lv.Number(ge=0), "must be >= 0"),
        (lv.Number(ge=0, lt=1), "must be >= 0 and < 1"),
        (lv.Number(gt=0, le=1), "must be > 0 and <= 1"),
        (lv.Number(gt=0, blank_means_none=True), "must be > 0 or blank"),
        (lv.Number(ge=0, lt=1, blank_means_none=True), "must be >= 0 and < 1, or blank"),
        (lv.Side(), "must be long or short (also buy/sell, 1/-1)"),
        (lv.Contract(), "must be linear or inverse"),
    ],
)
def test_messages_are_built_from_the_bounds(rule: lv.Kind, words: str) -> None:
    assert rule.describe() == words


def test_each_formula_argument_exposes_its_rule_and_the_signature_default() -> None:
    for fn in lv.CATALOGUE.values():
        if not hasattr(fn, "rules"):
            continue  # TIER takes a table, not a row of numbers
        params = inspect.signature(fn).parameters
        assert list(fn.rules) == list(params)
        for name, p in params.items():
            rule = fn.rules[name]
            assert rule.describe().startswith("must be ")
            if getattr(rule, "blank_means_none", False):
                assert np.isnan(rule.parse(name, None)[0])  # blank: there is none
            elif p.default is inspect.Parameter.empty and not rule.per_call:
                assert rule.parse(name, None)[1] == f"{name} is required"
            elif not rule.per_call:
                assert rule.default == p.default
    assert lv.liq_price.rules["mmr"].describe() == "must be >= 0 and < 1"
    assert lv.liq_price.rules["mmr"].default == lv.DEFAULT_MMR
    assert [n for n, r in lv.liq_price.rules.items() if r.per_call] == ["tiers", "exchange"]
    # the rule's text is the one a bad call reports
    with pytest.raises(lv.InputError) as exc:
        lv.liq_price("long", 1, 100, 10, mmr=2)
    assert str(exc.value) == "mmr " + lv.liq_price.rules["mmr"].describe() + ", got 2"


def test_a_default_is_declared_once_in_the_signature() -> None:
    with pytest.raises(TypeError, match="defaults belong in the signature"):

        @lv._args.formula(x=lv.Number(default=1.0))
        def twice(x: Any = 1.0) -> Any:
            return x

    @lv._args.formula(x=lv.Number(gt=0))
    def once(x: Any = 2.0) -> Any:  # no fail parameter: the wrapper passes none
        return x * 2

    assert once() == 4.0
    assert once("") == 4.0
    assert once.rows([1, -1]).errors.tolist() == [None, "x must be > 0, got -1"]


def test_check_columns_reads_records_and_mappings_by_the_formulas_rules() -> None:
    cols = lv.check_columns(
        [{"side": "buy", "qty": 2}, {"side": "up", "qty": -1}, {"qty": 0}],
        side=lv.liq_price.rules["side"], qty=lv.liq_price.rules["qty"],
    )
    assert cols["side"][0] == 1.0 and cols["qty"][0] == 2.0
    assert cols.ok.tolist() == [True, False, False]
    assert cols.errors.tolist() == [
        None,
        "side must be long or short (also buy/sell, 1/-1), got 'up'",  # first rule wins
        "side is required",
    ]
    assert cols.first_error == cols.errors[1]
    with pytest.raises(lv.InputError, match=r"side must be long or short.*\(at index 1\)"):
        cols.raise_first()
    assert rebalance_rules["target_liq_distance"].describe() == "must be >= 0 and < 1, or blank"
    one = lv.check_columns({"mmr": None}, mmr=lv.liq_price.rules["mmr"])
    assert float(one["mmr"]) == lv.DEFAULT_MMR and one.first_error is None


def test_exchanges_come_from_the_convention_registry() -> None:
    assert tuple(lv.CONVENTIONS) == lv.EXCHANGES
    assert lv.EXCHANGES[0] == "binance"  # the default convention lists first
    for name, convention in lv.CONVENTIONS.items():
        assert convention.name == name
        assert convention.source.startswith("https://") and convention.title


def test_a_fourth_convention_is_one_class_and_a_registry_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class AtBankruptcy(Convention):
        """A made-up exchange that liquidates at the bankruptcy price (mmr ignored)."""

        name = "bankrupt-ex"
        title = "test convention"
        source = "https://example.invalid/"

        def liq_price(self, position: Isolated, margin: Any) -> Any:
            return position.entry_price - position.side * margin / position.qty

        def margin_for_liq_price(self, position: Isolated, target: Any) -> Any:
            return position.side * (position.entry_price - target) * position.qty

    monkeypatch.setitem(lv.CONVENTIONS, "bankrupt-ex", AtBankruptcy())
    assert lv.liq_price("long", 1, 20_000, 400, exchange="bankrupt-ex") == 19_600.0
    assert lv.margin_for_liq_price("long", 1, 20_000, 19_600, exchange="bankrupt-ex") == 400.0


def test_journal_rows_carry_a_reason_code_beside_the_message() -> None:
    positions = [{"position_id": "A", "side": "long"}]
    events = [
        {"date": "2026-01-01", "position_id": "A", "event": "open", "price": 100, "qty": 1,
         "amount": 10},
        {"date": "2026-01-02", "position_id": "nope", "event": "open", "price": 100, "qty": 1,
         "amount": 10},
        {"date": "2026-01-03", "position_id": "A", "event": "add_margin", "price": -1,
         "amount": 5},
    ]
    r = replay(positions, events)
    assert r.problems[0] is None
    assert r.problems[1].reason == UNKNOWN_POSITION
    assert r.problems[1].message == r.columns["status"][1]
    assert r.columns["status"][1].startswith("position_id must name a row")
    assert (r.problems[2].reason, r.problems[2].argument) == (INVALID_INPUT, "price")
    assert r.columns["status"][2] == "price must be > 0, got -1"


def test_rules_and_models_do_not_import_each_other_both_ways() -> None:
    rules = (ROOT / "leverage" / "rules.py").read_text()
    assert not re.search(r"(?m)^\s*(from|import) \S*models", rules)
    assert "from .rules import" in (ROOT / "leverage" / "models.py").read_text()


def test_nothing_in_the_packages_points_outside_the_repository() -> None:
    for folder in ("leverage", "addin"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            assert "shared/" not in text and "SPEC" not in text, path


def test_no_private_name_is_imported_from_outside_leverage() -> None:
    for path in (ROOT / "addin").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"from leverage\._|import leverage\._", text), path


def test_per_row_results_keep_their_shape_and_types() -> None:
    assert isinstance(lv.notional(2, 50_000), float)
    out = lv.notional(np.array([1.0, 2.0]), 10.0)
    assert isinstance(out, np.ndarray) and out.tolist() == [10.0, 20.0]
