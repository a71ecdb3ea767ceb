"""Ready-made workbooks a trader downloads, opens and fills in.

* :func:`build_journal`: the trading journal (positions, events with every computed column,
  the trader's pre-set rules, a chart of leverage and liquidation distance);
* :func:`build_rebalance`: the portfolio rebalance (margin moves to each position's target,
  funded by priority from the free balance);
* :func:`sample_journal` / :func:`sample_portfolio`: the worked examples they contain;
* :func:`render`: a PNG of every sheet, through headless LibreOffice.

Two formula modes: ``udf`` (cells call the add-in's functions) and ``native`` (plain Excel
formulas, for Excel without the add-in, LibreOffice and Google Sheets). Both give the core's
numbers; sheets, columns and headers are those of :mod:`leverage.layout`.

The builders are imported when first used, so the worked samples (plain data) load without
the ``templates`` extra: ``leverage sheets init --sample`` needs only the ``sheets`` one.
"""

from importlib import import_module
from typing import Any

from .render import render
from .samples import sample_journal, sample_portfolio

_BUILDERS = {"build_journal": ".journal", "build_rebalance": ".rebalance"}
__all__ = ["build_journal", "build_rebalance", "render", "sample_journal", "sample_portfolio"]


def __getattr__(name: str) -> Any:
    if name not in _BUILDERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_BUILDERS[name], __name__), name)
