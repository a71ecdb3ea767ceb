"""Guardrails against the usual typing mistakes (issue 12, docs/FORMULAS.md "Guardrails").

A rate typed as a percent without the ``%`` (``mmr 0.5`` meant as 0.5 %), a rate typed as the
text ``"0.5%"``, an isolated position that would be liquidated the moment it opens, a funding
rate above 1 % a period, a leverage above the tier's maximum: through the core (scalar and
``.rows``), the CLI and the Excel functions (xlwings Server, as Office.js drives them).
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("XLWINGS_ON_SERVER", "true")
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")

import xlwings
from test_addin import call, cell  # Excel's calls, as xlwings Server makes them

import leverage as lv
from leverage.cli import main
from leverage.conventions import FEE_COUNTS
from leverage_addin import bridge

HINT = "mmr 0.5 is 50 %; for 0.5 % type 0.005 or 0.5%"
TIERS = "binance:BTCUSDT"


def _no_flag(fn, *args, **kwargs) -> float:
    """The call's value, failing the test if it warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", lv.LeverageWarning)
        return fn(*args, **kwargs)


# ------------------------------------------------------------------ the issue's example
def test_the_issues_example_is_an_error_naming_liquidation_at_once_and_the_hint() -> None:
    # long 1 BTC entered at 60,000 on 6,000 margin, mmr typed 0.5 meaning 0.5 %: it used to
    # give a liquidation price of 108,000 (0.00 % away) with no word
    with pytest.raises(lv.PositionError) as err:
        lv.liq_price("long", 1, 60_000, 6_000, 0.5)
    message = str(err.value)
    assert message.startswith("the position would be liquidated at once")
    assert "margin 6000" in message
    assert "maintenance margin at entry, 30000" in message  # 60,000 × 0.5
    assert "108000" in message
    assert message.endswith("; " + HINT)


def test_percent_text_gives_the_fraction() -> None:
    want = lv.liq_price("long", 1, 60_000, 6_000, 0.005)
    assert want == pytest.approx((6_000 - 60_000) / (0.005 - 1))  # Binance's linear form
    for text in ("0.5%", " 0.5 %", "0.50%", "5e-1%"):
        assert lv.liq_price("long", 1, 60_000, 6_000, text) == want
    res = lv.liq_price.rows("long", 1, 60_000, [6_000, 6_000], ["0.5%", 0.005])
    assert res.values[0] == res.values[1] == want
    assert res.errors.tolist() == [None, None]


def test_percent_hint() -> None:
    assert lv.percent_hint("mmr", 0.5) == HINT
    assert lv.percent_hint("fee_rate", 0.05) == (
        "fee_rate 0.05 is 5 %; for 0.05 % type 0.0005 or 0.05%")
    assert lv.percent_hint("mmr", 0.07) == "mmr 0.07 is 7 %; for 0.07 % type 0.0007 or 0.07%"
    for quiet in (0.005, 0.0499, 0.0, math.nan, math.inf, "0.5", None, True):
        assert lv.percent_hint("mmr", quiet) is None


def test_rates_read_percent_text_other_numbers_do_not() -> None:
    rules = lv.liq_price.rules
    assert rules["mmr"].fast("mmr", "-0.01%") is None  # below the mmr's bound: the array path
    assert lv.funding_payment("long", 100_000, "-0.01%") == pytest.approx(10.0)
    assert lv.funding_payment("long", 100_000, "-0.01%") == lv.funding_payment(
        "long", 100_000, -0.0001)
    with pytest.raises(lv.InputError, match=r"mmr must be a number or a percent like 0.5%, got "
                                            r"'half'"):
        lv.liq_price("long", 1, 60_000, 6_000, "half")
    with pytest.raises(lv.InputError, match=r"mmr must be >= 0 and < 1, got 1.5"):
        lv.liq_price("long", 1, 60_000, 6_000, "150%")
    # a price, a size, a margin are not rates: percent text stays refused
    with pytest.raises(lv.InputError, match=r"margin must be a number, got '10%'"):
        lv.liq_price("long", 1, 60_000, "10%", 0.005)
    assert isinstance(rules["mmr"], lv.Rate) and isinstance(rules["fee_rate"], lv.Rate)
    assert not isinstance(rules["margin"], lv.Rate)
    for fn, name in ((lv.funding_cost, "funding_rate"), (lv.position_size, "risk_fraction"),
                     (lv.liq_probability, "volatility"), (lv.safe_leverage, "max_probability"),
                     (lv.funding_apr, "funding_rate"), (lv.maint_margin, "mmr")):
        assert isinstance(fn.rules[name], lv.Rate), (fn.__name__, name)


