"""The scalar fast path of every formula gives what the array path gives.

A call whose arguments are all plain scalars takes a fast path in the ``formula`` wrapper
(leverage/_args.py); any other call, or a scalar call with a bad argument or no answer, takes
the array path. Over random valid and invalid arguments, for every function of the catalogue
built by the wrapper: the fast path's value is the array path's bit for bit (or both nan), and
the public call raises the same error type with the same message as the array path.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leverage as lv
from leverage._args import Contract, Flag, Number, PerCall, Rate, Side

# flags (a rate that looks mistyped) warn on the public call; the values are what is compared
pytestmark = pytest.mark.filterwarnings("ignore::leverage.LeverageWarning")

# Functions over ranges (and TIER, which returns a row) are not built by ``formula``: they
# have no scalar fast path (the catalogue's ``per_row`` is False), and their scalar calls
# are the array path.
FAST = sorted(name for name, f in lv.CATALOGUE.items() if f.per_row)

TIER_ROWS = [[0, 50_000, 0.004, 125], [50_000, 1e6, 0.005, 100]]
PER_CALL = {
    "tiers": [None, "binance:BTCUSDT", "", " BINANCE:btcusdt ", TIER_ROWS, "no:SUCH", 5],
    "exchange": ["binance", "bybit", "okx", " OKX ", "ftx", None, 3],
    "direction": ["either", "down", "up", "sideways", None],
}
BAD = [math.nan, math.inf, -math.inf, -1.0, -1e-9, "abc", True, "", "  ", None, "5"]


def _number(rule: Number) -> st.SearchStrategy[Any]:
    lo = rule._low if math.isfinite(rule._low) else -2e6
    hi = rule._high if math.isfinite(rule._high) else 2e6
    valid = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    small = st.floats(lo, min(hi, lo + 10.0), allow_nan=False, allow_infinity=False)
    edges = st.sampled_from([lo, hi, 0.0, -0.0, 1.0, 0.5, 1e-300, 5e-324])
    ints = st.integers(int(max(lo, -1e6)), int(min(hi, 1e6)))
    numpy = valid.map(np.float64)
    return st.one_of(valid, valid, valid, small, edges, ints, numpy, st.sampled_from(BAD))


def _argument(name: str, rule: Any) -> st.SearchStrategy[Any]:
    if isinstance(rule, PerCall):
        return st.sampled_from(PER_CALL[name])
    if isinstance(rule, Rate):  # a rate also reads percent text
        return st.one_of(_number(rule), st.sampled_from(["0.5%", " -0.01 %", "150%", "1e-2%"]))
    if isinstance(rule, Number):
        return _number(rule)
    if isinstance(rule, Side):
        good = ["long", "short", "buy", "sell", " Long ", "SHORT", 1, -1, 1.0, -1.0, "1", "-1"]
        return st.sampled_from(good * 3 + [0, 0.5, "up", None, "", True, np.int64(1)])
    if isinstance(rule, Contract):
        good = ["linear", "inverse", "usdm", "coinm", 0, 1, 0.0, 1.0]
        return st.sampled_from(good * 3 + ["x", None, "", 2, False])
    if isinstance(rule, Flag):
        good = [True, False, "yes", "no", "TRUE", 1, 0, np.bool_(True)]
        return st.sampled_from(good * 3 + ["maybe", None, "", 2])
    raise AssertionError(f"no strategy for {name}: {rule!r}")


@st.composite
def _call(draw: Any, fn: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    rules = fn.rules
    names = list(rules)
    values = [draw(_argument(n, rules[n])) for n in names]
    required = sum(1 for n in names if rules[n].default is lv._args.MISSING)
    npos = draw(st.integers(max(0, required - 1), len(names)))
    args = tuple(values[:npos])
    kwargs: dict[str, Any] = {}
    for name, value in zip(names[npos:], values[npos:], strict=True):
        if draw(st.booleans()) or rules[name].default is lv._args.MISSING:
            kwargs[name] = value
    if draw(st.integers(0, 30)) == 0:
        kwargs["bogus"] = 1  # an unknown keyword: both paths must say so
    return args, kwargs


def _array_path(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What the public call returns or raises when it takes the array path."""
    res = fn.rows(*args, **kwargs)
    res.raise_first()
    return float(res.values)


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "value", call()
    except Exception as exc:  # the type and the message are what is compared
        return type(exc).__name__, str(exc)


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "value":
        x, y = a[1], b[1]
        return (math.isnan(x) and math.isnan(y)) or (
            x == y and math.copysign(1, x) == math.copysign(1, y)
        )
    return a[1] == b[1]


