"""Issue 21, item 3: accounts the exchange liquidates on their ratio, not per position.

Bybit's unified trading account in cross or portfolio margin is liquidated when its account
MM rate (maintenance ÷ margin balance) reaches 100 % (help centre, "Trading Rules:
Liquidation Process (Unified Trading Account)"; "Glossary (Unified Trading Account)"); Binance
portfolio margin at uniMMR = equity ÷ maintenance ≤ 105 % (FAQ "What Is the Unified Account
Maintenance Margin Ratio (uniMMR)", "Binance Portfolio Margin Pro Maintenance Margin Ratio
Calculation": "100% < uniMMR ≤ 105%: liquidation will take place"). Real ccxt imports from
the loopback servers of ``leverage_exchange.recorded_unified``; the Account sheet's ratio and
ACCOUNT_SHOCK are checked against hand-worked figures and by recomputing equity and
maintenance after the shock; reconcile says the account ratio decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

pytest.importorskip("ccxt")

import leverage as lv
import leverage_exchange as xb
import leverage_sheets as sb
from leverage import layout as L
from leverage.portfolio import BINANCE_PM_THRESHOLD, account_ratio, rebalance
from leverage_exchange import fetch as xfetch
from leverage_exchange.recorded_exchange import API_KEY, API_SECRET
from leverage_exchange.recorded_unified import (
    BYBIT_POSITIONS,
    PAPI_ACCOUNT_EXAMPLE,
    PM_POSITIONS,
    FakeBinancePortfolio,
    FakeBybitUnified,
    PortfolioAccount,
    sample_bybit_unified,
    sample_portfolio_account,
)
from leverage_sheets.engine import read_ranges_for

CREDS = {"apiKey": API_KEY, "secret": API_SECRET}
ACC, POS = L.REBALANCE_ACCOUNT, L.REBALANCE_POSITIONS
SINCE = "2026-01-01"  # the recorded accounts hold open positions only


def _client(fake: Any, name: str, **kw: Any) -> Any:
    return xb.connect(name, CREDS, api_url=fake.url, timeout_ms=30_000, rate_limit_ms=1, **kw)


def _imported(fake: Any, name: str, tmp: Path, **kw: Any) -> tuple[Any, dict[str, Any],
                                                                     list[dict[str, Any]]]:
    """Import ``fake``'s account into a fresh local rebalance workbook: the report, the
    Account sheet by key and the Positions rows by header."""
    book = sb.open_local(tmp / f"{name}.xlsx")
    sb.init(book, "rebalance")
    book.write_ranges([sb.Update("'Account'!B2:B3", [[5000.0], [500.0]])])
    report = xb.import_account(_client(fake, name, **kw), book, SINCE)
    acc, pos = book.read_ranges(read_ranges_for("rebalance"))[:2]
    keys = [k for k, _ in L.ACCOUNT_INPUT_ROWS + L.ACCOUNT_OUTPUT_ROWS]
    account = {k: (acc[L.account_row(k) - 1] + [None])[1] for k in keys}
    head, *rows = pos
    return report, account, [dict(zip(head, r, strict=False)) for r in rows]


def _after_shock(move: float, positions: list[tuple[int, float, float]], equity: float,
                 maint: float, mmr: float) -> tuple[float, float]:
    """Equity and maintenance after every mark moves by ``move``, from the exchange's
    definitions: equity gains each position's PnL on the move (s × qty × mark × move), the
    positions' maintenance (qty × mark × MMR) scales with the mark, the rest is unchanged.
    ``positions``: (s, qty, mark)."""
    d_equity = sum(s * q * m * move for s, q, m in positions)
    d_maint = sum(q * m * mmr * move for _, q, m in positions)
    return equity + d_equity, maint + d_maint


# ---------------------------------------------------------------- Bybit unified account
@pytest.fixture(scope="module")
def bybit_uta() -> Iterator[FakeBybitUnified]:
    with FakeBybitUnified(sample_bybit_unified()) as server:
        yield server
    assert not server.server_errors, server.server_errors


@pytest.fixture(scope="module")
def bybit_import(bybit_uta: FakeBybitUnified, tmp_path_factory: Any) -> Any:
    return _imported(bybit_uta, "bybit", tmp_path_factory.mktemp("bybit"))


def test_bybit_unified_account_figures_on_the_account_sheet(bybit_import) -> None:
    _, account, _ = bybit_import
    # recorded_unified.bybit_unified_totals: margin balance 5,000 − 400 = 4,600;
    # maintenance 0.005 × 47,600 = 238 (Bybit's glossary definitions)
    assert account["account_equity"] == pytest.approx(4_600)
    assert account["account_maint"] == pytest.approx(238)
    assert account["liq_threshold"] == 1
    # Bybit's label: account MM rate = maintenance ÷ margin balance, 238 / 4,600 = 5.1739 %,
    # which Bybit rounds to "0.0517" in accountMMRate
    assert account["account_mm_rate"] == pytest.approx(238 / 4_600, rel=1e-12)
    assert round(account["account_mm_rate"], 4) == 0.0517
    assert account["uni_mmr"] == pytest.approx(4_600 / 238, rel=1e-12)


def test_bybit_account_shock_reaches_account_mm_rate_100(bybit_import) -> None:
    _, account, _ = bybit_import
    # hand-worked: D = 29,000 × 0.995 + 12,400 × 0.995 − 6,200 × 1.005 = 34,962;
    # C = 5,000 − (30,000 + 12,000 − 6,400) = −30,600; m = 30,600 / 34,962 − 1
    move = account["account_shock"]
    assert move == pytest.approx(30_600 / 34_962 - 1, rel=1e-12)
    assert move == pytest.approx(-0.124764, abs=1e-6)
    book = [(1 if side == "Buy" else -1, float(size), float(mark))
            for _, _, side, size, _avg, mark in BYBIT_POSITIONS]
    equity, maint = _after_shock(move, book, 4_600, 238, 0.005)
    assert maint / equity == pytest.approx(1.0, rel=1e-9)  # account MM rate 100 %
    # the position using most of the buffer: the BTC long (the fall's largest loss)
    assert account["shock_position"].startswith("BTCUSDT")


def test_bybit_reconcile_says_the_account_ratio_decides(bybit_import) -> None:
    report, _, rows = bybit_import
    assert len(report.reconciled) == 3  # the cross BTC long and both hedge legs of ETH
    for r in report.reconciled:
        assert r.theirs is None and r.gap is None
        assert r.cause.startswith("no per-position liquidation price: the account ratio "
                                  "decides (Bybit unified trading account, cross margin")
    assert sum(r.position.hedged for r in report.reconciled) == 2
    for row in rows:
        assert row["Likely cause of the gap"].startswith("no per-position liquidation price")
        assert row.get("Liq. gap vs exchange") in (None, "")
    assert any("account MM rate reaches 100%" in n for n in report.notes)


def test_bybit_isolated_margin_mode_is_liquidated_per_position() -> None:
    with FakeBybitUnified(sample_bybit_unified("ISOLATED_MARGIN")) as fake:
        got = xfetch.fetch_open(_client(fake, "bybit"), rates=False)
    assert got.ratio_account == "" and got.account_equity is None and got.account_maint is None


def test_bybit_portfolio_margin_takes_total_equity() -> None:
    acc = sample_bybit_unified("PORTFOLIO_MARGIN")
    acc.totals["totalEquity"] = "4700.00000000"  # options value counts in PM's equity
    with FakeBybitUnified(acc) as fake:
        got = xfetch.fetch_open(_client(fake, "bybit"), rates=False)
    assert got.account_equity == 4_700 and got.account_maint == 238
    assert got.ratio_account.startswith("Bybit unified trading account, portfolio margin")
    # Bybit's own rate (238 / 4,600 rounded) is not 238 / 4,700: noted, not hidden
    assert any("haircut or order losses" in n for n in got.notes)


# ---------------------------------------------------------------- Binance portfolio margin
@pytest.fixture(scope="module")
def binance_pm(tmp_path_factory: Any) -> Any:
    with FakeBinancePortfolio(sample_portfolio_account()) as fake:
        yield _imported(fake, "binanceusdm", tmp_path_factory.mktemp("pm"),
                        portfolio_margin=True)
        paths = {e.path for e in fake.log}
        assert not fake.server_errors, fake.server_errors
    assert {"/papi/v1/account", "/papi/v1/um/positionRisk", "/papi/v1/um/income"} <= paths
    assert "/fapi/v1/positionMargin/history" not in paths  # all cross: no margin moves


def test_binance_portfolio_margin_uni_mmr_and_shock(binance_pm) -> None:
    _, account, _ = binance_pm
    # the equity uniMMR divides: uniMMR × maintenance, 66.66666667 × 300 (Binance's 8 dp)
    assert account["account_equity"] == pytest.approx(20_000, rel=1e-9)
    assert account["account_maint"] == pytest.approx(300)
    assert account["liq_threshold"] == pytest.approx(1.05)
    assert account["uni_mmr"] == pytest.approx(66.66666667, rel=1e-12)  # Binance's label
    # hand-worked (recorded_unified.sample_portfolio_account): equity 20,000 + 39,500 m
    # meets 1.05 × (300 + 282 m): m = (315 − 20,000) / (39,500 − 296.1)
    move = account["account_shock"]
    assert move == pytest.approx((315 - 20_000) / (39_500 - 296.1), rel=1e-9)
    book = [(1 if float(amt) > 0 else -1, abs(float(amt)), float(mark))
            for _, _, amt, _entry, mark in PM_POSITIONS]
    equity, maint = _after_shock(move, book, account["account_equity"], 300, 0.004)
    assert equity / maint == pytest.approx(BINANCE_PM_THRESHOLD, rel=1e-9)  # uniMMR 105 %


def test_binance_portfolio_margin_reconcile(binance_pm) -> None:
    report, _, _ = binance_pm
    assert [r.cause.split(" (")[0] for r in report.reconciled] == [
        "no per-position liquidation price: the account ratio decides"] * 3
    assert all("uniMMR falls to 105%" in r.cause for r in report.reconciled)


def test_binance_documented_account_answer() -> None:
    """Binance's documented /papi/v1/account example: uniMMR 5167.92171923 on equity
    122,607.35137903 and maintenance 23.72469206; the imported figures give the same ratio."""
    acc = PortfolioAccount(**{**sample_portfolio_account().__dict__,
                              "papi_account": dict(PAPI_ACCOUNT_EXAMPLE)})
    with FakeBinancePortfolio(acc) as fake:
        got = xfetch.fetch_open(_client(fake, "binanceusdm", portfolio_margin=True),
                                rates=False)
    assert got.account_maint == 23.72469206 and got.liq_threshold == 1.05
    ratio = account_ratio(got.account_equity, got.account_maint, got.liq_threshold)
    assert ratio["uni_mmr"] == pytest.approx(5167.92171923, rel=1e-12)
    assert got.account_equity == pytest.approx(122_607.35137903, rel=1e-8)


def test_portfolio_margin_is_binance_usdm_only() -> None:
    with pytest.raises(xb.ExchangeError, match="portfolio_margin applies to binanceusdm"):
        xb.connect("bybit", CREDS, portfolio_margin=True)


# ---------------------------------------------------------------- core and workbooks
def test_account_shock_threshold_in_the_core() -> None:
    # the FORMULAS.md example book, liquidated at equity / maintenance 1.05
    args = (["long", "short"], [1, 10], [20_000, 1_500], [21_000, 1_400], 2_000)
    m = lv.account_shock(*args, threshold=1.05)
    assert m == pytest.approx(3_000 / 6_816.25 - 1, rel=1e-12)
    equity = 2_000 + (21_000 * (1 + m) - 20_000) - 10 * (1_400 * (1 + m) - 1_500)
    maint = 0.005 * (21_000 + 14_000) * (1 + m)
    assert equity / maint == pytest.approx(1.05, rel=1e-9)
    assert lv.account_shock(*args) == lv.account_shock(*args, threshold=1)
    with pytest.raises(lv.InputError, match="threshold must be > 0"):
        lv.account_shock(*args, threshold=0)


def test_an_account_past_its_ratio_says_so() -> None:
    from leverage.portfolio import ALREADY_AT_RATIO

    rows = _bybit_rows()
    # uniMMR 300 / 290 = 103 %: past Binance's 105 % though above maintenance
    past = rebalance(rows, 5_000.0, 0.0, account_equity=300.0, account_maint=290.0,
                     liq_threshold="105%").account
    assert past["account_shock"] == ALREADY_AT_RATIO and past["shock_position"] == ""
    assert past["uni_mmr"] == pytest.approx(300 / 290)
    at_100 = rebalance(rows, 5_000.0, 0.0, account_equity=300.0, account_maint=290.0).account
    assert isinstance(at_100["account_shock"], float)  # 103 % is above Bybit's 100 %
    with pytest.raises(lv.InputError, match="liq_threshold must be"):
        rebalance(rows, 5_000.0, 0.0, account_equity=300.0, account_maint=290.0,
                  liq_threshold=105)


def _bybit_rows() -> list[dict[str, Any]]:
    return [{"position_id": f"{s}-{idx}", "symbol": s, "side": "long" if side == "Buy"
             else "short", "contract": "linear", "qty": float(size), "entry_price": float(avg),
             "mark_price": float(mark), "margin_mode": "cross", "mmr": 0.005}
            for s, idx, side, size, avg, mark in BYBIT_POSITIONS]


FIGURES = {"account_equity": 4_600.0, "account_maint": 238.0, "liq_threshold": "105%"}


def _core_account() -> dict[str, Any]:
    return rebalance(_bybit_rows(), 5_000.0, 500.0, account_equity=4_600.0,
                     account_maint=238.0, liq_threshold=1.05).account


def test_native_workbook_shows_the_ratio_and_shock_as_the_core(tmp_path: Path) -> None:
    """Native formulas (Google Sheets, LibreOffice, Excel without the add-in), evaluated by
    the ``formulas`` engine; the threshold typed as percent text."""
    from test_rebalance_guardrails import typed_workbook
    from xl_engine import compute

    path = typed_workbook(tmp_path / "r.xlsx", "native", _bybit_rows(), 5_000.0, 500.0)
    wb = openpyxl.load_workbook(path)
    for key, v in FIGURES.items():
        wb[ACC.title][f"B{L.account_row(key)}"] = v
    wb.save(path)
    values = compute(path)
    want = _core_account()
    assert want["account_mm_rate"] == pytest.approx(238 / 4_600, rel=1e-12)
    for key in ("account_mm_rate", "uni_mmr", "account_shock"):
        got = values.get((ACC.title, f"B{L.account_row(key)}"))
        assert got == pytest.approx(want[key], rel=1e-9), key
    assert values.get((ACC.title, f"B{L.account_row('shock_position')}")) == \
        want["shock_position"]


def test_addin_workbook_passes_the_threshold_to_account_shock(tmp_path: Path) -> None:
    """The add-in's ACCOUNT_SHOCK takes the threshold the Account sheet's helper holds; the
    UDF itself gives the core's move (one column of cross positions = one account)."""
    from leverage_addin import udfs
    from leverage_templates.rebalance import account_formulas

    shock = account_formulas(L.FIRST_DATA_ROW + 3, "udf")["account_shock"]
    assert f",\"either\",{ACC.title}!$B${L.account_row('shock_threshold')})" in shock
    rows = _bybit_rows()
    upnl = sum((1 if r["side"] == "long" else -1) * r["qty"] * (r["mark_price"]
                                                                 - r["entry_price"])
               for r in rows)
    maint = sum(r["qty"] * r["mark_price"] * r["mmr"] for r in rows)
    # the sheet's shock wallet: equity − cross PnL − k × (exchange maintenance − the rows')
    wallet = 4_600 - upnl - 1.05 * (238 - maint)
    got: Any = udfs.ACCOUNT_SHOCK([[r["side"]] for r in rows], [[r["qty"]] for r in rows],
                             [[r["entry_price"]] for r in rows],
                             [[r["mark_price"]] for r in rows], wallet,
                             [[r["mmr"]] for r in rows], None, "either", 1.05)
    while isinstance(got, list):  # the add-in answers a 1 × 1 range
        (got,) = got
    assert float(got) == pytest.approx(_core_account()["account_shock"], rel=1e-12)


