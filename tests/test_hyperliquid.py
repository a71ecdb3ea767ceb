"""Hyperliquid: its liquidation convention against real positions, and the import by wallet
address (no API key) through real ccxt against the recorded ``POST /info`` on loopback
(:mod:`leverage_exchange.recorded_hyperliquid`)."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_exchange import journal_tables

import leverage as lv
from leverage.conventions.hyperliquid import maintenance_rate, margin_table_tiers
from leverage.tiers import tables_from_ccxt

# -- the convention ---------------------------------------------------------------------------

# Real Hyperliquid positions as ccxt's fetch_positions returned them, each at zero PnL, with
# the liquidation price Hyperliquid showed: freqtrade/freqtrade, tests/exchange/
# test_hyperliquid.py, test_hyperliquid_dry_run_liquidation_price, commit
# 3b1fb5af847863302393b0413321642d454e35a5 (coin, side, entryPrice, contracts, collateral =
# marginUsed, liquidationPrice). Its HIP-3 rows (XYZ-AAPL ...) are round numbers made up for
# the test, not Hyperliquid's: left out.
FREQTRADE_POSITIONS = [
    ("ETH", "long", 2458.5, 0.015, 36.864593, 0.86915825),
    ("BTC", "long", 63287.0, 0.00039, 24.673292, 22.37166537),
    ("SOL", "long", 146.82, 0.16, 23.482979, 0.05269872),
    ("SOL", "long", 145.83, 0.33, 24.045107, 74.83696193),
    ("ETH", "long", 2459.5, 0.0199, 24.454895, 1243.0411908),
    ("BTC", "long", 62739.0, 0.00077, 24.137992, 31708.03843631),
    ("DOGE", "long", 0.11586, 437.0, 25.29769, 0.05945697),
    ("ETH", "short", 2642.8, 0.019, 25.091876, 3924.18322043),
    ("SOL", "short", 155.89, 0.32, 24.924941, 228.07847866),
    ("DOGE", "short", 0.14333, 351.0, 25.136807, 0.20970228),
    ("BTC", "short", 68595.0, 0.00069, 23.64871, 101849.99354283),
    ("BTC", "short", 65536.0, 0.00099, 21.604172, 86493.46174617),
    ("SOL", "long", 173.06, 0.6, 20.735658, 142.05186667),
    ("ETH", "long", 2545.5, 0.0329, 20.909894, 1929.23322895),
    ("BTC", "short", 67400.0, 0.00031, 20.887308, 133443.97317151),
    ("ETH", "short", 2552.0, 0.0327, 20.833393, 3157.53150453),
    ("BTC", "long", 66930.0, 0.0015, 20.043862, 54108.51043771),
    ("BTC", "long", 67033.0, 0.00121, 20.251817, 50804.00091827),
    ("ETH", "long", 2521.9, 0.0237, 19.902091, 1699.14071943),
    ("BTC", "short", 68139.0, 0.00145, 19.72573, 80933.61590987),
    ("SOL", "short", 178.29, 0.11, 19.605036, 347.82205322),
    ("SOL", "long", 176.23, 0.33, 19.364946, 120.56240404),
    ("SOL", "short", 173.08, 0.33, 19.01881, 225.08561715),
    ("BTC", "short", 68240.0, 0.00105, 17.887922, 84431.79820839),
    ("ETH", "short", 2518.4, 0.007, 17.62263, 4986.05799151),
    ("ETH", "long", 2533.2, 0.0347, 17.555195, 2047.7642302),
    ("DOGE", "long", 0.13284, 360.0, 15.943218, 0.09082388),
    ("SOL", "short", 163.11, 0.48, 15.650731, 190.94213618),
    ("BTC", "long", 67141.0, 0.00067, 14.979079, 45236.52992613),
]
# the assets' maximum leverage when they were recorded (the same test's markets fixture,
# limits.leverage.max)
MAX_LEVERAGE = {"BTC": 50, "ETH": 50, "SOL": 20, "DOGE": 20}


def _rounding(qty: float, rate: float, side: str) -> float:
    """How far the exchange's own rounding moves its price: it keeps and reports margin in
    micro-USDC (6 decimals; the positions here are within 0.8 of one of ours), which moves the
    price by 1e-6 / qty / (1 − s·mmr), and it reports the price to 8 decimals (0.5e-8)."""
    s = 1 if side == "long" else -1
    return 1e-6 / qty / (1 - s * rate) + 0.5e-8


@pytest.mark.parametrize(("coin", "side", "entry", "qty", "margin", "theirs"),
                         FREQTRADE_POSITIONS)
def test_real_positions_to_the_exchanges_rounding(coin: str, side: str, entry: float,
                                                  qty: float, margin: float,
                                                  theirs: float) -> None:
    rate = maintenance_rate(MAX_LEVERAGE[coin])
    ours = lv.liq_price(side, qty, entry, margin, rate, exchange="hyperliquid")
    assert abs(ours - theirs) <= _rounding(qty, rate, side) + 1e-9 * theirs
    # cross, with the position's collateral as the whole account (freqtrade's cross case):
    # the same price, Hyperliquid's cross rule being Binance's
    assert lv.cross_liq_price(side, qty, entry, margin, mmr=rate) == pytest.approx(ours,
                                                                                   rel=1e-12)
    # and back: the margin for that price is the exchange's margin
    assert lv.margin_for_liq_price(side, qty, entry, ours, rate, exchange="hyperliquid") == \
        pytest.approx(margin, rel=1e-9)


def test_the_convention_is_binances_form_at_maintenance_half_the_max_leverage_margin() -> None:
    # Hyperliquid's own form at the entry price (docs, "Liquidations"): margin_available =
    # margin − qty·entry·l, liq = entry − s·margin_available / qty / (1 − l·s), l = 1/100
    qty, entry, margin, rate = 0.0199, 2459.5, 24.454895, 1 / 100
    published = entry - (margin - qty * entry * rate) / qty / (1 - rate)
    assert lv.liq_price("long", qty, entry, margin, rate, exchange="hyperliquid") == \
        pytest.approx(published, rel=1e-12)
    assert maintenance_rate(40) == 0.0125 and maintenance_rate(3) == pytest.approx(1 / 6)
    with pytest.raises(lv.InputError, match="contract must be linear for exchange='hyperliquid'"):
        lv.liq_price("long", 100, 60_000, 1, 0.01, contract="inverse", exchange="hyperliquid")
    for bad in (0, 0.5, float("nan"), "40", True):
        with pytest.raises(ValueError, match="max_leverage must be a number >= 1"):
            maintenance_rate(bad)  # type: ignore[arg-type]


def test_a_margin_table_is_a_continuous_tier_table() -> None:
    # BTC's mainnet margin table (docs, "Margin tiers"): 40x to 150M notional, 20x above;
    # deduction(1) = 150M × (2.5 % − 1.25 %) = 1,875,000
    rows = margin_table_tiers([{"lowerBound": "150000000.0", "maxLeverage": 20},
                               {"lowerBound": "0.0", "maxLeverage": 40}])
    table = tables_from_ccxt({"hyperliquid:BTCUSDC": rows})["hyperliquid:BTCUSDC"]
    assert list(table.mmrs) == [0.0125, 0.025]
    assert list(table.maint_amounts) == [0.0, 1_875_000.0]
    assert list(table.max_leverages) == [40, 20]
    # a position in tier 1 liquidates as with the single rate
    assert lv.liq_price("long", 1, 60_000, 6_000, tiers=table, exchange="hyperliquid") == \
        pytest.approx(lv.liq_price("long", 1, 60_000, 6_000, 0.0125, exchange="hyperliquid"))
    # 3,000 BTC at 60,000 (180M, tier 2): MM continuous at the bound
    r1, a1, _ = table.lookup(150e6 - 1)
    r2, a2, _ = table.lookup(150e6)
    assert (150e6 - 1) * r1 - a1 == pytest.approx(150e6 * r2 - a2, abs=0.02)
    for bad in ([], [{"lowerBound": "-1", "maxLeverage": 40}], [{"maxLeverage": 40}], ["x"]):
        with pytest.raises(ValueError):
            margin_table_tiers(bad)  # type: ignore[arg-type]


# -- the import ---------------------------------------------------------------------------

pytest.importorskip("ccxt")

import leverage_exchange as xb  # noqa: E402
import leverage_sheets as sb  # noqa: E402
from leverage.cli import main  # noqa: E402
from leverage_exchange import cli as xcli  # noqa: E402
from leverage_exchange.client import wallet_credentials  # noqa: E402
from leverage_exchange.recorded_hyperliquid import (  # noqa: E402
    ADDRESS,
    FakeHyperliquid,
    sample_hyperliquid_account,
)

HEALTHY_MS = 30_000


@pytest.fixture
def fake() -> Iterator[FakeHyperliquid]:
    with FakeHyperliquid(sample_hyperliquid_account(), stall_seconds=1.5) as server:
        yield server
    assert not server.server_errors


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key anywhere: Hyperliquid needs none. (And ccxt's limiter, which would pace the
    command's requests by Hyperliquid's weights, off: not what these check.)"""
    for env in (xb.client.KEY_ENV, xb.client.SECRET_ENV, xb.client.PASSWORD_ENV,
                xb.client.KEY_FILE_ENV):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setattr(xcli, "connect", functools.partial(xcli.connect, rate_limit_ms=1))


