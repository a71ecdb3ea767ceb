"""Adjustable leverage for crypto perpetuals and futures.

Every formula of the catalogue (docs/FORMULAS.md) in snake_case, working on scalars and numpy
arrays with the same code; each has a ``.rows`` twin that reports a bad row instead of raising,
and a ``.rules`` mapping (argument -> its rule) that says what each argument accepts.

>>> import leverage as lv
>>> lv.effective_leverage(100_000, 10_000)
10.0
>>> lv.liq_price.rules["mmr"].describe()
'must be >= 0 and < 1'
>>> lv.liq_price("long", 1, 20_000, 400, "0.5%") == lv.liq_price("long", 1, 20_000, 400, 0.005)
True
"""

from ._args import (
    PERCENT_LIKE,
    VOLATILITY_PERCENT_LIKE,
    Columns,
    Contract,
    Flag,
    Kind,
    Number,
    Rate,
    RowResults,
    Side,
    check_columns,
    fmt,
    percent_hint,
)
from .catalogue import CATALOGUE
from .conventions import CONVENTIONS, Convention
from .core import (
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
from .errors import (
    InputError,
    LeverageError,
    LeverageWarning,
    PositionError,
    Problem,
    TierTableError,
)
from .planning import (
    account_shock,
    avg_entry,
    funding_apr,
    funding_from_history,
    hedge_liq_price,
    liq_after_add,
    liq_probability,
    max_open,
    safe_leverage,
)
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
    "CONVENTIONS",
    "DEFAULT_MMR",
    "EXCHANGES",
    "PERCENT_LIKE",
    "VOLATILITY_PERCENT_LIKE",
    "Columns",
    "Contract",
    "Convention",
    "Flag",
    "InputError",
    "Kind",
    "LeverageError",
    "LeverageWarning",
    "Number",
    "PositionError",
    "Problem",
    "Rate",
    "RowResults",
    "Side",
    "Tier",
    "TierRow",
    "TierTable",
    "TierTableError",
    "account_shock",
    "avg_entry",
    "bankruptcy_price",
    "check_columns",
    "cross_liq_price",
    "effective_leverage",
    "fmt",
    "funding_apr",
    "funding_cost",
    "funding_from_history",
    "funding_payment",
    "gap_loss",
    "get_tier_table",
    "hedge_liq_price",
    "liq_after_add",
    "liq_distance",
    "liq_price",
    "liq_probability",
    "load_ccxt_tiers",
    "maint_margin",
    "margin_for_liq_price",
    "margin_to_target",
    "max_open",
    "max_withdrawable",
    "notional",
    "percent_hint",
    "position_size",
    "safe_leverage",
    "tables_from_ccxt",
    "tier",
    "tier_rows",
    "tier_table_names",
    "unrealized_pnl",
]
