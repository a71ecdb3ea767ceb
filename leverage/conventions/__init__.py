"""Exchange conventions for the isolated liquidation price, one module each.

:data:`CONVENTIONS` is the registry: ``exchange`` name → its :class:`Convention`. Adding an
exchange is one new module with a :class:`Convention` subclass and one line below; the
names the formulas accept (``leverage.EXCHANGES``), the ccxt ids the exchange bridge
connects to and imports from (:data:`CCXT_IDS`), the tier tables' family names and the
``fee_rate`` help all follow from it.

>>> CONVENTIONS["bybit"].source.startswith("https://")
True
>>> CCXT_IDS["binancecoinm"]
'binance'
"""

from __future__ import annotations

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

__all__ = ["CCXT_IDS", "CONVENTIONS", "FEE_COUNTS", "Convention"]
