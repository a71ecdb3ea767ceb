"""Tier tables from the Symbol: the public fetch (real ccxt against loopback servers in each
exchange's documented JSON), the shipped Binance snapshot, freshest table first, and the
core's blank rate on a row with a known symbol (journal replay, rebalance, the local sync)."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import pytest

import leverage as lv
from leverage import tiers as tiers_mod
from leverage.journal import replay
from leverage.portfolio import rebalance


@pytest.fixture(autouse=True)
def _empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(tiers_mod.CACHE_ENV, str(tmp_path / "cache"))
    for name in ("LEVERAGE_EXCHANGE_KEY", "LEVERAGE_EXCHANGE_SECRET",
                 "LEVERAGE_EXCHANGE_KEY_FILE", "LEVERAGE_TIERS_FILE"):
        monkeypatch.delenv(name, raising=False)
    tiers_mod._registry.cache_clear()
    yield
    tiers_mod._registry.cache_clear()


# ------------------------------------------------------------------ the shipped snapshot
def test_every_binance_usdm_symbol_is_shipped_dated():
    names = lv.tier_table_names()
    assert sum(n.startswith("binance:") for n in names) > 900
    # freqtrade 2026.9's binance_leverage_tiers.json (Binance /fapi/v1/leverageBracket):
    # SOLUSDT bracket 1 is 0.5 % up to 50,000 USDT at 75x (leverage/data/SOURCES.md)
    sol = lv.get_tier_table("binance:SOLUSDT")
    assert "freqtrade==2026.9" in sol.source
    assert tiers_mod.table_date("binance:SOLUSDT") == date(2026, 9, 29)
    assert sol.tiers[0].mmr == 0.005 and sol.contract in ("", "linear")
    assert sol.continuous  # the maintenance amounts (cum) are Binance's, continuous


def test_a_fetch_older_than_the_snapshot_loses_to_it():
    rows = [{"tier": 1, "currency": "USDT", "minNotional": 0, "maxNotional": None,
             "maintenanceMarginRate": 0.02, "maxLeverage": 20}]
    tiers_mod.save_tier_cache("binanceusdm", {"SOL/USDT:USDT": rows}, today=date(2026, 9, 1))
    assert lv.get_tier_table("binance:SOLUSDT").tiers[0].mmr == 0.005
    tiers_mod.save_tier_cache("binanceusdm", {"SOL/USDT:USDT": rows},
                              today=date.today() - timedelta(days=1))
    tiers_mod._registry.cache_clear()
    assert lv.get_tier_table("binance:SOLUSDT").tiers[0].mmr == 0.02
    assert tiers_mod.cache_age_days("binance:SOLUSDT") == 1


def test_symbol_cells_name_tables():
    assert tiers_mod.symbol_table_name(" ethusdt ") == "binance:ETHUSDT"
    assert tiers_mod.symbol_table_name("bybit:BTCUSDT") == "bybit:BTCUSDT"
    assert tiers_mod.symbol_table_name("SOL/USDT:USDT") == "binance:SOLUSDT"
    assert tiers_mod.symbol_table_name(None) == tiers_mod.symbol_table_name(7) == ""
    assert tiers_mod.symbol_table("NOSUCHUSDT") is None  # unknown: no error, no table
    # binance:BTCUSDT bracket 3 (0.65 %, cum 1,500) holds a notional of 1.2M
    assert tiers_mod.symbol_rate("BTCUSDT", 1_200_000.0) == (0.0065, 1500.0)
    assert tiers_mod.symbol_rate("BTCUSDT", math.nan) is None


# ------------------------------------------------------------------ the core
BTC_BIG = {"position_id": "T1", "symbol": "BTCUSDT", "side": "long", "qty": 20,
           "entry_price": 60_000, "mark_price": 61_000, "margin": 200_000}


def test_rebalance_blank_rate_takes_the_tier_and_a_typed_one_is_checked():
    # 20 BTC at 60,000 = 1.2M at entry: bracket 3, 0.65 % less 1,500
    want = lv.liq_price("long", 20, 60_000, 200_000, 0.0065, 1500)
    typed = {**BTC_BIG, "position_id": "T2", "mmr": 0.02}  # 3x the tier's 0.65 %
    near = {**BTC_BIG, "position_id": "T3", "mmr": 0.01}  # within 2x: no flag
    unknown = {**BTC_BIG, "position_id": "T4", "symbol": "NOSUCHUSDT"}  # default 0.5 %
    r = rebalance([BTC_BIG, typed, near, unknown], 1_000, 1_000)
    assert r.columns["liq_price"][0] == pytest.approx(want, rel=1e-12)
    assert r.columns["maint_margin"][0] == pytest.approx(20 * 61_000 * 0.0065 - 1500)
    assert r.columns["liq_price"][1] == pytest.approx(
        lv.liq_price("long", 20, 60_000, 200_000, 0.02, 0), rel=1e-12)
    assert r.columns["warnings"][1] == tiers_mod.OVERRIDE_NOTE.format(name="binance:BTCUSDT")
    assert r.columns["warnings"][2] == r.columns["warnings"][3] == ""
    assert r.columns["liq_price"][3] == pytest.approx(
        lv.liq_price("long", 20, 60_000, 200_000, lv.DEFAULT_MMR, 0), rel=1e-12)


def test_journal_rate_follows_the_notional_at_entry_event_by_event():
    pos = [{"position_id": "A", "symbol": "BTCUSDT", "side": "long"},
           {"position_id": "B", "symbol": "BTCUSDT", "side": "long", "mmr": 0.05}]
    ev = [{"date": "2026-01-02", "position_id": "A", "event": "open", "price": 60_000,
           "qty": 1, "amount": 6_000},
          {"date": "2026-01-03", "position_id": "A", "event": "increase", "price": 60_000,
           "qty": 19, "amount": 194_000},
          {"date": "2026-01-02", "position_id": "B", "event": "open", "price": 60_000,
           "qty": 1, "amount": 6_000}]
    r = replay(pos, ev)
    # 60,000 at entry: bracket 1 (0.4 %); after the increase 1.2M: bracket 3 (0.65 %, 1,500)
    assert r.columns["liq_price"][0] == pytest.approx(
        lv.liq_price("long", 1, 60_000, 6_000, 0.004, 0), rel=1e-12)
    assert r.columns["liq_price"][1] == pytest.approx(
        lv.liq_price("long", 20, 60_000, 200_000, 0.0065, 1500), rel=1e-12)
    assert r.columns["warnings"][:2] == ["", ""]
    assert r.columns["warnings"][2] == tiers_mod.OVERRIDE_NOTE.format(name="binance:BTCUSDT")


def test_local_sync_computes_a_blank_rate_with_the_tier(tmp_path):
    import leverage_sheets as sb
    from leverage.layout import REBALANCE_POSITIONS as P
    from leverage.layout import account_row

    path = tmp_path / "r.xlsx"
    sb.init(sb.open_local(path), "rebalance")
    row = [BTC_BIG.get(k) for k in P.keys("input")]
    _type(path, row, {account_row("wallet_balance"): 1_000, account_row("free_balance"): 1_000})
    assert sb.sync(sb.open_local(path), "rebalance").changed
    import openpyxl

    ws = openpyxl.load_workbook(path, data_only=True)[P.title]
    got = ws[f"{P.letter('liq_price')}2"].value
    assert got == pytest.approx(lv.liq_price("long", 20, 60_000, 200_000, 0.0065, 1500),
                                rel=1e-9)


def _type(path, row, account) -> None:
    import openpyxl

    from leverage.layout import REBALANCE_ACCOUNT, REBALANCE_POSITIONS

    wb = openpyxl.load_workbook(path)
    ws = wb[REBALANCE_POSITIONS.title]
    for j, v in enumerate(row, start=1):
        if v is not None:
            ws.cell(2, j, v)
    acc = wb[REBALANCE_ACCOUNT.title]
    for r, v in account.items():
        acc.cell(r, 2, v)
    wb.save(path)


# ------------------------------------------------------------------ the public fetch
def _cli(args: list[str]) -> int:
    from leverage.cli import main

    return main(args)


def test_bybit_tiers_are_fetched_with_no_key(tmp_path, capsys):
    pytest.importorskip("ccxt")
    from leverage_exchange.recorded_exchange import FakeBybit, sample_bybit_account

    out = tmp_path / "tiers"
    with FakeBybit(sample_bybit_account()) as fake:
        assert _cli(["tiers", "fetch", "--exchange", "bybit", "--api-url", fake.url,
                     "--out", str(out)]) == 0
        assert all(not line.path.startswith("/v5/position") for line in fake.log)
    said = capsys.readouterr().out
    assert "saved 3 tier tables of bybit" in said and "LEVERAGE_TIERS_CACHE" in said
    saved = json.loads((out / "bybit.json").read_text())
    assert saved["_meta"]["fetched"] == date.today().isoformat()
    # Bybit's documented BTCUSDT risk limits (v5 market/risk-limit, 3 tiers): 0.5 % to 2M,
    # 0.56 % less 1,200 to 2.6M, 0.62 % less 2,760 to 3.2M
    tables = lv.tables_from_ccxt({k: v for k, v in saved.items() if k != "_meta"})
    btc = tables["bybit:BTCUSDT"]
    assert [(t.min_notional, t.mmr, t.maint_amount) for t in btc.tiers] == [
        (0, 0.005, 0), (2_000_000, 0.0056, 1200), (2_600_000, 0.0062, 2760)]


def test_a_fresh_bybit_fetch_answers_before_the_undated_shipped_table(tmp_path):
    pytest.importorskip("ccxt")
    from leverage_exchange.recorded_exchange import FakeBybit, sample_bybit_account

    with FakeBybit(sample_bybit_account()) as fake:
        assert _cli(["tiers", "fetch", "--exchange", "bybit", "--api-url", fake.url,
                     "--symbol", "BTCUSDT"]) == 0
    table = lv.get_tier_table("bybit:BTCUSDT")
    assert "cache bybit.json" in table.source
    assert tiers_mod.symbol_rate("bybit:BTCUSDT", 2_200_000.0) == (0.0056, 1200.0)


def test_okx_tiers_are_fetched_with_no_key_in_notional_at_the_mark(tmp_path, capsys):
    pytest.importorskip("ccxt")
    from leverage_exchange.recorded_exchange import FakeOkx, sample_okx_account

    with FakeOkx(sample_okx_account()) as fake:
        assert _cli(["tiers", "fetch", "--exchange", "okx", "--api-url", fake.url,
                     "--symbol", "BTC-USDT-SWAP"]) == 0
    assert "saved 1 tier tables of okx" in capsys.readouterr().out
    # OKX's documented BTC-USDT tiers bound contracts (0.01 BTC): 500 contracts at the
    # 61,000 mark = 305,000 USDT; 0.4 % then 0.6 %
    table = lv.get_tier_table("okx:BTCUSDT")
    assert table.tiers[1].min_notional == pytest.approx(500 * 0.01 * 61_000)
    assert [t.mmr for t in table.tiers] == [0.004, 0.006, 0.01]


def test_binance_without_a_key_names_the_snapshot(capsys):
    pytest.importorskip("ccxt")
    assert _cli(["tiers", "fetch", "--exchange", "binanceusdm"]) != 0
    err = capsys.readouterr().err
    assert "need a read-only API key" in err and "2026-09-29" in err


def test_cli_shows_the_age_of_a_table(capsys):
    assert _cli(["tiers", "binance:SOLUSDT"]) == 0
    out = capsys.readouterr().out
    assert "dated 2026-09-29" in out and "days old" in out


def test_gate_tiers_fetch_with_no_key_through_ccxt():
    """Gate's convention comes from another module; its public tiers already work: a real
    ccxt ``gate`` against the loopback Gate (documented shapes: exchange_bridge/recorded_gate),
    the whole list paged by contract, no private path asked."""
    ccxt = pytest.importorskip("ccxt")
    from leverage_exchange.client import redirect
    from leverage_exchange.recorded_gate import FakeGate, sample_gate_account
    from leverage_exchange.tiers_fetch import fetch_tiers

    with FakeGate(sample_gate_account()) as fake:
        gate = ccxt.gate({"options": {"fetchMarkets": {"types": ["swap"]}}, "timeout": 30_000,
                          "enableRateLimit": False})
        redirect(gate, fake.url)
        gate.load_markets()
        fetched = fetch_tiers(gate)
        assert all(not p.startswith("/api/v4/futures/usdt/positions") for p in fake.paths())
    assert sorted(fetched) == ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
    tiers_mod.save_tier_cache("gate", fetched)
    table = lv.get_tier_table("gate:BTCUSDT")
    # Gate's deduction is the maintenance amount: 500 from 500,000 on, 5,500 from 1,000,000
    assert [(t.min_notional, t.mmr, t.maint_amount, t.max_leverage) for t in table.tiers] == [
        (0, 0.004, 0, 100), (500_000, 0.005, 500, 50), (1_000_000, 0.01, 5500, 33.33)]
    assert tiers_mod.symbol_rate("gate:BTCUSDT", 1_500_000.0) == (0.01, 5500.0)


def test_hyperliquid_margin_tables_with_no_key_through_ccxt():
    """Hyperliquid's public ``meta``: maintenance rate = half the initial margin at a tier's
    maximum leverage (SOL's single 20x tier: 2.5 %; BTC's table 40x then 20x from 150M:
    1.25 %, then 2.5 % with the continuity deduction 150,000,000 × (0.025 − 0.0125) =
    1,875,000)."""
    ccxt = pytest.importorskip("ccxt")
    from leverage_exchange.client import redirect
    from leverage_exchange.recorded_hyperliquid import FakeHyperliquid, sample_hyperliquid_account
    from leverage_exchange.tiers_fetch import fetch_tiers

    with FakeHyperliquid(sample_hyperliquid_account()) as fake:
        hl = ccxt.hyperliquid({"options": {"fetchMarkets": {"types": ["swap"]}},
                               "timeout": 30_000, "enableRateLimit": False})
        redirect(hl, fake.url)
        hl.load_markets()
        fetched = fetch_tiers(hl)
    assert sorted(fetched) == [f"{c}/USDC:USDC" for c in ("AVAX", "BTC", "DOGE", "ETH", "SOL")]
    tiers_mod.save_tier_cache("hyperliquid", fetched)
    sol = lv.get_tier_table("hyperliquid:SOLUSDC")
    assert [(t.mmr, t.max_leverage) for t in sol.tiers] == [(0.025, 20)]
    btc = lv.get_tier_table("hyperliquid:BTCUSDC")
    assert [(t.min_notional, t.mmr, t.maint_amount) for t in btc.tiers] == [
        (0, 0.0125, 0), (150_000_000, 0.025, pytest.approx(1_875_000))]


def test_addin_reads_the_symbols_tier_through_xlwings_server():
    """The add-in workbooks pass ``tiers="exchange:SYMBOL"`` to TIER and the rate it gives to
    LIQ_PRICE: through xlwings.server, as Excel calls them, the row of BTC_BIG gets the
    core's liquidation price."""
    pytest.importorskip("xlwings")
    from test_addin import call, cell

    got = call("TIER", cell("binance:BTCUSDT"), cell(20 * 60_000))
    mmr, amount = got[0][0], got[0][1]
    assert (mmr, amount) == (0.0065, 1500)
    liq = call("LIQ_PRICE", cell("long"), cell(20), cell(60_000), cell(200_000), cell(mmr),
               cell(amount))
    core = rebalance([BTC_BIG], 1_000, 1_000).columns["liq_price"][0]
    assert liq[0][0] == pytest.approx(core, rel=1e-12)


