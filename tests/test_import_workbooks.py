"""An import into the journal and into the rebalance workbook names one exchange position
alike, and a re-import updates the position it finds instead of adding a second one.

Real ccxt against the loopback Binance USDⓈ-M server (``leverage_exchange.recorded_exchange``), the
local .xlsx backend and the fake Google Sheets server. The recorded account (``sample_account``):
BTCUSDT isolated long 0.006 at 60,000 (opened by trade 101), ETHUSDT cross short 0.5 at 3,000
(trade 201), SOLUSDT opened and liquidated; the cross wallet is 1,000 USDT.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

pytest.importorskip("ccxt")

from fake_exchange import (
    API_KEY,
    API_SECRET,
    FakeBinanceFutures,
    FakeBybit,
    FakeOkx,
    journal_tables,
    keyed,
    sample_account,
    sample_bybit_account,
    sample_okx_account,
)
from fake_sheets import FakeSheets, make_client

import leverage_exchange as xb
import leverage_sheets as sb
from leverage import layout as L
from leverage.cli import main
from leverage_sheets.engine import read_ranges_for

CREDS = {"apiKey": API_KEY, "secret": API_SECRET}
SINCE = "2024-01-01"
OPEN_IDS = ["BTCUSDT-L-101", "ETHUSDT-S-201"]  # the trades that opened them


@pytest.fixture
def fake() -> Iterator[FakeBinanceFutures]:
    with FakeBinanceFutures(sample_account()) as server:
        yield server
    assert not server.server_errors


def client(fake: FakeBinanceFutures) -> Any:
    return xb.connect("binanceusdm", CREDS, api_url=fake.url, timeout_ms=30_000, rate_limit_ms=1)


def book_at(path: Path, template: str) -> Any:
    book = sb.open_local(path)
    sb.init(book, template)
    return book


def rebalance_tables(book: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Account sheet as item key → value and the Positions rows, keyed."""
    account, positions = book.read_ranges(read_ranges_for("rebalance"))
    labels = {label: key for key, label in L.ACCOUNT_INPUT_ROWS + L.ACCOUNT_OUTPUT_ROWS}
    items = {labels[r[0]]: (r[1] if len(r) > 1 else None) for r in account[1:]
             if r and r[0] in labels}
    return items, keyed(positions, L.REBALANCE_POSITIONS)


def later(fake: FakeBinanceFutures, hours: int) -> str:
    """A start date ``hours`` after the account's first fill (BTC's open), ISO, UTC."""
    return xb.convert._when(fake.account.trades[0]["time"] + hours * 3_600_000).isoformat()


def test_journal_and_rebalance_name_each_exchange_position_alike(fake, tmp_path) -> None:
    journal = book_at(tmp_path / "journal.xlsx", "journal")
    rebalance = book_at(tmp_path / "rebalance.xlsx", "rebalance")
    j = xb.import_account(client(fake), journal, SINCE)
    r = xb.import_account(client(fake), rebalance, SINCE)
    positions, _ = journal_tables(journal)
    _, rows = rebalance_tables(rebalance)
    still_open = [p["position_id"] for p in positions if p["position_id"] in OPEN_IDS]
    assert [row["position_id"] for row in rows] == still_open == OPEN_IDS
    assert [p.position_id for p in j.open_positions] == [p.position_id for p in
                                                         r.open_positions] == OPEN_IDS
    # the reconcile names them as both workbooks do, and so does the rebalance's cause column
    assert [x.position.position_id for x in r.reconciled] == OPEN_IDS
    assert [row["liq_gap_cause"] for row in rows] == [x.cause for x in r.reconciled]


def test_rebalance_rows_leave_the_target_blank_and_suggest_no_move(fake, tmp_path) -> None:
    rebalance = book_at(tmp_path / "rebalance.xlsx", "rebalance")
    xb.import_account(client(fake), rebalance, SINCE)
    _, rows = rebalance_tables(rebalance)
    # the exchange's leverage setting (10x, 5x) is not a target the trader set
    assert [(r["target_leverage"], r["target_liq_distance"]) for r in rows] == [(None, None)] * 2
    assert [r["move"] for r in rows] == [None, None]
    assert [r["status"] for r in rows] == [None, None]
    # the rest computes: BTC's isolated liquidation price from its 47.45 USDT wallet
    assert all(isinstance(r["liq_price"], float) for r in rows)