def test_tier_rows_and_rules_read_percent_text() -> None:
    typed = [[0, 50_000, "0.4%", 125], [50_000, 1e6, " 0.5 %", 100]]
    fractions = [[0, 50_000, 0.004, 125], [50_000, 1e6, 0.005, 100]]
    assert lv.maint_margin(100_000, tiers=typed) == lv.maint_margin(100_000, tiers=fractions)
    assert lv.maint_margin(100_000, tiers=fractions) == 450  # 100,000 × 0.5 % − 50
    with pytest.raises(lv.TierTableError, match="values must be numbers, got '125x'"):
        lv.maint_margin(100_000, tiers=[[0, 50_000, 0.004, "125x"], [50_000, 1e6, 0.005, 100]])
    from leverage.models import AdjustmentRule

    rule = AdjustmentRule.build(min_liq_distance="10%", add_only_below_pnl="-20%",
                                max_liq_probability="1%", volatility="60%", horizon_days=7)
    assert (rule.min_liq_distance, rule.add_only_below_pnl, rule.max_liq_probability,
            rule.volatility) == (0.1, -0.2, 0.01, 0.6)
    with pytest.raises(lv.InputError, match="horizon_days must be a number, got '7%'"):
        AdjustmentRule.build(horizon_days="7%")


# ------------------------------------------------------------- liquidated at once
@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx"])
@pytest.mark.parametrize("tiers", [None, TIERS])
@pytest.mark.parametrize("side", ["long", "short"])
def test_every_convention_refuses_a_position_liquidated_at_once(
    exchange: str, tiers: str | None, side: str
) -> None:
    # 1 BTC at 60,000 on 100 margin: maintenance at entry is 300 (0.5 %) or 240 (the table's
    # 0.4 % first tier), so it would be liquidated the moment it opened
    with pytest.raises(lv.PositionError, match="liquidated at once") as err:
        lv.liq_price(side, 1, 60_000, 100, 0.005, tiers=tiers, exchange=exchange)
    assert f"at or {'above' if side == 'long' else 'below'} the entry 60000" in str(err.value)
    assert "is 50 %" not in str(err.value)  # no rate looks like a percent: no hint
    # the same position on enough margin has a price, on the losing side of entry
    lp = lv.liq_price(side, 1, 60_000, 6_000, 0.005, tiers=tiers, exchange=exchange)
    assert (lp < 60_000) if side == "long" else (lp > 60_000)


def test_inverse_positions_and_the_coin_margined_table() -> None:
    # 10,000 USD of contracts at 20,000 = 0.5 BTC; 0.5 % maintenance at entry is 0.0025 BTC
    for tiers in (None, "binance:BTCUSD_PERP"):
        for side in ("long", "short"):
            with pytest.raises(lv.PositionError, match="liquidated at once"):
                lv.liq_price(side, 10_000, 20_000, 0.001, 0.005, contract="inverse", tiers=tiers)
    with pytest.raises(lv.PositionError, match=r"mmr 0.5 is 50 %"):
        lv.liq_price("long", 10_000, 20_000, 0.05, 0.5, contract="inverse")


