"""The imported journal reproduces the exchange's positions: isolated margin from the
exchange's wallet field, scale-ins as ``increase``, a position open before the start date
rolled back, flips, liquidations, cross beside isolated; then parity and reconcile.

Real ccxt against the loopback servers (``leverage_exchange.recorded_exchange``). The
exchange's numbers are the exchanges' own: answers quoted in ccxt 4.5's sources, or worked
by hand from the exchange's published formula in the comment beside them.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("ccxt")

from fake_exchange import (
    API_KEY,
    API_SECRET,
    DAY_MS,
    Account,
    BybitAccount,
    FakeBinanceFutures,
    FakeBybit,
    bracket,
    bybit_instrument,
    bybit_position,
    bybit_risk_limits,
    bybit_ticker,
    coinm_market,
    income,
    journal_tables,
    margin_line,
    market,
    position,
    trade,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import leverage as lv
import leverage_exchange as xb
import leverage_sheets as sb
from leverage import journal

CREDS = {"apiKey": API_KEY, "secret": API_SECRET, "password": "test-passphrase"}
H = 3_600_000


def client(fake: Any, name: str = "binanceusdm") -> Any:
    return xb.connect(name, CREDS, api_url=fake.url, timeout_ms=30_000, rate_limit_ms=1)


def imported(ex: Any, since_ms: int, book: Any = None) -> tuple[Any, xb.Rows, list, list]:
    """Fetch, build the rows (continuing what ``book`` holds), return them with the journal
    they make (the book's rows plus the new ones)."""
    got = xb.fetch_account(ex, since_ms)
    old_p, old_e = journal_tables(book) if book is not None else ([], [])
    rows = xb.build_rows(got, old_p, old_e)
    events = [{k: v for k, v in e.items() if not k.startswith("_")} for e in rows.events]
    new = [{k: v for k, v in p.items() if not k.startswith("_")} for p in rows.positions]
    return got, rows, [*old_p, *new], [*old_e, *events]


def replay_rows(positions: list[dict], events: list[dict]) -> journal.JournalResult:
    return journal.replay(positions, [{k: e.get(k) for k in journal.INPUT_COLUMNS}
                                      for e in events])


# --------------------------------------------------------------------------------------------
# Three answers quoted in ccxt 4.5's sources: with the isolated WALLET the core gives the
# exchange's own liquidation price to the cent; with ccxt's ``collateral`` (it adds the uPnL)
# it is 1.96 %, 0.80 % and 0.15 % off.


def test_binance_usdm_hedge_mode_answer_quoted_in_ccxt() -> None:
    # python/ccxt/binance.py, fetch_positions_risk, "For Hedge position mode" (ccxt 4.5.90):
    # BTCUSDT LONG 20 at 6,563.665, isolatedMargin 15,517.54150468, unRealizedProfit
    # 2,316.8342356, liquidationPrice 5,930.78, leverage 10 (the answer has no
    # isolatedWallet: Binance's wallet is isolatedMargin − unRealizedProfit = 13,200.70726908)
    row = {"entryPrice": "6563.66500", "marginType": "isolated", "isAutoAddMargin": "false",
           "isolatedMargin": "15517.54150468", "leverage": "10", "liquidationPrice": "5930.78",
           "markPrice": "6679.50671178", "maxNotionalValue": "20000000",
           "positionSide": "LONG", "positionAmt": "20.000", "symbol": "BTCUSDT",
           "unRealizedProfit": "2316.83423560", "updateTime": 1625474304765,
           # what the v3 endpoint adds: the notional at the mark (20 × 6,679.50671178)
           "notional": "133590.13423560"}
    acc = Account(markets=[market("BTCUSDT", "BTC")], brackets=[bracket("BTCUSDT")],
                  marks={"BTCUSDT": "6679.50671178"}, positions=[row],
                  symbol_config=[{"symbol": "BTCUSDT", "marginType": "ISOLATED",
                                  "isAutoAddMargin": "false", "leverage": 10,
                                  "maxNotionalValue": "20000000"}])
    with FakeBinanceFutures(acc) as fake:
        got = xb.fetch_open(client(fake))
        rows = xb.build_rows(got)
        (line,) = xb.reconcile(got, rows.open_positions)
        p = got.positions[0]
    assert line.position.margin == pytest.approx(13200.70726908)
    # Binance USDⓈ-M isolated, bracket 2 of BTCUSDT (notional 131,273 USDT: MMR 0.5 %,
    # cum 50): (13,200.70726908 + 50 − 20 × 6,563.665) / (20 × 0.005 − 20) = 5,930.78
    assert round(line.ours, 2) == line.theirs == 5930.78 and line.cause == "match"
    off = lv.liq_price("long", 20, 6563.665, p["collateral"], tiers=got.tiers["BTC/USDT:USDT"])
    assert (off - 5930.78) / 5930.78 == pytest.approx(-0.0196, abs=5e-5)


def test_binance_coinm_answer_quoted_in_ccxt() -> None:
    # python/ccxt/binance.py, parse_position_risk, "coinm" (ccxt 4.5.90): BTCUSD_PERP 2
    # contracts (100 USD each) at 37,643.10000021, isolatedMargin 0.00274471, isolatedWallet
    # 0.00268058, liquidationPrice 25,119.97445760, leverage 2
    row = {"symbol": "BTCUSD_PERP", "positionAmt": "2", "entryPrice": "37643.10000021",
           "markPrice": "38103.05510455", "unRealizedProfit": "0.00006413",
           "liquidationPrice": "25119.97445760", "leverage": "2", "maxQty": "1500",
           "marginType": "isolated", "isolatedMargin": "0.00274471",
           "isAutoAddMargin": "false", "positionSide": "BOTH", "notionalValue": "0.00524892",
           "isolatedWallet": "0.00268058"}
    acc = Account(markets=[coinm_market("BTCUSD_PERP", "BTC")], positions=[row],
                  brackets=[{"symbol": "BTCUSD_PERP", "notionalCoef": 1.0, "brackets": [
                      {"bracket": 1, "initialLeverage": 125, "qtyCap": 5, "qtyFloor": 0,
                       "maintMarginRatio": 0.004, "cum": 0.0}]}],
                  marks={"BTCUSD_PERP": "38103.05510455"},
                  symbol_config=[{"symbol": "BTCUSD_PERP", "marginType": "ISOLATED",
                                  "leverage": 2}], wallet_balance="0.1")
    with FakeBinanceFutures(acc, api="dapi") as fake:
        got = xb.fetch_open(client(fake, "binancecoinm"))
        rows = xb.build_rows(got)
        (line,) = xb.reconcile(got, rows.open_positions)
        p = got.positions[0]
    assert line.position.margin == 0.00268058 and line.position.qty == 200
    # COIN-M isolated long, bracket 1 (MMR 0.4 %, cum 0):
    # 200 × (1 + 0.004) / (0.00268058 + 0 + 200 / 37,643.10000021) = 25,119.9744576
    assert line.ours == pytest.approx(25119.97445760, abs=1e-6) and line.cause == "match"
    off = lv.liq_price("long", 200, 37643.10000021, p["collateral"], 0.004, contract="inverse")
    assert (off - line.theirs) / line.theirs == pytest.approx(-0.0080, abs=5e-5)


def test_bybit_answer_quoted_in_ccxt() -> None:
    # python/ccxt/bybit.py, parse_position, "linear swap" (ccxt 4.5.90): ETHUSDT Buy 0.10 at
    # 1,198.45, tradeMode 1 (isolated), leverage 4.2, positionBalance 28.58931118 (initial
    # margin plus the fee to close), liqPrice 919.10, bustPrice 913.15, unrealisedPnl 0.083
    row = {"category": "linear", "positionIdx": 0, "riskId": "11", "symbol": "ETHUSDT",
           "side": "Buy", "size": "0.10", "positionValue": "119.845", "entryPrice": "1198.45",
           "tradeMode": 1, "autoAddMargin": 0, "leverage": "4.2",
           "positionBalance": "28.58931118", "liqPrice": "919.10", "bustPrice": "913.15",
           "takeProfit": "0.00", "stopLoss": "0.00", "trailingStop": "0.00",
           "unrealisedPnl": "0.083", "createdTime": "1669097244192",
           "updatedTime": "1669413126190", "tpSlMode": "Full", "riskLimitValue": "900000",
           "activePrice": "0.00", "markPrice": "1199.28"}
    acc = BybitAccount(instruments=[bybit_instrument("ETHUSDT", "ETH")], positions=[row],
                       risk_limits=bybit_risk_limits("linear", "ETHUSDT"),
                       tickers=[bybit_ticker("linear", "ETHUSDT", "1199.28")])
    with FakeBybit(acc) as fake:
        got = xb.fetch_open(client(fake, "bybit"))
        rows = xb.build_rows(got)
        (line,) = xb.reconcile(got, rows.open_positions)
        p = got.positions[0]
    # no positionIM in this answer: ccxt's initialMargin, size × entry / leverage
    assert line.position.margin == pytest.approx(0.1 * 1198.45 / 4.2)
    # Bybit isolated (help centre: LP = entry − (IM − MM) / qty, MM at entry, 0.5 %):
    # 1,198.45 − (28.5345238 − 0.599225) / 0.1 = 919.10
    assert round(line.ours, 2) == line.theirs == 919.10 and line.cause == "match"
    off = lv.liq_price("long", 0.1, 1198.45, p["collateral"], 0.005, exchange="bybit")
    assert (off - 919.10) / 919.10 == pytest.approx(-0.0015, abs=5e-5)


# --------------------------------------------------------------------------------------------
# A Binance USDⓈ-M account that scales in and out, flips, is liquidated, holds a position
# from before the start date and mixes isolated and cross. Every figure by Binance's rules,
# worked by hand (bracket 1 of every symbol: MMR 0.4 %, cum 0; the cross wallet 1,000).
#
# BTCUSDT isolated 10x, one-way. Before the start: bought 0.02 at 58,000 (TRADE margin 116).
#   start+1h funding −0.40 (from the isolated margin)
#   start+1d buy 0.01 at 61,000: an increase; TRADE margin 61 (610 / 10);
#            entry (0.02 × 58,000 + 0.01 × 61,000) / 0.03 = 59,000
#   start+2d margin added 30
#   start+3d sell 0.015 at 63,000; TRADE released 103.30 (half of the 206.60 posted)
#   now: 0.015 at 59,000, wallet 103.30; liquidation
#        (103.30 − 0.015 × 59,000) / (0.015 × 0.004 − 0.015) = 52,322.62
# ETHUSDT isolated 20x: sell 1 at 3,000 (TRADE 150), then buy 1.5 at 2,900: closes the short
#   (TRADE 150 released) and opens 0.5 long (TRADE 72.50 = 1,450 / 20);
#   liquidation (72.50 − 0.5 × 2,900) / (0.5 × 0.004 − 0.5) = 2,766.06
# SOLUSDT isolated 10x: buy 10 at 150 (TRADE 150), buy 10 at 140 (TRADE 140): 20 at 145,
#   wallet 290, liquidation (290 − 2,900) / (20 × 0.004 − 20) = 131.02; liquidated: the
#   liquidation order fills at the bankruptcy price 145 − 290 / 20 = 130.50
# LINKUSDT cross 5x short 100 at 15, the only cross position:
#   (1,000 + 100 × 15) / (100 × 0.004 + 100) = 24.90


def scaling_account(now: int) -> tuple[Account, int]:
    start = now - 20 * DAY_MS
    syms = (("BTCUSDT", "BTC", "ISOLATED", 10), ("ETHUSDT", "ETH", "ISOLATED", 20),
            ("SOLUSDT", "SOL", "ISOLATED", 10), ("LINKUSDT", "LINK", "CROSSED", 5))
    acc = Account(markets=[market(s, b) for s, b, _, _ in syms],
                  brackets=[bracket(s) for s, *_ in syms],
                  marks={"BTCUSDT": "62000.00", "ETHUSDT": "2950.00", "SOLUSDT": "125.00",
                         "LINKUSDT": "14.50"},
                  symbol_config=[{"symbol": s, "marginType": m, "isAutoAddMargin": "false",
                                  "leverage": lev, "maxNotionalValue": "1000000"}
                                 for s, _, m, lev in syms])
    acc.trades = [
        trade(1, 1, "BTCUSDT", "BUY", "0.020", "58000.00", start - 5 * DAY_MS),
        trade(2, 2, "BTCUSDT", "BUY", "0.010", "61000.00", start + DAY_MS),
        trade(3, 3, "BTCUSDT", "SELL", "0.015", "63000.00", start + 3 * DAY_MS, pnl="60.0"),
        trade(4, 4, "ETHUSDT", "SELL", "1.000", "3000.00", start + DAY_MS),
        trade(5, 5, "ETHUSDT", "BUY", "1.500", "2900.00", start + 2 * DAY_MS, pnl="100.0"),
        trade(6, 6, "SOLUSDT", "BUY", "10", "150.00", start + DAY_MS),
        trade(7, 7, "SOLUSDT", "BUY", "10", "140.00", start + DAY_MS + H),
        trade(8, 8, "SOLUSDT", "SELL", "20", "130.50", start + 2 * DAY_MS, pnl="-290.0"),
        trade(9, 9, "LINKUSDT", "SELL", "100", "15.00", start + DAY_MS),
    ]
    acc.force_orders = [{"orderId": 8, "symbol": "SOLUSDT", "status": "FILLED",
                         "clientOrderId": "autoclose-8", "price": "130.50",
                         "avgPrice": "130.50", "origQty": "20", "executedQty": "20",
                         "cumQuote": "2610", "timeInForce": "IOC", "type": "LIMIT",
                         "reduceOnly": False, "closePosition": False, "side": "SELL",
                         "positionSide": "BOTH", "stopPrice": "0",
                         "workingType": "CONTRACT_PRICE", "origType": "LIMIT",
                         "time": start + 2 * DAY_MS, "updateTime": start + 2 * DAY_MS}]
    acc.income = [income(1, "BTCUSDT", "FUNDING_FEE", "-0.40000000", start + H)] + [
        income(100 + i, tr["symbol"], "COMMISSION", "-" + tr["commission"], tr["time"])
        for i, tr in enumerate(acc.trades)]
    acc.margin_history = [
        margin_line("BTCUSDT", 1, "TRADE", "116.00000000", start - 5 * DAY_MS),
        margin_line("BTCUSDT", 1, "TRADE", "61.00000000", start + DAY_MS),
        margin_line("BTCUSDT", 1, "USER_ADJUST", "30.00000000", start + 2 * DAY_MS),
        margin_line("BTCUSDT", 2, "TRADE", "103.30000000", start + 3 * DAY_MS),
        margin_line("ETHUSDT", 1, "TRADE", "150.00000000", start + DAY_MS),
        margin_line("ETHUSDT", 2, "TRADE", "150.00000000", start + 2 * DAY_MS),
        margin_line("ETHUSDT", 1, "TRADE", "72.50000000", start + 2 * DAY_MS),
        margin_line("SOLUSDT", 1, "TRADE", "150.00000000", start + DAY_MS),
        margin_line("SOLUSDT", 1, "TRADE", "140.00000000", start + DAY_MS + H),
    ]
    acc.positions = [
        position("BTCUSDT", "BOTH", "0.015", "59000.00", "62000.00", "52322.62", "103.30", 10),
        position("ETHUSDT", "BOTH", "0.500", "2900.00", "2950.00", "2766.06", "72.50", 20),
        position("LINKUSDT", "BOTH", "-100", "15.00", "14.50", "24.90", "0", 5),
    ]
    return acc, start


@pytest.fixture
def scaling() -> Iterator[tuple[FakeBinanceFutures, int]]:
    now = xb.client._ccxt().Exchange.milliseconds() // 1000 * 1000
    acc, start = scaling_account(now)
    with FakeBinanceFutures(acc) as fake:
        yield fake, start
    assert not fake.server_errors


def test_scale_in_out_flip_liquidation_and_a_position_from_before_the_start(scaling) -> None:
    fake, start = scaling
    got, rows, positions, events = imported(client(fake), start)
    by = {}
    for e in events:
        by.setdefault(e["position_id"], []).append(
            (e["event"], e["price"], e["qty"], e["amount"]))
    since = xb.convert._when(start)
    assert by == {
        # rolled back from now: 103.30 + 103.30 released − 30 added − 61 with the increase
        # + 0.40 funding = 116; entry (0.03 × 59,000 − 0.01 × 61,000) / 0.02 = 58,000
        f"BTCUSDT-L-since{since:%Y%m%dT%H%M}": [
            ("open", pytest.approx(58000), pytest.approx(0.02), pytest.approx(116)),
            ("funding", None, None, -0.4),
            ("increase", 61000, 0.01, 61),
            ("add_margin", 61000, None, 30),
            ("partial_close", 63000, 0.015, 103.3)],
        "ETHUSDT-S-4": [("open", 3000, 1, 150), ("close", 2900, None, None)],
        "ETHUSDT-L-5r": [("open", 2900, 0.5, 72.5)],
        "SOLUSDT-L-6": [("open", 150, 10, 150), ("increase", 140, 10, 140),
                        ("close", 130.5, None, None)],
        "LINKUSDT-S-9": [("open", 15, 100, 300)],  # cross: the initial margin, 1,500 / 5
    }
    result = replay_rows(positions, events)
    status = {events[i]["position_id"]: s for i, s in enumerate(result.columns["status"]) if s}
    # SOL's liquidation fill is beyond the journal's liquidation price 131.02: liquidated
    assert list(status) == ["SOLUSDT-L-6"] and status["SOLUSDT-L-6"].startswith(
        "liquidated at 130.5")
    lines = xb.parity.parity(positions, events, rows.open_positions)
    assert [(x.position_id, x.gaps) for x in lines] == [
        (f"BTCUSDT-L-since{since:%Y%m%dT%H%M}", []), ("ETHUSDT-L-5r", []),
        ("LINKUSDT-S-9", [])]
    assert lines[0].entry == pytest.approx(59000) and lines[0].margin == pytest.approx(103.3)
    rec = xb.reconcile(got, rows.open_positions, lines)
    assert [(r.position.market_id, r.theirs, r.cause) for r in rec] == [
        ("BTCUSDT", 52322.62, "match"), ("ETHUSDT", 2766.06, "match"),
        ("LINKUSDT", 24.90, "match")]
    assert all(abs(r.gap) < 0.0005 for r in rec)


def test_the_whole_history_gives_the_same_state(scaling) -> None:
    # from before BTC's first fill: opened by its fill, and the replay ends in the same state
    fake, start = scaling
    _, rows, positions, events = imported(client(fake), start - 6 * DAY_MS)
    btc = [(e["event"], e["amount"]) for e in events if e["position_id"] == "BTCUSDT-L-1"]
    assert btc[0] == ("open", 116) and [k for k, _ in btc][2] == "increase"
    lines = xb.parity.parity(positions, events, rows.open_positions)
    assert all(x.ok for x in lines), [str(x) for x in lines]


def test_a_reimport_continues_the_open_position(scaling, tmp_path) -> None:
    fake, start = scaling
    book = sb.open_local(tmp_path / "journal.xlsx")
    sb.init(book, "journal")
    from leverage_sheets.append import append_rows

    def run(since: int) -> Any:
        _, rows, _, _ = imported(client(fake), since, book)
        clean = [{k: v for k, v in e.items() if not k.startswith("_")} for e in rows.events]
        append_rows(book, "journal", {"Positions": rows.positions, "Events": clean},
                    xb.journal_key)
        return rows

    run(start + 12 * H)  # BTC rolled back to start + 12 h
    first = [p["position_id"] for p in journal_tables(book)[0]]
    rows = run(start)  # further back: BTC is continued, not opened twice
    positions, events = journal_tables(book)
    assert [p["position_id"] for p in positions] == first
    assert sum(1 for e in events if e["event"] == "open"
               and e["position_id"].startswith("BTCUSDT")) == 1
    # the funding at start + 1 h is before the journal's open of BTC: its open holds it
    assert not any(e["event"] == "funding" for e in events)
    assert all(x.ok for x in xb.parity.parity(positions, events, rows.open_positions))


def test_parity_names_the_field_and_the_gap(scaling) -> None:
    fake, start = scaling
    _, rows, positions, events = imported(client(fake), start)
    skewed = [dict(e) for e in events]
    for e in skewed:
        if e["event"] == "add_margin":
            e["amount"] = 29.5
    lines = xb.parity.parity(positions, skewed, rows.open_positions)
    assert lines[0].gaps == ["margin: journal 102.8, exchange 103.3, gap -0.5 USDT"]
    assert "margin: journal 102.8" in str(lines[0]) and lines[1].ok
    assert xb.parity.parity([], [], rows.open_positions)[0].gaps == [
        "no open journal position of BTCUSDT long"]


def test_reconcile_says_unexplained_with_the_numbers_or_the_parity_gap(scaling) -> None:
    fake, start = scaling
    got, rows, positions, events = imported(client(fake), start)
    btc = rows.open_positions[0]
    btc.exchange_liq = 52000.0  # not Binance's figure for this state
    rec = xb.reconcile(got, rows.open_positions)
    assert rec[0].cause == "unexplained: ours 52,322.62, the exchange's 52,000.00, gap +0.620%"
    skewed = [dict(e, amount=29.5) if e["event"] == "add_margin" else e for e in events]
    rec = xb.reconcile(got, rows.open_positions, xb.parity.parity(positions, skewed,
                                                                  rows.open_positions))
    assert rec[0].cause.startswith("journal differs from the exchange: margin: journal 102.8")


def test_hedge_leg_is_named_only_when_both_legs_are_open(scaling) -> None:
    fake, _ = scaling
    acc = fake.account
    acc.positions[2] = position("LINKUSDT", "SHORT", "-100", "15.00", "14.50", "30.00", "0", 5)
    acc.positions.append(position("LINKUSDT", "LONG", "50", "14.00", "14.50", "0", "0", 5))
    got = xb.fetch_open(client(fake))
    rows = xb.build_rows(got)
    rec = {(r.position.market_id, r.position.side): r for r in xb.reconcile(
        got, rows.open_positions)}
    assert rec[("LINKUSDT", "short")].cause.startswith("hedge leg: both legs")
    acc.positions.pop()  # the long leg closed: no hedge leg to net, and no other cross position
    got = xb.fetch_open(client(fake))
    rec = xb.reconcile(got, xb.build_rows(got).open_positions)
    assert rec[2].cause.startswith("unexplained: ours 24.90, the exchange's 30.00")


# --------------------------------------------------------------------------------------------
# Random fills and margin moves through an exchange-bookkeeping simulator written from
# Binance's rules (not from the import's code): entry is the volume-weighted average of the
# fills that increase the position (USDⓈ-M: of prices; COIN-M: harmonic, the contracts' USD
# over their coin value); the isolated wallet takes notional / leverage with each increasing
# fill, releases the closed share with each reducing fill, and moves with margin added or
# removed and with funding. Importing its account and replaying the journal must end on its
# size, entry and margin.

LEV = Decimal(5)
Q = Decimal("0.001")  # USDⓈ-M: BTC a step; COIN-M: one contract of 100 USD a step
CONTRACT_USD = Decimal(100)


class Binance:
    """One symbol's isolated one-way position kept as Binance keeps it (Decimals, 8 places):
    BTCUSDT, or BTCUSD_PERP with ``inverse`` (size in contracts, margin in BTC)."""

    def __init__(self, inverse: bool = False) -> None:
        self.inverse = inverse
        self.symbol = "BTCUSD_PERP" if inverse else "BTCUSDT"
        self.size = Decimal(0)
        self.entry = Decimal(0)
        self.wallet = Decimal(0)
        self.trades: list[dict] = []
        self.lines: list[dict] = []
        self.income: list[dict] = []

    def value(self, qty: Decimal, price: Decimal) -> Decimal:
        """Notional in the margin currency: USDT, or BTC (contracts × 100 USD / price)."""
        return abs(qty) * CONTRACT_USD / price if self.inverse else abs(qty) * price

    def fill(self, t: int, qty: Decimal, price: Decimal) -> None:
        n = len(self.trades) + 1
        side = "BUY" if qty > 0 else "SELL"
        pnl = Decimal(0)
        if self.size and (self.size > 0) != (qty > 0):  # Binance's realizedPnl of the close
            closed = min(abs(qty), abs(self.size)) * (1 if self.size > 0 else -1)
            pnl = (closed * CONTRACT_USD * (1 / self.entry - 1 / price) if self.inverse
                   else closed * (price - self.entry))
        row = trade(n, n, self.symbol, side, f"{abs(qty)}", f"{price}", t, pnl=f"{pnl:.8f}")
        if self.inverse:
            fee = self.value(qty, price) * Decimal("0.0005")
            row.update({"pair": "BTCUSD", "marginAsset": "BTC", "commissionAsset": "BTC",
                        "baseQty": f"{self.value(qty, price):.8f}", "commission": f"{fee:.8f}"})
            row.pop("quoteQty")
        self.trades.append(row)
        if self.size == 0 or (self.size > 0) == (qty > 0):
            new = self.size + qty
            if self.inverse:  # harmonic: the contracts' USD over their BTC value
                self.entry = abs(new) / (abs(self.size) / self.entry + abs(qty) / price
                                         if self.size else abs(qty) / price)
            else:
                self.entry = (abs(self.size) * self.entry + abs(qty) * price) / abs(new)
            self._line(t, 1, "TRADE", self.value(qty, price) / LEV)
            self.size = new
            return
        closed = min(abs(qty), abs(self.size))
        released = (self.wallet * closed / abs(self.size)).quantize(Decimal("1e-8"))
        if closed == abs(self.size):
            released = self.wallet
        self._line(t, 2, "TRADE", released)
        self.size += qty
        if self.size == 0:
            self.entry = Decimal(0)
        elif abs(qty) > closed:  # through zero: the rest opens at the fill's price
            self.entry = price
            self._line(t, 1, "TRADE", self.value(self.size, price) / LEV)

    def move(self, t: int, amount: Decimal) -> None:
        self._line(t, 1 if amount > 0 else 2, "USER_ADJUST", abs(amount))

    def funding(self, t: int, amount: Decimal) -> None:
        self.income.append(income(len(self.income) + 1, self.symbol, "FUNDING_FEE",
                                  f"{amount:.8f}", t))
        self.wallet += amount

    def _line(self, t: int, kind: int, delta: str, amount: Decimal) -> None:
        amount = amount.quantize(Decimal("1e-8"))
        self.lines.append(margin_line(self.symbol, kind, delta, f"{amount}", t))
        self.wallet += amount if kind == 1 else -amount


step = st.tuples(st.sampled_from(["fill", "fill", "fill", "add", "withdraw", "funding"]),
                 st.integers(-30, 30), st.integers(-400, 400))


@pytest.fixture(scope="module")
def random_servers() -> Iterator[dict[bool, FakeBinanceFutures]]:
    with FakeBinanceFutures(Account(markets=[market("BTCUSDT", "BTC")])) as usdm, \
            FakeBinanceFutures(Account(markets=[coinm_market("BTCUSD_PERP", "BTC")]),
                               api="dapi") as coinm:
        yield {False: usdm, True: coinm}


def _recorded(ex: Binance) -> Account:
    """The simulator's account as Binance's endpoints answer it."""
    mkt = coinm_market(ex.symbol, "BTC") if ex.inverse else market(ex.symbol, "BTC")
    brackets = ([{"symbol": ex.symbol, "notionalCoef": 1.0, "brackets": [
        {"bracket": 1, "initialLeverage": 125, "qtyCap": 5, "qtyFloor": 0,
         "maintMarginRatio": 0.004, "cum": 0.0}]}] if ex.inverse else [bracket(ex.symbol)])
    acc = Account(
        markets=[mkt], brackets=brackets, marks={ex.symbol: "60000.00"}, trades=ex.trades,
        margin_history=ex.lines, wallet_balance="0.1" if ex.inverse else "1000",
        income=ex.income + [income(1000 + i, ex.symbol, "COMMISSION", "-" + tr["commission"],
                                   tr["time"]) for i, tr in enumerate(ex.trades)],
        symbol_config=[{"symbol": ex.symbol, "marginType": "ISOLATED",
                        "isAutoAddMargin": "false", "leverage": int(LEV),
                        "maxNotionalValue": "1000000"}])
    if ex.inverse:
        for r in acc.income + acc.margin_history:
            r["asset"] = "BTC"
    if ex.size:
        row = position(ex.symbol, "BOTH", f"{ex.size}", f"{ex.entry:.8f}", "60000.00", "0",
                       f"{ex.wallet:.8f}", int(LEV))
        if ex.inverse:  # COIN-M: notionalValue in BTC, the uPnL in BTC
            upnl = ex.size * CONTRACT_USD * (1 / ex.entry - Decimal(1) / 60000)
            row.update({"notionalValue": f"{ex.value(ex.size, Decimal(60000)):.8f}",
                        "unRealizedProfit": f"{upnl:.8f}", "marginAsset": "BTC",
                        "isolatedMargin": f"{ex.wallet + upnl:.8f}"})
            row.pop("notional")
        acc.positions = [row]
    return acc


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=14), cut=st.integers(0, 14),
       inverse=st.booleans())
