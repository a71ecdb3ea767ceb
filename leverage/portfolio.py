"""Portfolio rebalance: the margin moves that bring each position to its target.

Inputs, one row per position: ``side, qty, entry_price, mark_price, margin`` (isolated margin;
ignored for cross), ``margin_mode`` (isolated/cross), ``target_leverage`` or
``target_liq_distance`` (a fraction; wins when both are given; neither: no move, the row is
only watched), ``priority`` (1 = funded first), ``mmr`` and ``maint_amount``. Account inputs:
``wallet_balance`` (the cross wallet, without isolated margins) and ``free_balance`` (what
can still be moved into positions).

The workbook is USDⓈ-margined: every row must be a linear contract, so that notionals and
margins add up in one currency.

A blank ``mmr`` on a row whose ``symbol`` has a tier table (``BTCUSDT``: Binance's,
``bybit:BTCUSDT``: Bybit's; :func:`leverage.tiers.symbol_rate`) is the rate of the tier its
notional at entry, ``qty × entry_price``, falls in, with that tier's maintenance amount unless
``maint_amount`` is typed; a typed ``mmr`` is the trader's override, and Check flags it when
it is more than 2x off the tier's (:func:`leverage.tiers.override_note`). Without a table a
blank rate is :data:`~leverage.core.DEFAULT_MMR`.

Per position:

* ``leverage`` = equity-based effective leverage. An isolated position's equity is
  ``margin + upnl``; cross positions share the cross equity ``wallet + Σ cross upnl``, in
  proportion to notional.
* ``liq_price``: isolated :func:`~leverage.liq_price`; cross :func:`~leverage.cross_liq_price`
  with the other cross positions' PnL and maintenance margin held fixed. An isolated row
  whose liquidation price is at or beyond its entry on the losing side (margin at or below
  maintenance at entry) would be liquidated at once: its status is the core's message (with
  what to type when ``mmr`` looks like a percent typed as a number) and it gets no move.
* ``warnings`` ("Check"): flags that do not stop a row, in the core's words: a cross row's
  liquidation price at or beyond entry while ``mmr`` looks like a percent typed as a number
  (beyond entry is otherwise legitimate for cross: the other positions' losses). Rates
  (``mmr``, ``target_liq_distance``, the account's ``volatility``) also read percent text:
  ``"0.5%"`` is 0.005.
* ``move``: isolated, :func:`~leverage.margin_to_target` on equity (or, with a target
  distance, :func:`~leverage.margin_for_liq_price` at ``mark × (1 − s × distance)`` minus the
  margin posted). Cross positions share one equity, so the cross account has one leverage
  (every cross row's ``leverage`` is the account's, ``Σ notional / cross equity``) and one
  target ``T``, the lowest ``target_leverage`` of its rows: a row's move is its share of the
  cross transfer ``Σ notional / T − cross equity``,
  ``notional_i / T − cross_equity × notional_i / Σ notional``. A cross row whose own target is
  not ``T`` gets :func:`cross_target_note` in Check (its target cannot be met alone).
* ``allocated``: withdrawals (negative moves) always go through and add to the money
  available; adds are funded in priority order from ``free_balance + Σ withdrawals`` until
  it runs out; the last one funded may be partial. Among equal priorities the position
  closest to liquidation (smallest ``liq_distance``, rounded to 12 decimals; none sorts last)
  is funded first, then row order: when the money is short, risk decides, not the row.
* ``liq_probability``: :func:`~leverage.liq_probability` at the account's ``volatility`` and
  ``horizon_days`` (optional inputs; blank without them).

A blank ``margin`` is none, never 0: an isolated row with one gets :data:`MARGIN_REQUIRED`.

Account, besides the totals: ``totals_check``, the rows left out of the totals by name
(:func:`rows_left_out`; "" when none is); ``account_shock``, :func:`~leverage.account_shock`
over the cross rows (the move of every mark that liquidates the cross account), and
``shock_position``, the cross row whose maintenance margin minus PnL at that move is largest
(docs/FORMULAS.md, section "Portfolio rebalance").

An account the exchange liquidates on its ratio (Bybit's unified account in cross or
portfolio margin, Binance portfolio margin) adds three Account inputs, the exchange's
``account_equity`` and ``account_maint`` and the ``liq_threshold`` (equity ÷ maintenance at
liquidation, blank 1): the Account gets ``account_mm_rate`` and ``uni_mmr``
(:func:`account_ratio`) and ``account_shock`` reaches the threshold from the exchange's
figures (docs/FORMULAS.md, "Accounts liquidated on their ratio").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from . import core
from ._args import NONE, Kind, Number, Rate, _Choice, check_columns, fmt
from .errors import InputError
from .layout import REBALANCE_POSITIONS, RECONCILE_COLUMNS
from .planning import account_shock, liq_probability
from .tiers import is_blank, override_note, symbol_rate, symbol_table

# The Positions sheet's column keys live in leverage.layout; the portfolio reads its inputs
# and writes its outputs (all the computed columns but the sync's reconcile column).
INPUT_COLUMNS = tuple(REBALANCE_POSITIONS.keys("input"))
OUTPUT_COLUMNS = tuple(k for k in REBALANCE_POSITIONS.keys("computed")
                       if k not in RECONCILE_COLUMNS)


@dataclass
class RebalanceResult:
    columns: dict[str, list[Any]] = field(default_factory=dict)
    account: dict[str, Any] = field(default_factory=dict)  # numbers; shock_position is text

    def row(self, i: int) -> dict[str, Any]:
        return {k: v[i] for k, v in self.columns.items()}


class MarginMode(_Choice):
    """``isolated`` or ``cross``, read as 0/1."""

    words: ClassVar[dict[str, float]] = {"isolated": 0.0, "cross": 1.0}
    numbers: ClassVar[dict[float, float]] = {}
    expected: ClassVar[str] = "isolated or cross"


LINEAR_ONLY = "contract must be linear in a USDⓈ-margined portfolio, got 'inverse'"

COLUMN_RULES: dict[str, Kind] = {
    "margin_mode": MarginMode(default="isolated"),
    "qty": core.QTY,
    "entry_price": core.PRICE,
    "mark_price": core.PRICE,
    # a blank is read as none: required for isolated rows, not read for cross ones
    "margin": core.MARGIN.with_default(math.nan),
    "target_leverage": Number(gt=0, blank_means_none=True),
    "target_liq_distance": Rate(ge=0, lt=1, blank_means_none=True),
    "priority": Number(default=1.0),
    "mmr": core.MMR,
    "maint_amount": core.MAINT_AMOUNT,
}
"""The rule of each input column after ``side`` and ``contract`` (:data:`leverage.core.SIDE`,
:data:`leverage.core.CONTRACT`), in the order a row's first broken rule is reported; formula
arguments keep the formulas' own rules. ``COLUMN_RULES[k].describe()`` is the status text."""