def test_the_hint_names_the_rates_the_convention_counts() -> None:
    # okx counts the taker fee as maintenance: a fee typed 0.05 meaning 0.05 % is named
    with pytest.raises(lv.PositionError) as err:
        lv.liq_price("long", 1, 60_000, 1_000, 0.005, exchange="okx", fee_rate=0.05)
    assert str(err.value).endswith("; fee_rate 0.05 is 5 %; for 0.05 % type 0.0005 or 0.05%")
    assert "maintenance margin at entry, 3300" in str(err.value)  # 60,000 × (0.005 + 0.05)
    # binance's published formula has no fee term: the fee neither counts nor is hinted
    assert lv.liq_price("long", 1, 60_000, 1_000, 0.005, exchange="binance", fee_rate=0.05) \
        == lv.liq_price("long", 1, 60_000, 1_000, 0.005)
    # with tiers the table's rates apply: a typed mmr is ignored, so it gets no hint
    with pytest.raises(lv.PositionError) as err:
        lv.liq_price("long", 1, 60_000, 100, 0.5, tiers=TIERS)
    assert "is 50 %" not in str(err.value)


def test_at_entry_exactly_is_liquidated_at_once() -> None:
    # margin equal to maintenance at entry (Bybit: LP = entry − (margin − MM)/qty = entry)
    with pytest.raises(lv.PositionError, match="liquidated at once"):
        lv.liq_price("long", 1, 20_000, 100, 0.005, exchange="bybit")
    assert lv.liq_price("long", 1, 20_000, 101, 0.005, exchange="bybit") == 19_999


def test_rows_keep_the_good_rows_and_say_why_for_the_bad_one() -> None:
    res = lv.liq_price.rows(["long", "long", "short"], 1, 60_000, [6_000, 6_000, 6_000],
                            [0.005, 0.5, "0.5%"])
    assert res.values[0] == lv.liq_price("long", 1, 60_000, 6_000, 0.005)
    assert math.isnan(res.values[1])
    assert res.errors[1].endswith(HINT) and "liquidated at once" in res.errors[1]
    assert res.errors[0] is None and res.errors[2] is None
    assert res.position_rows[1]  # a PositionError, not an input error
    assert res.values[2] == lv.liq_price("short", 1, 60_000, 6_000, 0.005)
    assert res.warnings.tolist() == [None, None, None]
    with pytest.raises(lv.PositionError, match=r"liquidated at once.*\(at index 1\)"):
        res.raise_first()


def test_bankruptcy_price_is_unaffected() -> None:
    assert lv.bankruptcy_price("long", 1, 60_000, 6_000) == 54_000
    assert lv.bankruptcy_price("long", 1, 60_000, 0) == 60_000  # no maintenance involved


def test_liq_after_add_passes_the_error_on() -> None:
    # adding 1 BTC at 60,000 with no more margin: 2 BTC on 400, below 600 maintenance
    with pytest.raises(lv.PositionError, match="liquidated at once"):
        lv.liq_after_add("long", 1, 60_000, 400, 1, 60_000)
    assert not math.isnan(lv.liq_after_add("long", 1, 60_000, 400, 0, 60_000))


sides = st.sampled_from(["long", "short"])


@settings(max_examples=300, deadline=None)
@given(side=sides, qty=st.floats(0.001, 1_000), entry=st.floats(1, 200_000),
       lev=st.floats(1, 500), mmr=st.floats(0, 0.6), fee=st.floats(0, 0.01),
       exchange=st.sampled_from(lv.EXCHANGES), tiers=st.sampled_from([None, TIERS]))
def test_an_isolated_liquidation_price_is_never_at_or_beyond_entry(
    side: str, qty: float, entry: float, lev: float, mmr: float, fee: float, exchange: str,
    tiers: str | None,
) -> None:
    margin = qty * entry / lev
    res = lv.liq_price.rows(side, qty, entry, margin, mmr, 0, "linear", tiers, exchange, fee)
    s = 1 if side == "long" else -1
    lp, error = float(res.values), res.errors[()]
    if error is None:
        assert math.isnan(lp) or s * (lp - entry) < 0
        return
    assert "liquidated at once" in error
    # exactly the positions whose margin does not exceed maintenance at entry (as counted by
    # the convention: okx, bitget and gate add the fee), up to rounding
    rate, amount, _ = lv.tier(tiers, qty * entry) if tiers else (mmr, 0.0, None)
    maint = qty * entry * (rate + (fee if exchange in FEE_COUNTS else 0.0)) - amount
    assert margin <= maint * (1 + 1e-9)
    # and the hint is there exactly when a typed rate looks like a percent
    looks = tiers is None and mmr >= 0.05
    assert (HINT.split(" is ")[0].replace("0.5", lv._args.fmt(mmr)) in error) == looks


