"""The loopback exchanges the tests use: they live in the package
(``leverage_exchange.recorded_exchange``), since ``leverage demo`` and the benchmark replay the
same recorded accounts. Also how the exchange tests read an imported journal: by column key,
never by position."""

from typing import Any

from leverage import layout as L
from leverage_exchange.recorded_exchange import *  # noqa: F403
from leverage_exchange.recorded_exchange import __all__ as _recorded_all


def keyed(grid: list[list[Any]], sheet: L.Sheet) -> list[dict[str, Any]]:
    """A sheet's data rows as ``{column key: value}``, columns found by their row-1 header
    (a row shorter than the header, trailing blanks cut, reads None there)."""
    keys = {c.header: c.key for c in sheet.columns}
    head = grid[0]
    missing = set(keys) - set(head)
    assert not missing, f"{sheet.title} lacks the headers {sorted(missing)}"
    return [{keys[h]: (r[i] if i < len(r) else None) for i, h in enumerate(head) if h in keys}
            for r in grid[1:]]


def journal_tables(book: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The journal's Positions and Events rows, keyed (one read of the workbook)."""
    from leverage_sheets.engine import read_ranges_for

    grids = book.read_ranges(read_ranges_for("journal"))
    by_title = dict(zip((r.split("!")[0].strip("'") for r in read_ranges_for("journal")),
                        grids, strict=True))
    return (keyed(by_title[L.JOURNAL_POSITIONS.title], L.JOURNAL_POSITIONS),
            keyed(by_title[L.JOURNAL_EVENTS.title], L.JOURNAL_EVENTS))


__all__ = [*_recorded_all, "journal_tables", "keyed"]