def test_random_histories_replay_to_the_exchange_state(random_servers, steps, cut,
                                                       inverse) -> None:
    now = xb.client._ccxt().Exchange.milliseconds() // 1000 * 1000
    t0 = now - 10 * DAY_MS
    ex = Binance(inverse)
    unit = Decimal(1) if inverse else Q  # a step: one 100 USD contract, or 0.001 BTC
    coin = Decimal("0.0001") if inverse else Decimal(1)  # margin amounts' scale
    times = []
    for i, (kind, q, dp) in enumerate(steps):
        t = t0 + i * H
        times.append(t)
        price = Decimal(60000 + dp * 5)
        if kind == "fill" and q:
            ex.fill(t, q * unit, price)
        elif ex.size == 0:
            continue  # no margin moves or funding on a flat position
        elif kind == "add":
            ex.move(t, (Decimal(abs(dp)) / 10 + 1) * coin)
        elif kind == "withdraw":  # a small share: Binance refuses one near liquidation
            ex.move(t, -((ex.wallet / 20).quantize(Decimal("1e-8")) or Decimal("1e-8")))
        else:
            ex.funding(t, Decimal(dp) / 1000 * coin)
    since = times[min(cut, len(times) - 1)] - 1000
    server = random_servers[inverse]
    server.account = _recorded(ex)
    name = "binancecoinm" if inverse else "binanceusdm"
    _, rows, positions, events = imported(client(server, name), since)
    result = replay_rows(positions, events)
    assert not [s for s in result.columns["status"] if s], [
        (e["event"], e["reason"], s) for e, s in zip(events, result.columns["status"],
                                                      strict=True) if s]
    lines = xb.parity.parity(positions, events, rows.open_positions)
    assert all(x.ok for x in lines), [str(x) for x in lines]
    assert len(lines) == (1 if ex.size else 0)