@settings(max_examples=200, deadline=None)
@given(side=sides, qty=st.floats(0.001, 1_000), entry=st.floats(1, 200_000),
       lev=st.floats(1, 100), mmr=st.floats(0, 0.009))
def test_percent_text_and_the_fraction_agree(
    side: str, qty: float, entry: float, lev: float, mmr: float
) -> None:
    mmr = round(mmr, 6)
    text = f"{mmr * 100:.4f}%"
    margin = qty * entry / lev
    as_text = lv.liq_price.rows(side, qty, entry, margin, text)
    as_number = lv.liq_price.rows(side, qty, entry, margin, lv._args.percent_text(text))
    assert as_text.errors[()] == as_number.errors[()]
    a, b = float(as_text.values), float(as_number.values)
    assert (math.isnan(a) and math.isnan(b)) or a == b


@settings(max_examples=200, deadline=None)
@given(whole=st.integers(-10**6, 10**6), places=st.integers(0, 6))
def test_percent_text_moves_the_decimal_point_exactly(whole: int, places: int) -> None:
    digits = f"{abs(whole):0{places + 1}d}"
    typed = ("-" if whole < 0 else "") + (digits[:-places] + "." + digits[-places:] if places
                                          else digits)
    assert lv._args.percent_text(typed + "%") == float(f"{typed}e-2")


# ------------------------------------------------------------------------ flags
def test_cross_beyond_entry_is_given_and_flagged_when_the_rate_looks_like_a_percent() -> None:
    with pytest.warns(lv.LeverageWarning) as caught:
        lp = lv.cross_liq_price("long", 1, 60_000, 6_000, mmr=0.5)
    assert lp == pytest.approx(108_000)  # a cross price beyond entry is still given
    (flag,) = caught
    assert str(flag.message) == ("the liquidation price 108000 is at or above the entry 60000; "
                                 + HINT)
    res = lv.cross_liq_price.rows(["long", "long"], 1, 60_000, 6_000, 0, 0, [0.5, 0.005])
    assert res.warnings[0] == str(flag.message) and res.warnings[1] is None
    assert res.errors.tolist() == [None, None]
    # the other positions' losses put it beyond entry with an ordinary rate: no flag
    lp = _no_flag(lv.cross_liq_price, "long", 1, 60_000, 1_000, -2_000, 0, 0.005)
    assert lp > 60_000
    # a percent-looking rate whose price is still on the safe side: no flag either
    _no_flag(lv.cross_liq_price, "long", 1, 60_000, 50_000, 0, 0, 0.05)


def test_funding_above_one_percent_a_period_is_flagged() -> None:
    with pytest.warns(lv.LeverageWarning, match=r"funding_rate 0.05 is 5 % a period") as caught:
        assert lv.funding_payment("long", 100_000, 0.05) == -5_000  # the number stands
    assert str(caught[0].message).endswith("for 0.05 % type 0.0005 or 0.05%")
    with pytest.warns(lv.LeverageWarning, match=r"funding_rate -0.02 is -2 % a period"):
        lv.funding_cost("short", 100_000, -0.02, 3)
    with pytest.warns(lv.LeverageWarning, match=r"funding_rate 0.02"):
        lv.funding_apr(0.02, 8)
    for rate in (0.01, -0.01, 0.0001, "0.05%", "-1%"):  # at most 1 %: no flag
        _no_flag(lv.funding_payment, "long", 100_000, rate)
        _no_flag(lv.funding_cost, "long", 100_000, rate, 21)
        _no_flag(lv.funding_apr, rate, 8)
    res = lv.funding_payment.rows("long", 100_000, [0.0001, 0.05, "abc"])
    assert res.warnings[0] is None and res.warnings[1].startswith("funding_rate 0.05 is 5 %")
    assert res.warnings[2] is None and res.errors[2] is not None  # an error, not a flag


