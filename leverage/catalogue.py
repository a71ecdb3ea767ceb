"""The catalogue: every formula by its Excel name, in the order of docs/FORMULAS.md.

It lives in a module of its own so that :mod:`leverage.core` (the formulas of one position)
and :mod:`leverage.planning` (the planning formulas, built on them) import each other in one
direction only. Everything that lists functions (the add-in, the workbooks, the docs tests)
reads it.

Each function's ``per_row`` says whether it answers one value per row (built by
:func:`~leverage._args.formula`, with a scalar fast path): a workbook lifts those into one
column call. The others (``TIER``'s three columns, the functions over ranges) are not.

>>> list(CATALOGUE)[:3]
['EFFECTIVE_LEVERAGE', 'NOTIONAL', 'UNREALIZED_PNL']
>>> CATALOGUE["TIER"].per_row, CATALOGUE["LIQ_PRICE"].per_row
(False, True)
"""

from __future__ import annotations

from typing import Any

from .core import POSITION_FORMULAS
from .planning import PLANNING_FORMULAS

CATALOGUE: dict[str, Any] = {**POSITION_FORMULAS, **PLANNING_FORMULAS}
"""Excel name → Python function: the position formulas, then the planning ones."""

__all__ = ["CATALOGUE"]
