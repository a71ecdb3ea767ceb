"""LIQ_PROBABILITY over 1,000,000 rows against a plain-numpy floor doing the same arithmetic.

Self-contained: ``python -c "from bench.planning_bench import liq_probability_vs_floor as f;
print(f())"``. Runs alternate (ours, floor, ours, floor, ...) so both see the same machine
load; the line reports the medians and the median of the per-pair ratios. Nothing here asserts
a time.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from leverage import liq_probability

_SQRT2 = np.sqrt(2.0)
# the same normal-CDF approximation the library uses (Numerical Recipes' erfcc), written
# straight: no argument checks, no log-space guard, no edge cases
_C = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
      -1.13520398, 1.48851587, -0.82215223, 0.17087277)


def _phi(x: np.ndarray) -> np.ndarray:
    z = np.abs(x) / _SQRT2
    t = 1.0 / (1.0 + 0.5 * z)
    poly = _C[-1]
    for c in _C[-2::-1]:
        poly = poly * t + c
    tail = 0.5 * t * np.exp(-z * z + poly)
    return np.where(x < 0, tail, 1.0 - tail)


def _floor(side: np.ndarray, mark: np.ndarray, liq: np.ndarray, vol: np.ndarray,
           days: np.ndarray) -> np.ndarray:
    t = days / 365.0
    b = side * np.log(liq / mark)
    mu = side * (-0.5 * vol * vol)
    sd = vol * np.sqrt(t)
    return _phi((b - mu * t) / sd) + np.exp(2 * mu * b / (vol * vol)) * _phi((b + mu * t) / sd)


def _rows(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    side = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    mark = rng.uniform(1_000, 100_000, n)
    dist = rng.uniform(0.01, 0.5, n)  # every row has a liquidation price beyond the mark
    liq = np.where(side > 0, mark * (1 - dist), mark / (1 - dist))
    return {"side": side, "mark": mark, "liq": liq, "vol": rng.uniform(0.2, 1.5, n),
            "days": rng.uniform(1, 90, n)}


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def liq_probability_vs_floor(n: int = 1_000_000, pairs: int = 7) -> str:
    """One Markdown table row: LIQ_PROBABILITY against the numpy floor, ``n`` rows."""
    r = _rows(n)
    args = (r["side"], r["mark"], r["liq"], r["vol"], r["days"])
    ours = lambda: liq_probability(*args)  # noqa: E731
    floor = lambda: _floor(*args)  # noqa: E731
    # the floor must compute the same numbers, or the comparison means nothing
    np.testing.assert_allclose(floor(), ours(), rtol=0, atol=1e-9)
    times: list[tuple[float, float]] = []
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        for _ in range(pairs):
            times.append((_time(ours), _time(floor)))
    finally:
        if gc_was_on:
            gc.enable()
    o = statistics.median(t[0] for t in times)
    f = statistics.median(t[1] for t in times)
    ratio = statistics.median(t[0] / t[1] for t in times)
    return (f"| LIQ_PROBABILITY, {n:,} rows | {o * 1e3:,.1f} ms | {f * 1e3:,.1f} ms | "
            f"{ratio:.2f}x |")


if __name__ == "__main__":
    print("| benchmark | leverage | numpy floor | ratio (median of pairs) |")
    print("|---|---|---|---|")
    print(liq_probability_vs_floor())