ACCOUNT_RULES: dict[str, Kind] = {
    "wallet_balance": core.MARGIN,
    "free_balance": core.MARGIN,
    "volatility": Rate(ge=0, blank_means_none=True),
    "horizon_days": Number(ge=0, blank_means_none=True),
    # an account the exchange liquidates on its ratio (unified / portfolio margin): blank
    # when it is not one
    "account_equity": Number(blank_means_none=True),
    "account_maint": Number(ge=0, blank_means_none=True),
    "liq_threshold": Rate(ge=1, le=2, blank_means_none=True),
}
"""The rule of each Account input (a blank volatility or horizon: no liq. probability; a
blank account equity or maintenance: the account is not liquidated on its ratio; a blank
threshold is 1)."""

BYBIT_UTA_THRESHOLD = 1.0
"""Bybit's unified trading account (cross or portfolio margin) is liquidated when its account
maintenance margin rate (maintenance ÷ equity) reaches 100 %: equity ÷ maintenance = 1
(help centre, "Trading Rules: Liquidation Process (Unified Trading Account)")."""
BINANCE_PM_THRESHOLD = 1.05
"""Binance portfolio margin liquidates at uniMMR = equity ÷ maintenance ≤ 105 % (FAQ, "What Is
the Unified Account Maintenance Margin Ratio (uniMMR)")."""

