"""The core against floors that do the same work, a scalar call against plain Python, and the
journal replay (issue 15, targets 2 and 3).

A *floor* is plain numpy written for the same job as the measured call: it finds the tier
itself, checks every row itself (side is +/-1, qty and price finite and > 0, margin finite and
>= 0, mmr in [0, 1): a min and a max per column, and a per-row mask only when a column fails
them) and blanks rows with no liquidation price or a bad input (nan). The LIQ_PROBABILITY
floor is the first-passage closed form with the core's normal-CDF approximation, the same
checks and the same edge rows (no liquidation price: 0, at or past it: 1, zero volatility or
time: the drift alone). The liquidation-price floors also blank a row whose liquidation price
is at or beyond entry on the losing side (the core's "liquidated at once" error), and the
tiered one finds the rows whose leverage at entry is above the entry tier's maximum (the
core's flag). Floors build no messages and parse nothing else. Floors and the core
are timed interleaved (A, B, A, B, ...) so both see the same machine load.
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta
from typing import Any

import numpy as np

import leverage as lv

from ._util import (
    interleaved,
    median_seconds,
    ms,
    peak_bytes,
    record_target,
    spread,
    table,
    verdict,
)
from .planning_bench import _phi
from .planning_bench import _rows as _probability_rows

TIERS = "binance:BTCUSDT"
SAMPLE = 5_000
ROUNDS = 9
FLOOR_TARGET = 1.5  # issue 15, target 3: within 1.5x a floor doing the same work
MEMORY_TARGET = 2.0  # peak memory within 2x the result array
SCALAR_TARGET = 10.0  # issue 15, target 2: a scalar call within 10x plain Python


def _positions(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    qty = rng.uniform(0.01, 50, n)  # up to ~4M notional: spans the first five BTCUSDT tiers
    entry = rng.uniform(20_000, 80_000, n)
    lev = rng.uniform(2, 50, n)
    return {
        "side": np.where(rng.random(n) < 0.5, 1.0, -1.0),
        "qty": qty,
        "entry": entry,
        "margin": qty * entry / lev,
        "notional": qty * entry,
        "target": rng.uniform(2, 10, n),
    }


# ------------------------------------------------------------------------------ floors
def _column_ok(values: Any, low: float, low_included: bool) -> bool:
    """One column passes when its min and max do (NaN propagates and fails both)."""
    lo, hi = np.min(values), np.max(values)
    return bool((lo >= low if low_included else lo > low) and hi < np.inf)


def _valid_position(side: Any, qty: Any, price: Any, margin: Any) -> np.ndarray | None:
    """Rows the core would accept: side +/-1, qty and price finite > 0, margin finite >= 0.

    ``None`` when every row passes, decided by a min and a max per column; the per-row mask
    (NaN fails every comparison) is built only when some column fails those.
    """
    if (_column_ok(qty, 0.0, False) and _column_ok(price, 0.0, False)
            and _column_ok(margin, 0.0, True) and np.all(np.abs(side) == 1)):
        return None
    ok = np.abs(side) == 1
    ok &= qty > 0
    ok &= qty < np.inf
    ok &= price > 0
    ok &= price < np.inf
    ok &= margin >= 0
    ok &= margin < np.inf
    return ok


def _check_rate(mmr: float) -> None:
    if not 0 <= mmr < 1:
        raise ValueError(f"mmr must be >= 0 and < 1, got {mmr}")


def _blank_unless(ok: np.ndarray | None, lp: np.ndarray) -> np.ndarray:
    """nan where the row was rejected or its price is not a positive finite number."""
    good = lp > 0
    good &= lp < np.inf
    if ok is not None:
        good &= ok
    if not good.all():
        lp[~good] = np.nan
    return lp


def _refuse_at_once(side: np.ndarray, entry: np.ndarray, lp: np.ndarray) -> np.ndarray:
    """nan where the liquidation price is at or beyond entry on the losing side: the core's
    "liquidated at once" error (issue 12), one comparison per row and one reduction."""
    beyond = side * (lp - entry) >= 0
    if beyond.any():
        lp[beyond] = np.nan
    return lp


def _above_tier_max(table: lv.TierTable, notional: np.ndarray, margin: np.ndarray) -> bool:
    """Whether any row's leverage at entry is above its entry tier's maximum: the core's flag
    (issue 12); a flagged row would get its message, so the floor finds the rows too."""
    k = np.searchsorted(table.bounds, notional, side="right") - 1
    np.clip(k, 0, len(table.bounds) - 1, out=k)
    flagged = notional / margin > table.max_leverages[k]
    return bool(flagged.any())


def floor_tier_index(c: np.ndarray, side: np.ndarray, table: lv.TierTable) -> np.ndarray:
    """Tier whose band holds the notional at the liquidation price, by one plain scan.

    Binance linear, isolated: at the liquidation price the notional ``n`` solves
    ``n − s·MM(n) = c`` with ``c = qty·entry − s·margin`` and ``MM(n) = n·mmr − cum``
    (continuous across bounds). Its left side grows with ``n``, so the tier is the number of
    bounds ``b_j`` (after the first) with ``b_j − s·MM(b_j) <= c``, i.e. ``c + s·MM(b_j) >= b_j``:
    one comparison per bound for longs and shorts alike. The scan stops at the first bound no
    row reaches; the count is one byte per row.
    """
    maint_at_bound = table.bounds * table.mmrs - table.maint_amounts
    k = np.zeros(c.shape, dtype=np.uint8)
    work = np.empty_like(c)
    above = np.empty(c.shape, dtype=bool)
    for j in range(1, len(table.bounds)):
        np.multiply(side, maint_at_bound[j], out=work)
        work += c
        np.greater_equal(work, table.bounds[j], out=above)
        if not above.any():
            break
        k += above
    return k


def floor_liq_price_tiered(
    side: np.ndarray, qty: np.ndarray, entry: np.ndarray, margin: np.ndarray,
    table: lv.TierTable,
) -> np.ndarray:
    """Binance's ``LP = (margin + cum − s·qty·entry) / (qty·(mmr − s))``, tier found per row."""
    ok = _valid_position(side, qty, entry, margin)
    qty_entry = qty * entry
    k = floor_tier_index(qty_entry - side * margin, side, table)
    mmr, cum = table.mmrs[k], table.maint_amounts[k]
    lp = (margin + cum - side * qty_entry) / (qty * (mmr - side))
    _above_tier_max(table, qty_entry, margin)
    return _refuse_at_once(side, entry, _blank_unless(ok, lp))