def test_a_blank_account_sheet_takes_the_exchange_wallet(fake, tmp_path) -> None:
    fake.account.wallet_balance = "1234.50000000"  # totalCrossWalletBalance, availableBalance
    rebalance = book_at(tmp_path / "rebalance.xlsx", "rebalance")
    report = xb.import_account(client(fake), rebalance, SINCE)
    account, rows = rebalance_tables(rebalance)
    assert (account["wallet_balance"], account["free_balance"]) == (1234.5, 1234.5)
    assert report.sheet.account == {"wallet_balance": (None, 1234.5),
                                    "free_balance": (None, 1234.5)}
    # the cross row's liquidation price uses that wallet: ETH short 0.5 at 3,000, mmr 0.4%
    # (Binance's first bracket), no other cross position: (W + q·E) / (q·(1 + mmr))
    eth = next(r for r in rows if r["position_id"] == "ETHUSDT-S-201")
    assert eth["liq_price"] == pytest.approx((1234.5 + 0.5 * 3000) / (0.5 * 1.004), rel=1e-12)
    assert "wallet_balance blank -> 1,234.50" in str(report)


def test_a_wallet_typed_in_the_sheet_gives_way_to_the_exchange(fake, tmp_path) -> None:
    rebalance = book_at(tmp_path / "rebalance.xlsx", "rebalance")
    rebalance.write_ranges([sb.Update("'Account'!B2:B5", [[5000.0], [700.0], [0.6], [7]])])
    report = xb.import_account(client(fake), rebalance, SINCE)
    account, _ = rebalance_tables(rebalance)
    assert report.sheet.account == {"wallet_balance": (5000.0, 1000.0),
                                    "free_balance": (700.0, 1000.0)}
    # the market inputs are the trader's: the exchange does not state them
    assert (account["wallet_balance"], account["volatility"], account["horizon_days"]) == (
        1000.0, 0.6, 7)


def test_a_second_journal_import_with_a_later_or_earlier_start_adds_no_position(fake,
                                                                                 tmp_path) -> None:
    journal = book_at(tmp_path / "journal.xlsx", "journal")
    xb.import_account(client(fake), journal, SINCE)
    positions, events = journal_tables(journal)
    # a start after BTC's and ETH's opens (they are open since before it): continued
    for since in (later(fake, 4 * 24), "2023-06-01"):
        report = xb.import_account(client(fake), journal, since)
        again_p, again_e = journal_tables(journal)
        assert again_p == positions, since
        assert [e["reason"] for e in again_e] == [e["reason"] for e in events], since
        assert report.sheet.appended.get("Positions", 0) == 0
        assert [p.position_id for p in report.open_positions] == OPEN_IDS
        assert all(p.ok for p in report.parity), [str(p) for p in report.parity]


def test_a_later_start_first_then_the_full_history_continues_the_same_position(fake,
                                                                               tmp_path) -> None:
    journal = book_at(tmp_path / "journal.xlsx", "journal")
    first = xb.import_account(client(fake), journal, later(fake, 12))
    btc = next(p.position_id for p in first.open_positions if p.market_id == "BTCUSDT")
    report = xb.import_account(client(fake), journal, SINCE)
    positions, events = journal_tables(journal)
    assert [p["position_id"] for p in positions].count(btc) == 1
    assert not any(p["position_id"] == "BTCUSDT-L-101" for p in positions)
    # the opening fill is older than the journal's BTC position: it is in its start state
    assert [e["event"] for e in events if e["position_id"] == btc].count("open") == 1
    assert next(p.position_id for p in report.open_positions if p.market_id == "BTCUSDT") == btc
    assert all(p.ok for p in report.parity), [str(p) for p in report.parity]


def test_a_second_rebalance_import_with_another_start_adds_no_row(fake, tmp_path) -> None:
    rebalance = book_at(tmp_path / "rebalance.xlsx", "rebalance")
    xb.import_account(client(fake), rebalance, later(fake, 4 * 24))  # ids by the start date
    _, first = rebalance_tables(rebalance)
    for since in (SINCE, "2023-06-01", later(fake, 5 * 24)):
        report = xb.import_account(client(fake), rebalance, since)
        _, rows = rebalance_tables(rebalance)
        assert rows == first, since
        assert report.sheet.appended["Positions"] == 0 and not report.sheet.changed
        assert [p.position_id for p in report.open_positions] == [r["position_id"] for r in
                                                                  first]