ALREADY_BELOW = "the cross account is already below maintenance margin at today's marks"
ALREADY_AT_RATIO = ("the account is already at or past the exchange's liquidation ratio at "
                    "today's marks")
"""``account_shock`` of an account liquidated on its ratio whose equity is already below
``liq_threshold`` × maintenance."""
MARGIN_REQUIRED = "margin is required (blank) for an isolated position"
"""A blank Isolated margin on an isolated row: a blank never counts as 0 (cross rows do not
read the margin)."""


def cross_target_note(account_target: float, own_target: float) -> str:
    """The Check of a cross row whose Target leverage is not its cross account's (the
    lowest cross target): the rows share one equity, so the account has one leverage.

    >>> cross_target_note(3, 4)[-55:]
    "the lowest cross target; this row's 4x is not met alone"
    """
    return (f"cross positions share one equity, so one leverage: the moves bring the cross "
            f"account to {fmt(account_target)}x, the lowest cross target; this row's "
            f"{fmt(own_target)}x is not met alone")


def rows_left_out(errors: Sequence[str], no_move: Sequence[str],
                  no_distance: Sequence[str] = ()) -> str:
    """The totals' check: the rows left out of them, by name, or "" when none is.

    ``errors``: rows whose inputs were refused (left out of every total); ``no_move``: rows
    whose inputs passed but that got a Status and no margin move (left out of the move
    totals: Total margin moves needed, Total allocated, Shortfall); ``no_distance``: rows
    whose inputs passed but that got a Status and no liquidation price (liquidated at once:
    left out of the worst liquidation distance).

    >>> rows_left_out(["P1", "row 9"], [])
    '2 rows with errors left out of every total: P1, row 9'
    >>> rows_left_out([], ["P2"], ["P2"]).split("; ")[1]
    '1 row with no liq. price left out of the worst liq. distance: P2'
    """
    def said(names: Sequence[str], what: str) -> str:
        rows = "row" if len(names) == 1 else "rows"
        return f"{len(names)} {rows} with {what}: {', '.join(names)}"

    parts = [said(names, what) for names, what in (
        (errors, "errors left out of every total"),
        (no_move, "no margin move left out of the move totals"),
        (no_distance, "no liq. price left out of the worst liq. distance")) if names]
    return "; ".join(parts)


