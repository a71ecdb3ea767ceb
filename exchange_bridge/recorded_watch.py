"""A recorded Binance USDⓈ-M account whose marks follow a script: the loopback exchange the
watch is tested, demonstrated and benchmarked against.

:class:`ScriptedBinance` is :class:`~leverage_exchange.recorded_exchange.FakeBinanceFutures`
(the same endpoints, Binance's documented JSON) with one difference: which step of a script
the account is at, chosen by a caller's function (a fake clock's cycle number in the tests),
sets the mark of each scripted symbol. A position's ``markPrice``, ``unRealizedProfit``,
``isolatedMargin`` and ``notional`` follow the mark as Binance computes them
(``unRealizedProfit = positionAmt × (mark − entry)``, ``isolatedMargin = isolatedWallet +
unRealizedProfit``); its ``liquidationPrice`` stays as recorded (an isolated position's does not
move with the mark). A step of ``None`` is an outage: every endpoint answers HTTP 503 with
Binance's ``-1001`` body ("Internal error; unable to process your request"), which ccxt reads
as ``ExchangeNotAvailable``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .recorded_exchange import DAY_MS, Account, FakeBinanceFutures, sample_account

Step = Mapping[str, float | None] | None
"""One step of a script: symbol → mark (None: its position is gone, closed or liquidated),
or None for an outage."""


class ScriptedBinance(FakeBinanceFutures):
    """Binance USDⓈ-M futures on 127.0.0.1 whose marks follow ``script`` (see the module doc).

    ``step()`` returns the index of the script entry in force (past the end: the last one).
    Without it the server stays on :attr:`at`, which :meth:`advance` moves on.
    """

    def __init__(self, account: Account, script: Sequence[Step], *,
                 step: Callable[[], int] | None = None, stall_seconds: float = 3.0) -> None:
        super().__init__(account, stall_seconds=stall_seconds)
        if not script:
            raise ValueError("script must hold at least one step")
        self.script = list(script)
        self.at = 0
        self._step = step
        self._recorded = copy.deepcopy(account.positions)
        self._recorded_marks = dict(account.marks)

    def advance(self, steps: int = 1) -> None:
        self.at += steps

    def current(self) -> Step:
        i = self._step() if self._step is not None else self.at
        return self.script[max(0, min(i, len(self.script) - 1))]

    def _answer(self, req: Any, path: str, params: dict[str, str],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        marks = self.current()
        if marks is None:
            return 503, {"code": -1001, "msg": "Internal error; unable to process your "
                                               "request. Please try again."}, {}
        self._apply(marks)
        return super()._answer(req, path, params, fault)

    def _apply(self, marks: Mapping[str, float | None]) -> None:
        acc = self.account
        acc.marks = {**self._recorded_marks,
                     **{s: f"{m:.2f}" for s, m in marks.items() if m is not None}}
        rows = []
        for rec in self._recorded:
            row = dict(rec)
            if row["symbol"] in marks and marks[row["symbol"]] is None:
                continue  # closed (Binance lists no open position of it)
            mark = marks.get(row["symbol"])
            if mark is not None:
                amt, entry = float(row["positionAmt"]), float(row["entryPrice"])
                upnl = amt * (mark - entry) if amt else 0.0
                row["markPrice"] = f"{mark:.2f}"
                row["unRealizedProfit"] = f"{upnl:.8f}"
                row["notional"] = f"{amt * mark:.8f}"
                if float(row["isolatedWallet"]) > 0:
                    row["isolatedMargin"] = f"{float(row['isolatedWallet']) + upnl:.8f}"
            rows.append(row)
        acc.positions = rows


def drift(start: float, end: float, steps: int) -> list[float]:
    """``steps`` marks moving evenly from ``start`` to ``end`` (both included).

    >>> drift(100, 90, 3)
    [100.0, 95.0, 90.0]
    """
    if steps < 2:
        return [float(end)]
    return [start + (end - start) * i / (steps - 1) for i in range(steps)]


def watch_account(now_ms: int | None = None) -> Account:
    """The recorded account of ``recorded_exchange.sample_account`` (BTCUSDT isolated long
    0.006 at 60,000 with 47.45 USDT posted, liquidation 52,300.87; ETHUSDT cross short), its
    history left out: the watch reads the open state only."""
    acc = sample_account(now_ms)
    acc.trades, acc.income, acc.margin_history, acc.force_orders = [], [], [], []
    acc.positions[0]["notional"] = f"{0.006 * 61000:.8f}"
    return acc


def towards_liquidation(steps_per_leg: int = 6) -> list[Step]:
    """BTCUSDT's marks on the way to its liquidation (52,300.87) and back, then an outage:
    a slow drift from 61,000 to 58,500 (distance 14.3 % to 10.6 %), a gap to 55,000 (4.9 %),
    a slide to 54,000, a recovery to 60,000, then ``steps_per_leg`` steps of outage and the
    exchange back at 60,000. ETHUSDT stays at 2,900."""
    def at(m: float) -> Step:
        return {"BTCUSDT": m, "ETHUSDT": 2900.0}

    path: list[Step] = [at(m) for m in drift(61_000, 58_500, steps_per_leg)]
    path += [at(55_000.0), at(54_000.0)]
    path += [at(m) for m in drift(56_000, 60_000, steps_per_leg)]
    path += [None] * steps_per_leg
    path += [at(60_000.0)]
    return path


def many_positions(count: int, now_ms: int | None = None) -> Account:
    """An account of ``count`` isolated long positions (one market each, Binance's bracket
    table), for the benchmark: each 0.01 contracts at 100, 0.2 posted, marked at 101;
    liquidation (0.2 − 0.01 × 100) / (0.01 × 0.004 − 0.01) = 80.32 (bracket 1)."""
    from .recorded_exchange import _now, bracket, market, position

    acc = Account(server_time=now_ms, wallet_balance="10000.00000000")
    for i in range(count):
        sym = f"C{i:03d}USDT"
        acc.markets.append(market(sym, f"C{i:03d}"))
        acc.brackets.append(bracket(sym))
        acc.marks[sym] = "101.00"
        acc.positions.append(position(sym, "BOTH", "0.010", "100.00", "101.00", "80.32",
                                      "0.20", 5, (now_ms or _now()) - DAY_MS))
    return acc


__all__ = ["ScriptedBinance", "Step", "drift", "many_positions", "towards_liquidation",
           "watch_account"]