def floor_liq_price(
    side: np.ndarray, qty: np.ndarray, entry: np.ndarray, margin: np.ndarray,
    mmr: float, maint_amount: float,
) -> np.ndarray:
    """The same with one rate for every row."""
    _check_rate(mmr)
    if not 0 <= maint_amount < math.inf:
        raise ValueError(f"maint_amount must be >= 0, got {maint_amount}")
    ok = _valid_position(side, qty, entry, margin)
    lp = (margin + maint_amount - side * qty * entry) / (qty * (mmr - side))
    return _refuse_at_once(side, entry, _blank_unless(ok, lp))


def floor_margin_to_target(
    notional: np.ndarray, margin: np.ndarray, target: np.ndarray, unrealized_pnl: float = 0.0
) -> np.ndarray:
    """``notional / target − (margin + upnl)``; nan for a bad row or a target out of reach
    (it would need withdrawing more than the margin posted)."""
    if not (_column_ok(notional, 0.0, True) and _column_ok(margin, 0.0, True)
            and _column_ok(target, 0.0, False)):
        ok = notional >= 0
        ok &= notional < np.inf
        ok &= margin >= 0
        ok &= margin < np.inf
        ok &= target > 0
        ok &= target < np.inf
    else:
        ok = None
    change = notional / target
    reach = change >= unrealized_pnl
    if ok is not None:
        reach &= ok
    change -= margin
    change -= unrealized_pnl
    if not reach.all():
        change[~reach] = np.nan
    return change


