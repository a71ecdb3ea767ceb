"""Import from an exchange: real ccxt against the loopback Binance futures server."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ccxt")

from fake_exchange import (
    API_KEY,
    API_SECRET,
    FakeBinanceFutures,
    income,
    journal_tables,
    sample_account,
    sample_coinm_account,
    trade,
)
from fake_sheets import FakeSheets, make_client

import leverage_exchange as xb
import leverage_sheets as sb
from leverage import journal
from leverage.cli import main
from leverage.errors import LeverageError
from leverage_exchange import fetch as xfetch
from leverage_exchange.convert import liq_or_none

# A stalled request is held far longer than the client waits, so the client's timeout is
# what fires; only the tests that arm a stall use the short timeout (its healthy requests share
# it: 3 s is many times what one takes on a busy 2-core machine). Elsewhere it is generous.
TIMEOUT_MS, STALL, HEALTHY_MS = 3_000, 10.0, 30_000
CREDS = {"apiKey": API_KEY, "secret": API_SECRET}
SINCE = "2024-01-01"


@pytest.fixture
def fake() -> Iterator[FakeBinanceFutures]:
    with FakeBinanceFutures(sample_account(), stall_seconds=STALL) as server:
        yield server
    assert not server.server_errors


def client(fake: FakeBinanceFutures, timeout_ms: float = HEALTHY_MS, **kw: Any) -> Any:
    return xb.connect("binanceusdm", CREDS, api_url=fake.url, timeout_ms=timeout_ms,
                      rate_limit_ms=1, **kw)


def journal_book(tmp_path: Path) -> Any:
    book = sb.open_local(tmp_path / "journal.xlsx")
    sb.init(book, "journal")
    return book


def grids(book: Any) -> list[list[list[Any]]]:
    """Every tab of the journal as read, for comparing a whole workbook before and after."""
    from leverage_sheets.engine import read_ranges_for

    return book.read_ranges(read_ranges_for("journal"))


def test_import_fills_the_journal_and_a_second_run_adds_nothing(fake, tmp_path) -> None:
    book = journal_book(tmp_path)
    report = xb.import_account(client(fake), book, SINCE)
    positions, events = journal_tables(book)
    assert [p["position_id"] for p in positions] == ["BTCUSDT-L-101", "ETHUSDT-S-201",
                                                     "SOLUSDT-L-301"]
    # USDⓈ-M futures settle in USDT (ccxt's market "settle"); no stop is known to the exchange
    assert [p["margin_currency"] for p in positions] == ["USDT"] * 3
    assert [p["stop_price"] for p in positions] == [None] * 3
    kinds = [(e["position_id"], e["event"]) for e in events]
    assert kinds == [
        ("BTCUSDT-L-101", "open"), ("BTCUSDT-L-101", "funding"), ("BTCUSDT-L-101", "funding"),
        ("BTCUSDT-L-101", "add_margin"), ("BTCUSDT-L-101", "partial_close"),
        ("ETHUSDT-S-201", "open"), ("ETHUSDT-S-201", "funding"),
        ("SOLUSDT-L-301", "open"), ("SOLUSDT-L-301", "close"),
    ]
    # the order's two fills are one open: 0.010 BTC at 60,000 with the 60 USDT margin line
    assert [events[0][k] for k in ("price", "qty", "amount")] == [60000, 0.01, 60]
    # each fill's fee is Binance's commission in USDT (0.05 % of its value in the recorded
    # account), the order's two summed: 0.004 × 60,000 × 0.0005 + 0.006 × 60,000 × 0.0005
    assert [e["fee"] for e in events] == [0.3, None, None, None, 0.124, 0.75, None, 0.75, 0.675]
    assert events[4]["fees"] == pytest.approx(0.3 + 0.124)  # BTC's fees so far
    # FUNDING_FEE in the margin history is funding (−0.25), and the one also in the income
    # history (−0.30) is imported once
    assert [e["amount"] for e in events if e["event"] == "funding"] == [-0.3, -0.25, -0.1]
    assert "liquidation" in events[8]["reason"]
    # the liquidation fill (Binance's bankruptcy price 135.00) is beyond the journal's
    # liquidation price 135.54 of SOL's state, so the journal marks the position liquidated
    assert events[8]["status"].startswith("liquidated at 135")
    assert all(xb.convert.row_tag(e["reason"]) for e in events)  # every row keeps its id
    # every row is dated, in time order (the journal replays each position by date)
    dates = [e["date"] for e in events]
    assert all(isinstance(d, int | float) and d > 0 for d in dates) and dates == sorted(dates)
    # computed columns are the core's: replaying the sheet gives the same figures
    rows = [{k: e[k] for k in journal.INPUT_COLUMNS} for e in events]
    pos = [{k: p[k] for k in journal.POSITION_COLUMNS} for p in positions]
    result = journal.replay(pos, rows)
    for key in ("qty_open", "margin", "liq_price", "funding", "realized_pnl", "fees", "net_pnl"):
        for e, want in zip(events, result.columns[key], strict=True):
            assert e[key] == pytest.approx(want, nan_ok=True) or (e[key] is None and want != want)
    assert [e["currency"] for e in events] == list(result.columns["currency"]) == ["USDT"] * 9
    assert not any(e["status"] or e["warnings"] for e in events[:8])  # applied, no flag
    assert sb.sync(book, "journal").changed is False  # nothing left for a sync to fix
    # the journal reproduces the exchange: size, entry and margin of every open position
    lines = xb.parity.parity(positions, events, report.open_positions)
    assert [(x.position_id, x.gaps) for x in lines] == [("BTCUSDT-L-101", []),
                                                          ("ETHUSDT-S-201", [])]
    assert [r.cause for r in report.reconciled] == ["match", "match"]
    assert report.sheet.appended == {"Positions": 3, "Events": 9, "Rules": 0}

    stamp = (tmp_path / "journal.xlsx").stat().st_mtime_ns
    again = xb.import_account(client(fake), book, SINCE)
    assert again.sheet.cells_written == 0 and not again.sheet.changed
    assert sum(again.sheet.already_there.values()) == 12
    assert (tmp_path / "journal.xlsx").stat().st_mtime_ns == stamp


def test_new_history_is_appended_below_user_rows(fake, tmp_path) -> None:
    book = journal_book(tmp_path)
    xb.import_account(client(fake), book, SINCE)
    _, events = journal_tables(book)
    t = fake.account.income[1]["time"] + 8 * 3_600_000
    fake.account.income.append(income(1003, "ETHUSDT", "FUNDING_FEE", "0.05000000", t))
    report = xb.import_account(client(fake), book, SINCE)
    assert report.sheet.appended["Events"] == 1
    _, after = journal_tables(book)
    assert after[: len(events)] == events  # earlier rows untouched
    assert (after[-1]["position_id"], after[-1]["event"]) == ("ETHUSDT-S-201", "funding")


def test_requests_made(fake, tmp_path) -> None:
    ex = client(fake)
    fake.clear_log()
    report = xb.import_account(ex, journal_book(tmp_path), SINCE)
    paths = fake.paths()
    assert report.exchange_requests == len(paths)
    # fills are asked for only in weeks with a commission: BTC (2 windows? no: 1), ETH, SOL
    assert paths.count("/fapi/v1/userTrades") == 3
    assert paths.count("/fapi/v1/positionMargin/history") == 3
    assert paths.count("/fapi/v1/income") == 2  # funding, then commissions
    assert {"/fapi/v3/positionRisk", "/fapi/v1/leverageBracket", "/fapi/v1/premiumIndex",
            "/fapi/v1/symbolConfig", "/fapi/v1/forceOrders"} <= set(paths)
    for e in fake.log:  # a read-only import only reads
        assert e.method == "GET"


def test_long_histories_are_paged(fake, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(xfetch.PAGE, "income", 2)
    base = fake.account.income[0]["time"]
    extra = [income(5000 + i, "BTCUSDT", "FUNDING_FEE", "-0.01000000", base + 1 + i * 60_000)
             for i in range(5)]
    fake.account.income.extend(extra)
    book = journal_book(tmp_path)
    xb.import_account(client(fake), book, SINCE)
    funding_calls = [e for e in fake.log if e.path == "/fapi/v1/income"
                     and e.params.get("incomeType") == "FUNDING_FEE"]
    assert len(funding_calls) >= 4  # 7 rows, 2 a page
    starts = [int(e.params["startTime"]) for e in funding_calls]
    assert starts == sorted(starts)
    _, events = journal_tables(book)
    assert sum(1 for e in events if e["event"] == "funding") == 3 + 5


def test_a_429_and_a_timeout_are_retried(fake, tmp_path) -> None:
    ex = client(fake, timeout_ms=TIMEOUT_MS)  # the stall is held longer than this
    fake.fail("/fapi/v1/income", "429")
    fake.fail("/fapi/v1/userTrades", "timeout")
    report = xb.import_account(ex, journal_book(tmp_path), SINCE)
    assert report.sheet.appended["Events"] == 9
    statuses = [e.status for e in fake.log if e.path == "/fapi/v1/income"]
    assert statuses[0] == 429 and statuses[1] == 200


def test_an_exchange_that_keeps_failing_writes_nothing(fake, tmp_path) -> None:
    book = journal_book(tmp_path)
    before = grids(book)
    fake.fail("/fapi/v1/income", *["429"] * 4)
    with pytest.raises(xb.ExchangeError, match="kept failing \\(rate limit\\) after 4 tries"):
        xb.import_account(client(fake), book, SINCE)
    assert grids(book) == before


def test_liquidation_price_none_and_empty_hedge_leg(fake) -> None:
    assert [liq_or_none(v) for v in (0, "0", "", None, "abc", "-1")] == [None] * 6
    assert liq_or_none("4890.1") == 4890.1
    got = xb.fetch_open(client(fake))
    rows = xb.build_rows(got)
    eth = [p for p in rows.open_positions if p.market_id == "ETHUSDT"]
    assert [(p.side, p.hedged) for p in eth] == [("short", True)]  # the empty LONG leg is gone
    btc = next(p for p in rows.open_positions if p.market_id == "BTCUSDT")
    # the exchange said notional "0" (so ccxt could not tell the side): recomputed
    assert btc.side == "long" and btc.notional == pytest.approx(0.006 * 61000)


def test_reconcile_names_a_cause(fake) -> None:
    got = xb.fetch_open(client(fake))
    lines = {r.position.market_id: r for r in xb.reconcile(got, xb.build_rows(got).open_positions)}
    btc, eth = lines["BTCUSDT"], lines["ETHUSDT"]
    # isolated, Binance convention: LP = (margin + cum − qty·entry) / (qty·mmr − qty)
    # from the isolated WALLET 47.45 (isolatedWallet), not ccxt's collateral (isolatedMargin
    # 53.45, which holds the uPnL): the exchange's own 52,300.87 to the cent
    assert btc.ours == pytest.approx((47.45 - 0.006 * 60000) / (0.006 * 0.004 - 0.006))
    assert round(btc.ours, 2) == btc.theirs == 52300.87 and btc.cause == "match"
    # ETHUSDT's LONG leg is empty: no hedge leg to net, the cross formula gives Binance's own
    # (1,000 + 0.5 × 3,000) / (0.5 × 0.004 + 0.5) = 4,980.08
    assert round(eth.ours, 2) == eth.theirs == 4980.08 and eth.cause == "match"
    assert eth.position.legs_open == 1


def test_refused_key_is_one_clear_line(fake, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv(xb.client.KEY_ENV, "wrong-key-123")
    monkeypatch.setenv(xb.client.SECRET_ENV, "wrong-secret-456")
    code = main(["exchange", "import", "--since", SINCE, "--file", str(tmp_path / "j.xlsx"),
                 "--api-url", fake.url, "--timeout", "30"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "refused the API key" in err
    assert "wrong-key-123" not in err and "wrong-secret-456" not in err


def test_cli_import_into_a_new_workbook(fake, tmp_path, capsys, monkeypatch) -> None:
    # ccxt's limiter spaces the CLI's requests by Binance's endpoint weights (~7 s a run
    # against the loopback server); the pacing is ccxt's, not what this checks
    from leverage_exchange import cli as xcli

    monkeypatch.setattr(xcli, "connect", functools.partial(xcli.connect, rate_limit_ms=1))
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(CREDS))
    target = tmp_path / "journal.xlsx"
    argv = ["exchange", "import", "--exchange", "binanceusdm", "--since", SINCE,
            "--file", str(target), "--api-url", fake.url, "--key-file", str(keys)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "3 Positions" in out and "9 Events" in out and "likely cause" in out
    assert API_SECRET not in out
    assert main(argv) == 0
    assert "nothing new" in capsys.readouterr().out


def test_cli_bad_input_is_refused_before_any_request(fake, tmp_path, capsys) -> None:
    code = main(["exchange", "import", "--since", "yesterday", "--file",
                 str(tmp_path / "j.xlsx"), "--api-url", fake.url])
    assert code == 2 and "since must be a date" in capsys.readouterr().err
    assert fake.log == []


def test_google_import_in_at_most_three_requests(fake) -> None:
    with FakeSheets() as sheets:
        key = sheets.create_spreadsheet("Journal")
        book = sb.open_google(key, client=make_client(sheets, timeout=2))
        sb.init(book, "journal")
        before = book.requests
        report = xb.import_account(client(fake), book, SINCE)
        assert book.requests - before <= 3
        assert report.sheet.appended["Events"] == 9
        again = xb.import_account(client(fake), book, SINCE)
        assert again.sheet.cells_written == 0
        events = sheets.values(key, "Events")
        assert [r[2] for r in events[1:]].count("funding") == 3
        assert not sheets.server_errors


def test_a_position_opened_before_the_start_date(fake, tmp_path) -> None:
    # start 12 hours after BTC's opening fill: the position is rolled back to its state then
    # (the exchange's now less the window's moves, newest first) and every move after it is
    # journaled, so the replay ends on the exchange's size, entry and margin
    t0 = fake.account.trades[0]["time"]
    start = xb.convert._when(t0 + 12 * 3_600_000)
    book = journal_book(tmp_path)
    report = xb.import_account(client(fake), book, start.isoformat())
    positions, events = journal_tables(book)
    btc = [e for e in events if e["position_id"].startswith("BTCUSDT")]
    pid = f"BTCUSDT-L-since{start:%Y%m%dT%H%M}"
    assert {e["position_id"] for e in btc} == {pid}
    assert [(e["event"], e["price"], e["qty"], e["amount"], e["fee"]) for e in btc] == [
        # 47.45 now + 32 released by the partial close − 20 added + 0.25 funding paid
        # = 59.70: the 60 opened with, less the 0.30 funding paid before the start
        ("open", 60000, 0.01, pytest.approx(59.7), None),
        ("funding", None, None, -0.25, None),
        ("add_margin", 60000, None, 20, None),
        ("partial_close", 62000, 0.004, 32, 0.124),
    ]
    assert btc[0]["date"] == pytest.approx(journal.date_serial(start))
    assert not any(e["status"] for e in btc)
    lines = xb.parity.parity(positions, events, report.open_positions)
    assert all(x.ok for x in lines), [str(x) for x in lines]

    # a re-import from further back continues the same position: no second open, no rows
    # dated before its open (its open holds them)
    appended, rows = reimport(client(fake), book, SINCE)
    positions, events = journal_tables(book)
    assert [p["position_id"] for p in positions if p["symbol"] == "BTCUSDT"] == [pid]
    assert sum(1 for e in events if e["event"] == "open" and e["position_id"] == pid) == 1
    assert appended["Events"] == 0
    assert rows.open_positions[0].position_id == pid
    # and so does one from later on
    later = xb.convert._when(t0 + 36 * 3_600_000).isoformat()
    appended, rows = reimport(client(fake), book, later)
    assert appended == {"Positions": 0, "Events": 0, "Rules": 0}
    assert all(x.ok for x in xb.parity.parity(*journal_tables(book), rows.open_positions))


def reimport(ex: Any, book: Any, since: str) -> tuple[dict[str, int], xb.Rows]:
    """An import that hands the workbook's journal to ``build_rows`` (so an open position is
    continued), appended as ``import_account`` appends."""
    from leverage_sheets.append import append_rows

    got = xb.fetch_account(ex, xb.parse_since(since))
    rows = xb.build_rows(got, *journal_tables(book))
    clean = [{k: v for k, v in e.items() if not k.startswith("_")} for e in rows.events]
    report = append_rows(book, "journal", {"Positions": rows.positions, "Events": clean},
                         xb.journal_key)
    return report.appended, rows


def test_import_into_a_rebalance_workbook(fake, tmp_path) -> None:
    book = sb.open_local(tmp_path / "rebalance.xlsx")
    sb.init(book, "rebalance")
    # a blank Account sheet takes the exchange's cross wallet and free balance
    report = xb.import_account(client(fake), book, SINCE)
    assert report.sheet.appended["Positions"] == 2
    from leverage_sheets.engine import read_ranges_for

    account, positions = book.read_ranges(read_ranges_for("rebalance"))
    assert [r[1] for r in account[1:3]] == [1000.0, 1000.0]
    head = positions[0]
    rows = {r[0]: dict(zip(head, r, strict=False)) for r in positions[1:]}
    # the journal's ids: one id per exchange position across both workbooks
    assert rows["BTCUSDT-L-101"]["Qty"] == 0.006
    assert rows["BTCUSDT-L-101"]["Margin mode"] == "isolated"
    assert rows["ETHUSDT-S-201"]["Side"] == "short"
    assert xb.import_account(client(fake), book, SINCE).sheet.cells_written == 0


def test_cli_reconcile(fake, capsys, monkeypatch) -> None:
    monkeypatch.setenv(xb.client.KEY_ENV, API_KEY)
    monkeypatch.setenv(xb.client.SECRET_ENV, API_SECRET)
    assert main(["exchange", "reconcile", "--api-url", fake.url]) == 0
    out = capsys.readouterr().out
    assert "52,300.87" in out and "hedge leg" not in out and "likely cause" in out


@pytest.mark.parametrize("bad", ["2024-13-01", "soon", "2999-01-01"])
def test_since_is_checked(bad) -> None:
    with pytest.raises(xb.InputError, match="since must"):
        xb.parse_since(bad)


def test_coin_margined_import(tmp_path) -> None:
    with FakeBinanceFutures(sample_coinm_account(), api="dapi") as dapi:
        ex = xb.connect("binancecoinm", CREDS, api_url=dapi.url, timeout_ms=HEALTHY_MS,
                        rate_limit_ms=1)
        book = journal_book(tmp_path)
        report = xb.import_account(ex, book, SINCE)
        positions, events = journal_tables(book)
        keys = ("position_id", "symbol", "side", "contract", "margin_currency")
        # COIN-M settles in the coin: margin, PnL and fees in BTC
        assert [[p[k] for k in keys] for p in positions] == [
            ["BTCUSD_PERP-L-401", "BTCUSD_PERP", "long", "inverse", "BTC"]]
        # qty in USD: contracts × 100 USD contract size; margin in BTC; the fee is Binance's
        # commission in BTC (commissionAsset BTC, the margin currency)
        keys = ("event", "price", "qty", "amount", "fee")
        assert [tuple(e[k] for k in keys) for e in events] == [
            ("open", 50000, 1000, 0.002, 0.000001), ("add_margin", 50000, None, 0.002, None),
            # the margin Binance released with the close (its TRADE line of type 2)
            ("funding", None, None, -0.000005, None),
            ("partial_close", 52000, 400, 0.001598, 0.000001),
        ]
        assert {e["currency"] for e in events} == {"BTC"}
        assert sb.sync(book, "journal").changed is False
        btc = report.open_positions[0]
        assert btc.qty == 600 and btc.notional == pytest.approx(600 / 51000)
        # Binance's own figure (by hand in sample_coinm_account), from the isolated wallet
        assert report.reconciled[0].theirs == 41842.05
        assert round(report.reconciled[0].ours, 2) == 41842.05
        assert report.reconciled[0].cause == "match"
        lines = xb.parity.parity(positions, events, report.open_positions)
        assert [x.gaps for x in lines] == [[]] and lines[0].margin == pytest.approx(0.002397)
        assert all(p.startswith("/dapi/") for p in dapi.paths())
        assert not dapi.server_errors


def test_coin_margined_import_into_google_shows_its_money_to_the_satoshi() -> None:
    """Google cannot switch a row's format by a conditional format, so the import's write
    gives the BTC rows' computed money 8 decimals (0.00239700, not 0.00), in its own one
    write: still at most three requests."""
    from leverage.layout import COIN_MONEY, JOURNAL_EVENTS, TYPED_MONEY, coin_money

    with FakeBinanceFutures(sample_coinm_account(), api="dapi") as dapi, \
            FakeSheets() as sheets:
        ex = xb.connect("binancecoinm", CREDS, api_url=dapi.url, timeout_ms=HEALTHY_MS,
                        rate_limit_ms=1)
        key = sheets.create_spreadsheet("Journal")
        book = sb.open_google(key, client=make_client(sheets, timeout=30))
        sb.init(book, "journal")
        before = book.requests
        xb.import_account(ex, book, SINCE)
        assert book.requests - before <= 3
        rows = range(2, len(sheets.values(key, "Events")) + 1)
        assert len(rows) == 4
        for k in coin_money(JOURNAL_EVENTS)[1]:  # type: ignore[index]
            assert {sheets.number_format(key, "Events", f"{JOURNAL_EVENTS.letter(k)}{r}")
                    for r in rows} == {COIN_MONEY}, k
        amount = JOURNAL_EVENTS.letter("amount")  # the imported input keeps its own format
        assert {sheets.number_format(key, "Events", f"{amount}{r}") for r in rows} == {
            TYPED_MONEY}
        assert not sheets.server_errors and not dapi.server_errors


def test_sandbox_uses_the_testnet_urls_and_api_url_redirects_them(fake, tmp_path) -> None:
    ex = client(fake, sandbox=True)
    assert ex.isSandboxModeEnabled
    assert all(v.startswith(fake.url) for v in ex.urls["api"].values() if isinstance(v, str))
    assert xb.import_account(ex, journal_book(tmp_path), SINCE).sheet.appended["Events"] == 9
    with pytest.raises(xb.ExchangeError, match="api-url must look like"):
        xb.connect("binanceusdm", CREDS, api_url="ftp://x")


def test_a_fee_not_in_the_margin_currency_or_a_rebate_is_left_blank_and_said(fake,
                                                                             tmp_path) -> None:
    # SOL's opening fill paid its fee in BNB (Binance's fee discount), its close got a maker
    # rebate: neither is a fee paid in USDT, so neither is guessed
    fake.account.trades[4]["commissionAsset"] = "BNB"
    fake.account.trades[5]["commission"] = "-0.10000000"
    book = journal_book(tmp_path)
    report = xb.import_account(client(fake), book, SINCE)
    _, events = journal_tables(book)
    sol = [e for e in events if e["position_id"] == "SOLUSDT-L-301"]
    assert [(e["event"], e["fee"]) for e in sol] == [("open", None), ("close", None)]
    assert ("SOLUSDT-L-301: fill 301: trade 301 paid its fee in BNB, not USDT; its Fee paid is "
            "left blank") in report.notes
    assert any(n.startswith("SOLUSDT-L-301: fill 302: its fees net to a rebate of 0.1")
               for n in report.notes)
    assert events[0]["fee"] == 0.3  # the other fills keep theirs
    # every row applies; SOL's close is its liquidation (at Binance's bankruptcy price)
    assert [e["position_id"] for e in events if e["status"]] == ["SOLUSDT-L-301"]
    assert all(e["status"].startswith("liquidated at") for e in events if e["status"])


def test_a_fill_through_zero_splits_its_fee_between_the_close_and_the_new_open(fake,
                                                                               tmp_path) -> None:
    # SOL's last fill sells 15: 10 close the long, 5 open a short, closed by a buy an hour later
    sol = fake.account.trades[5]
    fake.account.trades[5] = trade(302, 5, "SOLUSDT", "SELL", "15", "136.50", sol["time"])
    fake.account.trades.append(trade(303, 6, "SOLUSDT", "BUY", "5", "130.00",
                                     sol["time"] + 3_600_000))
    fake.account.income.append(income(2100, "SOLUSDT", "COMMISSION", "-0.32500000",
                                      sol["time"] + 3_600_000))
    book = journal_book(tmp_path)
    xb.import_account(client(fake), book, SINCE)
    _, events = journal_tables(book)
    rows = [(e["position_id"], e["event"], e["fee"]) for e in events
            if e["position_id"].startswith("SOLUSDT")]
    # the fill's commission 15 × 136.50 × 0.0005 = 1.02375 USDT: 10/15 to the close, 5/15 to
    # the open (both at the fill's time: the import lists the opens of a moment first)
    assert rows == [
        ("SOLUSDT-L-301", "open", 0.75),
        ("SOLUSDT-S-302r", "open", 0.34125),
        ("SOLUSDT-L-301", "close", 0.6825),
        ("SOLUSDT-S-302r", "close", 0.325),
    ]
    assert not any(e["status"] for e in events)


def _unreadable(fake: FakeBinanceFutures, tmp_path: Path,
                said: str = "answered something unexpected") -> str:
    book = journal_book(tmp_path)
    before = grids(book)
    with pytest.raises(LeverageError) as caught:
        xb.import_account(client(fake), book, SINCE)
    assert grids(book) == before
    message = str(caught.value)
    assert message.count(said) == 1, message  # said once
    return message


def test_a_quantity_beyond_float_range_is_an_unreadable_answer(fake, tmp_path) -> None:
    fake.account.positions[0]["positionAmt"] = "1e400"
    _unreadable(fake, tmp_path)


@pytest.mark.parametrize("ms", [10**17, 10**20, 10**25])
def test_a_time_past_the_calendar_is_an_unreadable_answer(fake, tmp_path, ms: int) -> None:
    fake.account.income[0]["time"] = ms  # a funding payment in year 3,170,843 and beyond
    # the answer's own check names it before anything reads it as a date
    message = _unreadable(fake, tmp_path, "sent a bad answer to GET /fapi/v1/income")
    assert "outside 2017-01-01 to the exchange's clock plus a day" in message


@pytest.mark.parametrize("argv", [["exchange", "import", "--since", SINCE, "--file", "j.xlsx"],
                                  ["exchange", "reconcile"],
                                  ["tiers", "fetch", "--exchange", "binanceusdm"]])
def test_a_timeout_out_of_range_is_refused_naming_it(fake, tmp_path, capsys, monkeypatch,
                                                     argv: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(xb.client.KEY_ENV, API_KEY)
    monkeypatch.setenv(xb.client.SECRET_ENV, API_SECRET)
    for bad in ("1e308", "inf", "0", "-1"):
        with pytest.raises(SystemExit) as stopped:  # argparse's refusal
            main([*argv, "--api-url", fake.url, "--timeout", bad])
        assert stopped.value.code == 2
        err = capsys.readouterr().err
        assert "argument --timeout: must be a number of seconds in (0, 86400]" in err, err
        assert "Traceback" not in err
    assert fake.log == []
    assert list(tmp_path.iterdir()) == []