@pytest.mark.parametrize("name", FAST)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_fast_path_equals_array_path(name: str, data: Any) -> None:
    fn = lv.CATALOGUE[name]
    args, kwargs = data.draw(_call(fn))
    array = _outcome(lambda: _array_path(fn, args, kwargs))
    public = _outcome(lambda: fn(*args, **kwargs))
    assert _same(public, array), (name, args, kwargs, public, array)
    fast = fn.fast_path(args, kwargs)
    if fast is not None:  # taken: the same value, bit for bit, and never for an error
        assert array[0] == "value", (name, args, kwargs, fast, array)
        assert _same(("value", fast), array), (name, args, kwargs, fast, array)


# One ordinary call per function, with an answer: the fast path must take it.
ORDINARY: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "EFFECTIVE_LEVERAGE": ((100_000, 10_000, -1_000), {}),
    "NOTIONAL": ((10_000, 50_000, "inverse"), {}),
    "UNREALIZED_PNL": (("short", 2, 50_000, 49_000), {}),
    "LIQ_PRICE": (("long", 20, 60_000, 120_000), {"tiers": "binance:BTCUSDT"}),
    "BANKRUPTCY_PRICE": (("short", 1, 20_000, 400, "linear"), {}),
    "MARGIN_TO_TARGET": ((100_000, 10_000, 10, 2_000), {}),
    "MARGIN_FOR_LIQ_PRICE": (("long", 1, 20_000, 19_698.5), {"exchange": "okx"}),
    "MAX_WITHDRAWABLE": ((100_000, 12_000, 500, 10, "no"), {}),
    "LIQ_DISTANCE": (("sell", 20_000, 21_000), {}),
    "CROSS_LIQ_PRICE": (("long", 1, 20_000, 1_000, -200, 50), {"tiers": TIER_ROWS}),
    "FUNDING_PAYMENT": ((-1, 100_000, 0.0001), {}),
    "FUNDING_COST": (("long", 100_000, 0.0001, 21), {}),
    "POSITION_SIZE": ((10_000, 0.01, 50_000, 49_000), {}),
    "GAP_LOSS": (("long", 1, 20_000, 400, 19_000), {}),
    "MAINT_MARGIN": ((100_000,), {"tiers": "binance:BTCUSDT"}),
    "AVG_ENTRY": ((10_000, 20_000, 10_000, 10_000, "inverse"), {}),
    "LIQ_AFTER_ADD": (("long", 1, 20_000, 400, 1, 19_000, 400), {}),
    "MAX_OPEN": ((1_000, 20_000, 125), {"tiers": TIER_ROWS}),
    "HEDGE_LIQ_PRICE": ((1, 20_000, 0.5, 21_000, 1_000), {}),
    "FUNDING_APR": ((0.0001, 8), {}),
    "LIQ_PROBABILITY": (("long", 20_000, 18_000, 0.6, 7), {}),
    "SAFE_LEVERAGE": ((0.6, 7, 0.01), {}),
}


def test_every_fast_function_has_an_ordinary_call() -> None:
    assert sorted(ORDINARY) == FAST


@pytest.mark.parametrize("name", FAST)
def test_ordinary_scalar_call_takes_the_fast_path(name: str) -> None:
    fn = lv.CATALOGUE[name]
    args, kwargs = ORDINARY[name]
    fast = fn.fast_path(args, kwargs)
    assert fast is not None, name
    assert _same(("value", fast), ("value", _array_path(fn, args, kwargs)))
    assert _same(("value", fn(*args, **kwargs)), ("value", fast))