def floor_liq_probability(
    side: np.ndarray, mark: np.ndarray, liq: np.ndarray, vol: np.ndarray, days: np.ndarray,
    drift: float = 0.0,
) -> np.ndarray:
    """The first-passage closed form ``Φ((b − μT)/(σ√T)) + e^{2μb/σ²}·Φ((b + μT)/(σ√T))``
    with ``b = s·ln(liq/mark)``, ``μ = s·(drift − σ²/2)``, ``T = days/365``, Φ by the same
    erfc approximation as the core; nan for a rejected row (side not +/-1, mark not finite
    > 0, liq not > 0 and not blank, volatility or days not finite >= 0), 0 with no
    liquidation price (nan), 1 at or past it, and the zero-volatility / zero-time limit."""
    if not math.isfinite(drift):
        raise ValueError(f"drift must be a finite number, got {drift}")
    ok = None
    liq_lo, liq_hi = np.min(liq), np.max(liq)  # nan: some row has no liquidation price
    if not (_column_ok(mark, 0.0, False) and _column_ok(vol, 0.0, True)
            and _column_ok(days, 0.0, True) and liq_lo > 0 and liq_hi < np.inf
            and np.all(np.abs(side) == 1)):
        ok = np.abs(side) == 1
        ok &= mark > 0
        ok &= mark < np.inf
        ok &= ((liq > 0) & (liq < np.inf)) | np.isnan(liq)
        ok &= vol >= 0
        ok &= vol < np.inf
        ok &= days >= 0
        ok &= days < np.inf
    t = days / 365.0
    b = np.log(liq / mark)
    b *= side
    past = b >= 0  # the mark is at or past the liquidation price
    mu = vol * vol
    mu *= -0.5
    mu += drift
    mu *= side
    still = None
    if not (np.min(vol) > 0 and np.min(t) > 0):  # zero volatility or time: the drift alone
        still = np.where((vol > 0) & (t > 0), np.nan, (vol == 0) & (mu * t <= b))
        vol = np.where(np.isnan(still), vol, 1.0)
        t = np.where(t > 0, t, 1.0)
    sd = np.sqrt(t)
    sd *= vol
    mu_t = mu * t
    p = _phi((b - mu_t) / sd)
    second = 2.0 * mu * b / (vol * vol)
    np.exp(second, out=second)
    b += mu_t
    b /= sd
    second *= _phi(b)
    p += second
    np.clip(p, 0.0, 1.0, out=p)
    if still is not None:
        p = np.where(np.isnan(still), p, still)
    p[past] = 1.0
    p[np.isnan(liq)] = 0.0
    if ok is not None:
        p[~ok] = np.nan
    return p


def _agree(floor: np.ndarray, core: np.ndarray, what: str) -> None:
    """The floor computes the core's numbers (nan where the core has nan); probabilities
    also to 1e-15 absolute (subnormal tails round differently)."""
    atol = 1e-15 if what.startswith(("LIQ_PROBABILITY", "liq_probability")) else 0.0
    np.testing.assert_allclose(floor, core, rtol=1e-9, atol=atol, equal_nan=True, err_msg=what)


def _check_floors_on_bad_rows() -> None:
    """Floors blank the rows the core rejects or has no answer for (``.rows`` gives nan)."""
    with np.errstate(all="ignore"):  # the bad rows divide by zero in the floor, on purpose
        _check_bad_rows()


def _check_bad_rows() -> None:
    p = {k: v.copy() for k, v in _positions(64, seed=7).items()}
    side, qty, entry, margin = p["side"], p["qty"], p["entry"], p["margin"]
    side[0] = 0.5
    qty[1] = -1.0
    entry[2] = np.nan
    margin[3] = np.inf
    side[4], margin[4] = 1.0, 3 * qty[4] * entry[4]  # a long below 1x: no liquidation price
    table_ = lv.get_tier_table(TIERS)
    _agree(floor_liq_price_tiered(side, qty, entry, margin, table_),
           lv.liq_price.rows(side, qty, entry, margin, tiers=table_).values, "tiered, bad rows")
    _agree(floor_liq_price(side, qty, entry, margin, 0.005, 10.0),
           lv.liq_price.rows(side, qty, entry, margin, 0.005, 10.0).values, "one rate, bad rows")
    r = {k: v.copy() for k, v in _probability_rows(64, seed=8).items()}
    r["side"][0], r["mark"][1], r["liq"][2], r["vol"][3] = 0.5, np.nan, -1.0, -0.2
    r["liq"][4] = np.nan  # no liquidation price: probability 0
    r["liq"][5] = r["mark"][5] * (0.9 if r["side"][5] < 0 else 1.1)  # past it: 1
    r["vol"][6], r["days"][7] = 0.0, 0.0  # the drift alone
    args = (r["side"], r["mark"], r["liq"], r["vol"], r["days"])
    _agree(floor_liq_probability(*args, 0.3), lv.liq_probability.rows(*args, 0.3).values,
           "liq_probability, bad rows")
    notional, target = p["notional"], p["target"]
    notional[5], target[6] = -1.0, 0.0
    upnl = 2_000.0  # some targets out of reach: they would withdraw more than is posted
    _agree(floor_margin_to_target(notional, margin, target, upnl),
           lv.margin_to_target.rows(notional, margin, target, upnl).values, "mtt, bad rows")


