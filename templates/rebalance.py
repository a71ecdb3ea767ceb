"""The portfolio-rebalance workbook: Account (balances and account figures) and Positions.

Formulas follow :func:`leverage.portfolio.rebalance` (see its docstring): cross positions share
the cross equity in proportion to notional; each row's margin move reaches its target; adds
are funded by priority from the free balance plus withdrawals. The allocation of a row is
``min(move, max(available − Σ moves of the adds ranked before it, 0))``, the closed form of
the core's running balance, written with ``SUMIFS`` so it works in every engine. In udf mode
each add-in call of a row is one array formula over all rows (templates._book.ColumnCalls).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from openpyxl.workbook import Workbook

from leverage import core
from leverage.errors import InputError
from leverage.layout import (
    ACCOUNT_HELPER_ROWS,
    ACCOUNT_INPUT_ROWS,
    ACCOUNT_OUTPUT_ROWS,
    FIRST_DATA_ROW,
    REBALANCE_ACCOUNT,
    REBALANCE_HELPERS,
    REBALANCE_POSITIONS,
    USD,
    account_format,
    account_row,
)

from . import _formulas as F
from ._book import (
    COMPUTED_FILL,
    INPUT_FILL,
    CellMaker,
    ColumnCalls,
    check_mode,
    check_rows,
    data_sheet,
    drop_downs,
    header_cells,
    highlights,
    nested_if,
    number_validation,
    prepare_sheet,
    quoted,
    xlwings_conf_sheet,
)

UDF_MODULE = "addin.udfs"
BLANK_EXTRA_ROWS = 50
ACCOUNT = REBALANCE_ACCOUNT.title
POSITIONS = REBALANCE_POSITIONS.title

MESSAGES = {
    "cross_distance": "target_liq_distance applies to isolated positions; give cross a "
                      "target_leverage",
    "wrong_side": "target_liq_distance puts the liquidation price on the wrong side of entry",
    "too_close": "target_liq_distance is closer to entry than the liquidation price at zero "
                 "margin",
    "out_of_reach": "target_leverage is out of reach: it needs withdrawing more margin than "
                    "is posted",
    "bankrupt": "margin + unrealized_pnl must be > 0 (the position is bankrupt)",
    "cross_bankrupt": "the cross equity is <= 0 (the account is bankrupt)",
}
"""Status words where the core's message carries numbers (the sheet's say the rule only)."""

def _acct(key: str) -> str:
    return f"{ACCOUNT}!$B${account_row(key)}"


def _col(key: str, last: int, helper: bool = False) -> str:
    letter = (REBALANCE_HELPERS if helper else REBALANCE_POSITIONS).letter(key)
    return f"{POSITIONS}!${letter}${FIRST_DATA_ROW}:${letter}${last}"


def _number_checks(ref: str, key: str, rule: str, required: bool) -> list[tuple[str, str]]:
    """One numeric input: a number when given, required or not, within its rule."""
    got = f'"{key} must be a number, got \'"&{ref}&"\'"'
    checks = [(f'{ref}=""', quoted(f"{key} is required"))] if required else []
    checks.append((f'IF({ref}="",FALSE,NOT(ISNUMBER({ref})))', got))
    bad = {">0": f"{ref}<=0", ">=0": f"{ref}<0", "[0,1)": f"OR({ref}<0,{ref}>=1)"}.get(rule)
    if bad:
        words = {">0": "> 0", ">=0": ">= 0", "[0,1)": "in [0, 1)"}[rule]
        checks.append((f"IF(ISNUMBER({ref}),{bad},FALSE)",
                       f'"{key} must be {words}, got "&{ref}'))
    return checks


def row_formulas(r: int, mode: str, last: int) -> dict[str, str]:
    """Computed and helper formulas of Positions row ``r`` (keys: layout keys and
    ``h_<helper>``), without the leading ``=``; ``last`` is the last formula row."""
    x = {k: f"{REBALANCE_POSITIONS.letter(k)}{r}" for k in REBALANCE_POSITIONS.keys(None)}
    x.update({"h_" + k: f"{REBALANCE_HELPERS.letter(k)}{r}"
              for k in REBALANCE_HELPERS.helper_keys()})
    used, err, s = x["h_used"], x["h_error"], x["h_side"]
    cross, iso = x["h_cross"], x["h_isolated"]
    qty, entry, mark = x["qty"], x["entry_price"], x["mark_price"]
    margin, tl, td = x["h_margin"], x["h_target_leverage"], x["h_target_liq_distance"]
    mmr, maint, share, tp = x["h_mmr"], x["h_maint"], x["h_share"], x["h_target_price"]
    notional, upnl, mm = x["notional"], x["unrealized_pnl"], x["maint_margin"]
    move = x["move"]
    inputs = "&".join(x[k] for k in REBALANCE_POSITIONS.keys("input"))
    side_in, mode_in, contract_in = x["side"], x["margin_mode"], x["contract"]

    def ok_only(expr: str) -> str:
        return f'IF({used}=0,"",IF({err}<>"","",{expr}))'

    def default(ref: str, value: str) -> str:
        return f'IF({used}=0,"",IF({ref}="",{value},{ref}))'

    checks = [
        (f'{side_in}=""', quoted("side is required")),
        (f"{s}=0", f"\"side must be long or short, got '\"&{side_in}&\"'\""),
        (f'IF({contract_in}="",FALSE,TRIM({contract_in})="inverse")',
         quoted("contract must be linear in a USDⓈ-margined portfolio, got 'inverse'")),
        (f'IF({contract_in}="",FALSE,TRIM({contract_in})<>"linear")',
         f"\"contract must be linear or inverse, got '\"&{contract_in}&\"'\""),
        (f'IF({mode_in}="",FALSE,AND(TRIM({mode_in})<>"isolated",TRIM({mode_in})<>"cross"))',
         f"\"margin_mode must be isolated or cross, got '\"&{mode_in}&\"'\""),
        *_number_checks(qty, "qty", ">0", True),
        *_number_checks(entry, "entry_price", ">0", True),
        *_number_checks(mark, "mark_price", ">0", True),
        *_number_checks(x["margin"], "margin", ">=0", False),
        *_number_checks(x["target_leverage"], "target_leverage", ">0", False),
        *_number_checks(x["target_liq_distance"], "target_liq_distance", "[0,1)", False),
        *_number_checks(x["priority"], "priority", "any", False),
        *_number_checks(x["mmr"], "mmr", "[0,1)", False),
        *_number_checks(x["maint_amount"], "maint_amount", ">=0", False),
        (f'AND({x["target_leverage"]}="",{x["target_liq_distance"]}="")',
         quoted("target_leverage or target_liq_distance is required")),
    ]
    by_distance = f"ISNUMBER({td})"
    wrong_side = f"{s}*({entry}-{tp})<=0"
    need_native = F.margin_for_liq_price("native", s, qty, entry, tp, mmr, maint)
    reach = f"{margin}+({notional}/{tl}-({margin}+{upnl}))<0"
    other_upnl = f"({_acct('cross_upnl')}-{upnl})"
    other_maint = f"({_acct('cross_maint')}-{mm})"
    before_all = (f"SUMIFS({_col('move', last)},{_col('move', last)},\">0\","
                  f"{_col('priority', last, True)},\"<\"&{x['h_priority']})")
    up_move = f"${REBALANCE_POSITIONS.letter('move')}$1:{REBALANCE_POSITIONS.letter('move')}{r - 1}"
    up_prio = (f"${REBALANCE_HELPERS.letter('priority')}$1:"
               f"{REBALANCE_HELPERS.letter('priority')}{r - 1}")
    cross_liq = F.cross_liq_price(mode, s, qty, entry, _acct("wallet_balance"), other_upnl,
                                  other_maint, mmr, maint)
    before_tie = f'SUMIFS({up_move},{up_move},">0",{up_prio},{x["h_priority"]})'

    return {
        "h_used": f"IF(LEN({inputs})=0,0,1)",
        "h_side": f'IF({used}=0,"",IF(ISNUMBER({side_in}),IF({side_in}=1,1,IF({side_in}=-1,-1,0)),'
                  f'IF(OR(TRIM({side_in})="long",TRIM({side_in})="buy"),1,'
                  f'IF(OR(TRIM({side_in})="short",TRIM({side_in})="sell"),-1,0))))',
        "h_error": f'IF({used}=0,"",{nested_if(checks, chr(34) * 2)})',
        "h_cross": f'IF({used}=0,"",IF({err}<>"",0,IF(TRIM({mode_in})="cross",1,0)))',
        "h_isolated": f'IF({used}=0,"",IF({err}<>"",0,1-{cross}))',
        "h_margin": default(x["margin"], "0"),
        "h_target_leverage": default(x["target_leverage"], '""'),
        "h_target_liq_distance": default(x["target_liq_distance"], '""'),
        "h_priority": default(x["priority"], "1"),
        "h_mmr": default(x["mmr"], str(core.DEFAULT_MMR)),
        "h_maint": default(x["maint_amount"], "0"),
        "h_share": ok_only(
            f'IF({cross}=1,{_acct("cross_equity")}*{notional}/IF({_acct("cross_notional")}=0,1,'
            f'{_acct("cross_notional")}),"")'
        ),
        "h_target_price": ok_only(f'IF({by_distance},{mark}*(1-{s}*{td}),"")'),
        "notional": ok_only(F.notional(mode, qty, mark)),
        "unrealized_pnl": ok_only(F.unrealized_pnl(mode, s, qty, entry, mark)),
        "maint_margin": ok_only(F.maint_margin(mode, notional, mmr, maint)),
        "leverage": ok_only(
            f"IF({cross}=1,IF({share}>0,{F.effective_leverage(mode, notional, share, '0')},\"\"),"
            f"IF({margin}+{upnl}>0,{F.effective_leverage(mode, notional, margin, upnl)},\"\"))"
        ),
        "liq_price": ok_only(
            f'IF({cross}=1,IF({other_maint}<0,"",{cross_liq}),'
            f"{F.liq_price(mode, s, qty, entry, margin, mmr, maint)})"
        ),
        "liq_distance": ok_only(
            f'IF(ISNUMBER({x["liq_price"]}),'
            f'{F.liq_distance(mode, s, mark, x["liq_price"])},"")'
        ),
        "move": ok_only(
            f'IF({cross}=1,IF({by_distance},"",{notional}/{tl}-{share}),'
            f'IF({by_distance},IF({wrong_side},"",IF({need_native}<0,"",'
            f"{F.margin_for_liq_price(mode, s, qty, entry, tp, mmr, maint)}-{margin})),"
            f'IF({reach},"",{F.margin_to_target(mode, notional, margin, tl, upnl)})))'
        ),
        "allocated": f'IF(ISNUMBER({move}),IF({move}<0,{move},MIN({move},'
                     f'MAX({_acct("available")}-({before_all}+{before_tie}),0))),"")',
        "status": f'IF({used}=0,"",' + nested_if(
            [
                (f'{err}<>""', err),
                (f"IF({cross}=1,{by_distance},FALSE)", quoted(MESSAGES["cross_distance"])),
                (f"IF({iso}=1,IF({by_distance},{wrong_side},FALSE),FALSE)",
                 quoted(MESSAGES["wrong_side"])),
                (f"IF({iso}=1,IF({by_distance},{need_native}<0,FALSE),FALSE)",
                 quoted(MESSAGES["too_close"])),
                (f"IF({iso}=1,IF({by_distance},FALSE,{reach}),FALSE)",
                 quoted(MESSAGES["out_of_reach"])),
                (f"IF({cross}=1,{share}<=0,FALSE)", quoted(MESSAGES["cross_bankrupt"])),
                (f"IF({iso}=1,{margin}+{upnl}<=0,FALSE)", quoted(MESSAGES["bankrupt"])),
            ],
            '""',
        ) + ")",
    }


def account_formulas(last: int) -> dict[str, str]:
    """Account-level figures and the cross aggregates the rows share."""
    def col(key: str, helper: bool = False) -> str:
        return _col(key, last, helper)

    wallet, free = _acct("wallet_balance"), _acct("free_balance")
    cross, iso = col("cross", True), col("isolated", True)
    return {
        "total_notional": f"SUM({col('notional')})",
        "total_equity": f"{wallet}+SUM({col('unrealized_pnl')})"
                        f"+SUMIFS({col('margin', True)},{iso},1)",
        "account_leverage": f'IF({_acct("total_equity")}>0,'
                            f'{_acct("total_notional")}/{_acct("total_equity")},"")',
        "worst_liq_distance": f'IF(COUNT({col("liq_distance")})=0,"",MIN({col("liq_distance")}))',
        "total_move": f"SUM({col('move')})",
        "total_allocated": f"SUM({col('allocated')})",
        "shortfall": f"{_acct('total_move')}-{_acct('total_allocated')}",
        "cross_notional": f"SUMIFS({col('notional')},{cross},1)",
        "cross_upnl": f"SUMIFS({col('unrealized_pnl')},{cross},1)",
        "cross_maint": f"SUMIFS({col('maint_margin')},{cross},1)",
        "cross_equity": f"{wallet}+{_acct('cross_upnl')}",
        "available": f'{free}-SUMIFS({col("move")},{col("move")},"<0")',
    }


def _account_sheet(wb: Workbook, wallet: Any, free: Any, last: int) -> None:
    sheet = REBALANCE_ACCOUNT
    ws = prepare_sheet(wb, sheet.title, [48.0, 18.0], landscape=False, header_height=None)
    mk = CellMaker(ws)
    ws.append(header_cells(mk, sheet))
    for key, label in ACCOUNT_INPUT_ROWS:
        ws.append([mk.cell(label), mk.cell(wallet if key == "wallet_balance" else free, USD,
                                           fill=INPUT_FILL)])
    fs = account_formulas(last)
    for key, label in ACCOUNT_OUTPUT_ROWS:
        ws.append([mk.cell(label), mk.cell("=" + fs[key], account_format(key),
                                           fill=COMPUTED_FILL)])
    for key, label in ACCOUNT_HELPER_ROWS:
        ws.row_dimensions[account_row(key)].hidden = True
        ws.append([mk.cell(label), mk.cell("=" + fs[key], USD)])
    for key, _ in ACCOUNT_INPUT_ROWS:
        number_validation(ws, f"B{account_row(key)}", key)


def _positions_sheet(
    wb: Workbook, positions: Sequence[Mapping[str, Any]], rows: int, mode: str
) -> None:
    sheet, helpers = REBALANCE_POSITIONS, REBALANCE_HELPERS
    calls = column_calls(mode, rows)
    call_list = calls.calls if calls is not None else []
    ws, mk, first, last = data_sheet(wb, sheet, helpers, rows, call_list)
    drop_downs(ws, sheet, first, last)
    for key in ("qty", "entry_price", "mark_price", "margin", "target_leverage",
                "target_liq_distance", "mmr", "maint_amount"):
        c = sheet.letter(key)
        number_validation(ws, f"{c}{first}:{c}{last}", key)
    highlights(ws, sheet, last)
    ws.append(header_cells(mk, sheet, helpers.headers + [c.header for c in call_list]))
    formats = {c.key: c.number_format for c in sheet.columns}
    for i in range(rows):
        r = first + i
        p = positions[i] if i < len(positions) else {}
        fs = row_formulas(r, mode, last)
        if calls is not None:
            fs = calls.lift(fs, r)
        cells = [mk.text(p.get(k), formats[k]) for k in sheet.keys("input")]
        cells += [mk.cell("=" + fs[k], formats[k]) for k in sheet.keys("computed")]
        cells += [mk.cell("=" + fs["h_" + k]) for k in helpers.helper_keys()]
        if i == 0:  # the add-in's column calls: one array formula each, over all rows
            cells += [mk.cell(c.formula(first, last)) for c in call_list]
        ws.append(cells)


def column_calls(mode: str, rows: int) -> ColumnCalls | None:
    """udf mode: the add-in calls of a Positions row (``rows`` formula rows), each computed
    for all rows by one array formula in a hidden column after the helpers
    (templates._book.ColumnCalls); None in native mode."""
    if mode != "udf":
        return None
    calls = ColumnCalls(len(REBALANCE_POSITIONS.columns) + len(REBALANCE_HELPERS.columns) + 1)
    calls.lift(row_formulas(FIRST_DATA_ROW, mode, FIRST_DATA_ROW + rows - 1), FIRST_DATA_ROW)
    return calls


def build_rebalance(
    path: str | Path,
    *,
    mode: str = "udf",
    sample: bool = True,
    rows: int | None = None,
    positions: Sequence[Mapping[str, Any]] | None = None,
    wallet_balance: float | None = None,
    free_balance: float | None = None,
) -> Path:
    """Write the portfolio-rebalance workbook to ``path`` and return it.

    ``mode``: ``"udf"`` (the add-in's functions, with the ``xlwings.conf`` sheet) or
    ``"native"`` (plain formulas). ``sample``: the worked example of
    :func:`templates.sample_portfolio`; ``False`` leaves it empty. ``positions`` and the two
    balances replace the sample. ``rows``: position rows carrying formulas (default: the
    positions plus 50 empty rows).
    """
    from .samples import sample_portfolio

    mode = check_mode(mode)
    if positions is None and sample:
        positions, w, f = sample_portfolio()
        wallet_balance = w if wallet_balance is None else wallet_balance
        free_balance = f if free_balance is None else free_balance
    positions = list(positions or ())
    for name, v in (("wallet_balance", wallet_balance), ("free_balance", free_balance)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v < 0):
            raise InputError(f"{name} must be a number >= 0, got {v!r}")
    rows = check_rows(rows, len(positions), len(positions) + BLANK_EXTRA_ROWS)
    last = FIRST_DATA_ROW + rows - 1

    wb = Workbook(write_only=True)
    _account_sheet(wb, wallet_balance, free_balance, last)
    _positions_sheet(wb, positions, rows, mode)
    if mode == "udf":
        xlwings_conf_sheet(wb, UDF_MODULE)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)
    return out
