"""The core's formulas as spreadsheet expressions, once each, in both modes.

``udf`` mode calls the add-in's functions (SPEC names, SPEC argument order); ``native`` mode
spells the same formula in plain Excel so the workbook also works without the add-in and in
Google Sheets. Each native expression follows the core's arithmetic step for step
(``leverage.core``: same operands, same order), so both give the core's numbers.

Arguments are cell references (or small expressions); ``side`` is the +1/−1 sign for native
mode and whatever the core accepts (+1/−1 or the word) for the add-in. Callers guard the
domain (a position with qty > 0, equity > 0, ...) before calling, so the add-in is never asked
for an answer that does not exist.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any

import leverage as lv
from leverage import Kind, Number, check_columns, fmt

from ._book import nested_if, quoted


def notional(mode: str, qty: str, price: str, contract: str | None = None) -> str:
    """Linear ``qty × price``; inverse ``qty / price``."""
    if mode == "udf":
        return f"NOTIONAL({qty},{price}{_opt(contract)})"
    if contract is None:
        return f"{qty}*{price}"
    return f'IF({contract}="inverse",{qty}/{price},{qty}*{price})'


def unrealized_pnl(
    mode: str, side: str, qty: str, entry: str, mark: str, contract: str | None = None
) -> str:
    """Linear ``s × qty × (mark − entry)``; inverse ``s × qty × (1/entry − 1/mark)``."""
    if mode == "udf":
        return f"UNREALIZED_PNL({side},{qty},{entry},{mark}{_opt(contract)})"
    linear = f"{side}*{qty}*({mark}-{entry})"
    if contract is None:
        return linear
    return f'IF({contract}="inverse",{side}*{qty}*(1/{entry}-1/{mark}),{linear})'


def effective_leverage(mode: str, notional_: str, margin: str, upnl: str | None = None) -> str:
    """``notional / (margin + upnl)``; the caller checks the denominator is > 0."""
    if mode == "udf":
        return f"EFFECTIVE_LEVERAGE({notional_},{margin}{_opt(upnl)})"
    return f"{notional_}/{margin}" if upnl is None else f"{notional_}/({margin}+{upnl})"


def native_avg_entry(qty: str, entry: str, add_qty: str, add_price: str,
                     contract: str | None = None) -> str:
    """Average entry after adding ``add_qty`` at ``add_price`` (``leverage.avg_entry``), as
    its kernel computes it: ``w = 1 / (1 + qty/add_qty)``; linear ``entry + w·(add_price −
    entry)``, inverse (qty in USD of contracts) ``1 / ((1 − w)/entry + w/add_price)``; the
    caller checks ``add_qty`` and the prices are > 0. Native only: the journal's steps carry
    it to the next step, which an add-in column call over the table cannot feed (it would
    read its own results)."""
    w = f"(1/(1+{qty}/{add_qty}))"
    linear = f"{entry}+{w}*({add_price}-{entry})"
    if contract is None:
        return linear
    return f'IF({contract}="inverse",1/((1-{w})/{entry}+{w}/{add_price}),{linear})'


def maint_margin(mode: str, notional_: str, mmr: str, maint_amount: str) -> str:
    """``notional × mmr − maint_amount``."""
    if mode == "udf":
        return f"MAINT_MARGIN({notional_},{mmr},{maint_amount})"
    return f"{notional_}*{mmr}-{maint_amount}"


def _native_liq(
    side: str, qty: str, entry: str, margin: str, mmr: str, maint: str, contract: str | None
) -> str:
    """Binance's isolated liquidation price (``leverage.liq_price``), written in the notional
    at liquidation (the form of ``leverage.tiers.tier_of_root``):

    * linear ``n = (qty·entry − s·margin − s·amount) / (1 − s·mmr)``, price ``n / qty``;
    * inverse ``n = (qty/entry + s·margin + s·amount) / (1 + s·mmr)``, price ``qty / n``;

    none (blank) when ``n ≤ 0``."""
    lin_n = f"({qty}*{entry}-{side}*{margin}-{side}*{maint})/(1-{side}*{mmr})"
    linear = f'IF({lin_n}>0,{lin_n}/{qty},"")'
    if contract is None:
        return linear
    inv_n = f"({qty}/{entry}+{side}*{margin}+{side}*{maint})/(1+{side}*{mmr})"
    inverse = f'IF({inv_n}>0,{qty}/({inv_n}),"")'
    return f'IF({contract}="inverse",{inverse},{linear})'


def liq_price(
    mode: str,
    side: str,
    qty: str,
    entry: str,
    margin: str,
    mmr: str,
    maint: str,
    contract: str | None = None,
) -> str:
    """Isolated liquidation price (Binance convention), blank when there is none."""
    if mode == "udf":
        return f"LIQ_PRICE({side},{qty},{entry},{margin},{mmr},{maint}{_opt(contract)})"
    return _native_liq(side, qty, entry, margin, mmr, maint, contract)


def cross_liq_price(
    mode: str,
    side: str,
    qty: str,
    entry: str,
    wallet: str,
    other_upnl: str,
    other_maint: str,
    mmr: str,
    maint: str,
) -> str:
    """Cross liquidation price: the isolated formula on ``wallet + other_upnl − other_maint``."""
    if mode == "udf":
        return (f"CROSS_LIQ_PRICE({side},{qty},{entry},{wallet},{other_upnl},{other_maint},"
                f"{mmr},{maint})")
    shared = f"({wallet}+{other_upnl}-{other_maint})"
    return _native_liq(side, qty, entry, shared, mmr, maint, None)


def liq_distance(mode: str, side: str, mark: str, liq: str) -> str:
    """``max(s × (mark − liq) / mark, 0)``; the caller checks ``liq`` is a number."""
    if mode == "udf":
        return f"LIQ_DISTANCE({side},{mark},{liq})"
    return f"MAX({side}*({mark}-{liq})/{mark},0)"


def margin_to_target(
    mode: str, notional_: str, margin: str, target: str, upnl: str
) -> str:
    """``notional / target − (margin + upnl)``; the caller checks it is within reach."""
    if mode == "udf":
        return f"MARGIN_TO_TARGET({notional_},{margin},{target},{upnl})"
    return f"{notional_}/{target}-({margin}+{upnl})"


def margin_for_liq_price_key(qty: str, target: str, side: str, mmr: str, maint: str) -> str:
    """``n − s × (n × mmr − amount)`` with ``n = qty × target``: the liquidation condition's
    left side at the target (``leverage.core._solve_key``, linear)."""
    n = f"({qty}*{target})"
    return f"({n}-{side}*({n}*{mmr}-{maint}))"


def margin_for_liq_price(
    mode: str, side: str, qty: str, entry: str, target: str, mmr: str, maint: str
) -> str:
    """Isolated margin that puts the (linear) liquidation price at ``target``:
    ``s × (qty × entry − key)``; the caller checks the target side and that it is ≥ 0."""
    if mode == "udf":
        return f"MARGIN_FOR_LIQ_PRICE({side},{qty},{entry},{target},{mmr},{maint})"
    return f"{side}*({qty}*{entry}-{margin_for_liq_price_key(qty, target, side, mmr, maint)})"


def liq_probability(
    mode: str, side: str, mark: str, liq: str, volatility: str, horizon_days: str
) -> str:
    """Chance the mark touches ``liq`` within ``horizon_days`` (``leverage.liq_probability``,
    no drift); the caller checks ``liq`` is a number and the volatility and horizon are
    numbers ≥ 0. With no drift the core's ``e^{2μb/σ²}`` is ``mark/liq`` (both sides), so the
    closed form is ``Φ((b + h)/(σ√T)) + (mark/liq)·Φ((b − h)/(σ√T))`` with
    ``b = s·ln(liq/mark)``, ``h = s·σ²T/2``, ``T = horizon_days/365``: 1 when ``b ≥ 0`` (at
    or past the liquidation price), 0 when ``σ√T = 0``. ``NORMSDIST`` (not ``NORM.S.DIST``,
    which needs the ``_xlfn.`` prefix) exists in Excel, LibreOffice and Google Sheets."""
    if mode == "udf":
        return f"LIQ_PROBABILITY({side},{mark},{liq},{volatility},{horizon_days})"
    t = f"({horizon_days}/365)"
    b = f"({side}*LN({liq}/{mark}))"
    h = f"({side}*{volatility}*{volatility}*{t}/2)"
    sd = f"({volatility}*SQRT({t}))"
    touch = f"NORMSDIST(({b}+{h})/{sd})+{mark}/{liq}*NORMSDIST(({b}-{h})/{sd})"
    return f"IF({b}>=0,1,IF({sd}=0,0,MIN({touch},1)))"


def account_shock(
    mode: str, base: str, slope: str, sides: str, qtys: str, entries: str, marks: str,
    wallet: str, mmrs: str, maint_amounts: str, threshold: str | None = None,
) -> str:
    """The uniform move of every mark at which the cross account's equity meets its
    maintenance margin, or ``threshold`` times it (``leverage.account_shock``, direction
    either): with ``C = base`` (wallet − Σ s·qty·entry + k·Σ maint_amount) and ``D = slope``
    (Σ qty·mark·(s − k·mmr)), ``m = −C/D − 1``, blank unless ``−C/D > 0``. The caller checks
    ``C + D ≥ 0`` (not already below the threshold). The ranges (rows with qty 0 are not in
    the account) are the add-in's arguments; native mode needs only ``C`` and ``D``."""
    if mode == "udf":
        return (f'ACCOUNT_SHOCK({sides},{qtys},{entries},{marks},{wallet},{mmrs},'
                f'{maint_amounts},"either"{_opt(threshold)})')
    return f'IF({slope}=0,"",IF(-{base}/{slope}>0,-{base}/{slope}-1,""))'