def client(fake: FakeHyperliquid, address: str = ADDRESS) -> Any:
    return xb.connect("hyperliquid", wallet_credentials(address), api_url=fake.url,
                      timeout_ms=HEALTHY_MS, rate_limit_ms=1)


def since() -> str:
    """21 days back: the recorded account's history starts 20 days back, its SOL position
    opened 30 days back (before the start)."""
    return xb.convert._when(xb.client._ccxt().Exchange.milliseconds() - 21 * 86_400_000
                            ).date().isoformat()


def journal(tmp_path: Path) -> Any:
    book = sb.open_local(tmp_path / "journal.xlsx")
    sb.init(book, "journal")
    return book


def test_import_by_address_journal_parity_reconcile_and_a_second_run(
        fake: FakeHyperliquid, tmp_path: Path, no_key: None) -> None:
    book = journal(tmp_path)
    start = since()
    report = xb.import_account(client(fake), book, start)
    positions, events = journal_tables(book)
    sol = f"SOL-L-since{start.replace('-', '')}"
    # ids {coin}-{L|S}-{opening fill}, as the other exchanges'; the coin, not ccxt's index
    assert [(p["position_id"], p["symbol"], p["side"], p["margin_currency"], p["mmr"])
            for p in positions] == [
        (sol, "SOL", "long", "USDC", 0.025),  # 20x: 1 / 40
        ("BTC-L-101", "BTC", "long", "USDC", 0.0125),  # its margin table's tier 1, 40x
        ("ETH-S-201", "ETH", "short", "USDC", 0.02),
        ("DOGE-L-301", "DOGE", "long", "USDC", 0.05),
        ("DOGE-S-302r", "DOGE", "short", "USDC", 0.05),
        ("AVAX-L-401", "AVAX", "long", "USDC", 0.05)]
    rows = [(e["position_id"], e["event"], e["price"], e["qty"], e["amount"], e["fee"])
            for e in events]
    assert rows == [
        # opened before the start: the exchange's now (100 at 150, cross: 15,000 / 10x) with
        # the window's funding (−0.8) undone
        (sol, "open", 150, 100, pytest.approx(1500.8), None),
        # one order, two fills; isolated 10x: 600 / 10 less the 0.035 % fee 0.21
        ("BTC-L-101", "open", 60000, 0.01, pytest.approx(59.79), 0.21),
        ("BTC-L-101", "funding", None, None, -0.12, None),
        (sol, "funding", None, None, -0.8, None),
        ("BTC-L-101", "increase", 62000, 0.01, pytest.approx(61.783), 0.217),  # the scale-in
        ("BTC-L-101", "partial_close", 63000, 0.005, None, 0.11025),
        ("ETH-S-201", "open", 3000, 0.5, 300, 0.525),  # cross: no fee off the margin
        ("ETH-S-201", "funding", None, None, 0.15, None),
        ("DOGE-L-301", "open", 0.1, 1000, pytest.approx(19.965), 0.035),
        # "Long > Short": the order closes the long and opens 500 short
        ("DOGE-S-302r", "open", 0.11, 500, pytest.approx(10.98075), 0.01925),
        ("DOGE-L-301", "close", 0.11, None, None, 0.0385),
        ("DOGE-S-302r", "close", 0.105, None, None, 0.018375),
        ("AVAX-L-401", "open", 30, 10, pytest.approx(29.895), 0.105),
        ("AVAX-L-401", "close", 28.4, None, None, 0.0994),  # the liquidation's fill
        # the 50 added (75 % kept after the close): in no answer, its net from marginUsed
        ("BTC-L-101", "add_margin", 63000, None, pytest.approx(37.5), None),
    ]
    assert "Hyperliquid's API lists no margin moves" in events[-1]["reason"]
    # the liquidation's fill at 28.40 is beyond the journal's liquidation price, (30 −
    # 29.895 / 10) / 0.95 = 28.43: the journal calls it liquidated there
    assert "liquidation" in events[-2]["reason"]
    assert [e["status"][:18] for e in events if e["status"]] == ["liquidated at 28.4"]
    assert any("no history of isolated margin" in n for n in report.notes)
    # the journal ends on the exchange's size, entry and isolated margin (marginUsed −
    # unrealizedPnl = 136.08975 − 7.5), and our liquidation prices are the exchange's
    assert [(x.position_id, x.ok) for x in report.parity] == [
        ("BTC-L-101", True), ("ETH-S-201", True), (sol, True)]
    assert report.parity[0].margin == pytest.approx(128.58975)
    assert [(r.position.position_id, r.cause, round(r.theirs, 4)) for r in report.reconciled] == [
        ("BTC-L-101", "match", 53090.9873), ("ETH-S-201", "match", 6176.4706),
        (sol, "match", 122.8615)]
    assert all(abs(r.gap) < 1e-6 for r in report.reconciled)
    kinds = [e.params.get("type") for e in fake.log]
    assert "userFillsByTime" in kinds and "userFunding" in kinds
    assert all(e.method == "POST" and e.path == "/info" for e in fake.log)
    assert all(e.params.get("user", ADDRESS) == ADDRESS for e in fake.log)
    # a second run adds nothing
    again = xb.import_account(client(fake), book, start)
    assert again.sheet.cells_written == 0 and not again.sheet.changed
    assert [x.ok for x in again.parity] == [True] * 3


