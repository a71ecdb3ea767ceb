"""Bad input is rejected with our exception type and a message naming argument, rule, value."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import leverage as lv
from leverage.cli import main as cli_main


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: lv.effective_leverage(100, -5), "margin must be >= 0, got -5"),
        (lambda: lv.effective_leverage("abc", 5), "notional must be a number, got 'abc'"),
        (lambda: lv.effective_leverage(100, math.nan), "margin must be a finite number, got nan"),
        (lambda: lv.effective_leverage(100, math.inf), "margin must be a finite number, got inf"),
        (lambda: lv.effective_leverage(100, True), "margin must be a number, got TRUE"),
        (lambda: lv.effective_leverage(None, 5), "notional is required"),
        (lambda: lv.liq_price("long", 0, 100, 10), "qty must be > 0, got 0"),
        (lambda: lv.liq_price("flat", 1, 100, 10), "side must be long or short"),
        (lambda: lv.liq_price("long", 1, 100, 10, contract="spot"),
         "contract must be linear or inverse, got 'spot'"),
        (lambda: lv.liq_price("long", 1, 100, 10, mmr=1.5), "mmr must be >= 0 and < 1, got 1.5"),
        (lambda: lv.liq_price("long", 1, 100, 10, exchange="ftx"),
         "exchange must be one of binance, bybit, okx, bitget, gate, hyperliquid, got 'ftx'"),
        (lambda: lv.liq_price("long", 1, 100, 10, tiers="binance:NOPE"),
         "tiers must be a known table name"),
        (lambda: lv.liq_price("long", 1, 100, 10, contract="inverse", exchange="bybit"),
         "contract must be linear for exchange='bybit'"),
        (lambda: lv.margin_to_target(100, 10, 0), "target_leverage must be > 0, got 0"),
        (lambda: lv.margin_to_target(100, 10, -2), "target_leverage must be > 0, got -2"),
        (lambda: lv.position_size(100, 1.5, 10, 9), "risk_fraction must be > 0 and <= 1, got 1.5"),
        (lambda: lv.position_size(100, 0.1, 10, 10), "stop_price must differ from entry_price"),
        (lambda: lv.funding_cost("long", 100, 0.01, -1), "periods must be >= 0, got -1"),
        (lambda: lv.max_withdrawable(100, 10, 0, 5, "maybe"),
         "count_profit must be TRUE or FALSE, got 'maybe'"),
        (lambda: lv.liq_price([1, 1], [1, 2, 3], 100, 10), "columns differ in length"),
        (lambda: lv.liq_price("long", 1, 100, 10, 0.005, 0, "linear", None, "binance", 0, 7),
         "liq_price"),
    ],
)
def test_bad_input_is_an_input_error(call, message: str) -> None:
    with pytest.raises(lv.InputError) as info:
        call()
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: lv.effective_leverage(100, 10, -10),
         "margin + unrealized_pnl must be > 0, got 0 (the position is bankrupt)"),
        (lambda: lv.margin_for_liq_price("long", 1, 60_000, 61_000),
         "target_liq_price must be on the losing side of entry_price"),
        (lambda: lv.margin_for_liq_price("short", 1, 60_000, 59_000),
         "target_liq_price must be on the losing side of entry_price"),
        (lambda: lv.margin_to_target(100_000, 1_000, 10, 50_000), "is out of reach"),
    ],
)
def test_impossible_positions_are_position_errors(call, message: str) -> None:
    with pytest.raises(lv.PositionError) as info:
        call()
    assert message in str(info.value)


def test_bad_row_does_not_sink_the_column() -> None:
    res = lv.liq_price.rows(
        ["long", "short", "flat", "long", None],
        [1, 1, 1, -2, 1],
        [60_000, 60_000, 60_000, 60_000, 60_000],
        [6_000, "lots", 6_000, 6_000, 6_000],
    )
    assert res.errors.tolist() == [
        None,
        "margin must be a number, got 'lots'",
        "side must be long or short (also buy/sell, 1/-1), got 'flat'",
        "qty must be > 0, got -2",
        "side is required",
    ]
    assert res.values[0] == pytest.approx(54_271.3567839, rel=1e-9)
    assert np.isnan(res.values[1:]).all()
    assert res.ok.tolist() == [True, False, False, False, False]


def test_strict_array_call_names_the_row() -> None:
    with pytest.raises(lv.InputError, match=r"qty must be > 0, got -2 \(at index 1\)"):
        lv.liq_price("long", np.array([1.0, -2.0]), 60_000, 6_000)


def test_position_error_rows_in_rows_mode() -> None:
    res = lv.effective_leverage.rows([100, 100], [10, 10], [0, -20])
    assert res.values[0] == 10.0
    assert "bankrupt" in res.errors[1]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[0, 100, 0.01, 50], [150, 200, 0.02, 25]], "gap between tier 1"),
        ([[0, 100, 0.01, 50], [90, 200, 0.02, 25]], "overlaps tier 1"),
        ([[10, 100, 0.01, 50]], "the first tier must start at notional 0"),
        ([[0, 100, 1.2, 50]], "mmr"),
        ([[0, 100, 0.01, 0, 50], [100, 200, 0.02, 7, 25]], "maint_amount must be 1"),
        ([[0, 100, "x", 50]], "values must be numbers, got 'x'"),
        ([[0, 100, 0.01]], "tiers must have 4 columns"),
        ([[0, 100, 0.01, -3]], "max_leverage"),
    ],
)
def test_bad_tier_tables(rows: list, message: str) -> None:
    with pytest.raises(lv.TierTableError) as info:
        lv.TierTable.from_rows(rows)
    assert message in str(info.value)


def test_ccxt_loader_derives_maint_amount(tmp_path) -> None:
    data = {
        "BTC/USDT:USDT": [
            {"tier": 1, "currency": "USDT", "minNotional": 0, "maxNotional": 50_000,
             "maintenanceMarginRate": 0.004, "maxLeverage": 125, "info": {}},
            {"tier": 2, "currency": "USDT", "minNotional": 50_000, "maxNotional": 250_000,
             "maintenanceMarginRate": 0.005, "maxLeverage": 100, "info": {}},
        ]
    }
    path = tmp_path / "tiers.json"
    path.write_text(json.dumps(data))
    tables = lv.load_ccxt_tiers(path, exchange="myex")
    table = tables["myex:BTC/USDT:USDT"]
    # cum_2 = 0 + 50,000 * (0.005 - 0.004) = 50 (Binance's published BTCUSDT tier-2 amount)
    assert table.tiers[1].maint_amount == pytest.approx(50.0)
    assert lv.liq_price("long", 1, 60_000, 6_000, tiers="myex:btc/usdt:usdt") == pytest.approx(
        lv.liq_price("long", 1, 60_000, 6_000, 0.005, 50), rel=1e-12
    )
    path.write_text("{not json")
    with pytest.raises(lv.TierTableError, match="could not be read"):
        lv.load_ccxt_tiers(path)


def test_cli_reports_bad_input_cleanly(capsys) -> None:
    argv = ["liq", "--side", "long", "--qty", "-1", "--entry", "100", "--margin", "10"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "qty must be > 0, got -1" in err
    assert "Traceback" not in err


def test_cli_prints_the_figures(capsys) -> None:
    assert cli_main(["liq", "--side", "long", "--qty", "1", "--entry", "60000", "--margin",
                     "6000", "--mark", "58000", "--tiers", "binance:BTCUSDT", "--target", "5"]) == 0
    out = capsys.readouterr().out
    assert "liquidation price     54,216.87" in out
    assert "leverage (equity)     14.50x" in out
    assert "to reach 5x (equity)  add 7,600.00" in out


def test_array_likes_such_as_a_pandas_series_are_columns() -> None:
    class Series:  # the part of pandas.Series that numpy reads
        def __init__(self, values: list) -> None:
            self.values = values

        def __array__(self, dtype=None, copy=None):
            return np.asarray(self.values, dtype=dtype)

    out = lv.effective_leverage(Series([100_000.0, 50_000.0]), Series([10_000.0, 5_000.0]))
    assert out.tolist() == [10.0, 10.0]
    sides = lv.liq_price(Series(["long", "short"]), 1, 60_000, 6_000)
    assert sides.tolist() == lv.liq_price(["long", "short"], 1, 60_000, 6_000).tolist()
