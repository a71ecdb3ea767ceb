"""Adjustable leverage for crypto perpetuals and futures.

Every formula of ``shared/SPEC.md`` in snake_case, working on scalars and numpy arrays with
the same code; each has a ``.rows`` twin that reports a bad row instead of raising.

>>> import leverage as lv
>>> lv.effective_leverage(100_000, 10_000)
10.0
"""

from ._args import RowResults
from .core import (
    CATALOGUE,
    DEFAULT_MMR,
    EXCHANGES,
    TierRow,
    bankruptcy_price,
    cross_liq_price,
    effective_leverage,
    funding_cost,
    funding_payment,
    gap_loss,
    liq_distance,
    liq_price,
    maint_margin,
    margin_for_liq_price,
    margin_to_target,
    max_withdrawable,
    notional,
    position_size,
    tier,
    tier_rows,
    unrealized_pnl,
)
from .errors import InputError, LeverageError, PositionError, TierTableError
from .tiers import (
    Tier,
    TierTable,
    get_tier_table,
    load_ccxt_tiers,
    tables_from_ccxt,
    tier_table_names,
)

__version__ = "0.1.0"

__all__ = [
    "CATALOGUE",
    "DEFAULT_MMR",
    "EXCHANGES",
    "InputError",
    "LeverageError",
    "PositionError",
    "RowResults",
    "Tier",
    "TierRow",
    "TierTable",
    "TierTableError",
    "bankruptcy_price",
    "cross_liq_price",
    "effective_leverage",
    "funding_cost",
    "funding_payment",
    "gap_loss",
    "get_tier_table",
    "liq_distance",
    "liq_price",
    "load_ccxt_tiers",
    "maint_margin",
    "margin_for_liq_price",
    "margin_to_target",
    "max_withdrawable",
    "notional",
    "position_size",
    "tables_from_ccxt",
    "tier",
    "tier_rows",
    "tier_table_names",
    "unrealized_pnl",
]