# --------------------------------------------------------------------------------------------
# Bybit and OKX: a scale-in, and a position open before the start date


def test_bybit_scale_in_replays_to_bybits_state() -> None:
    from fake_exchange import bybit_execution, sample_bybit_account

    acc = sample_bybit_account()
    t0 = int(acc.executions[0]["execTime"])
    # BTCUSDT: 0.010 at 60,000, a buy of 0.004 at 61,000 (an increase), 0.004 sold at 62,000.
    # Bybit by hand: avgPrice (0.010 × 60,000 + 0.004 × 61,000) / 0.014 = 60,285.7142857;
    # positionIM = 0.010 × 60,285.7142857 / 10 = 60.28571429 (the funding came from the
    # available balance); liquidation = entry − (IM − MM) / qty, MM = 0.5 % × 602.857 =
    # 3.0142857: 60,285.714 − (60.285714 − 3.014286) / 0.010 = 54,558.57, 54,558.60 in ticks
    acc.executions.insert(3, bybit_execution("linear", "e-104", "o-7", "BTCUSDT", "Buy",
                                             "0.004", "61000.00", t0 + DAY_MS))
    acc.positions[0] = bybit_position("linear", "BTCUSDT", 0, "Buy", "0.010",
                                      "60285.71428571", "61000.00", "54558.60", "60.62", "10",
                                      True, t0)
    acc.positions[0]["positionIM"] = "60.28571429"
    with FakeBybit(acc) as fake:
        now = xb.client._ccxt().Exchange.milliseconds()
        got, rows, positions, events = imported(client(fake, "bybit"), now - 25 * DAY_MS)
        btc = [(e["event"], e["qty"], e["amount"]) for e in events
               if e["position_id"] == "BTCUSDT-L-e-101"]
        assert btc == [("open", 0.01, 60), ("funding", None, -0.3), ("add_margin", None, 0.3),
                       ("increase", 0.004, pytest.approx(24.4)), ("partial_close", 0.004, None)]
        lines = xb.parity.parity(positions, events, rows.open_positions)
        assert all(x.ok for x in lines), [str(x) for x in lines]
        rec = xb.reconcile(got, rows.open_positions, lines)
        assert rec[0].position.market_id == "BTCUSDT" and rec[0].cause == "match"
        # from after the opening fill: rolled back to the start, same final state
        got, rows, positions, events = imported(client(fake, "bybit"), t0 + 12 * H)
        pid = next(p["position_id"] for p in positions if p["symbol"] == "BTCUSDT")
        assert pid.startswith("BTCUSDT-L-since")
        first = next(e for e in events if e["position_id"] == pid)
        assert (first["event"], first["qty"], first["amount"]) == (
            "open", pytest.approx(0.01), pytest.approx(60))
        lines = xb.parity.parity(positions, events, rows.open_positions)
        assert all(x.ok for x in lines), [str(x) for x in lines]


