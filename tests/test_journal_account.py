"""The journal as the account (SPEC, third edition): the ``increase`` event, funding paid from
the isolated margin, and liquidation as a state."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leverage as lv
from leverage._args import fmt
from leverage.journal import (
    AFTER_LIQUIDATION,
    BEYOND_LIQUIDATION,
    LIQUIDATED,
    replay,
    summary,
)
from leverage.models import AdjustmentRule

T0 = datetime(2026, 1, 1)


def ev(day: float, event: str, price: float | None = None, qty: float | None = None,
       amount: float | None = None, fee: float | None = None, pid: str = "P") -> dict:
    return {"date": T0 + timedelta(days=day), "position_id": pid, "event": event,
            "price": price, "qty": qty, "amount": amount, "fee": fee}


def long_(**kw: object) -> list[dict]:
    return [{"position_id": "P", "side": "long", "mmr": 0.005, **kw}]


def test_increase_averages_the_entry_and_adds_its_margin() -> None:
    # the case: 1 ETH at 3,000 plus 1 ETH at 3,200 is 2 ETH at 3,100
    r = replay(long_(), [ev(0, "open", 3_000, 1, 300, fee=1.2), ev(1, "increase", 3_200, 1, 320,
                                                                      fee=1.28)])
    c = r.columns
    assert c["status"] == ["", ""]
    assert c["qty_open"][1] == 2 and c["margin"][1] == 620
    assert c["fees"][1] == pytest.approx(2.48)
    assert c["realized_pnl"][1] == 0
    # the entry is the core's AVG_ENTRY: upnl at the mark 3,200 is 2 × (3,200 − 3,100)
    assert c["unrealized_pnl"][1] == pytest.approx(200)
    assert c["liq_price"][1] == pytest.approx(lv.liq_price("long", 2, 3_100, 620, 0.005))


def test_an_inverse_increase_averages_harmonically() -> None:
    pos = [{"position_id": "P", "side": "long", "contract": "inverse", "mmr": 0.005}]
    r = replay(pos, [ev(0, "open", 20_000, 10_000, 0.1), ev(1, "increase", 18_000, 10_000, 0.1)])
    entry = lv.avg_entry(10_000, 20_000, 10_000, 18_000, "inverse")
    # 20,000 USD of contracts cost 10,000/20,000 + 10,000/18,000 BTC: 18,947.37 a BTC
    assert entry == pytest.approx(20_000 / (0.5 + 10_000 / 18_000))
    assert r.columns["liq_price"][1] == pytest.approx(
        lv.liq_price("long", 20_000, entry, 0.2, 0.005, contract="inverse"))


def test_a_blank_increase_margin_follows_the_opening_leverage() -> None:
    # opened at 10x (60,000 notional on 6,000): 0.5 BTC more at 62,000 brings 3,100
    r = replay(long_(), [ev(0, "open", 60_000, 1, 6_000), ev(1, "increase", 62_000, 0.5)])
    assert r.columns["margin"][1] == pytest.approx(9_100)


def test_an_increase_counts_as_an_add_for_the_rules() -> None:
    rule = AdjustmentRule(max_adds_while_losing=0, max_margin_per_event=500)
    r = replay(long_(), [ev(0, "open", 3_000, 1, 600), ev(1, "increase", 2_800, 1, 560)], rule)
    assert r.columns["rule_breaks"][1] == (
        "margin added above max per event; too many adds to a losing position")


def test_an_increase_that_would_be_liquidated_at_its_price_is_refused() -> None:
    # 100 BTC more at 59,000 on 10 USDT: entry 59,009.90 on 6,010, LP 59,245.9 > 59,000
    r = replay(long_(), [ev(0, "open", 60_000, 1, 6_000), ev(1, "increase", 59_000, 100, 10)])
    assert r.problems[1].reason == BEYOND_LIQUIDATION
    assert r.columns["status"][1].startswith("increase would put the liquidation price (")
    assert r.columns["status"][1].endswith("at or beyond the price 59000: the exchange refuses it")
    assert r.columns["qty_open"][1] == 1 and not r.applied[1]


def test_a_withdrawal_beyond_the_liquidation_price_is_refused() -> None:
    r = replay(long_(), [ev(0, "open", 60_000, 1, 6_000), ev(1, "withdraw_margin", 55_000,
                                                              amount=5_500)])
    assert r.problems[1].reason == BEYOND_LIQUIDATION
    assert r.columns["margin"][1] == 6_000


def _sample_with(price_row: int, price: float) -> tuple[list, list]:
    from leverage_templates.samples import sample_journal

    positions, events, _ = sample_journal()
    events = [dict(e) for e in events]
    events[price_row] = {**events[price_row], "price": price}
    return positions, events


def test_an_event_priced_beyond_the_liquidation_price_liquidates_the_position() -> None:
    # the sample's BTC-L1: 0.5 BTC at 60,000 on 3,000 (mmr 0.4 %), 3.05 funding paid from the
    # margin: LP = (2,996.95 − 30,000) / (0.5 × (0.004 − 1)) = 54,222.99. The dip's add_margin
    # typed at 54,100 comes too late: the position was liquidated there.
    positions, events = _sample_with(3, 54_100)
    assert (events[3]["position_id"], events[3]["event"]) == ("BTC-L1", "add_margin")
    r = replay(positions, events)
    c = r.columns
    liq_before = (2_996.95 - 30_000) / (0.5 * (0.004 - 1))
    assert c["liq_price"][2] == pytest.approx(liq_before)
    assert r.problems[3].reason == LIQUIDATED and r.applied[3]
    assert c["status"][3] == (f"liquidated at 54100: at or beyond the liquidation price "
                              f"{fmt(c['liq_price'][2])}; margin 2996.95 lost")
    assert c["qty_open"][3] == 0 and c["margin"][3] == 0
    # margin lost, the fees and funding as booked
    assert c["realized_pnl"][3] == pytest.approx(-2_996.95)
    assert c["net_pnl"][3] == pytest.approx(-2_996.95 - 3.05 - 12.0)
    later = [i for i, e in enumerate(events) if e["position_id"] == "BTC-L1" and i > 3]
    assert later
    for i in later:
        assert r.problems[i].reason == AFTER_LIQUIDATION
        assert c["status"][i] == ("the position was liquidated on 2024-03-05 09:00 at 54100: no "
                                  "event after it applies")
    s = summary(positions, events, r)
    btc = s.positions[0]
    assert (btc["state"], btc["outcome"]) == ("liquidated", "liquidated")
    assert btc["closed"] == datetime(2024, 3, 5, 9)
    usdt = s.totals[0]
    assert (usdt["closed"], usdt["wins"], usdt["liquidations"]) == (2, 0, 1)


def test_a_short_is_liquidated_when_the_price_rises_to_its_liquidation_price() -> None:
    pos = [{"position_id": "P", "side": "short", "mmr": 0.005}]
    liq = lv.liq_price("short", 1, 3_000, 300, 0.005)
    r = replay(pos, [ev(0, "open", 3_000, 1, 300), ev(1, "close", liq)])
    assert r.problems[1].reason == LIQUIDATED
    assert r.columns["realized_pnl"][1] == -300
    r = replay(pos, [ev(0, "open", 3_000, 1, 300), ev(1, "close", liq - 0.01)])
    assert r.problems[1] is None
    assert r.columns["realized_pnl"][1] == pytest.approx(-(liq - 0.01 - 3_000))


def test_funding_is_paid_from_the_margin_and_can_liquidate() -> None:
    # 1 BTC at 60,000 on 600: LP 59,698.49; 100 funding paid at 59,700 lifts it past the mark
    r = replay(long_(), [ev(0, "open", 60_000, 1, 600), ev(1, "funding", 59_800, amount=-50),
                         ev(2, "funding", 59_800, amount=-100)])
    c = r.columns
    assert c["margin"][1] == 550 and c["status"][1] == ""
    assert r.problems[2].reason == LIQUIDATED
    assert c["realized_pnl"][2] == -450 and c["funding"][2] == -150


def test_a_margin_below_maintenance_at_entry_is_a_typing_mistake_not_a_liquidation() -> None:
    # mmr 0.5 (50 %): every row says "liquidated at once"; adding margin still clears it
    pos = [{"position_id": "P", "side": "long", "mmr": 0.5}]
    r = replay(pos, [ev(0, "open", 60_000, 1, 6_000), ev(1, "add_margin", 60_000,
                                                         amount=30_000)])
    assert r.problems[0].reason == "liquidated_at_once" and r.columns["status"][1] == ""


fills = st.lists(
    st.tuples(st.sampled_from(["increase", "add_margin", "funding"]),
              st.floats(0.9, 1.1), st.floats(0.01, 2), st.floats(-20, 200)),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(fills)
def test_replayed_state_is_the_running_bookkeeping(moves: list) -> None:
    """Size, entry and margin after any sequence of increases, margin adds and funding are
    the plain bookkeeping: sizes add, the entry is the volume-weighted average, the margin is
    what was posted plus funding received."""
    events = [ev(0, "open", 3_000, 1, 1_500)]
    qty, cost, margin = 1.0, 3_000.0, 1_500.0
    for day, (kind, move, size, cash) in enumerate(moves, start=1):
        price = 3_000 * move
        if kind == "increase":
            events.append(ev(day, kind, price, size, size * price / 2))
            qty, cost, margin = qty + size, cost + size * price, margin + size * price / 2
        elif kind == "add_margin":
            events.append(ev(day, kind, price, amount=abs(cash) + 1))
            margin += abs(cash) + 1
        else:
            events.append(ev(day, kind, price, amount=cash))
            margin += cash
    r = replay(long_(), events)
    assert all(p is None for p in r.problems)
    c = r.columns
    assert c["qty_open"][-1] == pytest.approx(qty)
    assert c["margin"][-1] == pytest.approx(margin)
    mark = c["mark_price"][-1]
    assert c["unrealized_pnl"][-1] == pytest.approx(qty * mark - cost, abs=1e-6)