def rebalance(
    positions: Sequence[Mapping[str, Any]], wallet_balance: float, free_balance: float,
    volatility: float | None = None, horizon_days: float | None = None,
    account_equity: float | None = None, account_maint: float | None = None,
    liq_threshold: float | None = None, *,
    row_labels: Sequence[str] | None = None,
) -> RebalanceResult:
    """Compute the rebalance table (see the module docstring for every rule).

    ``account_equity``, ``account_maint``, ``liq_threshold``: an account the exchange
    liquidates on its ratio (see :func:`account_ratio`); blank: it is not one.
    ``row_labels``: how the totals' check names a row without a ``position_id`` (the sync
    passes "row 7", the sheet row); default "row k", k counting ``positions`` from 1.
    """
    given = {"wallet_balance": wallet_balance, "free_balance": free_balance,
             "volatility": volatility, "horizon_days": horizon_days,
             "account_equity": account_equity, "account_maint": account_maint,
             "liq_threshold": liq_threshold}
    read: dict[str, float] = {}
    for name, v in given.items():
        cols = check_columns({name: v}, **{name: ACCOUNT_RULES[name]})
        cols.raise_first()
        read[name] = float(cols[name])  # "105%" as 1.05; a blank as nan
    n = len(positions)
    words = check_columns(positions, side=core.SIDE, contract=core.CONTRACT)
    cols = check_columns(positions, **COLUMN_RULES)
    inverse = words["contract"] > 0
    status: list[str | None] = [
        words.errors[i] or (LINEAR_ONLY if inverse[i] else None) or cols.errors[i]
        for i in range(n)
    ]
    side, mode = words["side"], cols["margin_mode"]
    arrays = cols.values
    for i in range(n):
        if status[i] is None and mode[i] == 0 and math.isnan(arrays["margin"][i]):
            status[i] = MARGIN_REQUIRED
    ok = np.array([s is None for s in status])
    good = np.where(ok, 1.0, np.nan)  # poison bad rows so no total picks them up
    qty, entry, mark = (arrays[k] * good for k in ("qty", "entry_price", "mark_price"))
    mmr, amount, tier_notes = _symbol_rates(positions, ok, qty, entry, arrays["mmr"],
                                            arrays["maint_amount"])
    margin = arrays["margin"]
    side = np.broadcast_to(side, (n,)) * good
    cross = (mode > 0) & ok
    iso = (mode == 0) & ok

    upnl = np.where(ok, core.unrealized_pnl.rows(side, qty, entry, mark).values, np.nan)
    notional = np.where(ok, core.notional.rows(qty, mark).values, np.nan)
    mm = np.where(ok, core.maint_margin.rows(notional, mmr, amount).values, np.nan)

    cross_notional = float(np.nansum(np.where(cross, notional, 0.0)))
    cross_upnl = float(np.nansum(np.where(cross, upnl, 0.0)))
    cross_mm = float(np.nansum(np.where(cross, mm, 0.0)))
    cross_equity = wallet_balance + cross_upnl
    share = np.where(cross, cross_equity * notional / (cross_notional or 1.0), np.nan)
    # a cross position's equity is its share of the cross equity (its PnL is inside it)
    lev = core.effective_leverage.rows(
        notional, np.where(cross, share, margin), np.where(cross, 0.0, upnl)
    )
    iso_liq = core.liq_price.rows(side, qty, entry, margin, mmr, amount)
    cross_liq = core.cross_liq_price.rows(
        side, qty, entry, wallet_balance, cross_upnl - np.where(cross, upnl, 0.0),
        cross_mm - np.where(cross, mm, 0.0), mmr, amount,
    )
    liq = np.where(cross, cross_liq.values, iso_liq.values)
    dist = core.liq_distance.rows(side, mark, liq).values

    target_lev = arrays["target_leverage"]
    target_dist = arrays["target_liq_distance"]
    by_distance = ~np.isnan(target_dist)
    target_price = mark * (1.0 - side * np.where(by_distance, target_dist, 0.0))
    need_for_distance = core.margin_for_liq_price.rows(side, qty, entry, target_price, mmr, amount)
    to_lev = core.margin_to_target.rows(
        notional, margin, np.where(by_distance, 1.0, target_lev), upnl
    )
    iso_move = np.where(by_distance, need_for_distance.values - margin, to_lev.values)
    # one equity, one leverage: every cross row's move takes the cross account to one
    # target, the lowest Target leverage of its rows (the safest asked for); rows that
    # asked for another are flagged in Check
    cross_targets = target_lev[cross & ~by_distance & ~np.isnan(target_lev)]
    cross_target = float(cross_targets.min()) if cross_targets.size else math.nan
    cross_target_equity = np.where(by_distance, np.nan, notional / cross_target)
    cross_move = cross_target_equity - share
    # no target typed: the row is watched, not steered (an imported position, say)
    no_target = ~by_distance & np.isnan(target_lev)
    move = np.where(no_target, np.nan, np.where(cross, cross_move, iso_move))

    # an isolated row whose liquidation price is at or beyond entry: refused, no move
    at_once = iso & np.not_equal(iso_liq.errors, NONE)
    for i in range(n):
        if status[i] is not None:
            continue
        if at_once[i]:
            status[i] = iso_liq.errors[i]
            move[i] = np.nan
        elif cross[i] and by_distance[i]:
            status[i] = (
                "target_liq_distance applies to isolated positions; give cross a target_leverage"
            )
            move[i] = np.nan
        elif iso[i] and by_distance[i] and need_for_distance.errors[i] is not None:
            status[i] = need_for_distance.errors[i]
        elif iso[i] and not by_distance[i] and not no_target[i] and to_lev.errors[i] is not None:
            status[i] = to_lev.errors[i]
        elif lev.errors[i] is not None:
            status[i] = lev.errors[i]

    allocated = _allocate(move, arrays["priority"], dist, free_balance)
    total_notional = float(np.nansum(np.where(ok, notional, 0.0)))
    total_equity = wallet_balance + float(np.nansum(np.where(ok, upnl, 0.0))) + float(
        np.nansum(np.where(iso, margin, 0.0))
    )
    finite = dist[np.isfinite(dist)]
    account: dict[str, float | str] = {  # numbers, and the texts of the checks below
        "total_notional": total_notional,
        "total_equity": total_equity,
        "account_leverage": total_notional / total_equity if total_equity > 0 else math.nan,
        "worst_liq_distance": float(finite.min()) if finite.size else math.nan,
        "total_move": float(np.nansum(move)),
        "total_allocated": float(np.nansum(allocated)),
        "shortfall": float(np.nansum(move) - np.nansum(allocated)),
    }
    columns = {
        "notional": notional,
        "unrealized_pnl": upnl,
        "maint_margin": mm,
        "leverage": lev.values,
        "liq_price": liq,
        "liq_distance": dist,
        "move": move,
        "allocated": allocated,
    }
    equity, maint = read["account_equity"], read["account_maint"]
    ratio = account_ratio(equity, maint, read["liq_threshold"])
    account.update({k: ratio[k] for k in ("account_mm_rate", "uni_mmr")})
    shock_wallet, threshold = wallet_balance, 1.0
    if ratio["on_ratio"]:
        # the exchange's equity and maintenance now; the cross rows' PnL and maintenance
        # move with the marks, the rest of the account (other collateral, the exchange's
        # maintenance beyond the rows') is held as it is
        threshold = ratio["threshold"]
        shock_wallet = equity - cross_upnl - threshold * (maint - cross_mm)
    account.update(_account_shock(positions, cross, side, qty, entry, mark, mmr, amount,
                                  shock_wallet, threshold, ratio["on_ratio"]))
    columns["liq_probability"], odds_flags = _liq_odds(
        ok & ~at_once, side, mark, liq, cross_liq.position_rows, cross, volatility,
        horizon_days)
    out: dict[str, list[float | str]] = {k: [float(x) for x in v] for k, v in columns.items()}
    out["status"] = [s or "" for s in status]
    # flags that do not stop a row: a cross liquidation price beyond entry with a rate that
    # looks like a percent typed as a number (a cross LP beyond entry is otherwise legitimate)
    flags = np.where(cross, cross_liq.warnings, NONE)
    # and a volatility that looks like a percent typed as a number (LIQ_PROBABILITY's flag)
    flags = np.where(np.equal(flags, NONE), odds_flags, flags)
    apart = cross & ~by_distance & ~no_target & (target_lev != cross_target)
    out["warnings"] = [
        "; ".join(w for w in (flags[i], cross_target_note(cross_target, target_lev[i])
                              if apart[i] else None, tier_notes[i]) if w)
        for i in range(n)
    ]
    names = _row_names(positions, row_labels)
    account["totals_check"] = rows_left_out(
        [names[i] for i in range(n) if not ok[i]],
        [names[i] for i in range(n) if ok[i] and status[i] is not None
         and not math.isfinite(move[i])],
        [names[i] for i in range(n) if ok[i] and status[i] is not None
         and not math.isfinite(dist[i])])
    return RebalanceResult(out, account)