def _opt(arg: str | None) -> str:
    return "" if arg is None else f",{arg}"


# ------------------------------------------------------------------ status messages
# A status cell says what the core says for the same row. The words are never written here:
# they come from the core itself, either from an argument's rule (``Kind.describe()`` through
# ``leverage.check_columns``) or from the core's message for a probe row, in which each probe
# value is then replaced by the cell that holds it on the sheet.
PROBE_TEXT = "Zq9"
"""A typed word no rule accepts: where the core's message shows it, the sheet shows the cell."""


def said(message: str, cells: Mapping[str, str], repeat: bool = False) -> str:
    """The core's ``message`` as a formula's text expression, each key of ``cells`` (a probe
    value as the message shows it) replaced by its expression (``cells`` values). Each key
    must be in the message once (``repeat``: once or more).

    >>> said("qty must be > 0, got -7.25", {"-7.25": "D2"})
    '"qty must be > 0, got "&D2'
    """
    if not cells:
        return quoted(message)
    pattern = re.compile("|".join(re.escape(k) for k in sorted(cells, key=len, reverse=True)))
    parts: list[str] = []
    at = 0
    found: list[str] = []
    for m in pattern.finditer(message):
        if m.start() > at:
            parts.append(quoted(message[at:m.start()]))
        parts.append(cells[m.group()])
        found.append(m.group())
        at = m.end()
    if at < len(message):
        parts.append(quoted(message[at:]))
    if (set(found) != set(cells)) if repeat else (sorted(found) != sorted(cells)):
        # a probe value missing or shown twice: pick another
        raise ValueError(f"probe values {sorted(cells)} not each once in {message!r}")
    return "&".join(parts)


