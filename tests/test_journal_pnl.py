"""Journal money: margin currency, fees, net PnL after fees and funding, and the R multiple."""

from __future__ import annotations

import math

import pytest

import leverage as lv
from leverage.journal import INVALID_INPUT, JournalPosition, replay


def ev(day: int, event: str, price: float | None = None, qty: float | None = None,
       amount: float | None = None, fee: object = None, pid: str = "L") -> dict:
    return {"date": f"2026-02-{day:02d}", "position_id": pid, "event": event, "price": price,
            "qty": qty, "amount": amount, "fee": fee}


def test_fees_funding_and_net_pnl_of_a_linear_long_with_a_stop() -> None:
    positions = [{"position_id": "L", "side": "long", "mmr": 0.004, "stop_price": 58_000,
                  "margin_currency": "USDT"}]
    events = [
        # taker fee 0.05 % of notional (fee = notional × rate): 2 × 60,000 × 0.0005 = 60
        ev(1, "open", 60_000, 2, 12_000, fee=60),
        ev(2, "funding", amount=-12),  # paid
        ev(3, "add_margin", 59_000, amount=1_000),  # blank fee: 0
        ev(4, "partial_close", 62_000, 0.5, fee=15.5),  # 0.5 × 62,000 × 0.0005
        ev(5, "funding", 62_500, amount=4),  # received
        ev(6, "close", 63_000, fee=47.25),  # 1.5 × 63,000 × 0.0005
    ]
    r = replay(positions, events)
    c = r.columns
    assert c["status"] == [""] * 6
    assert c["currency"] == ["USDT"] * 6
    assert c["fees"] == [60, 60, 60, 75.5, 75.5, 122.75]
    assert c["funding"] == [0, -12, -12, -12, -8, -8]
    # realized: 0.5 × 2,000 = 1,000 at the partial close, then 1.5 × 3,000 = 4,500 more
    assert c["realized_pnl"] == [0, 0, 0, 1_000, 1_000, 5_500]
    assert c["net_pnl"] == pytest.approx([-60, -72, -72, 912.5, 916.5, 5_369.25])
    # initial risk: the opened 2 BTC from 60,000 to the 58,000 stop = 4,000
    assert c["r_multiple"] == pytest.approx([v / 4_000 for v in c["net_pnl"]])
    # fees are the wallet's; funding is paid from the isolated margin, as the exchanges book
    # it (Binance lists it in the position-margin history as FUNDING_FEE)
    assert c["margin"][:3] == [12_000, 11_988, 12_988]


def test_inverse_positions_count_in_coin_and_risk_is_the_coin_pnl_at_the_stop() -> None:
    positions = [{"position_id": "I", "side": "short", "contract": "inverse",
                  "stop_price": 50_000}]
    events = [ev(1, "open", 40_000, 10_000, 0.05, fee=0.0001, pid="I"),
              ev(2, "close", 32_000, fee=0.0002, pid="I")]
    r = replay(positions, events)
    assert r.columns["currency"] == ["coin", "coin"]
    # short 10,000 USD of contracts: PnL = 10,000 × (1/32,000 − 1/40,000) = 0.0625 BTC
    assert r.columns["realized_pnl"][1] == pytest.approx(0.0625)
    net = 0.0625 - 0.0003
    assert r.columns["net_pnl"][1] == pytest.approx(net)
    # risk: 10,000 × |1/50,000 − 1/40,000| = 0.05 BTC
    assert r.columns["r_multiple"][1] == pytest.approx(net / 0.05)
    assert r.columns["r_multiple"][1] == pytest.approx(
        net / abs(lv.unrealized_pnl("short", 10_000, 40_000, 50_000, "inverse")))


def test_margin_currency_defaults_by_contract_and_keeps_what_was_typed() -> None:
    assert JournalPosition.build(position_id="a", side="long").currency == "quote"
    assert JournalPosition.build(position_id="a", side="long", contract="inverse").currency \
        == "coin"
    assert JournalPosition.build(position_id="a", side="long", margin_currency=" BTC ",
                                 contract="inverse").currency == "BTC"
    assert JournalPosition.build(position_id="a", side="long", margin_currency=None).currency \
        == "quote"


def test_without_a_stop_there_is_no_r_multiple() -> None:
    r = replay([{"position_id": "L", "side": "long"}],
               [ev(1, "open", 100, 1, 10), ev(2, "close", 110)])
    assert all(math.isnan(v) for v in r.columns["r_multiple"])
    assert r.columns["net_pnl"] == [0, 10]


def test_a_stop_at_the_entry_leaves_r_blank_not_infinite() -> None:
    r = replay([{"position_id": "L", "side": "long", "stop_price": 100}],
               [ev(1, "open", 100, 1, 10), ev(2, "close", 110)])
    assert all(math.isnan(v) for v in r.columns["r_multiple"])


@pytest.mark.parametrize(("fee", "message"), [
    (-1, "fee must be >= 0, got -1"),
    ("ten", "fee must be a number, got 'ten'"),
    (math.inf, "fee must be a finite number, got inf"),
])
def test_a_bad_fee_refuses_the_row(fee: object, message: str) -> None:
    r = replay([{"position_id": "L", "side": "long"}],
               [ev(1, "open", 100, 1, 10), ev(2, "add_margin", 100, amount=5, fee=fee)])
    assert r.columns["status"][1] == message
    assert (r.problems[1].reason, r.problems[1].argument) == (INVALID_INPUT, "fee")
    assert r.columns["margin"][1] == 10 and r.columns["fees"][1] == 0


def test_a_bad_stop_is_refused_naming_it() -> None:
    with pytest.raises(lv.InputError, match="stop_price must be > 0, got -5"):
        JournalPosition.build(position_id="a", side="long", stop_price=-5)
    assert JournalPosition.build(position_id="a", side="long", stop_price="").stop_price is None


def test_a_refused_row_shows_the_fees_so_far_unchanged() -> None:
    r = replay([{"position_id": "L", "side": "long"}],
               [ev(1, "open", 100, 1, 10, fee=1),
                ev(2, "withdraw_margin", 100, amount=50, fee=2)])
    assert r.columns["fees"] == [1, 1] and r.columns["net_pnl"] == [-1, -1]
