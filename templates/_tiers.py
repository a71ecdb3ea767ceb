"""The maintenance rate from the Symbol column: the Tiers sheet and its lookup formulas.

A row whose Maint. margin rate is blank takes the rate (and, when its Maint. amount is blank
too, the amount) of the tier its notional at entry falls in, from its Symbol's table, as
:mod:`leverage.tiers` does for the core (``symbol_rate``): ``BTCUSDT`` is Binance's
``binance:BTCUSDT``, ``bybit:BTCUSDT`` names another exchange's table. A typed rate is the
override, flagged in Check when it is more than 2x off the tier's (``override_note``).

- native mode: a ``Tiers`` sheet carries the tables (one row per tier: table, from, to,
  rate, amount, max leverage) and SUMPRODUCT lookups read it, functions every engine has
  (Excel, LibreOffice, Google Sheets, the ``formulas`` engine). It holds
  :data:`DOCUMENTED_SYMBOLS`, every table of the curated snapshot, and the tables of the
  symbols the workbook is built with (each the freshest at build time: fetched or shipped). A symbol
  the sheet does not hold gets the default rate there (paste its rows, from
  ``leverage tiers NAME``, below the others to add it).
- udf mode: the add-in's ``TIER(tiers, notional)`` with ``tiers = "exchange:SYMBOL"``, one
  call per cell (TIER is not a column call: three columns), read by INDEX.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.workbook import Workbook

from leverage.tiers import (
    OVERRIDE_NOTE,
    SYMBOL_FAMILY,
    get_tier_table,
    shipped_tables,
    symbol_table,
)

from ._book import CellMaker, prepare_sheet, quoted

TIERS = "Tiers"
OPEN_END = 1e300  # the last tier's upper bound: beyond the table the last tier applies
LAST_ROW = 3001  # the lookups read rows 2..LAST_ROW: the tables and room to paste more

DOCUMENTED_SYMBOLS = (
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "AVAXUSDT",
    "LINKUSDT", "DOTUSDT", "LTCUSDT", "TRXUSDT", "NEARUSDT", "ATOMUSDT", "BCHUSDT", "SUIUSDT",
    "ARBUSDT", "OPUSDT", "APTUSDT", "FILUSDT",
)
"""The Binance USDⓈ-M symbols every native workbook's Tiers sheet carries (large markets by
open interest), besides the curated and fetched tables and the workbook's own symbols."""

HEADERS = ("Table", "From notional", "To notional", "Maint. margin rate", "Maint. amount",
           "Max leverage")


def sheet_tables(symbols: Iterable[Any] = ()) -> list[str]:
    """The table names a native workbook's Tiers sheet holds: the curated snapshot's
    (``leverage/data/tiers_snapshot.json``), and the freshest table of each of
    :data:`DOCUMENTED_SYMBOLS` and ``symbols`` (the workbook's own) that has one."""
    names = {t.name.lower(): t.name for t in shipped_tables()}
    for symbol in (*DOCUMENTED_SYMBOLS, *symbols):
        table = symbol_table(symbol)
        if table is not None:
            names.setdefault(table.name.lower(), table.name)
    return sorted(names.values())


def tier_rows(names: Iterable[str]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for name in names:
        table = get_tier_table(name)
        for k, t in enumerate(table.tiers):
            last = k == len(table.tiers) - 1
            rows.append([table.name, t.min_notional, OPEN_END if last else t.max_notional,
                         t.mmr, t.maint_amount, t.max_leverage])
    return rows


def add_tier_sheet(wb: Workbook, rows: list[list[Any]]) -> None:
    """Write the Tiers sheet (write-only workbook) with ``rows`` (:func:`tier_rows`)."""
    if len(rows) > LAST_ROW - 1:
        raise ValueError(f"the Tiers sheet holds at most {LAST_ROW - 1} tiers, got {len(rows)}: "
                         "build the workbook with fewer symbols")
    ws = prepare_sheet(wb, TIERS, [20, 16, 16, 12, 14, 10], freeze="A2", landscape=False)
    mk = CellMaker(ws)
    ws.append([mk.cell(h) for h in HEADERS])
    formats = ("General", "#,##0", "#,##0", "0.00%", "#,##0.00", '0"x"')
    for r in rows:
        ws.append([mk.cell(v, f) for v, f in zip(r, formats, strict=True)])


def _col(letter: str, last: int) -> str:
    return f"{TIERS}!${letter}$2:${letter}${last}"


def table_row_formula(symbol: str, last: int = LAST_ROW) -> str:
    """native: the Tiers sheet row of the Symbol's first tier (0: no table there)."""
    names = _col("A", last)
    s = f"TRIM({symbol})"
    return (f'IF({s}="",0,SUMPRODUCT(MAX((({names}={s})+({names}="{SYMBOL_FAMILY}:"&{s})>0)'
            f"*ROW({names}))))")


def table_name_formula(mode: str, symbol: str, table_row: str, last: int = LAST_ROW) -> str:
    """The table's name ("" when none): native from the Tiers sheet; udf ``exchange:SYMBOL``
    (a bare symbol is Binance's)."""
    if mode == "udf":
        # spelled as the tables are named: the family in lower case, the market in upper
        s, at = f"TRIM({symbol})", f'FIND(":",TRIM({symbol}))'
        return (f'IF({s}="","",IF(ISNUMBER({at}),LOWER(LEFT({s},{at}))&UPPER(MID({s},{at}+1,'
                f'LEN({s}))),"{SYMBOL_FAMILY}:"&UPPER({s})))')
    return f'IF({table_row}=0,"",INDEX({TIERS}!$A$1:$A${last},{table_row}))'


def tier_value_formula(mode: str, name: str, notional: str, what: str,
                       last: int = LAST_ROW) -> str:
    """The rate (``what="mmr"``) or amount (``"maint"``) of the tier ``notional`` falls in,
    from table ``name``; "" when there is no table or no notional."""
    if mode == "udf":
        column = 1 if what == "mmr" else 2
        return (f'IF({name}="","",IFERROR(INDEX(TIER({name},{notional}),1,{column}),""))')
    values = _col("D" if what == "mmr" else "E", last)
    return (f'IF({name}="","",IFERROR(SUMPRODUCT(({_col("A", last)}={name})'
            f'*({_col("B", last)}<={notional})*({_col("C", last)}>{notional})*{values}),""))')


def override_formula(typed_blank: str, mmr: str, tier_mmr: str, name: str) -> str:
    """Check: a typed rate more than 2x off its tier's (``leverage.tiers.override_note``)."""
    before, after = OVERRIDE_NOTE.split("{name}")
    return (f'IF({typed_blank},"",IF(ISNUMBER({tier_mmr}),IF({tier_mmr}>0,'
            f'IF(OR({mmr}>2*{tier_mmr},{tier_mmr}>2*{mmr}),'
            f'{quoted(before)}&{name}&{quoted(after)},""),""),""))')