def test_local_sync_of_a_journal_takes_the_tier_too(tmp_path):
    import datetime as dt

    import openpyxl

    import leverage_sheets as sb
    from leverage.layout import JOURNAL_EVENTS as E
    from leverage.layout import JOURNAL_POSITIONS as P

    path = tmp_path / "j.xlsx"
    sb.init(sb.open_local(path), "journal")
    wb = openpyxl.load_workbook(path)
    pos = {"position_id": "T1", "symbol": "BTCUSDT", "side": "long"}  # rate left blank
    ev = {"date": dt.datetime(2026, 1, 2), "position_id": "T1", "event": "open",
          "price": 60_000, "qty": 20, "amount": 200_000}
    for key, v in pos.items():
        wb[P.title].cell(2, P.index(key) + 1, v)
    for key, v in ev.items():
        wb[E.title].cell(2, E.index(key) + 1, v)
    wb.save(path)
    assert sb.sync(sb.open_local(path), "journal").changed
    got = openpyxl.load_workbook(path, data_only=True)[E.title][f"{E.letter('liq_price')}2"]
    assert got.value == pytest.approx(lv.liq_price("long", 20, 60_000, 200_000, 0.0065, 1500),
                                      rel=1e-9)


def test_bitget_position_levels_with_no_key_through_ccxt():
    """Bitget's public query-position-lever, one market at a time (ccxt has no
    fetch_leverage_tiers for Bitget); the maintenance amount follows from continuity:
    200,000 × (0.005 − 0.004) = 200, then 200 + 1,000,000 × (0.01 − 0.005) = 5,200."""
    ccxt = pytest.importorskip("ccxt")
    from leverage_exchange.client import redirect
    from leverage_exchange.recorded_bitget import FakeBitget, sample_bitget_account
    from leverage_exchange.tiers_fetch import fetch_tiers

    with FakeBitget(sample_bitget_account()) as fake:
        bitget = ccxt.bitget({"options": {"fetchMarkets": {"types": ["swap"]}},
                              "timeout": 30_000, "enableRateLimit": False})
        redirect(bitget, fake.url)
        bitget.load_markets()
        fetched = fetch_tiers(bitget, ["BTCUSDT"])
    assert list(fetched) == ["BTC/USDT:USDT"]
    tiers_mod.save_tier_cache("bitget", fetched)
    table = lv.get_tier_table("bitget:BTCUSDT")
    assert [(t.min_notional, t.mmr, t.maint_amount, t.max_leverage) for t in table.tiers] == [
        (0, 0.004, 0, 125), (200_000, 0.005, pytest.approx(200), 100),
        (1_000_000, 0.01, pytest.approx(5_200), 50)]