def test_a_rebalance_reimport_updates_the_row_and_keeps_the_traders_cells(fake,
                                                                          tmp_path) -> None:
    path = tmp_path / "rebalance.xlsx"
    rebalance = book_at(path, "rebalance")
    xb.import_account(client(fake), rebalance, SINCE)
    # the trader sets a target, a priority and a note right of the layout on BTC's row
    rebalance.write_ranges([sb.Update("'Positions'!J2:L2", [[4.0, None, 2.0]])])
    book = openpyxl.load_workbook(path)
    book["Positions"]["AD2"] = "hedged by spot"
    book.save(path)
    rebalance = sb.open_local(path)
    _, before = rebalance_tables(rebalance)
    # the exchange moves on: the mark, BTC's wallet and liquidation price
    btc = fake.account.positions[0]
    btc.update(markPrice="62000.00", isolatedWallet="57.45", isolatedMargin="63.45",
               liquidationPrice="51679.15")
    fake.account.marks["BTCUSDT"] = "62000.00"
    report = xb.import_account(client(fake), rebalance, later(fake, 4 * 24))
    _, after = rebalance_tables(rebalance)
    assert len(after) == len(before) == 2 and report.sheet.appended["Positions"] == 0
    assert report.sheet.updated == {"Positions": 1}  # ETH's row did not change
    row, was = after[0], before[0]
    assert (row["mark_price"], row["margin"], row["exchange_liq_price"]) == (62000.0, 57.45,
                                                                              51679.15)
    for key in ("position_id", "symbol", "side", "contract", "target_leverage",
                "target_liq_distance", "priority"):
        assert row[key] == was[key] and type(row[key]) is type(was[key]), key
    assert row["move"] is not None  # the trader's target now steers it
    assert after[1] == before[1]
    assert openpyxl.load_workbook(path, read_only=True)["Positions"]["AD2"].value == \
        "hedged by spot"


def test_a_failed_reimport_leaves_the_rebalance_as_it_was(fake, tmp_path) -> None:
    rebalance = book_at(tmp_path / "rebalance.xlsx", "rebalance")
    xb.import_account(client(fake), rebalance, SINCE)
    before = rebalance.read_ranges(read_ranges_for("rebalance"))
    fake.account.positions[0]["markPrice"] = "50000.00"
    fake.fail("/fapi/v3/account", *["429"] * 4)  # the cross wallet: the import cannot finish
    with pytest.raises(xb.ExchangeError):
        xb.import_account(client(fake), rebalance, SINCE)
    assert rebalance.read_ranges(read_ranges_for("rebalance")) == before


def test_parity_and_reconcile_lines_are_printed(fake, tmp_path, capsys, monkeypatch) -> None:
    import functools

    from leverage_exchange import cli as xcli

    monkeypatch.setattr(xcli, "connect", functools.partial(xcli.connect, rate_limit_ms=1))
    monkeypatch.setenv(xb.client.KEY_ENV, API_KEY)
    monkeypatch.setenv(xb.client.SECRET_ENV, API_SECRET)
    for template in ("journal", "rebalance"):
        target = tmp_path / f"{template}.xlsx"
        argv = ["exchange", "import", "--since", SINCE, "--file", str(target), "--template",
                template, "--api-url", fake.url]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "Parity: the journal's replayed state beside the exchange's" in out
        assert "BTCUSDT-L-101 long: journal = exchange (size 0.006, entry 60,000, margin " \
               "47.45 USDT)" in out
        assert "ETHUSDT-S-201 short: journal = exchange (size 0.5, entry 3,000)" in out
        assert out.count("likely cause") == 1 and "BTCUSDT-L-101            isolated" in out


def test_a_parity_gap_is_reported_not_an_error(fake, tmp_path) -> None:
    # BTC's wallet on the exchange is 1.00 USDT more than its history explains
    fake.account.positions[0]["isolatedWallet"] = "48.45"
    report = xb.import_account(client(fake), book_at(tmp_path / "j.xlsx", "journal"), SINCE)
    btc = next(p for p in report.parity if p.position.market_id == "BTCUSDT")
    assert not btc.ok and any(g.startswith("margin: journal 47.45, exchange 48.45") for g in
                              btc.gaps)
    assert "BTCUSDT-L-101 long: margin: journal 47.45, exchange 48.45" in str(report)