def _symbol_rates(
    positions: Sequence[Mapping[str, Any]], ok: np.ndarray, qty: np.ndarray,
    entry: np.ndarray, mmr: np.ndarray, amount: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The rates each row computes with, and each row's tier note for Check.

    A blank ``mmr`` on a row whose Symbol has a tier table (:func:`~leverage.tiers.symbol_rate`:
    ``BTCUSDT`` is Binance's, ``bybit:BTCUSDT`` Bybit's) takes the rate of the tier its
    notional at entry, ``qty × entry``, falls in, and its maintenance amount unless one is
    typed; a typed ``mmr`` is the trader's override, flagged when it is more than 2x off the
    tier's (:func:`~leverage.tiers.override_note`). Without a table a blank stays
    :data:`~leverage.core.DEFAULT_MMR`, as before."""
    mmr, amount = mmr.copy(), amount.copy()
    notes = [""] * len(positions)
    for i, p in enumerate(positions):
        symbol = p.get("symbol")
        if not ok[i] or is_blank(symbol):
            continue
        table = symbol_table(symbol)
        rate = symbol_rate(symbol, float(qty[i] * entry[i]))
        if table is None or rate is None:
            continue
        if is_blank(p.get("mmr")):
            mmr[i] = rate[0]
            if is_blank(p.get("maint_amount")):
                amount[i] = rate[1]
        else:
            notes[i] = override_note(float(mmr[i]), rate[0], table.name)
    return mmr, amount, notes


def _row_names(positions: Sequence[Mapping[str, Any]],
               labels: Sequence[str] | None) -> list[str]:
    """Each row's name in the totals' check: its position_id as text, else its label."""
    if labels is not None and len(labels) != len(positions):
        raise InputError(f"row_labels must name each of the {len(positions)} positions, "
                         f"got {len(labels)}")
    out = []
    for i, p in enumerate(positions):
        pid = p.get("position_id")
        text = "" if pid is None else _id_text(pid)
        out.append(text or (labels[i] if labels is not None else f"row {i + 1}"))
    return out


def _id_text(pid: Any) -> str:
    """A position id as the sheets show it: 7 -> "7", 7.5 -> "7.5", text stripped."""
    if isinstance(pid, float) and pid.is_integer():
        return str(int(pid))
    return str(pid).strip()


def _liq_odds(
    ok: np.ndarray, side: np.ndarray, mark: np.ndarray, liq: np.ndarray,
    below: np.ndarray | None, cross: np.ndarray, volatility: float | None,
    horizon_days: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """LIQ_PROBABILITY of each valid row at the account's volatility and horizon (blank
    without them): 0 with no liquidation price, 1 for a cross row already below maintenance
    at every price; and each valid row's flag from it (``None``: none)."""
    none = np.full(ok.shape, None, dtype=object)
    if volatility is None or horizon_days is None or not ok.any():
        return np.full(ok.shape, np.nan), none
    res = liq_probability.rows(np.where(ok, side, 1.0), np.where(ok, mark, 1.0), liq,
                               volatility, horizon_days)
    odds = res.values
    if below is not None:
        odds = np.where(cross & np.broadcast_to(below, ok.shape), 1.0, odds)
    flags = none if res.warnings is None else np.broadcast_to(res.warnings, ok.shape)
    return np.where(ok, odds, np.nan), np.where(ok, flags, NONE)


