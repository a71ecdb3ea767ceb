"""Journal replay, rule flags and portfolio rebalance, with the arithmetic shown."""

from __future__ import annotations

import math

import pytest

import leverage as lv
from leverage.journal import replay
from leverage.models import AdjustmentRule
from leverage.portfolio import rebalance
from leverage.rules import RULE_TEXT

POSITIONS = [
    {"position_id": "BTC-1", "side": "long", "contract": "linear", "mmr": 0.005},
    {"position_id": "ETH-1", "side": "short", "contract": "linear", "mmr": 0.005},
]


def dated(events: list[dict], start: int = 1) -> list[dict]:
    """``events`` one day apart from 2026-01-``start``, in row order."""
    return [{"date": f"2026-01-{start + k:02d}", **e} for k, e in enumerate(events)]


def _events() -> list[dict]:
    return dated([
        {"position_id": "BTC-1", "event": "open", "price": 60_000, "qty": 1, "amount": 6_000},
        {"position_id": "BTC-1", "event": "add_margin", "price": 57_000, "amount": 3_000},
        {"position_id": "BTC-1", "event": "funding", "amount": -5},
        {"position_id": "BTC-1", "event": "withdraw_margin", "price": 61_000, "amount": 20_000},
        {"position_id": "BTC-1", "event": "partial_close", "price": 62_000, "qty": 0.5},
        {"position_id": "NOPE", "event": "open", "price": 1, "qty": 1, "amount": 1},
        {"position_id": "ETH-1", "event": "add_margin", "price": 3_000, "amount": 10},
        {"position_id": "BTC-1", "event": "close", "price": 63_000},
    ])


def test_journal_replay_state_after_each_event() -> None:
    r = replay(POSITIONS, _events())
    open_, add, funding, bad_withdraw, partial, unknown, early, close = (
        r.row(i) for i in range(8)
    )
    # open: 1 BTC at 60,000 on 6,000 -> 10x; LP (6,000 - 60,000)/(0.005 - 1) = 54,271.36
    assert open_["margin"] == 6_000 and open_["margin_leverage"] == 10.0
    assert open_["liq_price"] == pytest.approx(54_271.3567839, rel=1e-9)
    # add 3,000 at 57,000: margin 9,000, upnl -3,000, equity 6,000
    assert add["margin"] == 9_000 and add["unrealized_pnl"] == -3_000
    assert add["margin_leverage"] == pytest.approx(57_000 / 9_000)
    assert add["effective_leverage"] == pytest.approx(57_000 / 6_000)
    # funding keeps the last mark and is paid from the isolated margin
    assert funding["funding"] == -5 and funding["margin"] == 8_995
    assert funding["mark_price"] == 57_000
    # withdrawing more than is posted is refused; the state is unchanged
    assert bad_withdraw["status"] == "amount must be <= the margin posted (8995), got 20000"
    assert bad_withdraw["margin"] == 8_995
    # partial close of half at 62,000: realized 0.5 * 2,000; half the margin released
    assert partial["realized_pnl"] == 1_000 and partial["margin"] == 4_497.5
    assert partial["qty_open"] == 0.5
    assert "position_id must name a row" in unknown["status"]
    assert math.isnan(unknown["margin"])
    assert early["status"] == "position 'ETH-1' has no open event: type its open row first"
    assert r.problems[6].reason == "no_open"
    # close at 63,000: the other half realizes 1,500 more
    assert close["realized_pnl"] == 2_500 and close["margin"] == 0 and close["qty_open"] == 0
    assert math.isnan(close["liq_price"])


def test_the_computations_fill_exactly_the_layout_s_computed_columns() -> None:
    """The column keys live once, in leverage.layout: the replay (in the sheet's order) and
    the rebalance write every computed column of their sheet and nothing else (the rebalance
    all but the sync's reconcile column)."""
    from leverage import layout

    assert list(replay(POSITIONS, _events()).columns) == layout.JOURNAL_EVENTS.keys("computed")
    row = {"position_id": "A", "side": "long", "qty": 1, "entry_price": 100, "mark_price": 100,
           "margin": 10, "target_leverage": 5, "mmr": 0.005}
    assert set(rebalance([row], 0, 0).columns) == {
        k for k in layout.REBALANCE_POSITIONS.keys("computed")
        if k not in layout.RECONCILE_COLUMNS}


def test_journal_figures_come_from_the_core() -> None:
    r = replay(POSITIONS, _events())
    row = r.row(1)
    assert row["liq_price"] == lv.liq_price("long", 1, 60_000, 9_000, 0.005)
    assert row["liq_distance"] == lv.liq_distance("long", 57_000, row["liq_price"])


def test_rule_flags_in_words() -> None:
    rule = AdjustmentRule(
        max_leverage=9,
        max_margin_per_event=2_000,
        max_adds_while_losing=0,
        add_only_below_pnl=-0.6,
        close_if_loss_beyond=0.5,
        min_liq_distance=0.2,
    )
    r = replay(POSITIONS, _events(), rule)
    # At the add, upnl / initial margin = -3,000 / 6,000 = -0.5:
    # above the -0.6 add trigger, at the 0.5 close level, first add at a loss (max 0).
    assert r.row(1)["rule_breaks"].split("; ") == [
        RULE_TEXT["max_leverage"],  # 57,000 / 6,000 = 9.5 > 9
        RULE_TEXT["max_margin_per_event"],
        RULE_TEXT["max_adds_while_losing"],
        RULE_TEXT["add_only_below_pnl"],
        RULE_TEXT["close_if_loss_beyond"],
        RULE_TEXT["min_liq_distance"],
    ]
    assert r.row(7)["rule_breaks"] == ""  # closed: nothing to break
    assert r.row(3)["rule_breaks"] == ""  # refused rows are not judged