def test_bad_scalar_argument_gives_the_array_path_message() -> None:
    with pytest.raises(lv.InputError, match=r"^qty must be > 0, got -5$"):
        lv.liq_price("long", -5, 60_000, 6_000)
    unknown = r"^liq_price: got an unexpected keyword argument .bogus.$"
    with pytest.raises(lv.InputError, match=unknown):
        lv.liq_price("long", 1, 60_000, 6_000, bogus=1)
    with pytest.raises(lv.PositionError, match="bankrupt"):
        lv.effective_leverage(100_000, 1_000, -2_000)


# ---------------------------------------------------------------------- long columns
@st.composite
def _columns(draw: Any, fn: Any, n: int) -> dict[str, Any]:
    """Every argument as a column of ``n`` cells (or one value), good and bad cells mixed."""
    call: dict[str, Any] = {}
    for name, rule in fn.rules.items():
        if isinstance(rule, PerCall) or draw(st.integers(0, 3)) == 0:
            call[name] = draw(_argument(name, rule))
        else:
            call[name] = draw(st.lists(_argument(name, rule), min_size=n, max_size=n))
    return call


@pytest.mark.parametrize("name", FAST)
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_long_columns_in_blocks_equal_one_block(name: str, data: Any) -> None:
    """A column longer than BLOCK_ROWS is computed block by block: the same values, messages
    and error kinds as in one piece (BLOCK_ROWS made small so a short column has blocks)."""
    fn = lv.CATALOGUE[name]
    call = data.draw(_columns(fn, 17))
    whole = _outcome(lambda: fn.rows(**call))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(lv._args, "BLOCK_ROWS", 5)
        blocks = _outcome(lambda: fn.rows(**call))
    assert whole[0] == blocks[0], (name, call, whole, blocks)
    if whole[0] != "value":
        assert whole[1] == blocks[1]
        return
    a, b = whole[1], blocks[1]
    np.testing.assert_array_equal(a.values, b.values)
    assert a.errors.tolist() == b.errors.tolist()
    pos_a = np.zeros(np.shape(a.values), bool) if a.position_rows is None else a.position_rows
    pos_b = np.zeros(np.shape(b.values), bool) if b.position_rows is None else b.position_rows
    np.testing.assert_array_equal(pos_a & ~a.ok, pos_b & ~b.ok)


# ------------------------------------------------------------------- one row of fields
ROW_RULES = {
    "qty": Number(gt=0),
    "price": Number(gt=0, default=math.nan),
    "amount": Number(),
    "rate": Number(ge=0, lt=1, blank_means_none=True),
    "side": Side(),
    "contract": Contract(default="linear"),
    "flag": Flag(default=True),
}


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_one_row_of_fields_reads_as_the_columns_do(data: Any) -> None:
    """check_columns of one mapping of plain scalars (the journal reads each event's fields
    so) gives what the column machinery gives: values, errors, first error."""
    row = {n: data.draw(_argument(n, r)) for n, r in ROW_RULES.items() if data.draw(st.booleans())}
    got = lv.check_columns(row, **ROW_RULES)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(lv._args, "_one_row", lambda data, rules: None)
        want = lv.check_columns(row, **ROW_RULES)
    assert got.errors.tolist() == want.errors.tolist()
    assert got.first_error == want.first_error
    for name in ROW_RULES:
        a, b = float(got[name]), float(want[name])
        assert _same(("value", a), ("value", b)), (name, row, a, b)


def test_per_row_flag_is_the_fast_path() -> None:
    # the catalogue's flag is what the templates lift into column calls and what this file
    # tests: it must say which functions the formula wrapper built
    for name, fn in lv.CATALOGUE.items():
        assert fn.per_row is hasattr(fn, "fast_path"), name
    assert {n for n, f in lv.CATALOGUE.items() if not f.per_row} >= {"TIER"}
