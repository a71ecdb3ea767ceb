"""The ccxt tier loader on the shapes ccxt really returns, and the dated local tier cache."""

from __future__ import annotations

import json
import math
import warnings
from datetime import date, timedelta

import pytest

import leverage as lv
from leverage import tiers as tiers_mod


@pytest.fixture(autouse=True)
def _empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(tiers_mod.CACHE_ENV, str(tmp_path / "cache"))
    tiers_mod._registry.cache_clear()
    yield
    tiers_mod._registry.cache_clear()


def _binance_rows() -> list[dict]:
    # Binance BTCUSDT brackets 1-2 (125x table in ccxt's binance.json fixture): cum 0 and 50.
    return [
        {"tier": 1, "currency": "USDT", "minNotional": 0, "maxNotional": 50_000,
         "maintenanceMarginRate": 0.004, "maxLeverage": 125, "info": {"cum": "0.0"}},
        {"tier": 2, "currency": "USDT", "minNotional": 50_000, "maxNotional": 250_000,
         "maintenanceMarginRate": 0.005, "maxLeverage": 100, "info": {"cum": "50.0"}},
    ]


def test_okx_next_tier_starts_at_previous_max_plus_one() -> None:
    # OKX position-tiers: minSz of tier k+1 = maxSz of tier k + 1 (whole contracts).
    rows = [
        {"tier": 1, "minNotional": 0, "maxNotional": 500, "maintenanceMarginRate": 0.004,
         "maxLeverage": 100, "info": {"minSz": "0", "maxSz": "500"}},
        {"tier": 2, "minNotional": 501, "maxNotional": 1000, "maintenanceMarginRate": 0.006,
         "maxLeverage": 75, "info": {"minSz": "501", "maxSz": "1000"}},
    ]
    table = lv.tables_from_ccxt({"BTC/USDT:USDT": rows}, "okx")["okx:BTC/USDT:USDT"]
    assert table.tiers[1].min_notional == 500
    # continuity: 500 × (0.006 − 0.004) = 1
    assert table.tiers[1].maint_amount == pytest.approx(1.0)


def test_open_ended_last_tier() -> None:
    rows = _binance_rows()
    rows[-1]["maxNotional"] = None
    table = lv.tables_from_ccxt({"BTC/USDT:USDT": rows}, "binance")["binance:BTC/USDT:USDT"]
    assert math.isinf(table.tiers[-1].max_notional)
    assert table.lookup(10**9)[0] == pytest.approx(0.005)


def test_rates_and_bounds_as_strings() -> None:
    rows = [
        {k: (str(v) if k != "info" else v) for k, v in r.items()} for r in _binance_rows()
    ]
    table = lv.tables_from_ccxt({"BTC/USDT:USDT": rows}, "binance")["binance:BTC/USDT:USDT"]
    assert table.tiers[1].mmr == pytest.approx(0.005)
    assert table.tiers[1].maint_amount == pytest.approx(50.0)
    assert table.tiers[0].max_leverage == 125


def test_older_field_names() -> None:
    rows = [
        {"tier": 1, "notionalFloor": 0, "notionalCap": 50_000, "maintenanceMarginRatio": 0.004,
         "maxLeverage": 125},
        {"tier": 2, "notionalFloor": 50_000, "notionalCap": 250_000,
         "maintenanceMarginRatio": 0.005, "maxLeverage": 100},
    ]
    table = lv.tables_from_ccxt({"BTC/USDT:USDT": rows}, "binance")["binance:BTC/USDT:USDT"]
    assert [t.min_notional for t in table.tiers] == [0, 50_000]
    assert table.tiers[1].maint_amount == pytest.approx(50.0)


def test_bad_rate_names_the_field() -> None:
    rows = _binance_rows()
    rows[0]["maintenanceMarginRate"] = "abc"
    with pytest.raises(lv.TierTableError, match="maintenanceMarginRate must be a number"):
        lv.tables_from_ccxt({"BTC/USDT:USDT": rows}, "binance")


def test_one_naming_scheme() -> None:
    assert tiers_mod.table_name("binanceusdm", "SOL/USDT:USDT") == "binance:SOLUSDT"
    assert tiers_mod.table_name("binancecoinm", "BTC/USD:BTC") == "binance:BTCUSD_PERP"
    assert tiers_mod.table_name("binanceusdm", "BTC/USDT:USDT-250328") == "binance:BTCUSDT_250328"
    # a shipped table answers to its ccxt spelling too
    assert lv.get_tier_table("binanceusdm:BTC/USDT:USDT") is lv.get_tier_table("binance:BTCUSDT")