def test_cli_portfolio_margin_flag(capsys, monkeypatch) -> None:
    from leverage.cli import main

    monkeypatch.setenv(xb.client.KEY_ENV, API_KEY)
    monkeypatch.setenv(xb.client.SECRET_ENV, API_SECRET)
    with FakeBinancePortfolio(sample_portfolio_account()) as fake:
        code = main(["exchange", "reconcile", "--exchange", "binanceusdm",
                     "--portfolio-margin", "--api-url", fake.url, "--timeout", "30"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "/papi/v1/um/positionRisk" in fake.paths()
    assert out.count("no per-position liquidation price: the account ratio decides") == 3
    # the flag is Binance USDⓈ-M's only: refused in one line before any request
    assert main(["exchange", "reconcile", "--exchange", "bybit", "--portfolio-margin",
                 "--api-url", "http://127.0.0.1:9", "--timeout", "1"]) == 2
    assert "portfolio_margin applies to binanceusdm" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["google", "xlsx"])
def test_the_sync_writes_the_ratio_and_shock(kind: str, tmp_path: Path) -> None:
    """The sync (Google Sheets and a local .xlsx) reads the three Account inputs, the
    threshold typed as percent text, and writes the core's ratio and shock."""
    from fake_sheets import FakeSheets
    from typed_books import typed_rebalance

    keys = POS.keys("input")
    typed = [[r.get(k) for k in keys] for r in _bybit_rows()]
    inputs = [5_000.0, 500.0, "", "", 4_600.0, 238.0, "105%"]
    assert len(inputs) == len(L.ACCOUNT_INPUT_ROWS)
    want = _core_account()
    with FakeSheets() as fake:
        backend, read = typed_rebalance(kind, fake, tmp_path, inputs, typed)
        sb.sync(backend, "rebalance")
        grid = read(ACC.title)
        assert not fake.server_errors
    for k in ("account_mm_rate", "uni_mmr", "account_shock"):
        assert float(grid[L.account_row(k) - 1][1]) == pytest.approx(want[k], rel=1e-12), k
    assert grid[L.account_row("shock_position") - 1][1] == want["shock_position"]