def test_okx_scale_in_and_a_position_open_before_the_start() -> None:
    from fake_exchange import FakeOkx, okx_fill, sample_okx_account

    from leverage_exchange.recorded_exchange import okx_position

    acc = sample_okx_account()
    t0 = int(acc.fills[0]["ts"])
    # BTC-USDT-SWAP: the sample's 0.006 BTC (margin 47.82, see sample_okx_account) and a buy of
    # 0.5 contracts (0.005 BTC) at 61,000 with its 30.50 margin (305 / 10x). OKX by hand:
    # avgPx (0.006 × 60,000 + 0.005 × 61,000) / 0.011 = 60,454.5454545; margin 78.32;
    # liquidation (60,454.5454545 − 78.32 / 0.011) / (1 − 0.004 − 0.0005) = 53,575.6
    acc.fills.append(okx_fill(9007, "104", "o6", "BTC-USDT-SWAP", "buy", "net", "0.5",
                              "61000.0", t0 + 3 * DAY_MS))
    acc.positions[0] = okx_position("BTC-USDT-SWAP", "net", "1.1", "60454.5454545",
                                    "61000.0", "53575.6", "78.32", t=t0 + 3 * DAY_MS)
    with FakeOkx(acc) as fake:
        for since in (t0 - DAY_MS, t0 + 12 * H):
            got, rows, positions, events = imported(client(fake, "okx"), since)
            lines = xb.parity.parity(positions, events, rows.open_positions)
            assert all(x.ok for x in lines), [str(x) for x in lines]
            assert lines[0].margin == pytest.approx(78.32)
            btc = [e for e in events if e["position_id"] == lines[0].position_id]
            assert [e["event"] for e in btc][-1] == "increase"
            rec = xb.reconcile(got, rows.open_positions, lines)
            assert rec[0].cause.startswith("fee: the exchange counts the taker fee (0.0500%)")
        # the later start: rolled back to 47.82 × 1.0 / 0.6 + … = 59.70 = 60 − 0.30 funding
        assert (btc[0]["event"], btc[0]["amount"]) == ("open", pytest.approx(59.7))