def test_fills_and_funding_page_by_time(tmp_path: Path) -> None:
    """Pages of 2 fills and 1 funding row: the same journal as one page each."""
    with FakeHyperliquid(sample_hyperliquid_account(), fill_page=2, funding_page=1) as small:
        report = xb.import_account(client(small), journal(tmp_path), since())
        kinds = [e.params.get("type") for e in small.log]
    assert (report.sheet.appended["Positions"], report.sheet.appended["Events"]) == (6, 15)
    assert all(x.ok for x in report.parity)
    assert kinds.count("userFillsByTime") >= 4 and kinds.count("userFunding") >= 3


def test_rebalance_gets_the_cross_wallet_and_withdrawable(fake: FakeHyperliquid,
                                                          tmp_path: Path) -> None:
    book = sb.open_local(tmp_path / "rebalance.xlsx")
    sb.init(book, "rebalance")
    report = xb.import_account(client(fake), book, since(), "rebalance")
    ex = client(fake)
    got = xb.fetch_open(ex)
    # crossMarginSummary.accountValue 2,050 less the cross PnL (+50 − 1,000): 3,000
    assert got.wallet_balance == pytest.approx(3000)
    assert xb.account_figures(ex, got) == {"wallet_balance": pytest.approx(3000),
                                           "free_balance": pytest.approx(360),
                                           # liquidated per position, not on an account ratio
                                           "account_equity": None, "account_maint": None,
                                           "liq_threshold": None}
    rows = xb.rebalance_rows(report.open_positions, got.tiers)
    assert [(r["position_id"], r["margin_mode"], r["margin"], r["exchange_liq_price"])
            for r in rows] == [
        ("BTC-L-101", "isolated", pytest.approx(128.58975), pytest.approx(53090.98734)),
        ("ETH-S-201", "cross", None, pytest.approx(6176.4706, abs=1e-4)),
        (f"SOL-L-since{since().replace('-', '')}", "cross", None,
         pytest.approx(122.8615, abs=1e-4))]