def test_withdraw_rule() -> None:
    rule = AdjustmentRule(withdraw_only_above_pnl=0.3)
    events = dated([
        {"position_id": "BTC-1", "event": "open", "price": 60_000, "qty": 1, "amount": 6_000},
        {"position_id": "BTC-1", "event": "withdraw_margin", "price": 61_000, "amount": 500},
        {"position_id": "BTC-1", "event": "withdraw_margin", "price": 62_000, "amount": 500},
    ])
    r = replay(POSITIONS, events, rule)
    # 1,000 / 6,000 = 0.17 < 0.3: flagged; 2,000 / 6,000 = 0.33: fine
    assert r.row(1)["rule_breaks"] == RULE_TEXT["withdraw_only_above_pnl"]
    assert r.row(2)["rule_breaks"] == ""


def test_bad_rule_values_are_rejected() -> None:
    with pytest.raises(lv.InputError, match="max_leverage"):
        AdjustmentRule.build(max_leverage=-1)


def test_rebalance_moves_and_priority_allocation() -> None:
    rows = [
        {"side": "long", "qty": 1, "entry_price": 60_000, "mark_price": 58_000, "margin": 6_000,
         "target_leverage": 5, "priority": 2},
        {"side": "long", "qty": 1, "entry_price": 60_000, "mark_price": 58_000, "margin": 6_000,
         "target_liq_distance": 0.2, "priority": 1},
        {"side": "short", "qty": 1, "entry_price": 60_000, "mark_price": 50_000, "margin": 6_000,
         "target_leverage": 5, "priority": 3},
        {"side": "sideways", "qty": 1},
    ]
    r = rebalance(rows, wallet_balance=0, free_balance=5_000)
    m = r.columns["move"]
    # row 0: 58,000 / 5 - (6,000 - 2,000) = 7,600 to add
    assert m[0] == pytest.approx(7_600)
    # row 1: target LP 58,000 * 0.8 = 46,400; margin = 60,000 - 46,400 * 0.995 = 13,832
    assert m[1] == pytest.approx(13_832 - 6_000)
    # row 2: short in profit 10,000: 50,000 / 5 - 16,000 = -6,000 (withdraw)
    assert m[2] == pytest.approx(-6_000)
    assert r.columns["status"][3].startswith("side must be long or short")
    a = r.columns["allocated"]
    # money: 5,000 free + 6,000 withdrawn = 11,000; priority 1 gets 7,832, then 3,168 left
    assert a[2] == pytest.approx(-6_000)
    assert a[1] == pytest.approx(7_832)
    assert a[0] == pytest.approx(11_000 - 7_832)
    assert r.account["total_notional"] == pytest.approx(166_000)
    assert r.account["shortfall"] == pytest.approx(7_600 - (11_000 - 7_832))


def test_rebalance_volatility_typed_as_a_percent_is_in_check() -> None:
    rows = [{"side": "long", "qty": 1, "entry_price": 60_000, "mark_price": 58_000,
             "margin": 6_000, "target_leverage": 5}]
    r = rebalance(rows, 0, 0, volatility=60, horizon_days=7)
    assert "for 60 % type 0.6 or 60%" in r.columns["warnings"][0]
    assert rebalance(rows, 0, 0, volatility=0.6, horizon_days=7).columns["warnings"] == [""]


def test_rebalance_cross_shares_the_wallet() -> None:
    rows = [
        {"side": "short", "qty": 10, "entry_price": 3_000, "mark_price": 3_100,
         "margin_mode": "cross", "target_leverage": 3},
        {"side": "long", "qty": 2, "entry_price": 150, "mark_price": 160, "margin_mode": "cross",
         "target_leverage": 3},
    ]
    r = rebalance(rows, wallet_balance=8_000, free_balance=100_000)
    # cross equity 8,000 - 1,000 + 20 = 7,020 over 31,320 notional: leverage 4.4615 on both
    assert r.columns["leverage"][0] == pytest.approx(31_320 / 7_020)
    assert r.columns["leverage"][1] == pytest.approx(31_320 / 7_020)
    # the two shares add up to the account transfer 31,320 / 3 - 7,020 = 3,420
    assert sum(r.columns["move"]) == pytest.approx(3_420)
    assert r.columns["liq_price"][0] == lv.cross_liq_price(
        "short", 10, 3_000, 8_000, 20, lv.maint_margin(320)
    )


def test_journal_positions_are_validated_and_ids_match_like_a_spreadsheet() -> None:
    from leverage.journal import JournalPosition

    with pytest.raises(lv.InputError, match="side must be long or short"):
        JournalPosition.build(position_id="X", side="sideways")
    with pytest.raises(lv.InputError, match="contract must be linear or inverse"):
        JournalPosition.build(position_id="X", side="long", contract="spot")
    events = dated([
        {"position_id": "btc-1 ", "event": "OPEN", "price": 60_000, "qty": 1, "amount": 6_000},
    ])
    r = replay(POSITIONS, events)
    assert r.row(0)["status"] == "" and r.row(0)["margin"] == 6_000