def test_positions_open_before_the_start_each_get_their_own_id_and_open(tmp_path) -> None:
    # 10 days back: BTCUSDT (opened 20 days back) and ETHUSDT (17) are both open at the start;
    # each is entered once, with its own id and its own open row
    from fake_exchange import sample_account

    now = xb.client._ccxt().Exchange.milliseconds() // 1000 * 1000
    with FakeBinanceFutures(sample_account(now)) as fake:
        book = sb.open_local(tmp_path / "journal.xlsx")
        sb.init(book, "journal")
        report = xb.import_account(client(fake), book, xb.convert._when(
            now - 10 * DAY_MS).isoformat())
        positions, events = journal_tables(book)
    ids = [p["position_id"] for p in positions]
    assert len(ids) == 2 and ids[0].startswith("BTCUSDT-L-since")
    assert ids[1].startswith("ETHUSDT-S-since")
    assert sorted(e["position_id"] for e in events if e["event"] == "open") == sorted(ids)
    tags = [xb.convert.row_tag(e["reason"]) for e in events]
    assert len(set(tags)) == len(tags)
    lines = xb.parity.parity(positions, events, report.open_positions)
    assert all(x.ok for x in lines), [str(x) for x in lines]


def test_a_position_closed_since_the_last_import_is_closed_and_the_new_one_opened(
        tmp_path) -> None:
    from fake_exchange import sample_account

    from leverage_sheets.append import append_rows

    now = xb.client._ccxt().Exchange.milliseconds() // 1000 * 1000
    acc = sample_account(now)
    book = sb.open_local(tmp_path / "journal.xlsx")
    sb.init(book, "journal")
    with FakeBinanceFutures(acc) as fake:

        def run() -> xb.Rows:
            _, rows, _, _ = imported(client(fake), now - 25 * DAY_MS, book)
            clean = [{k: v for k, v in e.items() if not k.startswith("_")} for e in rows.events]
            append_rows(book, "journal", {"Positions": rows.positions, "Events": clean},
                        xb.journal_key)
            return rows

        run()
        # BTCUSDT closed (0.006 sold at 63,000, the 47.45 released), then a new long of
        # 0.002 at 64,000 with its 12.80 margin (128 / 10x): wallet 12.80, liquidation
        # (12.80 − 128) / (0.002 × 0.004 − 0.002) = 57,831.33
        t = now - 2 * DAY_MS
        acc.trades += [trade(104, 9, "BTCUSDT", "SELL", "0.006", "63000.00", t, pnl="18.0"),
                       trade(105, 10, "BTCUSDT", "BUY", "0.002", "64000.00", t + H)]
        acc.income += [income(2100 + i, "BTCUSDT", "COMMISSION", "-" + tr["commission"],
                              tr["time"]) for i, tr in enumerate(acc.trades[-2:])]
        acc.margin_history += [margin_line("BTCUSDT", 2, "TRADE", "47.45000000", t),
                               margin_line("BTCUSDT", 1, "TRADE", "12.80000000", t + H)]
        acc.positions[0] = position("BTCUSDT", "BOTH", "0.002", "64000.00", "61000.00",
                                    "57831.33", "12.80", 10)
        rows = run()
    positions, events = journal_tables(book)
    btc = [(e["position_id"], e["event"]) for e in events
           if e["position_id"].startswith("BTCUSDT")]
    assert btc[-2:] == [("BTCUSDT-L-101", "close"), ("BTCUSDT-L-105", "open")]
    assert [p["position_id"] for p in positions].count("BTCUSDT-L-101") == 1
    lines = xb.parity.parity(positions, events, rows.open_positions)
    assert (lines[0].position_id, lines[0].gaps) == ("BTCUSDT-L-105", [])


