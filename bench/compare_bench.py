"""The comparison a user would make (issue 15, target 4): our vectorized liquidation price
against freqtrade's published Binance arithmetic in a Python loop, and against ccxt's parsing
of Binance position records, over the same positions.

freqtrade is not imported: its arithmetic is written out below from its source,
``freqtrade/exchange/binance.py`` (``Binance.dry_run_liquidation_price``, isolated futures) and
``freqtrade/exchange/exchange.py`` (``Exchange.get_maintenance_ratio_and_amt``: the last tier
whose ``minNotional`` is <= the value passed, scanned from the top), of the freqtrade/freqtrade
repository (commit 01126c43f78b). freqtrade passes the position's stake (its margin) to the
tier look-up; ours takes the tier of the notional at the liquidation price, so the two agree
wherever those pick the same tier, and the table says how many rows differ.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

import leverage as lv

from ._util import interleaved, record_target, table
from .core_bench import TIERS, _positions

INNER = 10  # our call is ~100x quicker than theirs: time 10 in a row per round, report one


def _repeated(fn: Any) -> Any:
    """``fn`` run INNER times in a row, so one load spike on the shared machine is averaged
    out instead of standing for the whole short call."""
    def run() -> None:
        for _ in range(INNER):
            fn()
    return run


def _freqtrade_tiers(table_: lv.TierTable) -> list[dict[str, float]]:
    """The tier table in the shape freqtrade keeps (ccxt's leverage tiers plus ``maintAmt``)."""
    return [{"minNotional": t.min_notional, "maxNotional": t.max_notional,
             "maintenanceMarginRate": t.mmr, "maintAmt": t.maint_amount} for t in table_.tiers]


def _freqtrade_maintenance(pair_tiers: list[dict[str, float]], notional_value: float
                           ) -> tuple[float, float]:
    # freqtrade Exchange.get_maintenance_ratio_and_amt
    for tier in reversed(pair_tiers):
        if notional_value >= tier["minNotional"]:
            return tier["maintenanceMarginRate"], tier["maintAmt"]
    raise ValueError("Notional value cannot be lower than 0")


def freqtrade_liquidation_price(
    pair_tiers: list[dict[str, float]], open_rate: float, is_short: bool, amount: float,
    stake_amount: float, wallet_balance: float,
) -> float:
    """freqtrade ``Binance.dry_run_liquidation_price``, isolated futures (no cross terms)."""
    side_1 = -1 if is_short else 1
    cross_vars = 0.0
    mm_ratio, maintenance_amt = _freqtrade_maintenance(pair_tiers, stake_amount)
    return (
        (wallet_balance + cross_vars + maintenance_amt) - (side_1 * amount * open_rate)
    ) / ((amount * mm_ratio) - (side_1 * amount))


def _position_risk(side: float, qty: float, entry: float, margin: float) -> dict[str, Any]:
    """One record of Binance's ``GET /fapi/v2/positionRisk`` (isolated, one-way mode): numbers
    as strings, ``positionAmt`` negative for a short."""
    mark = entry * 1.01
    amt = side * qty
    upnl = amt * (mark - entry)
    return {
        "symbol": "BTCUSDT", "positionAmt": f"{amt:.3f}", "entryPrice": f"{entry:.2f}",
        "breakEvenPrice": f"{entry * 1.0004:.2f}", "markPrice": f"{mark:.8f}",
        "unRealizedProfit": f"{upnl:.8f}", "liquidationPrice": "0", "leverage": "10",
        "maxNotionalValue": "3000000", "marginType": "isolated",
        "isolatedMargin": f"{margin + upnl:.8f}", "isAutoAddMargin": "false",
        "positionSide": "BOTH", "notional": f"{amt * mark:.8f}",
        "isolatedWallet": f"{margin:.8f}", "updateTime": 1722062678998,
    }


def vs_freqtrade_and_ccxt(n_freqtrade: int = 100_000, n_ccxt: int = 2_000,
                          rounds: int = 3) -> str:
    """Target 4: freqtrade's loop and ccxt's parsing against our one vectorized call."""
    table_ = lv.get_tier_table(TIERS)
    rows = []

    p = _positions(n_freqtrade, seed=4)
    side, qty, entry, margin = p["side"], p["qty"], p["entry"], p["margin"]
    ft_tiers = _freqtrade_tiers(table_)
    records = list(zip((side < 0).tolist(), qty.tolist(), entry.tolist(), margin.tolist(),
                       strict=True))

    def freqtrade_loop() -> list[float]:
        return [freqtrade_liquidation_price(ft_tiers, e, short, q, m, m)
                for short, q, e, m in records]

    def ours() -> np.ndarray:
        return lv.liq_price(side, qty, entry, margin, tiers=table_)

    ft, our = np.array(freqtrade_loop()), ours()
    same_tier = table_.index(margin) == table_.index(qty * our)
    assert same_tier.sum() > n_freqtrade // 20, "too few rows to compare with freqtrade"
    np.testing.assert_allclose(ft[same_tier], our[same_tier], rtol=1e-9)
    times = interleaved({"freqtrade": freqtrade_loop, "ours": _repeated(ours)}, rounds=rounds)
    times["ours"] = [t / INNER for t in times["ours"]]
    ratio = statistics.median(times["freqtrade"]) / statistics.median(times["ours"])
    differ = int((~same_tier).sum())
    rows.append(["freqtrade's Binance arithmetic, Python loop", f"{n_freqtrade:,}",
                 f"{statistics.median(times['freqtrade']) * 1e3:,.1f} ms",
                 f"{statistics.median(times['ours']) * 1e3:,.2f} ms", f"{ratio:,.0f}x",
                 f"equal where the tiers agree; {differ:,} rows ({differ / n_freqtrade:.0%}) "
                 "differ: freqtrade picks the tier by stake, ours at the liquidation price"])
    record_target("4. freqtrade's Binance arithmetic in a loop, vs ours",
                  f"{ratio:,.0f}x slower than ours", "reported", f"{n_freqtrade:,} positions")

    try:
        import ccxt
    except ImportError:
        note = "ccxt is not installed (pip install ccxt): ccxt row skipped"
        print(f"note: {note}\n")
        record_target("4. ccxt position parsing, vs ours", "", "skipped", note)
    else:
        exchange = ccxt.binanceusdm()
        q = _positions(n_ccxt, seed=5)
        # rounded as the records print them, so both sides read the same numbers
        cs, cq, ce, cm = q["side"], q["qty"].round(3), q["entry"].round(2), q["margin"].round(8)
        raw = [_position_risk(*r) for r in zip(cs.tolist(), cq.tolist(), ce.tolist(),
                                                cm.tolist(), strict=True)]
        # Binance has no parse_position in ccxt; fetch_positions_risk applies this per record
        parse = exchange.parse_position_risk

        def ccxt_loop() -> list[Any]:
            return [parse(r) for r in raw]

        def ours_from_columns() -> np.ndarray:
            return lv.liq_price(cs, cq, ce, cm, tiers=table_)

        def ours_from_records() -> np.ndarray:
            amt = np.array([float(r["positionAmt"]) for r in raw])
            return lv.liq_price(np.sign(amt), np.abs(amt),
                                np.array([float(r["entryPrice"]) for r in raw]),
                                np.array([float(r["isolatedWallet"]) for r in raw]),
                                tiers=table_)

        parsed = ccxt_loop()
        assert parsed[0]["side"] in ("long", "short") and parsed[0]["marginMode"] == "isolated"
        np.testing.assert_allclose(ours_from_records(), ours_from_columns(), rtol=1e-9)
        times = interleaved({"ccxt": ccxt_loop, "columns": _repeated(ours_from_columns),
                             "records": _repeated(ours_from_records)}, rounds=rounds)
        med = {k: statistics.median(v) / (1 if k == "ccxt" else INNER) for k, v in times.items()}
        for label, key in (("ccxt `parse_position_risk` per record vs ours on columns",
                            "columns"),
                           ("the same vs ours reading the records' fields first", "records")):
            ratio = med["ccxt"] / med[key]
            rows.append([label, f"{n_ccxt:,}", f"{med['ccxt'] * 1e3:,.1f} ms",
                         f"{med[key] * 1e3:,.2f} ms", f"{ratio:,.0f}x",
                         f"ccxt {ccxt.__version__}; markets not loaded (no network)"])
        record_target("4. ccxt position parsing, vs ours",
                      f"{med['ccxt'] / med['columns']:,.0f}x slower than ours "
                      f"({med['ccxt'] / med['records']:,.0f}x counting our field reading)",
                      "reported", f"{n_ccxt:,} positions")
    return table(
        "7. What users would compare: the same positions through freqtrade's arithmetic and "
        f"ccxt's parsing vs our one vectorized call (tiered, {TIERS}), interleaved",
        ["what", "positions", "theirs (median)", "ours (median)", "theirs / ours", "note"],
        rows,
    )