def _account_shock(
    positions: Sequence[Mapping[str, Any]], cross: np.ndarray, side: np.ndarray,
    qty: np.ndarray, entry: np.ndarray, mark: np.ndarray, mmr: np.ndarray, amount: np.ndarray,
    wallet_balance: float, threshold: float = 1.0, on_ratio: bool = False,
) -> dict[str, Any]:
    """``account_shock``: ACCOUNT_SHOCK (direction either, at ``threshold``) over the valid
    cross rows, or
    :data:`ALREADY_BELOW`; ``shock_position``: the id of the cross row whose maintenance
    margin minus PnL at that move is largest (these amounts add up to the wallet balance at
    the move, so it is the position that uses most of the account's buffer)."""
    shock = account_shock.rows(np.where(cross, side, 1.0), np.where(cross, qty, 0.0),
                               np.where(cross, entry, 1.0), np.where(cross, mark, 1.0),
                               wallet_balance, np.where(cross, mmr, 0.0),
                               np.where(cross, amount, 0.0), "either", threshold)
    if not shock.ok.all():
        if shock.position_rows is None or not shock.position_rows.any():
            shock.raise_first()  # every row was validated above: a bug, never hidden
        return {"account_shock": ALREADY_AT_RATIO if on_ratio else ALREADY_BELOW,
                "shock_position": ""}
    move = float(shock.values)
    if math.isnan(move):
        return {"account_shock": move, "shock_position": ""}
    moved = mark * (1.0 + move)
    use = np.where(cross, threshold * (qty * moved * mmr - amount)
                   - side * qty * (moved - entry), -np.inf)
    pid = positions[int(np.argmax(use))].get("position_id")
    return {"account_shock": move, "shock_position": "" if pid is None else str(pid).strip()}