def bankrupt(equity: str) -> str:
    """The core's words for a bankrupt position (equity <= 0), as a formula's text expression
    with its equity from the expression ``equity``."""
    message = lv.effective_leverage.rows(1.0, 1.0, -1235.5).errors[()]  # equity -1234.5
    return said(message, {"-1234.5": equity})


@functools.cache
def _rule_says(name: str, rule: Kind, value: Any) -> str | None:
    return check_columns({name: value}, **{name: rule}).first_error


def _bounds(ref: str, rule: Number) -> tuple[str | None, float]:
    """The condition that ``ref`` (a number) breaks ``rule``'s bounds, and a probe value that
    does (``None``: no bounds)."""
    outside = [
        f"{ref}{op}{bound!r}"
        for op, bound in (("<=", rule.gt), ("<", rule.ge), (">=", rule.lt), (">", rule.le))
        if bound is not None
    ]
    if not outside:
        return None, math.nan
    low = rule.gt if rule.gt is not None else rule.ge
    high = rule.lt if rule.lt is not None else rule.le
    if low is not None:
        probe = low - 7.25
    else:
        assert high is not None  # some bound is set: ``outside`` is not empty
        probe = high + 7.25
    return (outside[0] if len(outside) == 1 else f"OR({','.join(outside)})"), probe


