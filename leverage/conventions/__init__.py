"""Exchange conventions for the isolated liquidation price, one module each.

:data:`CONVENTIONS` is the registry: ``exchange`` name → its :class:`Convention`. Adding an
exchange is one new module with a :class:`Convention` subclass and one line below; the
names the formulas accept (``leverage.EXCHANGES``), the ccxt ids the exchange bridge
connects to and imports from (:data:`CCXT_IDS`), the tier tables' family names, the
``fee_rate`` help and the conventions ``leverage.liq_price``'s docstring lists
(:func:`with_rules`, each convention's ``rule``) all follow from it.

>>> CONVENTIONS["bybit"].source.startswith("https://")
True
>>> CCXT_IDS["binancecoinm"]
'binance'
"""

from __future__ import annotations

import textwrap

from .base import Convention
from .binance import Binance
from .bitget import Bitget
from .bybit import Bybit
from .gate import Gate
from .hyperliquid import Hyperliquid
from .okx import Okx

CONVENTIONS: dict[str, Convention] = {
    "binance": Binance(),
    "bybit": Bybit(),
    "okx": Okx(),
    "bitget": Bitget(),
    "gate": Gate(),
    "hyperliquid": Hyperliquid(),
}

CCXT_IDS: dict[str, str] = {i: name for name, c in CONVENTIONS.items() for i in c.ccxt_ids}
"""ccxt exchange id → the name of the convention its positions follow."""

FEE_COUNTS: tuple[str, ...] = tuple(name for name, c in CONVENTIONS.items() if c.fee_counts)
"""The conventions that count the taker ``fee_rate`` as maintenance margin."""

RULES_MARK = "{conventions}"
"""The line of a docstring that :func:`with_rules` replaces."""


def with_rules(doc: str) -> str:
    """``doc`` with its line :data:`RULES_MARK` replaced by one bullet per convention,
    ``* ``exchange="name"`` (contracts): its form`` (the convention's ``rule``), wrapped at
    that line's indent: ``leverage.liq_price``'s docstring lists exactly the registry."""
    lines = doc.split("\n")
    at = next(i for i, line in enumerate(lines) if line.strip() == RULES_MARK)
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    bullets = [textwrap.fill(f'``exchange="{name}"`` {c.rule}', 96 - len(indent),
                             initial_indent=f"{indent}* ", subsequent_indent=f"{indent}  ",
                             break_long_words=False, break_on_hyphens=False)
               for name, c in CONVENTIONS.items()]
    return "\n".join([*lines[:at], *bullets, *lines[at + 1:]])


__all__ = ["CCXT_IDS", "CONVENTIONS", "FEE_COUNTS", "RULES_MARK", "Convention", "with_rules"]