def test_a_fresh_fetch_answers_before_the_older_snapshot(tmp_path) -> None:
    rows = _binance_rows()
    with pytest.raises(lv.InputError, match="tiers fetch"):
        lv.get_tier_table("binance:NOSUCHUSDT")
    # before the fetch, the full Binance USDⓈ-M snapshot answers (dated 2026-09-29)
    assert "freqtrade==2026.9" in lv.get_tier_table("binance:SOLUSDT").source
    assert tiers_mod.table_date("binance:SOLUSDT") == date(2026, 9, 29)
    path, count = tiers_mod.save_tier_cache("binanceusdm", {"SOL/USDT:USDT": rows})
    assert count == 1 and path.name == "binanceusdm.json"
    assert json.loads(path.read_text())["_meta"]["fetched"] == date.today().isoformat()
    table = lv.get_tier_table("binance:SOLUSDT")
    assert table.name == "binance:SOLUSDT" and "cache" in table.source
    assert "binance:SOLUSDT" in lv.tier_table_names()
    # every entry point goes through the registry: the core formula by name
    assert lv.liq_price("long", 1, 60_000, 6_000, tiers="binance:SOLUSDT") == pytest.approx(
        lv.liq_price("long", 1, 60_000, 6_000, 0.005, 50), rel=1e-12
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lv.get_tier_table("binance:SOLUSDT")  # fresh: no warning


def test_cache_older_than_30_days_warns() -> None:
    old = date.today() - timedelta(days=31)
    tiers_mod.save_tier_cache("binanceusdm", {"SOL/USDT:USDT": _binance_rows()}, today=old)
    with pytest.warns(tiers_mod.StaleTiersWarning, match="31 days ago"):
        lv.get_tier_table("binance:SOLUSDT")


def test_bad_fetch_keeps_the_previous_cache() -> None:
    tiers_mod.save_tier_cache("binanceusdm", {"SOL/USDT:USDT": _binance_rows()})
    bad = _binance_rows()
    bad[1]["minNotional"] = 60_000  # a gap
    with pytest.raises(lv.TierTableError, match="gap"):
        tiers_mod.save_tier_cache("binanceusdm", {"SOL/USDT:USDT": bad})
    assert lv.get_tier_table("binance:SOLUSDT").tiers[1].min_notional == 50_000


def test_cli_tiers_fetch_fills_the_cache(tmp_path, capsys, monkeypatch) -> None:
    pytest.importorskip("ccxt")
    from fake_exchange import API_KEY, API_SECRET, FakeBinanceFutures, sample_account

    from leverage.cli import main
    from leverage_exchange.client import KEY_ENV, SECRET_ENV

    monkeypatch.setenv(KEY_ENV, API_KEY)
    monkeypatch.setenv(SECRET_ENV, API_SECRET)
    with FakeBinanceFutures(sample_account()) as fake:
        assert main(["tiers", "fetch", "--exchange", "binanceusdm", "--api-url", fake.url]) == 0
    assert "saved 3 tier tables of binanceusdm" in capsys.readouterr().out
    assert main(["tiers", "binance:SOLUSDT"]) == 0
    out = capsys.readouterr().out
    assert "binance:SOLUSDT" in out and "cache binanceusdm.json" in out and "1,300.00" in out
    assert main(["tiers", "fetch"]) == 2
    assert "exchange is required" in capsys.readouterr().err


def test_missing_ccxt_names_the_extra(monkeypatch) -> None:
    import sys

    from leverage_exchange import ExchangeError, connect

    monkeypatch.setitem(sys.modules, "ccxt", None)  # as if the extra were not installed
    with pytest.raises(ExchangeError, match=r"leverage-toolkit\[exchange\]"):
        connect("binanceusdm")


def test_ccxt_is_imported_only_when_a_client_is_made() -> None:
    import subprocess
    import sys

    code = ("import sys, leverage, exchange_bridge, exchange_bridge.cli, leverage.cli; "
            "leverage.cli.build_parser(); print('ccxt' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shipped_tables_answer_before_cached_ones() -> None:
    shipped = lv.get_tier_table("binance:BTCUSDT")
    tiers_mod.save_tier_cache("binanceusdm", {"BTC/USDT:USDT": _binance_rows()},
                              today=date.today() - timedelta(days=90))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shipped table is not the stale cached one
        assert lv.get_tier_table("binance:BTCUSDT").tiers == shipped.tiers
