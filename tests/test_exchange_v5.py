"""Import from Bybit (v5 linear and inverse) and OKX (v5 swaps): real ccxt against the loopback
servers in ``leverage_exchange.recorded_exchange``, which answer in each exchange's documented
JSON."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ccxt")

from fake_exchange import (
    API_KEY,
    API_SECRET,
    FakeBybit,
    FakeOkx,
    RecordedExchange,
    bybit_execution,
    journal_tables,
    okx_fill,
    sample_bybit_account,
    sample_okx_account,
)

import leverage_exchange as xb
import leverage_sheets as sb
from leverage.cli import main
from leverage_exchange import fetch as xfetch
from leverage_sheets.engine import read_ranges_for

# A stalled request is held far longer than the client waits, so the client's timeout is
# what fires; the healthy requests of the same test share that timeout: 3 s is many times what
# one takes on a busy 2-core machine.
TIMEOUT_MS, STALL, HEALTHY_MS = 3_000, 10.0, 30_000
CREDS = {"apiKey": API_KEY, "secret": API_SECRET, "password": "test-passphrase"}
H = 3_600_000


@pytest.fixture
def bybit() -> Iterator[FakeBybit]:
    with FakeBybit(sample_bybit_account(), stall_seconds=STALL) as server:
        yield server
    assert not server.server_errors


@pytest.fixture
def okx() -> Iterator[FakeOkx]:
    with FakeOkx(sample_okx_account(), stall_seconds=STALL) as server:
        yield server
    assert not server.server_errors


def client(fake: RecordedExchange, name: str, timeout_ms: float = HEALTHY_MS) -> Any:
    # the short timeout only where a test arms a stall (held longer than it): elsewhere a
    # busy machine must not turn a slow healthy answer into a failure
    return xb.connect(name, CREDS, api_url=fake.url, timeout_ms=timeout_ms, rate_limit_ms=1)


def since(days: int) -> str:
    """A start date ``days`` ago (Bybit's history is read in 7-day windows from it)."""
    return xb.convert._when(xb.client._ccxt().Exchange.milliseconds() - days * 86_400_000
                            ).date().isoformat()


def journal(tmp_path: Path) -> Any:
    book = sb.open_local(tmp_path / "journal.xlsx")
    sb.init(book, "journal")
    return book


def inputs(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The typed columns of imported events, after checking every row is dated, in time order
    (the journal replays each position by date)."""
    dates = [e["date"] for e in events]
    assert all(isinstance(d, int | float) and d > 0 for d in dates) and dates == sorted(dates)
    return [(e["position_id"], e["event"], e["price"], e["qty"], e["amount"], e["fee"])
            for e in events]


def test_bybit_import_and_a_second_run_adds_nothing(bybit, tmp_path) -> None:
    book = journal(tmp_path)
    report = xb.import_account(client(bybit, "bybit"), book, since(25))
    positions, events = journal_tables(book)
    keys = ("position_id", "symbol", "side", "contract", "margin_currency")
    # the margin currency is the market's settle currency: USDT, and the coin for inverse
    assert [[p[k] for k in keys] for p in positions] == [
        ["BTCUSDT-L-e-101", "BTCUSDT", "long", "linear", "USDT"],
        ["ETHUSDT-S-e-201", "ETHUSDT", "short", "linear", "USDT"],
        ["SOLUSDT-L-e-301", "SOLUSDT", "long", "linear", "USDT"],
        ["BTCUSD-L-e-401", "BTCUSD", "long", "inverse", "BTC"],
    ]
    # Bybit risk limit 1 of BTCUSDT: 0.5% maintenance, no deduction
    assert (positions[0]["mmr"], positions[0]["maint_amount"]) == (0.005, 0)
    # fees: each execution's execFee (0.055 % of execValue in the recorded account), an
    # order's fills summed; in the settle currency, as ccxt reads a blank feeCurrency
    assert inputs(events) == [
        # one order, two fills: one open of 0.010 BTC; margin = notional ÷ leverage 10
        ("BTCUSDT-L-e-101", "open", 60000, 0.01, 60, 0.33),
        # Bybit's execFee 0.30 on a Funding execution is paid: −0.30 in the journal; Bybit
        # takes it from the available balance, so the position margin is put back beside it
        ("BTCUSDT-L-e-101", "funding", None, None, -0.3, None),
        ("BTCUSDT-L-e-101", "add_margin", 60000, None, 0.3, None),
        ("BTCUSDT-L-e-101", "partial_close", 62000, 0.004, None, 0.1364),
        ("ETHUSDT-S-e-201", "open", 3000, 0.5, 300, 0.825),  # leverage 5
        ("SOLUSDT-L-e-301", "open", 150, 10, 150, 0.825),
        ("SOLUSDT-L-e-301", "close", 135, None, None, 0.7425),  # a BustTrade
        # inverse: 100 contracts of 1 USD; margin and fee in BTC = 100 / 60,000 / 10
        ("BTCUSD-L-e-401", "open", 60000, 100, pytest.approx(100 / 60000 / 10), 0.0000009),
    ]
    assert [e["currency"] for e in events] == ["USDT"] * 7 + ["BTC"]
    # the BustTrade at the bankruptcy price 135 is beyond the journal's liquidation price
    assert [e["status"][:17] for e in events if e["status"]] == ["liquidated at 135"]
    assert "liquidation" in events[6]["reason"]
    # the journal ends on Bybit's size, entry and margin (positionIM 36; the inverse
    # 0.00016667 BTC = 100 / 60,000 / 10, Bybit's 8 decimals)
    lines = xb.parity.parity(positions, events, report.open_positions)
    assert [(x.position_id, x.gaps) for x in lines] == [
        ("BTCUSDT-L-e-101", []), ("ETHUSDT-S-e-201", []), ("BTCUSD-L-e-401", [])]
    assert any("no history of margin" in n for n in report.notes)
    assert sb.sync(book, "journal").changed is False
    again = xb.import_account(client(bybit, "bybit"), book, since(25))
    assert again.sheet.cells_written == 0 and not again.sheet.changed
    assert sum(again.sheet.already_there.values()) == 4 + 8


def test_bybit_requests_and_cursor_paging(bybit, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(xfetch.PAGE, "bybit", 1)
    ex = client(bybit, "bybit")
    bybit.clear_log()
    report = xb.import_account(ex, journal(tmp_path), since(25))
    assert report.exchange_requests == len(bybit.log)
    assert all(e.method == "GET" for e in bybit.log)
    execs = [e.params for e in bybit.log if e.path == "/v5/execution/list"]
    # 7 days at most per query, for each family (linear, inverse) and kind of execution
    assert all(int(p["endTime"]) - int(p["startTime"]) < 7 * 86_400_000 for p in execs)
    assert {p["category"] for p in execs} == {"linear", "inverse"}
    assert {p.get("execType") for p in execs} == {"Trade", "BustTrade", "Funding"}
    # one row a page: BTCUSDT's three fills of week 1 take three pages, by cursor
    assert any(p.get("cursor") for p in execs)
    assert report.sheet.appended["Events"] == 8
    paths = {e.path for e in bybit.log}
    assert {"/v5/position/list", "/v5/position/closed-pnl", "/v5/market/risk-limit",
            "/v5/market/tickers", "/v5/account/wallet-balance"} <= paths


def test_bybit_quirks(bybit) -> None:
    got = xb.fetch_open(client(bybit, "bybit"))
    rows = xb.build_rows(got)
    by = {(p.market_id, p.side): p for p in rows.open_positions}
    # the empty hedge leg (side "", size "0") is not a flat position: it is left out
    assert sorted(by) == [("BTCUSD", "long"), ("BTCUSDT", "long"), ("ETHUSDT", "short")]
    eth = by[("ETHUSDT", "short")]
    assert eth.hedged and eth.exchange_liq is None  # liqPrice ""
    inverse = by[("BTCUSD", "long")]
    assert inverse.exchange_liq is None  # liqPrice "0"
    # notional = contracts × contract size × mark (÷ mark for inverse): 100 USD at 61,000
    assert inverse.notional == pytest.approx(100 / 61000)
    assert by[("BTCUSDT", "long")].notional == pytest.approx(0.006 * 61000)
    assert by[("BTCUSDT", "long")].margin_mode == "isolated"  # tradeMode 1
    lines = {r.position.market_id: r for r in xb.reconcile(got, rows.open_positions)}
    # Bybit's isolated rule: LP = entry − (IM − MM) / qty = 60,000 − (36 − 1.8) / 0.006
    assert lines["BTCUSDT"].theirs == 54300 and lines["BTCUSDT"].cause == "match"
    assert lines["BTCUSD"].cause.startswith("not computed")


def test_okx_import_and_a_second_run_adds_nothing(okx, tmp_path) -> None:
    book = journal(tmp_path)
    report = xb.import_account(client(okx, "okx"), book, "2024-01-01")
    positions, events = journal_tables(book)
    assert [(p["position_id"], p["margin_currency"]) for p in positions] == [
        ("BTC-USDT-SWAP-L-101", "USDT"), ("ETH-USDT-SWAP-S-201", "USDT"),
        ("SOL-USDT-SWAP-L-301", "USDT")]
    # fees: OKX's fill fee -0.01 USDT (negative: charged) is 0.01 paid, as ccxt turns it
    assert inputs(events) == [
        # 0.4 + 0.6 contracts of 0.01 BTC = 0.010 BTC, two fills of one order
        ("BTC-USDT-SWAP-L-101", "open", 60000, 0.01, 60, 0.02),
        ("BTC-USDT-SWAP-L-101", "funding", None, None, -0.3, None),
        ("BTC-USDT-SWAP-L-101", "add_margin", 60000, None, 20, None),  # bill 6, subType 160
        ("BTC-USDT-SWAP-L-101", "partial_close", 62000, 0.004, None, 0.01),
        ("ETH-USDT-SWAP-S-201", "open", 3000, 0.5, 300, 0.01),  # 5 × 0.1 ETH, lever 5
        ("ETH-USDT-SWAP-S-201", "funding", None, None, 0.1, None),
        ("SOL-USDT-SWAP-L-301", "open", 150, 10, 150, 0.01),
        ("SOL-USDT-SWAP-L-301", "close", 135, None, None, 0.01),
    ]
    assert [e["status"][:17] for e in events if e["status"]] == ["liquidated at 135"]
    assert "liquidation" in events[7]["reason"]  # positions history type 3
    assert sb.sync(book, "journal").changed is False
    lines = xb.parity.parity(positions, events, report.open_positions)
    assert [(x.position_id, x.gaps) for x in lines] == [("BTC-USDT-SWAP-L-101", []),
                                                          ("ETH-USDT-SWAP-S-201", [])]
    assert lines[0].margin == pytest.approx(47.82)
    btc = next(r for r in report.reconciled if r.position.market_id == "BTC-USDT-SWAP")
    # OKX counts the taker fee to close as maintenance (by hand in sample_okx_account): the
    # gap is that fee term, and said so
    assert btc.theirs == 52265.2 and btc.cause.startswith("fee: ")
    # ours without the fee: (60,000 − 47.82 / 0.006) / (1 − 0.004) = 52,238.96
    assert round(btc.ours, 2) == 52238.96 and "0.0500%" in btc.cause
    assert btc.position.qty == pytest.approx(0.006)
    again = xb.import_account(client(okx, "okx"), book, "2024-01-01")
    assert again.sheet.cells_written == 0
    assert sum(again.sheet.already_there.values()) == 3 + 8


def test_okx_pages_backwards_with_after(okx, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(xfetch.PAGE, "okx", 2)
    xb.import_account(client(okx, "okx"), journal(tmp_path), "2024-01-01")
    fills = [e.params for e in okx.log if e.path == "/api/v5/trade/fills-history"]
    assert len(fills) == 4  # 6 fills, 2 a page, newest first, and an empty last page
    assert "after" not in fills[0] and [p["after"] for p in fills[1:]] == ["9005", "9003",
                                                                           "9001"]
    assert all(e.method == "GET" for e in okx.log)


def test_okx_tiers_in_notional(okx) -> None:
    got = xb.fetch_open(client(okx, "okx"))
    table = got.tiers["BTC/USDT:USDT"]
    # tier 1 of BTC-USDT: 0-500 contracts of 0.01 BTC at the 61,000 mark = 305,000 USDT
    assert table.tiers[0].max_notional == pytest.approx(305_000)
    assert table.tiers[1].min_notional == pytest.approx(305_000)


@pytest.mark.parametrize("name", ["bybit", "okx"])
def test_a_429_and_a_timeout_are_retried(name, bybit, okx, tmp_path) -> None:
    fake = bybit if name == "bybit" else okx
    path = "/v5/execution/list" if name == "bybit" else "/api/v5/trade/fills-history"
    other = "/v5/position/list" if name == "bybit" else "/api/v5/account/positions"
    ex = client(fake, name, TIMEOUT_MS)
    fake.fail(path, "429")
    fake.fail(other, "timeout")
    report = xb.import_account(ex, journal(tmp_path), since(25))
    assert report.sheet.appended["Events"] == 8
    statuses = [e.status for e in fake.log if e.path == path]
    assert statuses[:2] == [429, 200]


@pytest.mark.parametrize("name", ["bybit", "okx"])
def test_refused_key_is_one_line(name, bybit, okx, tmp_path, capsys, monkeypatch) -> None:
    fake = bybit if name == "bybit" else okx
    monkeypatch.setenv(xb.client.KEY_ENV, "wrong-key-123")
    monkeypatch.setenv(xb.client.SECRET_ENV, "wrong-secret-456")
    monkeypatch.setenv(xb.client.PASSWORD_ENV, "wrong-pass-789")
    code = main(["exchange", "import", "--exchange", name, "--since", "2024-01-01",
                 "--file", str(tmp_path / "j.xlsx"), "--api-url", fake.url, "--timeout", "30"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "refused the API key" in err
    assert "wrong-key-123" not in err and "wrong-secret-456" not in err


def test_new_fills_are_appended(bybit, okx, tmp_path) -> None:
    (tmp_path / "b").mkdir()
    book = journal(tmp_path / "b")
    xb.import_account(client(bybit, "bybit"), book, since(25))
    t = int(bybit.account.executions[3]["execTime"]) + H
    bybit.account.executions.append(bybit_execution("linear", "e-104", "o-9", "BTCUSDT", "Sell",
                                                    "0.006", "63000.00", t, closed="0.006"))
    bybit.account.positions.pop(0)  # BTCUSDT is flat now
    assert xb.import_account(client(bybit, "bybit"), book, since(25)).sheet.appended == {
        "Positions": 0, "Events": 1, "Rules": 0}
    okx_book = journal(tmp_path)
    xb.import_account(client(okx, "okx"), okx_book, "2024-01-01")
    t = int(okx.account.fills[2]["ts"]) + H
    okx.account.fills.append(okx_fill(9010, "104", "o9", "BTC-USDT-SWAP", "sell", "net", "0.6",
                                      "63000.0", t))
    okx.account.positions.pop(0)  # flat now: a closed position (type 2) in the history
    okx.account.positions_history.append({**okx.account.positions_history[0], "type": "2",
                                          "instId": "BTC-USDT-SWAP", "uTime": str(t)})
    report = xb.import_account(client(okx, "okx"), okx_book, "2024-01-01")
    assert report.sheet.appended["Events"] == 1
    assert journal_tables(okx_book)[1][-1]["event"] == "close"


def test_reconcile_column_in_the_rebalance_workbook(bybit, tmp_path) -> None:
    book = sb.open_local(tmp_path / "rebalance.xlsx")
    sb.init(book, "rebalance")
    book.write_ranges([sb.Update("'Account'!B2:B3", [[1000.0], [500.0]])])
    report = xb.import_account(client(bybit, "bybit"), book, since(25))
    assert report.sheet.appended["Positions"] == 3
    head, *rows = book.read_ranges(read_ranges_for("rebalance"))[1]
    by = {r[0]: dict(zip(head, r, strict=False)) for r in rows}
    btc = by["BTCUSDT-L-e-101"]  # the journal's id: its opening fill
    assert btc["Exchange liq. price"] == 54300
    # the sync's gap: our Liq. price (the sheet's, from its maint. rate) against the exchange's
    want = (btc["Liq. price"] - 54300) / 54300
    assert btc["Liq. gap vs exchange"] == pytest.approx(want, rel=1e-12)
    assert btc["Likely cause of the gap"]
    # the exchange shows none ("" on the hedge leg): no gap, and the cause says why
    eth = by["ETHUSDT-S-e-201"]
    assert eth.get("Exchange liq. price") in (None, "") and eth.get("Liq. gap vs exchange") in (
        None, "")
    assert "shows none" in eth["Likely cause of the gap"]
    assert xb.import_account(client(bybit, "bybit"), book, since(25)).sheet.cells_written == 0
    assert sb.sync(book, "rebalance").changed is False


def test_the_built_rebalance_workbook_computes_the_gap(tmp_path) -> None:
    import openpyxl
    from xl_engine import compute

    import leverage_templates as templates
    from leverage import layout as L
    from leverage.portfolio import liq_gap

    positions, _, _ = templates.sample_portfolio()
    path = templates.build_rebalance(tmp_path / "r.xlsx", mode="native", rows=len(positions) + 1)
    wb = openpyxl.load_workbook(path)
    ws = wb[L.REBALANCE_POSITIONS.title]
    col = L.REBALANCE_POSITIONS.index("exchange_liq_price") + 1
    ws.cell(L.FIRST_DATA_ROW, col, 50_000.0)  # P1 with the exchange's figure; P2 without
    wb.save(path)
    values = compute(path)
    sheet = L.REBALANCE_POSITIONS

    def cell(key: str, row: int) -> object:
        return values.get((sheet.title, f"{sheet.letter(key)}{row}"))

    ours = cell("liq_price", 2)
    assert isinstance(ours, float)
    assert cell("liq_gap", 2) == pytest.approx(liq_gap(ours, 50_000.0), rel=1e-12)
    assert cell("liq_gap", 3) in (None, "")  # no exchange figure: no gap
    assert cell("liq_gap", 2 + len(positions)) in (None, "")  # a blank row