def test_margin_moved_before_binances_30_days_is_entered_as_its_net(tmp_path) -> None:
    # BTCUSDT opened 40 days back (0.02 at 58,000, TRADE 116 at 10x), 25 added 35 days back,
    # 10 added 5 days back. Binance's margin history keeps 30 days: the 25 (and the opening
    # line) are not in it. Isolated wallet 116 + 25 + 10 = 151; liquidation
    # (151 − 0.02 × 58,000) / (0.02 × 0.004 − 0.02) = 50,652.61
    now = xb.client._ccxt().Exchange.milliseconds() // 1000 * 1000
    acc = Account(markets=[market("BTCUSDT", "BTC")], brackets=[bracket("BTCUSDT")],
                  marks={"BTCUSDT": "60000.00"}, server_time=now,
                  symbol_config=[{"symbol": "BTCUSDT", "marginType": "ISOLATED",
                                  "isAutoAddMargin": "false", "leverage": 10,
                                  "maxNotionalValue": "1000000"}])
    acc.trades = [trade(1, 1, "BTCUSDT", "BUY", "0.020", "58000.00", now - 40 * DAY_MS)]
    acc.income = [income(1, "BTCUSDT", "COMMISSION", "-" + acc.trades[0]["commission"],
                         now - 40 * DAY_MS)]
    acc.margin_history = [
        margin_line("BTCUSDT", 1, "TRADE", "116.00000000", now - 40 * DAY_MS),
        margin_line("BTCUSDT", 1, "USER_ADJUST", "25.00000000", now - 35 * DAY_MS),
        margin_line("BTCUSDT", 1, "USER_ADJUST", "10.00000000", now - 5 * DAY_MS)]
    acc.positions = [position("BTCUSDT", "BOTH", "0.020", "58000.00", "60000.00", "50652.61",
                              "151.00", 10)]
    with FakeBinanceFutures(acc) as fake:
        got, rows, positions, events = imported(client(fake), now - 45 * DAY_MS)
    assert [(e["event"], e["amount"]) for e in events] == [
        ("open", 116), ("add_margin", pytest.approx(25)), ("add_margin", 10)]
    assert "before the exchange's margin history" in events[1]["reason"]
    assert events[1]["date"] == xb.convert._when(got.margin_since)
    lines = xb.parity.parity(positions, events, rows.open_positions)
    assert all(x.ok for x in lines), [str(x) for x in lines]
    assert [r.cause for r in xb.reconcile(got, rows.open_positions, lines)] == ["match"]