def test_funding_history_flags_its_largest_rate() -> None:
    times, marks = [0, 1 / 3, 2 / 3], [50_000] * 3
    with pytest.warns(lv.LeverageWarning, match=r"rates: the rate 0.03 is 3 % a period.*"
                                                r"\(row 2\)"):
        total = lv.funding_from_history("long", 1, times, [0.0001, 0.03, -0.0001], marks)
    assert total == pytest.approx(-0.03 * 50_000)
    _no_flag(lv.funding_from_history, "long", 1, times, ["0.01%", 0.0001, "1%"], marks)


def test_leverage_above_the_tiers_maximum_is_flagged() -> None:
    top = lv.tier(TIERS, 60_000).max_leverage
    assert top == 150  # the shipped snapshot's first band
    with pytest.warns(lv.LeverageWarning) as caught:
        lp = lv.liq_price("long", 1, 60_000, 300, tiers=TIERS)  # 200x
    assert lp == _no_flag(lv.liq_price.rows, "long", 1, 60_000, 300, tiers=TIERS).values
    assert str(caught[0].message) == ("leverage 200x at entry (notional 60000 / margin 300) is "
                                      "above the tier's maximum, 150x")
    _no_flag(lv.liq_price, "long", 1, 60_000, 400, tiers=TIERS)  # 150x: at the maximum
    _no_flag(lv.liq_price, "long", 1, 60_000, 300, 0.004)  # no table, no maximum
    with pytest.warns(lv.LeverageWarning, match=r"target_leverage 200x is above the tier's "
                                                r"maximum, 150x \(the tier of notional 60000\)"):
        assert lv.margin_to_target(60_000, 1_000, 200, tiers=TIERS) == -700
    _no_flag(lv.margin_to_target, 60_000, 1_000, 150, tiers=TIERS)
    # liq_after_add passes liq_price's flag on
    res = lv.liq_after_add.rows("long", 1, 60_000, 400, 1, 60_000, 200, tiers=TIERS)
    assert res.warnings[()].startswith("leverage 200x at entry")


def test_an_array_call_warns_once_for_its_flagged_rows() -> None:
    with pytest.warns(lv.LeverageWarning) as caught:
        lv.funding_payment("long", 100_000, [0.05, 0.0001, 0.02])
    assert len(caught) == 1
    assert str(caught[0].message).endswith("(at index 0) (and 1 more rows)")


def test_long_columns_keep_their_flags() -> None:
    # computed in blocks beyond 65,536 rows: the flags of every block are kept
    n = lv._args.BLOCK_ROWS + 10
    rates = np.full(n, 0.0001)
    rates[[3, n - 2]] = 0.05
    res = lv.funding_payment.rows("long", 100_000, rates)
    assert np.flatnonzero(np.not_equal(res.warnings, None)).tolist() == [3, n - 2]


# ---------------------------------------------------------------------------- CLI
LIQ = ["liq", "--side", "long", "--qty", "1", "--entry", "60000", "--margin", "6000"]