def test_cli_import_and_reconcile_by_address_with_no_key(
        fake: FakeHyperliquid, tmp_path: Path, no_key: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal.xlsx"
    assert main(["exchange", "import", "--exchange", "hyperliquid", "--address", ADDRESS,
                 "--since", since(), "--file", str(path), "--api-url", fake.url,
                 "--timeout", "30"]) == 0
    out = capsys.readouterr().out
    assert "BTC-L-101 long: journal = exchange" in out
    assert main(["exchange", "reconcile", "--exchange", "hyperliquid", "--address",
                 ADDRESS.upper().replace("0X", "0x"), "--api-url", fake.url]) == 0
    out = capsys.readouterr().out
    assert out.count(" match") == 3 and "53,090.99" in out


@pytest.mark.parametrize(("args", "says"), [
    (["--exchange", "hyperliquid", "--address", "0x1234"], "address must be a wallet address"),
    (["--exchange", "hyperliquid", "--address", "0x" + "g" * 40],
     "address must be a wallet address"),
    (["--exchange", "hyperliquid", "--address", ADDRESS + "00"],
     "address must be a wallet address"),
    (["--exchange", "hyperliquid"], "address is required for hyperliquid"),
    (["--exchange", "bybit", "--address", ADDRESS], "address is only for an exchange read"),
])
def test_a_bad_address_is_one_line_before_any_request(
        args: list[str], says: str, fake: FakeHyperliquid, tmp_path: Path, no_key: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal.xlsx"
    code = main(["exchange", "import", *args, "--since", "2024-01-01", "--file", str(path),
                 "--api-url", fake.url])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and says in err, err
    assert fake.log == [] and not path.exists()


def test_an_address_with_no_account_imports_nothing(fake: FakeHyperliquid,
                                                    tmp_path: Path) -> None:
    report = xb.import_account(client(fake, "0x" + "9" * 40), journal(tmp_path), since())
    assert not any(report.sheet.appended.values()) and report.open_positions == []


@pytest.mark.parametrize(("kind", "fault"), [
    ("clearinghouseState", "html"), ("clearinghouseState", "negative"),
    ("userFillsByTime", "empty-object"), ("userFillsByTime", "year-3000"),
    ("userFunding", "truncated"), ("metaAndAssetCtxs", "null"), ("activeAssetData", "nan"),
])
def test_garbage_is_one_line_and_no_byte_changes(
        kind: str, fault: str, fake: FakeHyperliquid, tmp_path: Path, no_key: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    laid = journal(tmp_path)
    path = tmp_path / "copy.xlsx"
    shutil.copy(tmp_path / "journal.xlsx", path)
    del laid
    before = path.read_bytes()
    fake.fail(f"/info:{kind}", *[fault] * 20)
    code = main(["exchange", "import", "--exchange", "hyperliquid", "--address", ADDRESS,
                 "--since", since(), "--file", str(path), "--api-url", fake.url,
                 "--timeout", "30"])
    out, err = capsys.readouterr()
    assert code == 2, out
    assert err.count("\n") == 1, err
    assert err.startswith(f"leverage: error: hyperliquid sent a bad answer to POST /info {kind} "
                          "(reading "), err
    assert path.read_bytes() == before


def test_a_rate_limit_is_retried(fake: FakeHyperliquid, tmp_path: Path) -> None:
    fake.fail("/info:userFillsByTime", "429")
    report = xb.import_account(client(fake), journal(tmp_path), since())
    assert report.sheet.appended["Events"] == 15
    assert [e.status for e in fake.log if e.params.get("type") == "userFillsByTime"][:2] == \
        [429, 200]