def account_ratio(account_equity: float | None, account_maint: float | None,
                  liq_threshold: float | None = None) -> dict[str, Any]:
    """The account ratio of an account the exchange liquidates as a whole (Bybit's unified
    trading account in cross or portfolio margin, Binance portfolio margin), both ways round
    as each exchange states it:

    - ``account_mm_rate`` = maintenance ÷ equity (Bybit's ``accountMMRate``; liquidated when
      it reaches 100 %, :data:`BYBIT_UTA_THRESHOLD`);
    - ``uni_mmr`` = equity ÷ maintenance (Binance's ``uniMMR``; liquidated at ≤ 105 %,
      :data:`BINANCE_PM_THRESHOLD`).

    ``liq_threshold``: equity ÷ maintenance at which the exchange liquidates (blank: 1).
    ``on_ratio``: both figures are given (the account is liquidated on its ratio); a ratio
    with a zero or negative denominator is nan (blank). Units: fractions (1.05 = 105 %).

    Equity 10,000 and maintenance 2,500: account MM rate 25 %, uniMMR 4 (400 %).

    >>> r = account_ratio(10_000, 2_500, 1.05)
    >>> r["account_mm_rate"], r["uni_mmr"], r["threshold"], r["on_ratio"]
    (0.25, 4.0, 1.05, True)
    """
    def finite(v: float | None) -> float:
        return float(v) if v is not None and math.isfinite(float(v)) else math.nan

    eq, mm, k = finite(account_equity), finite(account_maint), finite(liq_threshold)
    on_ratio = math.isfinite(eq) and math.isfinite(mm)
    k = k if math.isfinite(k) else 1.0
    return {"account_mm_rate": mm / eq if on_ratio and eq > 0 else math.nan,
            "uni_mmr": eq / mm if on_ratio and mm > 0 else math.nan,
            "threshold": k, "on_ratio": on_ratio}


def rank_distance(liq_distance: float) -> float:
    """How an add ranks among adds of equal priority: its liquidation distance rounded to 12
    decimals (the workbooks compare it as text in SUMIFS criteria, exact at that precision),
    ``inf`` without a liquidation price (nothing to protect: funded last).

    >>> rank_distance(0.0190000000000004), rank_distance(float("nan"))
    (0.019, inf)
    """
    return round(float(liq_distance), 12) if math.isfinite(liq_distance) else math.inf


def _allocate(
    move: np.ndarray, priority: np.ndarray, liq_distance: np.ndarray, free_balance: float
) -> np.ndarray:
    """Withdrawals in full; adds by (priority, :func:`rank_distance`, row) until the money
    runs out."""
    valid = np.isfinite(move)
    alloc = np.where(valid & (move < 0), move, 0.0)
    available = free_balance - float(alloc.sum())
    order = sorted(np.nonzero(valid & (move > 0))[0],
                   key=lambda i: (priority[i], rank_distance(float(liq_distance[i])), i))
    for i in order:
        take = min(move[i], max(available, 0.0))
        alloc[i] = take
        available -= take
    return np.where(valid, alloc, np.nan)


def liq_gap(ours: float | None, theirs: float | None) -> float | None:
    """The gap between our liquidation price and the exchange's, as a fraction of theirs:
    (ours − theirs) ÷ theirs. None when either has none (missing, blank, ``0`` or not a
    price).

    >>> round(liq_gap(53_000.0, 53_345.81), 6)
    -0.006482
    >>> liq_gap(53_000.0, None), liq_gap(None, 4_890.1), liq_gap(53_000.0, 0)
    (None, None, None)
    """
    ok = [isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
          for v in (ours, theirs)]
    if not all(ok):
        return None
    return (float(ours) - float(theirs)) / float(theirs)  # type: ignore[arg-type]