def test_coin_margined_scale_in_averages_harmonically() -> None:
    # BTCUSD_PERP isolated 10x: 10 contracts (1,000 USD) at 50,000 (TRADE 0.002 BTC), 10 more
    # at 47,000 (TRADE 0.00212766 = 1,000 / 47,000 / 10). Binance's COIN-M entry is the
    # harmonic average: 2,000 / (1,000 / 50,000 + 1,000 / 47,000) = 48,453.608; wallet
    # 0.00412766 BTC; liquidation (COIN-M long, MMR 0.4 %, cum 0) =
    # 2,000 × 1.004 / (0.00412766 + 2,000 / 48,453.608) = 44,224.93
    from fake_exchange import sample_coinm_account

    now = xb.client._ccxt().Exchange.milliseconds() // 1000 * 1000
    acc = sample_coinm_account(now)
    t0 = now - 10 * DAY_MS
    acc.trades = [{**acc.trades[0], "id": i, "orderId": i, "qty": "10", "price": px,
                   "baseQty": f"{1000 / float(px):.8f}", "time": t}
                  for i, px, t in ((1, "50000.0", t0), (2, "47000.0", t0 + DAY_MS))]
    acc.income = [income(10 + i, "BTCUSD_PERP", "COMMISSION", "-0.00000100", tr["time"])
                  for i, tr in enumerate(acc.trades)]
    for r in acc.income:
        r["asset"] = "BTC"
    acc.margin_history = [margin_line("BTCUSD_PERP", 1, "TRADE", "0.00200000", t0),
                          margin_line("BTCUSD_PERP", 1, "TRADE", "0.00212766", t0 + DAY_MS)]
    for r in acc.margin_history:
        r["asset"] = "BTC"
    acc.positions[0].update({"positionAmt": "20", "entryPrice": "48453.60824742",
                             "liquidationPrice": "44224.93", "isolatedWallet": "0.00412766",
                             "unRealizedProfit": "0.00206091",
                             "isolatedMargin": "0.00618857"})
    with FakeBinanceFutures(acc, api="dapi") as fake:
        for since in (t0 - DAY_MS, t0 + H):  # the whole history; from after the first fill
            got, rows, positions, events = imported(client(fake, "binancecoinm"), since)
            lines = xb.parity.parity(positions, events, rows.open_positions)
            assert all(x.ok for x in lines), [str(x) for x in lines]
            assert lines[0].entry == pytest.approx(48453.60824742)
            assert [r.cause for r in xb.reconcile(got, rows.open_positions, lines)] == ["match"]
        # rolled back: 2,000 USD less the 1,000 added at 47,000, entry back to 50,000
        assert [(e["event"], e["price"], e["qty"], e["amount"]) for e in events] == [
            ("open", pytest.approx(50000), pytest.approx(1000), pytest.approx(0.002)),
            ("increase", 47000, 1000, 0.00212766)]