def floor_vs_core(n: int = 1_000_000, rounds: int = ROUNDS) -> str:
    """Target 3: the core against floors doing the same work, interleaved; peak memory."""
    _check_floors_on_bad_rows()
    p = _positions(n)
    table_ = lv.get_tier_table(TIERS)
    side, qty, entry, margin = p["side"], p["qty"], p["entry"], p["margin"]
    notional, target = p["notional"], p["target"]
    r = _probability_rows(n)
    odds = (r["side"], r["mark"], r["liq"], r["vol"], r["days"])
    cases = [
        ("LIQ_PRICE, tiered (binance:BTCUSDT)", "tiered LIQ_PRICE",
         lambda: lv.liq_price(side, qty, entry, margin, tiers=table_),
         lambda: floor_liq_price_tiered(side, qty, entry, margin, table_)),
        ("LIQ_PRICE, one rate (mmr 0.005)", None,
         lambda: lv.liq_price(side, qty, entry, margin, 0.005, 0.0),
         lambda: floor_liq_price(side, qty, entry, margin, 0.005, 0.0)),
        ("MARGIN_TO_TARGET", "MARGIN_TO_TARGET",
         lambda: lv.margin_to_target(notional, margin, target),
         lambda: floor_margin_to_target(notional, margin, target)),
        ("LIQ_PROBABILITY", "LIQ_PROBABILITY",
         lambda: lv.liq_probability(*odds), lambda: floor_liq_probability(*odds)),
    ]
    rows = []
    for label, target_name, core, floor in cases:
        result = core()
        _agree(floor(), result, label)
        times = interleaved({"core": core, "floor": floor}, rounds=rounds)
        ratio = statistics.median(times["core"]) / statistics.median(times["floor"])
        mem_core = peak_bytes(core) / result.nbytes
        mem_floor = peak_bytes(floor) / result.nbytes
        rows.append([label, f"{n:,}", spread(times["core"]), spread(times["floor"]),
                     f"{ratio:.2f}x", f"{mem_core:.1f}x", f"{mem_floor:.1f}x"])
        if target_name:
            record_target(f"3. {target_name} within {FLOOR_TARGET}x its floor ({n:,} rows)",
                          f"{ratio:.2f}x", verdict(ratio, FLOOR_TARGET))
            record_target(f"3. {target_name} peak memory within {MEMORY_TARGET}x the result",
                          f"{mem_core:.1f}x ({mem_core * result.nbytes / 1e6:.1f} MB)",
                          verdict(mem_core, MEMORY_TARGET))
    return table(
        f"1. Vectorized core vs a floor doing the same work, interleaved, {rounds} rounds each "
        f"(target: within {FLOOR_TARGET}x; memory within {MEMORY_TARGET}x the result)",
        ["formula", "rows", "core: median (min–max)", "floor: median (min–max)",
         "ratio of medians", "core peak / result", "floor peak / result"],
        rows,
    )