def number_checks(ref: str, name: str, rule: Number) -> list[tuple[str, str]]:
    """The checks of one numeric cell read by ``rule``, as ``(condition, status)`` in the core's
    order and words: required (a blank without a default), a number, within the bounds."""
    checks: list[tuple[str, str]] = []
    required = _rule_says(name, rule, None)
    if required is not None:
        checks.append((f'{ref}=""', quoted(required)))
    checks.append((f'IF({ref}="",FALSE,NOT(ISNUMBER({ref})))',
                   said(_rule_says(name, rule, PROBE_TEXT) or "", {PROBE_TEXT: ref})))
    outside, probe = _bounds(ref, rule)
    if outside is not None:
        checks.append((f"IF(ISNUMBER({ref}),{outside},FALSE)",
                       said(_rule_says(name, rule, probe) or "", {fmt_number(probe): ref})))
    return checks


def choice_value(ref: str, rule: Kind, otherwise: str = '""') -> str:
    """The number the core reads a word column as (side ``long`` -> 1, ...; a choice kind's
    ``words`` and ``numbers``), ``otherwise`` for anything else."""
    by_value: dict[float, list[str]] = {}
    for word, value in rule.words.items():  # type: ignore[attr-defined]
        by_value.setdefault(value, []).append(f'TRIM({ref})="{word}"')
    words = nested_if([(f"OR({','.join(c)})", f"{v:g}") for v, c in by_value.items()], otherwise)
    numbers = nested_if([(f"{ref}={k:g}", f"{v:g}")
                         for k, v in rule.numbers.items()], otherwise)  # type: ignore[attr-defined]
    return f"IF(ISNUMBER({ref}),{numbers},{words})"


def choice_checks(ref: str, name: str, rule: Kind) -> list[tuple[str, str]]:
    """The checks of one word cell (side, contract, margin mode) in the core's words."""
    checks: list[tuple[str, str]] = []
    required = _rule_says(name, rule, None)
    if required is not None:
        checks.append((f'{ref}=""', quoted(required)))
    bad = f'{choice_value(ref, rule, quoted(PROBE_TEXT))}="{PROBE_TEXT}"'
    checks.append((f'IF({ref}="",FALSE,{bad})',
                   said(_rule_says(name, rule, PROBE_TEXT) or "", {PROBE_TEXT: ref})))
    return checks


HINT_PROBE = 0.0731  # a rate that looks like a percent typed as a number (7.31 %)


def percent_hint_text(name: str, ref: str) -> str:
    """The core's :func:`leverage.percent_hint` for the rate in ``ref`` as a formula's text
    expression (the caller decides when it applies: ``ABS(ref) >= PERCENT_LIKE``).

    >>> percent_hint_text("mmr", "E2")
    '"mmr "&E2&" is "&E2*100&" %; for "&E2&" % type "&E2/100&" or "&E2&"%"'
    """
    p = HINT_PROBE
    return said(lv.percent_hint(name, p) or "",
                {fmt(p): ref, fmt(p * 100): f"{ref}*100", fmt(p / 100): f"{ref}/100"},
                repeat=True)


def fmt_number(value: float) -> str:
    """A number as the core's messages show it."""
    return f"{value:.12g}"