def test_tier_is_named_only_when_the_two_prices_fall_in_different_tiers() -> None:
    from leverage.tiers import table_name
    from leverage_exchange.convert import OpenPosition
    from leverage_exchange.fetch import Fetched

    table = lv.get_tier_table(table_name("binanceusdm", "BTC/USDT:USDT"))
    got = Fetched("binanceusdm", 0, 0, {}, tiers={"BTC/USDT:USDT": table})

    def p(theirs: float) -> OpenPosition:
        # 6 BTC at 60,000 on 58,215: tier 2 at the liquidation price (MMR 0.5 %, 300):
        # (58,215 + 300 − 360,000) / (6 × 0.005 − 6) = 50,500 (303,000 of notional)
        return OpenPosition("p", "BTC/USDT:USDT", "BTCUSDT", "long", "linear", 6.0, 60_000.0,
                            61_000.0, 366_000.0, 58_215.0, "isolated", False, theirs, 10.0)

    # 49,900 × 6 = 299,400: tier 1 (below 300,000), ours in tier 2
    (line,) = xb.reconcile(got, [p(49_900.0)])
    assert line.ours == pytest.approx(50_500) and line.cause.startswith("tier: ")
    # the same gap inside one tier is not called a tier
    (line,) = xb.reconcile(got, [p(50_800.0)])
    assert line.cause.startswith("unexplained: ours 50,500.00, the exchange's 50,800.00")


def test_a_position_open_at_the_start_and_closed_inside_the_window(tmp_path) -> None:
    # start between SOL's open (10 at 150) and its liquidation (at 135.00, realizedPnl −150):
    # the entry then is the closing fill's price less its PnL per unit, 135 + 150 / 10 = 150;
    # the margin Binance's 10x takes on 1,500 of notional, 150
    from fake_exchange import sample_account

    from leverage_sheets.append import append_rows

    now = xb.client._ccxt().Exchange.milliseconds() // 1000 * 1000
    acc = sample_account(now)
    t0 = now - 20 * DAY_MS
    with FakeBinanceFutures(acc) as fake:
        _, _, positions, events = imported(client(fake), t0 + 4 * DAY_MS + H)
        sol = [(e["event"], e["price"], e["qty"], e["amount"]) for e in events
               if e["position_id"].startswith("SOLUSDT")]
        assert sol == [("open", pytest.approx(150), 10, 150), ("close", 135, None, None)]
        result = replay_rows(positions, events)
        i = next(i for i, e in enumerate(events) if e["event"] == "close")
        assert result.columns["status"][i].startswith("liquidated at 135")
        assert result.columns["realized_pnl"][i] == pytest.approx(-150)

        # a journal that has BTC open from an earlier import (rolled back to t0 + 12 h) sees
        # it closed: the close is added to that position, no second BTC position
        book = sb.open_local(tmp_path / "journal.xlsx")
        sb.init(book, "journal")

        def run(since: int) -> None:
            _, rows, _, _ = imported(client(fake), since, book)
            clean = [{k: v for k, v in e.items() if not k.startswith("_")} for e in rows.events]
            append_rows(book, "journal", {"Positions": rows.positions, "Events": clean},
                        xb.journal_key)

        run(t0 + 12 * H)
        t = now - DAY_MS
        acc.trades.append(trade(104, 9, "BTCUSDT", "SELL", "0.006", "63000.00", t,
                                pnl="18.0"))
        acc.income.append(income(2200, "BTCUSDT", "COMMISSION", "-0.18900000", t))
        acc.margin_history.append(margin_line("BTCUSDT", 2, "TRADE", "47.45000000", t))
        acc.positions.pop(0)
        run(t0 + 12 * H)
    positions, events = journal_tables(book)
    btc = [(e["position_id"], e["event"]) for e in events
           if e["position_id"].startswith("BTCUSDT")]
    assert len({pid for pid, _ in btc}) == 1 and btc[-1][1] == "close"
    assert [p["position_id"] for p in positions if p["symbol"] == "BTCUSDT"] == [btc[0][0]]
    result = replay_rows(positions, events)
    i = next(i for i, e in enumerate(events) if e["event"] == "close"
             and e["position_id"] == btc[0][0])
    # realized: 0.004 × (62,000 − 60,000) + 0.006 × (63,000 − 60,000) = 26
    assert result.columns["realized_pnl"][i] == pytest.approx(26)
    assert not result.columns["status"][i]
