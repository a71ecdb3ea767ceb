"""The trader's adjustment rules, checked against one journal event.

The wording of each break lives here once; the journal workbook's native formulas print the
same words (``templates`` reads :data:`RULE_TEXT`), so a flag reads the same in Python, in
Excel and in Google Sheets.
"""

from __future__ import annotations

import math
from typing import Protocol


class Thresholds(Protocol):
    """The trader's thresholds (:class:`leverage.models.AdjustmentRule`); ``None`` = no rule."""

    max_leverage: float | None
    max_margin_per_event: float | None
    max_adds_while_losing: int | None
    add_only_below_pnl: float | None
    withdraw_only_above_pnl: float | None
    close_if_loss_beyond: float | None
    min_liq_distance: float | None
    add_within_buffer: float | None
    max_liq_probability: float | None
    volatility: float | None
    horizon_days: float | None

RULE_TEXT: dict[str, str] = {
    "max_leverage": "leverage above max",
    "max_margin_per_event": "margin added above max per event",
    "max_adds_while_losing": "too many adds to a losing position",
    "add_only_below_pnl": "added margin before the loss trigger",
    "withdraw_only_above_pnl": "withdrew margin before the profit trigger",
    "close_if_loss_beyond": "should have closed instead of adding",
    "min_liq_distance": "liquidation closer than the buffer",
    "add_within_buffer": "added while liquidation stays inside the add buffer",
    "max_liq_probability": "liquidation probability above max",
}
"""Rule key → the words a broken rule is flagged with, in the order flags are listed."""

SEPARATOR = "; "


def rule_breaks(
    rule: Thresholds,
    event: str,
    amount: float,
    pnl_fraction: float,
    effective_leverage: float,
    liq_distance: float,
    adds_while_losing: int,
    liq_probability: float = math.nan,
) -> list[str]:
    """Words for each rule the event breaks, in :data:`RULE_TEXT` order.

    * ``max_leverage``: equity-based leverage after the event is above the maximum.
    * ``max_margin_per_event``: an ``add_margin`` (or the margin of an ``increase``) larger
      than the maximum.
    * ``max_adds_while_losing``: more ``add_margin`` and ``increase`` events at an open loss
      than allowed.
    * ``add_only_below_pnl``: margin added (``add_margin``) while PnL / initial margin was
      above the trigger.
    * ``withdraw_only_above_pnl``: margin withdrawn while PnL / initial margin was below it.
    * ``close_if_loss_beyond``: margin added (or the position increased) although the loss
      had passed the close level.
    * ``min_liq_distance``: after the event, liquidation is closer than the buffer.
    * ``add_within_buffer``: an ``add_margin`` or ``increase`` after which liquidation is
      still closer than this buffer (averaging into a loser: the add did not buy the room it
      was meant to).
    * ``max_liq_probability``: after the event, ``liq_probability`` (LIQ_PROBABILITY at the
      rule's ``volatility`` and ``horizon_days``; the caller passes ``nan`` when either is
      missing) is above the maximum.

    A leverage, distance or probability of ``nan`` (closed position, no liquidation price)
    breaks nothing.
    """
    adding = event in ("add_margin", "increase")  # an increase commits more margin too
    hit = {
        "max_leverage": rule.max_leverage is not None
        and _gt(effective_leverage, rule.max_leverage),
        "max_margin_per_event": adding
        and rule.max_margin_per_event is not None
        and amount > rule.max_margin_per_event,
        "max_adds_while_losing": adding
        and pnl_fraction < 0
        and rule.max_adds_while_losing is not None
        and adds_while_losing > rule.max_adds_while_losing,
        "add_only_below_pnl": event == "add_margin"
        and rule.add_only_below_pnl is not None
        and pnl_fraction > rule.add_only_below_pnl,
        "withdraw_only_above_pnl": event == "withdraw_margin"
        and rule.withdraw_only_above_pnl is not None
        and pnl_fraction < rule.withdraw_only_above_pnl,
        "close_if_loss_beyond": adding
        and rule.close_if_loss_beyond is not None
        and pnl_fraction <= -rule.close_if_loss_beyond,
        "min_liq_distance": rule.min_liq_distance is not None
        and _gt(rule.min_liq_distance, liq_distance),
        "add_within_buffer": adding
        and rule.add_within_buffer is not None
        and _gt(rule.add_within_buffer, liq_distance),
        "max_liq_probability": rule.max_liq_probability is not None
        and _gt(liq_probability, rule.max_liq_probability),
    }
    return [RULE_TEXT[k] for k, broken in hit.items() if broken]


def _gt(a: float, b: float) -> bool:
    return not (math.isnan(a) or math.isnan(b)) and a > b
