"""Exchange conventions for the isolated liquidation price, one module each.

:data:`CONVENTIONS` is the registry: ``exchange`` name → its :class:`Convention`. Adding an
exchange is one new module with a :class:`Convention` subclass and one line below; the
names the formulas accept (``leverage.EXCHANGES``) follow from it.

>>> CONVENTIONS["bybit"].source.startswith("https://")
True
"""

from __future__ import annotations

from .base import Convention
from .binance import Binance
from .bybit import Bybit
from .okx import Okx

CONVENTIONS: dict[str, Convention] = {
    "binance": Binance(),
    "bybit": Bybit(),
    "okx": Okx(),
}

__all__ = ["CONVENTIONS", "Convention"]
