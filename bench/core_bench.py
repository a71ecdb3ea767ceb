"""Benchmarks 1 and 2: the vectorized core against the numpy floor and against a scalar loop."""

from __future__ import annotations

import numpy as np

import leverage as lv

from ._util import median_seconds, ms, table

TIERS = "binance:BTCUSDT"
SAMPLE = 5_000


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


def floor_vs_core(n: int = 1_000_000) -> str:
    """1. LIQ_PRICE (tiered, and flat) and MARGIN_TO_TARGET against the bare numpy arithmetic."""
    p = _positions(n)
    table_ = lv.get_tier_table(TIERS)
    side, qty, entry, margin = p["side"], p["qty"], p["entry"], p["margin"]
    tiered = lambda: lv.liq_price(side, qty, entry, margin, tiers=table_)  # noqa: E731
    lp = tiered()
    mmr, cum, _ = table_.lookup(qty * lp)  # tiers already looked up, for the floor
    floor_liq = lambda: (margin + cum - side * qty * entry) / (qty * mmr - side * qty)  # noqa: E731
    np.testing.assert_allclose(floor_liq(), lp, rtol=1e-9)
    flat = lambda: lv.liq_price(side, qty, entry, margin, 0.005, 0.0)  # noqa: E731
    floor_flat = lambda: (margin - side * qty * entry) / (qty * 0.005 - side * qty)  # noqa: E731
    notional, target = p["notional"], p["target"]
    mtt = lambda: lv.margin_to_target(notional, margin, target)  # noqa: E731
    floor_mtt = lambda: notional / target - margin  # noqa: E731
    rows = []
    for name, ours, floor in (
        ("LIQ_PRICE, tiered (binance:BTCUSDT)", tiered, floor_liq),
        ("LIQ_PRICE, one mmr", flat, floor_flat),
        ("MARGIN_TO_TARGET", mtt, floor_mtt),
    ):
        a, b = median_seconds(ours), median_seconds(floor)
        rows.append([name, f"{n:,}", ms(a), ms(b), f"{a / b:.2f}x"])
    return table(
        "1. Vectorized core vs the bare numpy floor (target: within 2x)",
        ["formula", "rows", "ours (median)", "numpy floor", "ratio"],
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
