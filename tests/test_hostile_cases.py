"""The cases of the hostile-input run (issue 10, "Wrong answers and whole-column failures" and
"Core"), one test each: what used to sink a column, give a wrong or silent number, or end in
a bare exception. The corpus over every function is tests/test_hostile_corpus.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import math
import os

import numpy as np
import pytest

os.environ.setdefault("XLWINGS_ON_SERVER", "true")
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")

import xlwings
import xlwings.server as xs

import leverage as lv
from leverage_addin import bridge, udfs

NA = {"type": "Error", "basicType": "Error", "basicValue": "#N/A", "errorType": "NotAvailable"}
REF = {"type": "Error", "basicType": "Error", "basicValue": "#REF!", "errorType": "Ref"}
NA_OUT = {"type": "Error", "errorType": "NotAvailable"}
REF_OUT = {"type": "Error", "errorType": "Ref"}
NUM_OUT = {"type": "Error", "errorType": "Num"}
VALUE_OUT = {"type": "Error", "errorType": "Value"}


def call(name: str, *args: object) -> object:
    payload = {
        "client": "Office.js", "version": xlwings.__version__, "func_name": name,
        "args": list(args), "caller_address": "[Book1.xlsx]Sheet1!B2", "session_id": "test",
        "culture_info_name": "en-US", "date_format": "m/d/yyyy", "runtime": "1.4",
    }
    return asyncio.run(xs.custom_functions_call(payload, udfs))


def column(values: list) -> list[list]:
    return [[v] for v in values]


# ------------------------------------------------------------------ whole-column failures
@pytest.mark.parametrize("bad", ["", None, "lots"])
def test_one_bad_margin_cell_does_not_sink_margin_to_target(bad: object) -> None:
    got = call("MARGIN_TO_TARGET", [[100_000]], column([10_000, bad, 20_000]), [[5]])
    assert got[0][0] == pytest.approx(lv.margin_to_target(100_000, 10_000, 5))
    # a blank in the only column is an unused row (left blank), a text an error
    assert got[1][0] == ("" if bad != "lots" else VALUE_OUT)
    assert got[2][0] == pytest.approx(lv.margin_to_target(100_000, 20_000, 5))
    res = lv.margin_to_target.rows(100_000, [10_000, bad, 20_000], 5, [0, 0, 1_000])
    assert res.ok.tolist() == [True, False, True]


def test_a_column_of_pnl_against_one_notional() -> None:
    got = lv.margin_to_target(100_000, 10_000, 5, np.array([0.0, 1_000.0]))
    assert got.tolist() == [10_000.0, 9_000.0]


# ------------------------------------------------------------------ tier table currency
def test_coin_margined_table_on_a_linear_position_is_an_error() -> None:
    with pytest.raises(lv.InputError) as info:
        lv.liq_price("long", 1, 60_000, 6_000, tiers="binance:BTCUSD_PERP")
    message = str(info.value)
    assert "binance:BTCUSD_PERP" in message and "inverse" in message and "linear" in message


def test_linear_table_on_an_inverse_position_is_an_error() -> None:
    with pytest.raises(lv.InputError, match=r"binance:BTCUSDT.*linear.*contract is inverse"):
        lv.liq_price("long", 10_000, 60_000, 0.02, contract="inverse", tiers="binance:BTCUSDT")
    with pytest.raises(lv.InputError, match="binance:BTCUSDT"):
        lv.margin_for_liq_price("long", 10_000, 60_000, 50_000, contract="inverse",
                                tiers="binance:BTCUSDT")
    with pytest.raises(lv.InputError, match="binance:BTCUSD_PERP"):
        lv.cross_liq_price("long", 1, 60_000, 6_000, tiers="binance:BTCUSD_PERP")


def test_matching_tables_and_typed_rows_still_apply() -> None:
    assert lv.TierTable.from_rows([[0, 1e6, 0.01, 20]]).contract == ""
    linear = lv.liq_price("long", 1, 60_000, 6_000, tiers="binance:BTCUSDT")
    assert linear == pytest.approx(54_216.87, abs=0.01)  # the CLI test's figure
    inverse = lv.liq_price("long", 10_000, 60_000, 0.02, contract="inverse",
                           tiers="binance:BTCUSD_PERP")
    assert 0 < inverse < 60_000
    rows = lv.liq_price.rows(["long", "long"], [1, 10_000], 60_000, [6_000, 0.02],
                             contract=["linear", "inverse"], tiers="binance:BTCUSDT")
    assert rows.ok.tolist() == [True, False]
    assert rows.values[0] == linear


def test_ccxt_symbols_tell_the_contract() -> None:
    tier = [{"minNotional": 0, "maxNotional": 5, "maintenanceMarginRate": 0.004,
             "maxLeverage": 125, "currency": "BTC", "info": {}}]
    tables = lv.tables_from_ccxt({"BTC/USD:BTC": tier, "BTC/USDT:USDT": tier}, "ex")
    assert tables["ex:BTC/USD:BTC"].contract == "inverse"
    assert tables["ex:BTC/USDT:USDT"].contract == "linear"


# ------------------------------------------------------------------ fee rates with tiers
def test_a_column_of_fee_rates_with_tiers() -> None:
    got = lv.liq_price(["long", "short"], 1, 20_000, 400, tiers="binance:BTCUSDT",
                       exchange="okx", fee_rate=[5e-4, 0])
    for i, (side, fee) in enumerate([("long", 5e-4), ("short", 0.0)]):
        alone = lv.liq_price(side, 1, 20_000, 400, tiers="binance:BTCUSDT", exchange="okx",
                             fee_rate=fee)
        assert got[i] == alone
    big = lv.margin_for_liq_price("long", [100, 100], 20_000, 19_000, tiers="binance:BTCUSDT",
                                  exchange="okx", fee_rate=[5e-4, 1e-3])
    assert big[1] > big[0] > 0


# ------------------------------------------------------------------ overflow
def test_huge_qty_gives_the_finite_answer() -> None:
    # qty x entry overflows float, the price does not
    assert lv.bankruptcy_price("short", 1e308, 2e4, 400) == pytest.approx(20_000)
    assert lv.bankruptcy_price("long", 1e308, 2e4, 400) == pytest.approx(20_000)
    # 2e308 of notional on 1e307 of margin (20x): LP = (margin/qty − entry) / (mmr − 1)
    assert lv.liq_price("long", 1e308, 2, 1e307) == pytest.approx(1.9 / 0.995)
    # Bybit: LP = entry − (margin/qty − entry x 0.5%) = 2 − (0.1 − 0.01)
    assert lv.liq_price("long", 1e308, 2, 1e307, exchange="bybit") == pytest.approx(1.91)
    # on 400 of margin, maintenance at entry (qty x entry x 0.5%) dwarfs the margin: the price
    # (2e4 / 0.995, or Bybit's entry x 1.005) is beyond entry, liquidated at once
    for exchange in ("binance", "bybit"):
        with pytest.raises(lv.PositionError, match="liquidated at once"):
            lv.liq_price("long", 1e308, 2e4, 400, exchange=exchange)
    assert lv.funding_cost("short", 1e308, 1e-4, 21) == pytest.approx(2.1e305)
    with pytest.warns(lv.LeverageWarning, match="funding_rate"):  # 1e10 a period: a typo?
        assert lv.funding_cost("long", 1e300, 1e10, 1e-10) == pytest.approx(-1e300)
    assert call("BANKRUPTCY_PRICE", [["short"]], [[1e308]], [[2e4]], [[400]]) == [
        [pytest.approx(20_000)]
    ]


@pytest.mark.parametrize(
    "call_it",
    [
        lambda: lv.funding_cost("short", 1e308, 10, 21),
        lambda: lv.notional(1e308, 1e308),
        lambda: lv.gap_loss("long", 1e308, 2e4, 400, 1),
        lambda: lv.margin_for_liq_price("long", 1e308, 2e4, 1),
    ],
)
def test_a_result_beyond_float_range_is_a_named_error(call_it) -> None:
    with pytest.raises(lv.PositionError, match=r"the result is too large for a number \("):
        call_it()


def test_too_large_in_a_column_is_that_row_only() -> None:
    res = lv.notional.rows([1.0, 1e308], [2.0, 1e308])
    assert res.values[0] == 2.0 and math.isnan(res.values[1])
    assert res.errors[1] == "the result is too large for a number (qty=1e+308, price=1e+308)"
    got = call("NOTIONAL", column([1.0, 1e308]), column([2.0, 1e308]))
    assert got == [[2.0], [NUM_OUT]]


def test_margin_for_liq_price_never_returns_a_silent_blank() -> None:
    got = call("MARGIN_FOR_LIQ_PRICE", column(["long", "long"]), column([1, 1e308]),
               [[20_000]], [[1]])
    assert got[0][0] == pytest.approx(lv.margin_for_liq_price("long", 1, 20_000, 1))
    assert got[1][0] == NUM_OUT
    with pytest.raises(lv.PositionError, match="too large"):
        lv.margin_for_liq_price("long", 1e308, 20_000, 1)


def test_no_liquidation_price_is_still_a_blank() -> None:
    assert math.isnan(lv.liq_price("long", 1, 20_000, 25_000, 0))
    assert math.isnan(lv.liq_price("short", 10_000, 20_000, 1, contract="inverse"))
    assert call("LIQ_PRICE", [["long"]], [[1]], [[20_000]], [[25_000]], [[0]]) == [[""]]


# ------------------------------------------------------------------ tier ranges
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[0, 100, 0.01, math.nan, 50]], "tier 1: maint_amount must be a finite number, got nan"),
        ([[0, 100, 0.01, -3, 50]], "tier 1: maint_amount must be >= 0, got -3"),
        ([[0, 100, 0.01, 0, 50], [100, 200, 0.02, math.inf, 25]],
         "tier 2: maint_amount must be a finite number, got inf"),
        ([[0, 100, math.nan, 50]], "tier 1: mmr must be a finite number, got nan"),
        ([[0, 100, 0.01, 0, 50], [100, 200, 0.02]],
         "tiers row 2 has 3 values where row 1 has 5"),
    ],
)
def test_bad_tier_ranges_are_refused_by_column_and_row(rows: list, message: str) -> None:
    with pytest.raises(lv.TierTableError) as info:
        lv.liq_price("long", 1, 20_000, 400, tiers=rows)
    assert message in str(info.value)


# ------------------------------------------------------------------ tiers and exchange in Excel
@pytest.mark.parametrize(("error", "out"), [(NA, NA_OUT), (REF, REF_OUT)])
def test_excel_errors_in_tiers_or_exchange_pass_through(error: dict, out: dict) -> None:
    base = [column(["long", "short"]), [[1]], [[20_000]], [[400]], None, None, None]
    assert call("LIQ_PRICE", *base, [[error]]) == [[out], [out]]
    assert call("LIQ_PRICE", *base, None, [[error]]) == [[out], [out]]
    table = [[0, 50_000, 0.004, 0, 125], [50_000, 1e6, 0.005, error, 100]]
    assert call("LIQ_PRICE", *base, table) == [[out], [out]]
    assert call("MAINT_MARGIN", [[1_000]], None, None, [[error]]) == [[out]]
    assert call("TIER", [[error]], column([1_000, 2_000])) == [[out] * 3, [out] * 3]


def test_a_column_of_exchanges_is_refused_clearly() -> None:
    with pytest.raises(xlwings.XlwingsError, match="exchange must be one name for the whole"):
        call("LIQ_PRICE", column(["long", "long"]), [[1]], [[20_000]], [[400]], None, None,
             None, None, column(["okx", "bybit"]))
    with pytest.raises(lv.InputError, match="exchange must be one name for the whole call"):
        lv.liq_price("long", 1, 20_000, 400, exchange=["okx", "bybit"])
    assert lv.liq_price("long", 1, 20_000, 400, exchange=["okx"]) == lv.liq_price(
        "long", 1, 20_000, 400, exchange="okx")


# ------------------------------------------------------------------ message length
def test_messages_quote_a_short_prefix() -> None:
    text = "x" * 100_000
    for call_it in (
        lambda: lv.notional(text, 1),
        lambda: lv.liq_price(text, 1, 1, 1),
        lambda: lv.liq_price("long", 1, 1, 1, tiers=text),
        lambda: lv.liq_price("long", 1, 1, 1, exchange=text),
        lambda: lv.tier(text, 1),
        lambda: lv.liq_price("long", 1, 1, 1, tiers=[[0, 1e6, text, 20]]),
    ):
        with pytest.raises(lv.InputError) as info:
            call_it()
        assert len(str(info.value)) < 400, str(info.value)[:200]
        assert "x" * 40 + "…" in str(info.value)
    assert bridge._short("y" * 100_000).endswith("…")
    assert len(bridge._short("y" * 100_000)) == bridge.MESSAGE_LIMIT


# ------------------------------------------------------------------ core: named errors only
@pytest.mark.parametrize(
    "value",
    [
        10**400, -(10**400), decimal.Decimal("1.5"), 1 + 2j, b"12", [[1, [2]]], [[1, 2], [3]],
        {"a": 1}, np.array([1, "a"], dtype=object), np.array("abc"), "9" * 100_000,
        dt.datetime(2024, 1, 31), np.array([1 + 1j]), object(), set(), np.datetime64("2024"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_odd_values_are_input_errors_naming_the_argument(value: object) -> None:
    for name in KNOWN:
        fn = lv.CATALOGUE[name]
        for arg in fn.rules:
            kwargs = {**_valid_kwargs(name), arg: value}
            with pytest.raises(lv.LeverageError):
                fn(**kwargs)
            try:
                said = [e for e in fn.rows(**kwargs).errors.flat if e]  # the bad cells' rows
            except lv.InputError as exc:  # a per-call argument fails the whole call
                said = [str(exc)]
            assert any(arg in e for e in said), (name, arg, said)


def test_a_huge_integer_is_not_finite_and_a_zero_d_array_is_a_value() -> None:
    with pytest.raises(lv.InputError, match="qty must be a finite number"):
        lv.notional(10**400, 1)
    assert lv.notional(np.array(2.0), np.array(3)) == 6.0
    with pytest.raises(lv.InputError, match=r"got list \(at index \(0, 1\)\)"):
        lv.notional([[1, [2]]], 1)


# The first valid row of test_addin's cases, per position formula (leverage.core); the corpus
# (test_hostile_corpus.py) covers every function of the catalogue.
KNOWN: dict[str, list[object]] = {
        "EFFECTIVE_LEVERAGE": [100_000, 10_000], "NOTIONAL": [2, 50_000],
        "UNREALIZED_PNL": ["long", 2, 50_000, 49_000], "LIQ_PRICE": ["long", 1, 20_000, 400],
        "BANKRUPTCY_PRICE": ["short", 1, 20_000, 400], "MARGIN_TO_TARGET": [100_000, 10_000, 10],
        "MARGIN_FOR_LIQ_PRICE": ["long", 1, 20_000, 19_000],
        "MAX_WITHDRAWABLE": [100_000, 12_000, 500, 10], "LIQ_DISTANCE": ["long", 20_000, 19_000],
        "CROSS_LIQ_PRICE": ["long", 1, 20_000, 1_000],
        "FUNDING_PAYMENT": ["long", 100_000, 0.0001],
        "FUNDING_COST": ["short", 100_000, 0.0001, 21],
        "POSITION_SIZE": [10_000, 0.01, 50_000, 49_000],
        "GAP_LOSS": ["long", 1, 20_000, 400, 19_000], "MAINT_MARGIN": [100_000],
}


def _valid_kwargs(name: str) -> dict[str, object]:
    return dict(zip(lv.CATALOGUE[name].rules, KNOWN[name], strict=False))