def test_google_rebalance_import_and_update_in_one_read_and_one_write(fake) -> None:
    with FakeSheets() as sheets:
        key = sheets.create_spreadsheet("Rebalance")
        book = sb.open_google(key, client=make_client(sheets, timeout=2))
        sb.init(book, "rebalance")
        before = book.requests
        report = xb.import_account(client(fake), book, SINCE)
        assert book.requests - before <= 3 and report.sheet.appended["Positions"] == 2
        fake.account.marks["BTCUSDT"] = "61500.00"
        before = book.requests
        again = xb.import_account(client(fake), book, SINCE)
        assert book.requests - before <= 3
        assert again.sheet.appended["Positions"] == 0 and again.sheet.updated == {"Positions": 1}
        rows = keyed(sheets.values(key, "Positions"), L.REBALANCE_POSITIONS)
        assert [r["position_id"] for r in rows] == OPEN_IDS
        assert rows[0]["mark_price"] == 61500
        assert not sheets.server_errors


def test_a_rebalance_row_whose_position_closed_is_left_and_said(fake, tmp_path) -> None:
    rebalance = book_at(tmp_path / "rebalance.xlsx", "rebalance")
    xb.import_account(client(fake), rebalance, SINCE)
    _, before = rebalance_tables(rebalance)
    fake.account.positions.pop(0)  # BTC flat on the exchange now (no fill needed for this)
    report = xb.import_account(client(fake), rebalance, SINCE)
    _, after = rebalance_tables(rebalance)
    assert after[0] == before[0]  # the trader decides what to do with the row
    assert "BTCUSDT-L-101: not open on the exchange any more; its row is left as it is" in \
        report.notes


@pytest.mark.parametrize("name", ["bybit", "okx"])
def test_unified_accounts_fill_the_account_sheet(name, tmp_path) -> None:
    # Bybit v5 GET /v5/account/wallet-balance: the USDT coin's walletBalance (ccxt's
    # parse_balance "total"); OKX v5 GET /api/v5/account/balance: the USDT detail's eq/availEq
    account = sample_bybit_account() if name == "bybit" else sample_okx_account()
    if name == "bybit":
        account.wallet_balance = "1234.5"
    else:
        account.cash_balance = "1234.5"
    fake_cls = FakeBybit if name == "bybit" else FakeOkx
    with fake_cls(account) as fake:
        ex = xb.connect(name, {**CREDS, "password": "pass"}, api_url=fake.url, timeout_ms=30_000,
                        rate_limit_ms=1)
        start = xb.convert._when(ex.milliseconds() - 25 * 86_400_000).date().isoformat()
        book = book_at(tmp_path / f"{name}.xlsx", "rebalance")
        report = xb.import_account(ex, book, start)
        items, rows = rebalance_tables(book)
        assert (items["wallet_balance"], items["free_balance"]) == (1234.5, 1234.5)
        # the rows carry the journal's ids, the same a journal import gives
        assert [r["position_id"] for r in rows] == [p.position_id for p in
                                                    report.open_positions]
        assert all(p.ok for p in report.parity), [str(p) for p in report.parity]
        assert not fake.server_errors


@pytest.mark.parametrize(("template", "kwargs", "message"), [
    ("rebalance", {"update": {"Positions": ["liq_price"]}},
     "update may rewrite only input or imported columns of Positions, got liq_price"),
    ("rebalance", {"update": {"Trades": ["qty"]}}, "update must name sheets of the template"),
    ("rebalance", {"account": {"shortfall": 1.0}}, "account must name Account inputs"),
    ("journal", {"account": {"wallet_balance": 1.0}}, "account applies to the rebalance"),
])
def test_append_rows_refuses_what_it_must_not_write(tmp_path, template, kwargs,
                                                    message) -> None:
    from leverage_sheets.append import append_rows

    book = book_at(tmp_path / f"{template}.xlsx", template)
    before = book.read_ranges(read_ranges_for(template))
    with pytest.raises(ValueError, match=message):
        append_rows(book, template, {}, xb.journal_key, **kwargs)
    assert book.read_ranges(read_ranges_for(template)) == before