def vector_vs_scalar(n: int = 100_000) -> str:
    """2. The same rows through the array API and through a Python loop of scalar calls."""
    p = _positions(n, seed=2)
    side = np.where(p["side"] > 0, "long", "short").astype(object)
    qty, entry, margin = p["qty"], p["entry"], p["margin"]
    rows = []
    for name, vec, one in (
        (
            "LIQ_PRICE, tiered",
            lambda: lv.liq_price(side, qty, entry, margin, tiers=TIERS),
            lambda i: lv.liq_price(side[i], qty[i], entry[i], margin[i], tiers=TIERS),
        ),
        (
            "MARGIN_TO_TARGET",
            lambda: lv.margin_to_target(p["notional"], margin, p["target"]),
            lambda i: lv.margin_to_target(p["notional"][i], margin[i], p["target"][i]),
        ),
    ):
        loop = median_seconds(lambda one=one: [one(i) for i in range(SAMPLE)], repeat=3)
        loop *= n / SAMPLE  # timed on a slice and scaled: the loop is linear in rows
        v = median_seconds(vec, repeat=5)
        column = vec()
        for i in range(0, n, n // 50):  # scalar and array agree exactly
            a, b = column[i], one(i)
            assert a == b or (np.isnan(a) and np.isnan(b))
        rows.append([name, f"{n:,}", ms(v), ms(loop), f"{loop / v:,.0f}x"])
    return table(
        "2. Vectorized vs a loop of scalar calls (target: >= 50x)",
        ["formula", "rows", "array call", "scalar loop (scaled from 5,000)", "speed-up"],
        rows,
    )


# ------------------------------------------------------------------------- scalar calls
_PLAIN_SIDES = {"long": 1.0, "buy": 1.0, "short": -1.0, "sell": -1.0}
_PLAIN_TABLES: dict[str, list[tuple[float, float, float]]] = {}


def _plain_number(name: str, value: Any, low: float, low_included: bool) -> float:
    """A real number (not a bool), finite, above ``low``: the core's checks, in plain Python."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not (v >= low if low_included else v > low) or v == math.inf:
        rule = f">= {low:g}" if low_included else f"> {low:g}"
        raise ValueError(f"{name} must be {rule}, got {v:g}")
    return v


def _plain_side(side: Any) -> float:
    if isinstance(side, str):
        s = _PLAIN_SIDES.get(side.strip().lower())
        if s is not None:
            return s
    elif side in (1, -1) and not isinstance(side, bool):
        return float(side)
    raise ValueError(f"side must be long or short, got {side!r}")


def _plain_table(name: str) -> list[tuple[float, float, float]]:
    """A shipped table as ``(bound, mmr, cum)`` tuples, looked up by name as the core does."""
    key = name.strip().lower()
    if key not in _PLAIN_TABLES:
        t = lv.get_tier_table(key)
        _PLAIN_TABLES[key] = list(zip(t.bounds.tolist(), t.mmrs.tolist(),
                                      t.maint_amounts.tolist(), strict=True))
    return _PLAIN_TABLES[key]


def plain_liq_price(
    side: Any, qty: Any, entry_price: Any, margin: Any, mmr: Any = 0.005,
    maint_amount: Any = 0.0, tiers: str | None = None,
) -> float:
    """Binance linear isolated liquidation price, plain Python with the core's checks."""
    s = _plain_side(side)
    q = _plain_number("qty", qty, 0.0, False)
    e = _plain_number("entry_price", entry_price, 0.0, False)
    m = _plain_number("margin", margin, 0.0, True)
    rate = _plain_number("mmr", mmr, 0.0, True)
    if rate >= 1:
        raise ValueError(f"mmr must be < 1, got {rate:g}")
    amount = _plain_number("maint_amount", maint_amount, 0.0, True)
    if tiers is not None:  # the tier of the notional at the liquidation price (see floors)
        c = q * e - s * m
        table_ = _plain_table(tiers)
        _, rate, amount = table_[0]
        for b, r, a in table_[1:]:
            if c + s * (b * r - a) < b:
                break
            rate, amount = r, a
    lp = (m + amount - s * q * e) / (q * (rate - s))
    return lp if 0 < lp < math.inf else math.nan


def plain_margin_to_target(
    notional: Any, margin: Any, target_leverage: Any, unrealized_pnl: Any = 0.0
) -> float:
    n = _plain_number("notional", notional, 0.0, True)
    m = _plain_number("margin", margin, 0.0, True)
    t = _plain_number("target_leverage", target_leverage, 0.0, False)
    u = _plain_number("unrealized_pnl", unrealized_pnl, -math.inf, False)
    need = n / t
    if need < u:
        raise ValueError(f"target_leverage {t:g} is out of reach")
    return need - m - u


def _loop(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], calls: int) -> None:
    for _ in range(calls):
        fn(*args, **kwargs)


def scalar_vs_plain(calls: int = 5_000, rounds: int = 5) -> str:
    """Target 2: one checked scalar call of the core against a plain Python function doing the
    same checks and arithmetic, timed interleaved over loops of ``calls`` calls."""
    cases = [
        ('lv.liq_price("long", 1, 60000, 6000)', (lv.liq_price, plain_liq_price),
         ("long", 1, 60000, 6000), {}),
        ('lv.liq_price("short", 0.5, 60000, 3000, 0.004, 0)', (lv.liq_price, plain_liq_price),
         ("short", 0.5, 60000, 3000, 0.004, 0), {}),
        ('lv.liq_price("long", 20, 60000, 120000, tiers="binance:BTCUSDT")',
         (lv.liq_price, plain_liq_price), ("long", 20, 60000, 120000), {"tiers": TIERS}),
        ("lv.margin_to_target(100000, 10000, 5)", (lv.margin_to_target, plain_margin_to_target),
         (100000, 10000, 5), {}),
    ]
    rows = []
    for label, (core, plain), args, kwargs in cases:
        a, b = core(*args, **kwargs), plain(*args, **kwargs)
        assert math.isclose(a, b, rel_tol=1e-12), (label, a, b)
        times = interleaved({
            "core": lambda f=core, args=args, kwargs=kwargs: _loop(f, args, kwargs, calls),
            "plain": lambda f=plain, args=args, kwargs=kwargs: _loop(f, args, kwargs, calls),
        }, rounds=rounds)
        core_us = statistics.median(times["core"]) / calls * 1e6
        plain_us = statistics.median(times["plain"]) / calls * 1e6
        ratio = core_us / plain_us
        rows.append([f"`{label}`", f"{core_us:,.1f} µs", f"{plain_us:,.2f} µs", f"{ratio:,.0f}x"])
        record_target(f"2. scalar `{label}` within {SCALAR_TARGET:g}x plain Python",
                      f"{ratio:,.0f}x ({core_us:,.1f} µs a call)", verdict(ratio, SCALAR_TARGET))
    return table(
        f"2a. A scalar call vs plain Python with the same checks, interleaved loops of "
        f"{calls:,} calls, median of {rounds} (target: within {SCALAR_TARGET:g}x)",
        ["call", "core, per call", "plain Python, per call", "ratio"],
        rows,
    )


