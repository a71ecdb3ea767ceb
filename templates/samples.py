"""The worked examples the sample workbooks contain, as plain dicts keyed by layout keys.

Journal story (March 2024): a BTC long opened at 10x, a funding payment (paid from its
isolated margin), a dip where the trader adds margin twice (the second add breaks three of
the pre-set rules), a withdrawal after the recovery, a partial close, an ETH short increased
as planned (its second half, at the open's leverage) whose margin is withdrawn too early, an
inverse BTCUSD long with coin-margined funding (margin, fees and PnL in BTC), and the
closes. The BTC long's first funding is on Events row 6: its price typed below the
liquidation price it had then (54,216.87) liquidates the position there. Every position has
a planned stop (for the R multiple) and a margin currency; the trades pay a 0.04 % taker fee.

Portfolio: six USDT-margined positions, two of them cross, with targets the free balance
cannot fully fund, so the priorities decide who gets margin.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

Row = dict[str, Any]


def _d(day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, 3, day, hour, minute)


def sample_journal() -> tuple[list[Row], list[Row], dict[str, float]]:
    """``(positions, events, rule_values)`` of the sample journal workbook."""
    positions = [
        {"position_id": "BTC-L1", "symbol": "BTCUSDT", "side": "long", "contract": "linear",
         "margin_currency": "USDT", "mmr": 0.004, "maint_amount": 0.0, "stop_price": 54_000},
        {"position_id": "ETH-S1", "symbol": "ETHUSDT", "side": "short", "contract": "linear",
         "margin_currency": "USDT", "mmr": 0.005, "maint_amount": 0.0, "stop_price": 3_600},
        {"position_id": "BTC-INV", "symbol": "BTCUSD", "side": "long", "contract": "inverse",
         "margin_currency": "BTC", "mmr": 0.004, "maint_amount": 0.0, "stop_price": 58_000},
    ]
    e = _event
    # Fees: a 0.04 % taker fee on the notional of each trade, in the margin currency
    # (BTCUSD's notional in BTC is its USD qty / price).
    events = [
        e(_d(1), "BTC-L1", "open", 60_000, 0.5, 3_000,
          "Breakout above 60k. Plan: 10x, stop 54k, add once at most, only after -20%.", 12.0),
        e(_d(2), "ETH-S1", "open", 3_400, 10, 6_800, "Short into resistance at 5x; stop 3,600.",
          13.6),
        e(_d(3, 1), "ETH-S1", "increase", 3_450, 5, None,
          "Second half of the short at 3,450, as planned (margin blank: at the open's 5x).",
          6.9),
        e(_d(3, 8), "ETH-S1", "funding", 3_440, None, 2.10, "8h funding received."),
        e(_d(3, 17), "BTC-L1", "funding", 61_000, None, -3.05, "8h funding paid (0.01%)."),
        e(_d(5), "BTC-L1", "add_margin", 57_000, None, 1_000,
          "Dip to 57k, liquidation too close: added 1k."),
        e(_d(5, 17), "BTC-L1", "funding", 54_000, None, -2.70, "Funding paid at the low."),
        e(_d(6), "BTC-L1", "add_margin", 55_500, None, 2_000,
          "Added again to stay in the trade (against my rules)."),
        e(_d(8), "ETH-S1", "funding", None, None, 4.20, "Funding received; no new mark."),
        e(_d(10), "BTC-L1", "withdraw_margin", 64_000, None, 1_500,
          "Recovered to 64k: took 1.5k margin back."),
        e(_d(11), "BTC-INV", "open", 62_000, 31_000, 0.1,
          "Inverse long, 31,000 USD of contracts on 0.1 BTC (5x); stop 58k.", 0.0002),
        e(_d(12), "BTC-L1", "partial_close", 66_000, 0.2, None, "Took profit on 40%.", 5.28),
        e(_d(13), "ETH-S1", "withdraw_margin", 3_500, None, 1_000,
          "Needed margin elsewhere; withdrew while losing."),
        e(_d(14, 1), "BTC-INV", "funding", 63_000, None, -0.00005, "Funding paid in BTC."),
        e(_d(15), "ETH-S1", "close", 3_480, None, None,
          "Thesis broken: closed at a loss before the stop.", 13.92),
        e(_d(16), "BTC-INV", "add_margin", 59_000, None, 0.02, "Dip: added 0.02 BTC."),
        e(_d(18), "BTC-L1", "close", 67_000, None, None, "Closed the rest.", 8.04),
        e(_d(19), "BTC-INV", "partial_close", 65_000, 10_000, None,
          "Closed a third; margin released pro rata.", 0.0000615),
    ]
    rules = {
        "max_leverage": 12.0,
        "max_margin_per_event": 1_500.0,
        "max_adds_while_losing": 1,
        "add_only_below_pnl": -0.2,
        "withdraw_only_above_pnl": 0.3,
        "close_if_loss_beyond": 0.8,
        "min_liq_distance": 0.05,
        "add_within_buffer": 0.1,
        # a 10 % chance of touching the liquidation price within 3 days (a weekend held
        # through) at BTC's ~60 % annualised volatility: it fires at the dip, where the
        # liquidation price is ~5 % away, not on a 10x open 10 % away
        "max_liq_probability": 0.1,
        "volatility": SAMPLE_VOLATILITY,
        "horizon_days": JOURNAL_HORIZON_DAYS,
    }
    return positions, events, rules


def _event(date: dt.datetime, pid: str, event: str, price: float | None, qty: float | None,
           amount: float | None, reason: str, fee: float | None = None) -> Row:
    return {"date": date, "position_id": pid, "event": event, "price": price, "qty": qty,
            "amount": amount, "fee": fee, "reason": reason}


SAMPLE_VOLATILITY = 0.6  # annualised, for the sample's liquidation probability
SAMPLE_HORIZON_DAYS = 7.0
JOURNAL_HORIZON_DAYS = 3.0  # the sample journal's probability rule (its rule values)


def sample_portfolio() -> tuple[list[Row], float, float]:
    """``(positions, wallet_balance, free_balance)`` of the sample rebalance workbook."""

    def p(pid: str, symbol: str, side: str, qty: float, entry: float, mark: float,
          margin: float | None, mode: str, target_leverage: float | None,
          target_liq_distance: float | None, priority: int, mmr: float) -> Row:
        return {"position_id": pid, "symbol": symbol, "side": side, "contract": "linear",
                "qty": qty, "entry_price": entry, "mark_price": mark, "margin": margin,
                "margin_mode": mode, "target_leverage": target_leverage,
                "target_liq_distance": target_liq_distance, "priority": priority,
                "mmr": mmr, "maint_amount": 0.0}

    positions = [
        p("P1", "BTCUSDT", "long", 0.5, 60_000, 64_000, 3_000, "isolated", 5, None, 1, 0.004),
        p("P2", "ETHUSDT", "short", 8, 3_400, 3_550, 2_720, "isolated", None, 0.25, 2, 0.005),
        p("P3", "SOLUSDT", "long", 200, 150, 135, None, "cross", 3, None, 1, 0.005),
        p("P4", "BNBUSDT", "long", 30, 580, 600, None, "cross", 4, None, 3, 0.005),
        p("P5", "XRPUSDT", "short", 20_000, 0.62, 0.58, 1_240, "isolated", 8, None, 2, 0.01),
        p("P6", "DOGEUSDT", "long", 100_000, 0.16, 0.14, 2_400, "isolated", 3, None, 1, 0.01),
    ]
    return positions, 12_000.0, 3_000.0
