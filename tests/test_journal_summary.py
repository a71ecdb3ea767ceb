"""The journal's review: per position and per margin currency (the Summary sheet)."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from leverage import layout
from leverage.journal import SUMMARY_COLUMNS, TOTALS_COLUMNS, replay, summary
from leverage.models import AdjustmentRule

POSITIONS = [
    {"position_id": "W", "symbol": "BTCUSDT", "side": "long", "stop_price": 95,
     "margin_currency": "USDT"},
    {"position_id": "L", "symbol": "ETHUSDT", "side": "short", "stop_price": 105,
     "margin_currency": "usdt"},  # the same currency, typed in another case
    {"position_id": "E", "symbol": "SOLUSDT", "side": "long", "margin_currency": "USDT"},
    {"position_id": "O", "symbol": "XRPUSDT", "side": "long", "margin_currency": "USDT"},
    {"position_id": "C", "symbol": "BTCUSD", "side": "long", "contract": "inverse",
     "stop_price": 50_000},
    {"position_id": "N", "symbol": "DOGEUSDT", "side": "long"},  # typed, never opened
]


def ev(day: int, pid: str, event: str, price: float | None = None, qty: float | None = None,
       amount: float | None = None, fee: float | None = None) -> dict:
    return {"date": datetime(2026, 3, day), "position_id": pid, "event": event, "price": price,
            "qty": qty, "amount": amount, "fee": fee}


EVENTS = [
    ev(1, "W", "open", 100, 2, 40, fee=1),
    ev(1, "L", "open", 100, 1, 20),
    ev(2, "O", "open", 10, 10, 20),
    ev(2, "E", "open", 50, 1, 10),
    ev(3, "C", "open", 40_000, 4_000, 0.02),
    ev(4, "W", "add_margin", 96, amount=5),  # a loss-side add (leverage peaks here)
    ev(9, "W", "close", 110, fee=1),  # +20 − 2 fees = 18: 18 / (2 × 5) = 1.8 R
    ev(5, "L", "close", 103),  # −3: −3 / 5 = −0.6 R
    ev(5, "E", "close", 50),  # 0: even, no stop
    ev(6, "C", "close", 50_000),  # +4,000 × (1/40,000 − 1/50,000) = 0.02 BTC
    ev(7, "O", "funding", amount=-0.5),
    ev(7, "N", "funding", amount=-0.5),  # no open: refused, still counted as its row
]


def _summary():
    rule = AdjustmentRule(max_leverage=5)
    return summary(POSITIONS, EVENTS, replay(POSITIONS, EVENTS, rule))


def test_one_row_per_position_with_the_layout_s_keys() -> None:
    s = _summary()
    assert [list(p) for p in s.positions] == [list(SUMMARY_COLUMNS)] * len(POSITIONS)
    assert [list(t) for t in s.totals] == [list(TOTALS_COLUMNS)] * len(s.totals)
    assert layout.SUMMARY_TOTALS.title == layout.JOURNAL_SUMMARY.title == "Summary"
    # the totals table starts one blank column right of the positions table
    assert layout.SUMMARY_TOTALS.letter("currency") == "P"
    assert layout.JOURNAL_SUMMARY.letter("equity_after") == "N"
    titles = [s.title for s in layout.TEMPLATES["journal"]]
    assert titles.index("Summary") == titles.index("Events") + 1


def test_per_position_figures() -> None:
    by = {p["position_id"]: p for p in _summary().positions}
    w = by["W"]
    assert (w["symbol"], w["currency"], w["side"], w["state"]) == ("BTCUSDT", "USDT", "long",
                                                                   "closed")
    assert (w["opened"], w["closed"], w["events"]) == (datetime(2026, 3, 1),
                                                     datetime(2026, 3, 9), 3)
    assert w["net_pnl"] == 18 and w["r_multiple"] == pytest.approx(1.8)
    # the add at 96: notional 192 over equity 45 − 8 = 37
    assert w["largest_leverage"] == pytest.approx(192 / 37)
    assert w["rule_breaks"] == 1 and w["outcome"] == "win"
    assert (by["L"]["outcome"], by["L"]["r_multiple"]) == ("loss", pytest.approx(-0.6))
    assert by["E"]["outcome"] == "even" and math.isnan(by["E"]["r_multiple"])
    o = by["O"]
    assert (o["state"], o["outcome"], o["closed"], o["net_pnl"]) == ("open", "open", None, -0.5)
    assert math.isnan(o["equity_after"])
    n = by["N"]
    assert (n["state"], n["outcome"], n["opened"], n["events"]) == ("", "", None, 1)
    assert math.isnan(n["net_pnl"]) and math.isnan(n["largest_leverage"])
    assert by["C"]["currency"] == "coin" and by["C"]["net_pnl"] == pytest.approx(0.02)


def test_the_equity_curve_adds_closed_positions_in_close_date_order_per_currency() -> None:
    by = {p["position_id"]: p for p in _summary().positions}
    # USDT closes: L and E on the 5th (positions order: L then E), W on the 9th
    assert by["L"]["equity_after"] == -3
    assert by["E"]["equity_after"] == -3
    assert by["W"]["equity_after"] == 15
    # coin is its own curve: never added to USDT
    assert by["C"]["equity_after"] == pytest.approx(0.02)


def test_totals_per_currency() -> None:
    s = _summary()
    usdt, coin, quote = s.totals
    assert usdt == {"currency": "USDT", "closed": 3, "wins": 1, "liquidations": 0,
                    "win_rate": 1 / 3,
                    "expectancy": 5.0, "expectancy_r": pytest.approx(0.6),
                    "total_net_pnl": 15.0}
    assert (coin["currency"], coin["closed"], coin["wins"], coin["win_rate"]) == ("coin", 1, 1,
                                                                                  1.0)
    assert coin["expectancy_r"] == pytest.approx(0.02 / (4_000 * (1 / 40_000 - 1 / 50_000)))
    # a currency with no closed position: nothing to average, nothing won
    assert (quote["currency"], quote["closed"], quote["wins"], quote["total_net_pnl"]) == (
        "quote", 0, 0, 0.0)
    assert all(math.isnan(quote[k]) for k in ("win_rate", "expectancy", "expectancy_r"))


def test_refused_rows_do_not_count_as_applied() -> None:
    events = [ev(1, "W", "open", 100, 2, 40), ev(2, "W", "close", -1)]
    s = summary(POSITIONS[:1], events, replay(POSITIONS[:1], events))
    (w,) = s.positions
    assert (w["state"], w["closed"], w["events"], w["outcome"]) == ("open", None, 2, "open")