# ---------------------------------------------------------------------- journal replay
def _journal_inputs(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    """``n`` events over ``n / 8`` positions, like the sample journal's: each position opens,
    pays funding, adds and withdraws margin, closes part, then closes; 40 positions are open
    at a time and their events interleave as a real journal's do. One in three is inverse."""
    from leverage.models import AdjustmentRule

    rng = np.random.default_rng(11)
    per_position = 8
    count = -(-n // per_position)
    positions, stories = [], []
    for i in range(count):
        inverse = i % 3 == 2
        side = "long" if i % 2 == 0 else "short"
        pid = f"P{i:05d}"
        positions.append({"position_id": pid, "symbol": "BTCUSD" if inverse else "BTCUSDT",
                          "side": side, "contract": "inverse" if inverse else "linear",
                          "mmr": 0.004, "maint_amount": 0.0})
        price = float(rng.uniform(20_000, 80_000))
        lev = float(rng.uniform(2, 8))
        qty = round(float(rng.uniform(5_000, 50_000)), -2) if inverse else round(
            float(rng.uniform(0.05, 2.0)), 3)
        margin = (qty / price if inverse else qty * price) / lev
        move = [float(x) for x in price * (1 + rng.normal(0, 0.02, 6))]

        def ev(kind: str, at: float | None, q: float | None, amount: float | None,
               pid: str = pid) -> dict[str, Any]:
            return {"position_id": pid, "event": kind, "price": at, "qty": q, "amount": amount}

        stories.append([
            ev("open", price, qty, margin),
            ev("funding", move[0], None, -margin * 1e-3),
            ev("add_margin", move[1], None, margin * 0.2),
            ev("funding", None, None, margin * 5e-4),
            ev("withdraw_margin", move[2], None, margin * 0.1),
            ev("partial_close", move[3], qty * 0.4, None),
            ev("funding", move[4], None, -margin * 1e-3),
            ev("close", move[5], None, None),
        ])
    events: list[dict[str, Any]] = []
    open_at_once = 40
    for start in range(0, count, open_at_once):
        group = stories[start:start + open_at_once]
        for step in range(per_position):
            events += [story[step] for story in group]
    start_day = datetime(2026, 1, 1)
    for k, e in enumerate(events):  # one event a minute, in row order
        e["date"] = start_day + timedelta(minutes=k)
    rule = AdjustmentRule.build(max_leverage=12.0, max_margin_per_event=1_500.0,
                                max_adds_while_losing=1, add_only_below_pnl=-0.2,
                                min_liq_distance=0.05)
    return positions, events[:n], rule


def journal_replay(n: int = 10_000) -> str:
    """Target 2: the journal replay of ``n`` events (``leverage.journal.replay``), timed."""
    from leverage import journal

    positions, events, rule = _journal_inputs(n)
    result = journal.replay(positions, events, rule)
    failed = [s for s in result.columns["status"] if s]
    assert len(result) == n and not failed, failed[:3]
    seconds = median_seconds(lambda: journal.replay(positions, events, rule), repeat=3)
    record_target(f"2. journal replay of {n:,} events, reported before and after",
                  f"{seconds * 1e3:,.0f} ms ({seconds / n * 1e6:,.1f} µs an event)", "reported")
    return table(
        "2b. Journal replay (leverage.journal.replay, with an adjustment rule)",
        ["events", "positions", "replay (median of 3)", "per event"],
        [[f"{n:,}", f"{len(positions):,}", ms(seconds), f"{seconds / n * 1e6:,.1f} µs"]],
    )