def test_cli_refuses_the_issues_example_with_the_hint(capsys: pytest.CaptureFixture) -> None:
    assert main([*LIQ, "--mmr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("leverage: error: the position would be liquidated at once")
    assert err.rstrip().endswith(HINT)
    assert "Traceback" not in err


def test_cli_reads_percent_text(capsys: pytest.CaptureFixture) -> None:
    assert main([*LIQ, "--mmr", "0.5%"]) == 0
    as_text = capsys.readouterr()
    assert main([*LIQ, "--mmr", "0.005"]) == 0
    assert capsys.readouterr().out == as_text.out
    assert "54,271.36" in as_text.out and as_text.err == ""


def test_cli_prints_flags_on_stderr(capsys: pytest.CaptureFixture) -> None:
    argv = ["liq", "--side", "long", "--qty", "1", "--entry", "60000", "--margin", "300",
            "--tiers", TIERS, "--target", "200"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "liquidation price" in out
    assert err.splitlines() == [
        "warning: leverage 200x at entry (notional 60000 / margin 300) is above the tier's "
        "maximum, 150x",
        "warning: target_leverage 200x is above the tier's maximum, 150x (the tier of notional "
        "60000)",
    ]


# ----------------------------------------------------------------- Excel functions
def test_excel_reads_percent_text_and_refuses_the_issues_example() -> None:
    got = call("LIQ_PRICE", cell("long"), cell(1), cell(60_000), cell(6_000), cell("0.5%"))
    assert got == [[lv.liq_price("long", 1, 60_000, 6_000, 0.005)]]
    with pytest.raises(xlwings.XlwingsError, match=r"LIQ_PRICE: the position would be "
                                                   r"liquidated at once.*type 0.005 or 0.5%"):
        call("LIQ_PRICE", cell("long"), cell(1), cell(60_000), cell(6_000), cell(0.5))
    # in a column the bad row is a #NUM! (a position with no answer); the others compute
    got = call("LIQ_PRICE", [["long"], ["long"]], cell(1), cell(60_000), cell(6_000),
                [[0.5], ["0.5%"]])
    assert got[0][0] == {"type": "Error", "errorType": "Num"}
    assert got[1][0] == pytest.approx(lv.liq_price("long", 1, 60_000, 6_000, 0.005))


def test_excel_text_style_shows_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bridge.ERROR_STYLE_ENV, "text")
    got = call("LIQ_PRICE", [["long"], ["short"]], cell(1), cell(60_000), cell(6_000),
                cell(0.5))
    assert got[0][0].startswith("#NUM! the position would be liquidated at once")
    assert got[0][0].endswith(HINT)


def test_excel_flags_leave_the_number_in_the_cell() -> None:
    # a cell holds one value: a flagged row keeps its number (the flag is the core's, the
    # CLI's and the synced sheets' Check column), and nothing warns or breaks
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert call("FUNDING_PAYMENT", cell("long"), cell(100_000), cell(0.05)) == [[-5_000]]
        got = call("CROSS_LIQ_PRICE", cell("long"), cell(1), cell(60_000), cell(6_000),
                    None, None, cell(0.5))
        assert got == [[pytest.approx(108_000)]]
        got = call("MARGIN_TO_TARGET", cell(60_000), cell(1_000), cell(200), None, cell(TIERS))
        assert got == [[-700]]
        got = call("FUNDING_PAYMENT", cell("long"), cell(100_000), cell("-0.01%"))
        assert got == [[pytest.approx(10.0)]]


def test_rows_flags_never_warn() -> None:
    # .rows reports; only strict calls warn (the add-in, the journal and the sync use .rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = lv.funding_payment.rows("long", 100_000, 0.05)
    assert res.warnings[()] is not None
    flagged = lv.liq_price.rows("long", 1, 60_000, 300, tiers=TIERS)
    assert flagged.errors[()] is None and flagged.warnings[()] is not None


def test_flagless_results_carry_no_warnings_array() -> None:
    res = lv.liq_price.rows("long", [1, 2], 60_000, 6_000)
    assert res._warnings is None  # the common case stays cheap
    assert res.warnings.tolist() == [None, None]


def test_reconcile_reports_a_position_liquidated_at_once_on_its_own_line() -> None:
    from leverage_exchange.convert import OpenPosition
    from leverage_exchange.fetch import Fetched
    from leverage_exchange.reconcile import reconcile

    def position(pid: str, margin: float) -> OpenPosition:
        return OpenPosition(pid, "BTC/USDT:USDT", "BTCUSDT", "long", "linear", 1.0, 60_000.0,
                            61_000.0, 61_000.0, margin, "isolated", False, 54_000.0, 10.0)

    got = Fetched("binanceusdm", 0, 0, {})
    lines = reconcile(got, [position("a", 6_000.0), position("b", 100.0)])
    # the shipped BTCUSDT table applies (binanceusdm is Binance USDⓈ-M)
    assert lines[0].ours == lv.liq_price("long", 1, 60_000, 6_000, tiers=TIERS)
    assert lines[1].ours is None
    assert "not computed: the position would be liquidated at once" in lines[1].cause
