"""The portfolio-rebalance workbook: Account (balances and account figures) and Positions.

Formulas follow :func:`leverage.portfolio.rebalance` (see its docstring): cross positions share
the cross equity in proportion to notional, and their moves bring the cross account to one
target, the lowest cross Target leverage (hidden ``cross_target`` helpers, a MIN); each
isolated row's margin move reaches its own target; adds
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

from leverage import (
    PERCENT_LIKE,
    VOLATILITY_PERCENT_LIKE,
    Number,
    core,
    effective_leverage,
    fmt,
    margin_for_liq_price,
    margin_to_target,
    percent_hint,
)
from leverage.errors import InputError, LeverageError
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
    wraps,
)
from leverage.planning import VOLATILITY_AS_PERCENT
from leverage.portfolio import (
    ACCOUNT_RULES,
    ALREADY_AT_RATIO,
    ALREADY_BELOW,
    COLUMN_RULES,
    LINEAR_ONLY,
    MARGIN_REQUIRED,
    cross_target_note,
    rebalance,
    rows_left_out,
)

from . import _formulas as F
from . import _tiers as T
from ._book import (
    COMPUTED_FILL,
    INPUT_FILL,
    WRAP,
    CellMaker,
    ColumnCalls,
    check_mode,
    check_rows,
    data_sheet,
    drop_downs,
    header_cells,
    highlights,
    input_prompts,
    instructions_sheet,
    nested_if,
    number_validation,
    prepare_sheet,
    quoted,
    rate_value,
    text_heights,
    xlwings_conf_sheet,
)

UDF_MODULE = "leverage_addin.udfs"
BLANK_EXTRA_ROWS = 50
ACCOUNT = REBALANCE_ACCOUNT.title
POSITIONS = REBALANCE_POSITIONS.title

def _rebalance_says(**row: Any) -> str:
    """The core's status for a probe row (long 1 at 100 on 10 margin, plus ``row``)."""
    probe = {"side": "long", "qty": 1, "entry_price": 100, "mark_price": 100, "margin": 10,
             **row}
    status = rebalance([probe], 1000.0, 0.0).columns["status"][0]
    assert status, f"no status for the probe {row}"
    return status


# Rows the core refuses after their inputs passed, in its words: the probe values (as the
# messages show them) become the sheet's cells in row_formulas.
WRONG_SIDE = margin_for_liq_price.rows(1, 1, 1234.5, 5678.25).errors[()]
TOO_CLOSE = margin_for_liq_price.rows(1, 1, 100, 90.25, 0, 17.5).errors[()]  # needs -7.75
OUT_OF_REACH = margin_to_target.rows(100, 12.5, 40, 3.25).errors[()]  # withdraws 13.25
BANKRUPT = effective_leverage.rows(1.0, 1.0, -1235.5).errors[()]  # equity -1234.5
# a cross row's equity is its share of the cross equity, passed to the core as its margin
NEGATIVE_SHARE = effective_leverage.rows(1.0, -1234.5, 0.0).errors[()]
CROSS_BY_DISTANCE = _rebalance_says(margin_mode="cross", target_liq_distance=0.5)
# liquidated at once (isolated), per side: margin 24 / 22 under 48 of maintenance at entry
AT_ONCE = {1: core.liq_price.rows(1, 1, 1200, 24, 0.04, 0).errors[()],  # at 1225
           -1: core.liq_price.rows(-1, 1, 1200, 22, 0.04, 0).errors[()]}  # at 1175
HINT_PROBE = F.HINT_PROBE
CROSS_TARGET = cross_target_note(3.25, 4.75)  # the account's target, the row's


def _cross_beyond_entry(side: int) -> tuple[str, str]:
    """The core's flag of a cross row beyond entry with a percent-looking mmr, for ``side``:
    (its text, the liquidation price as the text shows it); the percent hint cut off."""
    res = core.cross_liq_price.rows(side, 1, 1200, 0, 0, 0, HINT_PROBE, 0)
    flag, hint = res.warnings[()].split("; ", 1)
    assert hint == percent_hint("mmr", HINT_PROBE), hint
    return flag, fmt(float(res.values))


CROSS_BEYOND = {1: _cross_beyond_entry(1), -1: _cross_beyond_entry(-1)}


def percent_note(name: str, ref: str) -> str:
    """``"; "`` and the core's :func:`leverage.percent_hint` for rate ``ref`` where it looks
    like a percent typed as a number (|rate| >= 5 %), else "": what the core appends to a
    message about that rate."""
    return f'IF(ABS({ref})>={PERCENT_LIKE!r},"; "&{F.percent_hint_text(name, ref)},"")'


RATE_COLUMNS = ("target_liq_distance", "mmr")  # fractions: "0.5%" text reads as 0.005
RANK_LAST = "1E+99"
"""The rank of a row with no liquidation price among equal priorities: after every other
(``leverage.portfolio.rank_distance`` gives it infinity)."""


def _acct(key: str) -> str:
    return f"{ACCOUNT}!$B${account_row(key)}"


def _col(key: str, last: int, helper: bool = False) -> str:
    letter = (REBALANCE_HELPERS if helper else REBALANCE_POSITIONS).letter(key)
    return f"{POSITIONS}!${letter}${FIRST_DATA_ROW}:${letter}${last}"


def liq_gap_formula(ours: str, theirs: str) -> str:
    """(ours − theirs) ÷ theirs, as ``leverage.portfolio.liq_gap``: blank unless both
    are prices (nested IFs: Excel's AND evaluates every argument).

    >>> liq_gap_formula("S2", "X2")
    'IF(ISNUMBER(S2),IF(ISNUMBER(X2),IF(X2>0,IF(S2>0,(S2-X2)/X2,""),""),""),"")'
    """
    return (f'IF(ISNUMBER({ours}),IF(ISNUMBER({theirs}),IF({theirs}>0,'
            f'IF({ours}>0,({ours}-{theirs})/{theirs},""),""),""),"")')


def row_formulas(r: int, mode: str, last: int, tiers_last: int = T.LAST_ROW
                 ) -> dict[str, str]:
    """Computed and helper formulas of Positions row ``r`` (keys: layout keys and
    ``h_<helper>``), without the leading ``=``; ``last`` is the last formula row,
    ``tiers_last`` the Tiers sheet's last row read (native mode)."""
    x = {k: f"{REBALANCE_POSITIONS.letter(k)}{r}" for k in REBALANCE_POSITIONS.keys(None)}
    x.update({"h_" + k: f"{REBALANCE_HELPERS.letter(k)}{r}"
              for k in REBALANCE_HELPERS.helper_keys()})
    used, err, s = x["h_used"], x["h_error"], x["h_side"]
    cross, iso = x["h_cross"], x["h_isolated"]
    qty, entry, mark = x["qty"], x["entry_price"], x["mark_price"]
    margin, tl, td = x["h_margin"], x["h_target_leverage"], x["h_target_liq_distance"]
    mmr, maint, share, tp = x["h_mmr"], x["h_maint"], x["h_share"], x["h_target_price"]
    notional, upnl, mm = x["notional"], x["unrealized_pnl"], x["maint_margin"]
    move, liq, iso_liq, at_once = x["move"], x["liq_price"], x["h_iso_liq"], x["h_at_once"]
    flag, target_flag, cross_target = x["h_cross_flag"], x["h_target_flag"], \
        _acct("cross_target")
    first = _first_flag(flag, x["liq_probability"])  # the core's first flag of the row

    def at_once_says(side: int) -> str:
        shown = {1: ("24", "48", "1225"), -1: ("22", "48", "1175")}[side]
        return F.said(AT_ONCE[side], dict(zip(
            (*shown, "1200"), (margin, f"({qty}*{entry}*{mmr}-{maint})", iso_liq, entry),
            strict=True)))

    def cross_flag(side: int) -> str:
        text, shown = CROSS_BEYOND[side]
        return F.said(text, {shown: liq, "1200": entry})
    inputs = "&".join(x[k] for k in REBALANCE_POSITIONS.keys("input"))
    side_in, mode_in, contract_in = x["side"], x["margin_mode"], x["contract"]

    def ok_only(expr: str) -> str:
        return f'IF({used}=0,"",IF({err}<>"","",{expr}))'

    def default(ref: str, value: str) -> str:
        return f'IF({used}=0,"",IF({ref}="",{value},{ref}))'

    # what the core reads in each input cell: rates typed as "0.5%" text are fractions
    typed = {k: rate_value(x[k]) if k in RATE_COLUMNS else x[k]
             for k in REBALANCE_POSITIONS.keys("input")}
    contract_is = F.choice_value(contract_in, core.CONTRACT)
    account_error = _acct("account_error")
    checks = [
        # an Account input the sync would refuse: every row refused with its message
        (f'{account_error}<>""', account_error),
        *F.choice_checks(side_in, "side", core.SIDE),
        *F.choice_checks(contract_in, "contract", core.CONTRACT),
        (f'IF({contract_in}="",FALSE,{contract_is}=1)', quoted(LINEAR_ONLY)),
        *[check for key, rule in COLUMN_RULES.items() for check in (
            F.number_checks(typed[key], key, rule) if isinstance(rule, Number)
            else F.choice_checks(x[key], key, rule))],
        (f'IF({x["margin"]}="",TRIM({mode_in})<>"cross",FALSE)', quoted(MARGIN_REQUIRED)),
    ]
    by_distance = f"ISNUMBER({td})"
    wrong_side = f"{s}*({entry}-{tp})<=0"
    need_native = F.margin_for_liq_price("native", s, qty, entry, tp, mmr, maint)
    reach = f"{margin}+({notional}/{tl}-({margin}+{upnl}))<0"
    other_upnl = f"({_acct('cross_upnl')}-{upnl})"
    other_maint = f"({_acct('cross_maint')}-{mm})"
    # adds ranked before this one: a lower priority number; the same priority and closer to
    # liquidation; the same priority and distance in a row above (portfolio._allocate)
    moves, prio, rank = _col("move", last), _col("priority", last, True), x["h_rank_distance"]
    p = x["h_priority"]
    before_all = (f'SUMIFS({moves},{moves},">0",{prio},"<"&{p})'
                  f'+SUMIFS({moves},{moves},">0",{prio},{p},'
                  f'{_col("rank_distance", last, True)},"<"&{rank})')

    def above(key: str, helper: bool = False) -> str:
        letter = (REBALANCE_HELPERS if helper else REBALANCE_POSITIONS).letter(key)
        return f"${letter}$1:{letter}{r - 1}"

    up_move, up_prio, up_rank = above("move"), above("priority", True), above("rank_distance",
                                                                               True)
    cross_liq = F.cross_liq_price(mode, s, qty, entry, _acct("wallet_balance"), other_upnl,
                                  other_maint, mmr, maint)
    before_tie = f'SUMIFS({up_move},{up_move},">0",{up_prio},{p},{up_rank},{rank})'

    return {
        **_shock_and_odds(x, mode),
        **_left_out(x, r),
        "h_used": f"IF(LEN({inputs})=0,0,1)",
        "h_side": f'IF({used}=0,"",{F.choice_value(side_in, core.SIDE, "0")})',
        "h_error": f'IF({used}=0,"",{nested_if(checks, chr(34) * 2)})',
        "h_cross": f'IF({used}=0,"",IF({err}<>"",0,IF(TRIM({mode_in})="cross",1,0)))',
        "h_isolated": f'IF({used}=0,"",IF({err}<>"",0,1-{cross}))',
        "h_margin": default(x["margin"], "0"),
        "h_target_leverage": default(x["target_leverage"], '""'),
        "h_target_liq_distance": default(typed["target_liq_distance"], '""'),
        "h_priority": default(x["priority"], "1"),
        # a blank rate: the Symbol's tier at qty x entry, else the default rate; a blank
        # amount with it: the tier's amount (templates/_tiers.py)
        "h_mmr": default(typed["mmr"], f'IF(ISNUMBER({x["h_tier_mmr"]}),{x["h_tier_mmr"]},'
                                       f'{core.DEFAULT_MMR})'),
        "h_maint": default(x["maint_amount"], f'IF(AND({x["mmr"]}="",'
                                              f'ISNUMBER({x["h_tier_maint"]})),'
                                              f'{x["h_tier_maint"]},0)'),
        "h_tier_row": T.table_row_formula(x["symbol"], tiers_last) if mode == "native" else "0",
        "h_tier": T.table_name_formula(mode, x["symbol"], x["h_tier_row"], tiers_last),
        "h_tier_mmr": T.tier_value_formula(mode, x["h_tier"], f"{qty}*{entry}", "mmr",
                                           tiers_last),
        "h_tier_maint": T.tier_value_formula(mode, x["h_tier"], f"{qty}*{entry}", "maint",
                                             tiers_last),
        "h_tier_flag": ok_only(T.override_formula(f'{x["mmr"]}=""', mmr, x["h_tier_mmr"],
                                                  x["h_tier"])),
        "h_share": ok_only(
            f'IF({cross}=1,{_acct("cross_equity")}*{notional}/IF({_acct("cross_notional")}=0,1,'
            f'{_acct("cross_notional")}),"")'
        ),
        # native in both modes: the add-in refuses a liquidation price at or beyond entry
        "h_iso_liq": ok_only(
            f'IF({iso}=1,{F.liq_price("native", s, qty, entry, margin, mmr, maint)},"")'),
        "h_at_once": f'IF({used}=0,0,IF({err}<>"",0,IF({iso}=1,IF(ISNUMBER({iso_liq}),'
                     f'IF({s}*({iso_liq}-{entry})>=0,1,0),0),0)))',
        "h_rank_distance": ok_only(f'IF(ISNUMBER({x["liq_distance"]}),'
                                   f'ROUND({x["liq_distance"]},12),{RANK_LAST})'),
        "h_target_price": ok_only(f'IF({by_distance},{mark}*(1-{s}*{td}),"")'),
        "notional": ok_only(F.notional(mode, qty, mark)),
        "unrealized_pnl": ok_only(F.unrealized_pnl(mode, s, qty, entry, mark)),
        "maint_margin": ok_only(F.maint_margin(mode, notional, mmr, maint)),
        "leverage": ok_only(
            f"IF({cross}=1,IF({share}>0,{F.effective_leverage(mode, notional, share, '0')},\"\"),"
            f"IF({margin}+{upnl}>0,{F.effective_leverage(mode, notional, margin, upnl)},\"\"))"
        ),
        "liq_price": ok_only(
            f'IF({cross}=1,IF({other_maint}<0,"",{cross_liq}),IF({at_once}=1,"",'
            f"{F.liq_price(mode, s, qty, entry, margin, mmr, maint)}))"
        ),
        "liq_distance": ok_only(
            f'IF(ISNUMBER({x["liq_price"]}),'
            f'{F.liq_distance(mode, s, mark, x["liq_price"])},"")'
        ),
        # no target typed: no move (the row is watched, not steered)
        "move": ok_only(
            f'IF({at_once}=1,"",IF(AND(NOT({by_distance}),{tl}=""),"",'
            f'IF({cross}=1,IF({by_distance},"",{notional}/{cross_target}-{share}),'
            f'IF({by_distance},IF({wrong_side},"",IF({need_native}<0,"",'
            f"{F.margin_for_liq_price(mode, s, qty, entry, tp, mmr, maint)}-{margin})),"
            f'IF({reach},"",{F.margin_to_target(mode, notional, margin, tl, upnl)})))))'
        ),
        "allocated": f'IF(ISNUMBER({move}),IF({move}<0,{move},MIN({move},'
                     f'MAX({_acct("available")}-({before_all}+{before_tie}),0))),"")',
        # the reconcile column; blank unless both prices are there (same in both modes)
        "h_cross_flag": ok_only(
            f'IF({cross}=1,IF(ISNUMBER({liq}),IF({s}*({liq}-{entry})>=0,IF(ABS({mmr})>='
            f'{PERCENT_LIKE!r},IF({s}=1,{cross_flag(1)},{cross_flag(-1)})&'
            f'{percent_note("mmr", mmr)},""),""),""),"")'
        ),
        # the cross account's one target: a cross row that asked for another is flagged (a
        # row with no target is watched, not steered: it asks for none)
        "h_cross_target": f'IF({cross}=1,IF({by_distance},"",{tl}),"")',
        "h_target_flag": ok_only(
            f'IF({cross}=1,IF(OR({by_distance},{tl}=""),"",IF({tl}<>{cross_target},'
            f'{F.said(CROSS_TARGET, {"3.25": cross_target, "4.75": tl})},"")),"")'),
        "warnings": ok_only(f'{first}&IF(AND({first}<>"",{target_flag}<>""),"; ","")'
                            f'&{target_flag}&IF(AND({first}&{target_flag}<>"",'
                            f'{x["h_tier_flag"]}<>""),"; ","")&{x["h_tier_flag"]}'),
        "liq_gap": liq_gap_formula(x["liq_price"], x["exchange_liq_price"]),
        "status": f'IF({used}=0,"",' + nested_if(
            [
                (f'{err}<>""', err),
                (f"{at_once}=1", f"IF({s}=1,{at_once_says(1)},{at_once_says(-1)})&"
                                 f"{percent_note('mmr', mmr)}"),
                (f"IF({cross}=1,{by_distance},FALSE)", quoted(CROSS_BY_DISTANCE)),
                (f"IF({iso}=1,IF({by_distance},{wrong_side},FALSE),FALSE)",
                 F.said(WRONG_SIDE, {"5678.25": tp, "1234.5": entry})),
                (f"IF({iso}=1,IF({by_distance},{need_native}<0,FALSE),FALSE)",
                 F.said(TOO_CLOSE, {"90.25": tp, "-7.75": need_native})),
                (f'IF({iso}=1,IF({by_distance},FALSE,IF({tl}="",FALSE,{reach})),FALSE)',
                 F.said(OUT_OF_REACH, {"40": tl, "12.5": margin,
                                       "13.25": f"({margin}+{upnl}-{notional}/{tl})"})),
                (f"IF({cross}=1,{share}<0,FALSE)", F.said(NEGATIVE_SHARE, {"-1234.5": share})),
                (f"IF({cross}=1,{share}=0,FALSE)", F.bankrupt(share)),
                (f"IF({iso}=1,{margin}+{upnl}<=0,FALSE)",
                 F.bankrupt(f"({margin}+{upnl})")),
            ],
            '""',
        ) + ")",
    }


def _first_flag(cross_flag: str, odds: str) -> str:
    """The Check column as ``leverage.portfolio.rebalance`` fills it: the cross row's flag,
    else LIQ_PROBABILITY's flag of a volatility that looks like a percent typed as a number
    (on the rows whose odds are computed)."""
    vol = rate_value(_acct("volatility"))
    volatility_flag = (f'IF(ISNUMBER({odds}),IF(ISNUMBER({vol}),IF({vol}>='
                       f'{VOLATILITY_PERCENT_LIKE!r},{quoted(VOLATILITY_AS_PERCENT)}&'
                       f'{percent_note("volatility", vol)},""),""),"")')
    return f'IF({cross_flag}<>"",{cross_flag},{volatility_flag})'


def _left_out(x: dict[str, str], r: int) -> dict[str, str]:
    """The helpers that name the rows left out of the totals (``portfolio.rows_left_out``):
    a flag per kind (an input error: out of every total; a Status and no margin move: out of
    the move totals; a Status and no liq. price: out of the worst distance) and, for each,
    the names so far down the sheet (its last row holds them all). A row is named by its
    Position ID, else by its sheet row."""
    used, err, pid = x["h_used"], x["h_error"], x["position_id"]
    name = f'IF(TRIM({pid}&"")="","row "&ROW(),TRIM({pid}&""))'

    def names(flag: str, key: str) -> str:
        letter = REBALANCE_HELPERS.letter(key)
        before = '""' if r == FIRST_DATA_ROW else f"{letter}{r - 1}"
        return f'IF({flag}=1,IF({before}="",{name},{before}&", "&{name}),{before})'

    return {
        "h_left_out": f'IF({used}=0,0,IF({err}<>"",1,0))',
        "h_no_move": f'IF({used}=0,0,IF({err}<>"",0,IF({x["status"]}="",0,'
                     f'IF(ISNUMBER({x["move"]}),0,1))))',
        "h_no_distance": f'IF({used}=0,0,IF({err}<>"",0,IF({x["status"]}="",0,'
                         f'IF(ISNUMBER({x["liq_distance"]}),0,1))))',
        "h_left_out_names": names(x["h_left_out"], "left_out_names"),
        "h_no_move_names": names(x["h_no_move"], "no_move_names"),
        "h_no_distance_names": names(x["h_no_distance"], "no_distance_names"),
    }


def _totals_check(last: int) -> str:
    """The totals' check: the refused Account input, else ``portfolio.rows_left_out`` in its
    words (the probe's names and counts replaced by the sheet's)."""
    kinds = ("left_out", "no_move", "no_distance")

    def part(k: int) -> str:
        count = f"SUM({_col(kinds[k], last, True)})"
        text = rows_left_out(*[["Zq8"] if j == k else [] for j in range(3)])
        said = F.said(text, {"1 row": f'{count}&IF({count}=1," row"," rows")',
                              "Zq8": f"{POSITIONS}!${REBALANCE_HELPERS.letter(kinds[k] + '_names')}"
                                     f"${last}"})
        return f'IF({count}=0,"",{said})'

    parts = [part(k) for k in range(3)]
    joint = quoted(rows_left_out(["Zq8"], ["Zq8"]).split("Zq8")[1][:2])  # "; "
    text = parts[0]
    for k in (1, 2):
        text = f'{text}&IF(AND({"&".join(parts[:k])}<>"",{parts[k]}<>""),{joint},"")&{parts[k]}'
    return f'IF({_acct("account_error")}<>"",{_acct("account_error")},{text})'


def _account_error() -> str:
    """The first Account input the sync refuses, in its words: ``Account!B3 (free_balance):
    free_balance must be >= 0, got -500`` (sheets_bridge.engine reads them by
    ``portfolio.ACCOUNT_RULES``); "" when every one is fine."""
    checks: list[tuple[str, str]] = []
    for key, rule in ACCOUNT_RULES.items():
        ref = _acct(key)
        where = quoted(f"{ACCOUNT}!B{account_row(key)} ({key}): ")
        typed = rate_value(ref) if key in ("volatility", "liq_threshold") else ref
        checks += [(cond, f"{where}&{says}") for cond, says in
                   F.number_checks(typed, key, rule)]  # type: ignore[arg-type]
    return nested_if(checks, '""')


def _shock_and_odds(x: dict[str, str], mode: str) -> dict[str, str]:
    """Row formulas of the account-shock helpers and the liquidation probability column
    (``leverage.portfolio._account_shock`` and ``_liq_odds``)."""
    used, err, s, cross = x["h_used"], x["h_error"], x["h_side"], x["h_cross"]
    qty, entry, mark = x["qty"], x["entry_price"], x["mark_price"]
    mmr, maint, in_shock = x["h_mmr"], x["h_maint"], f'{x["h_shock_qty"]}>0'
    shock, vol, days = _acct("account_shock"), rate_value(_acct("volatility")), \
        _acct("horizon_days")
    moved = f"{mark}*(1+{shock})"
    k = _acct("shock_threshold")
    liq = x["liq_price"]
    odds = F.liq_probability(mode, s, mark, liq, vol, days)
    return {
        "h_shock_qty": f"IF({used}=0,0,IF({cross}=1,{qty},0))",
        "h_shock_base": f"IF({in_shock},{s}*{qty}*{entry}-{k}*{maint},0)",
        "h_shock_slope": f"IF({in_shock},{qty}*{mark}*({s}-{k}*{mmr}),0)",
        "h_shock_use": f'IF({in_shock},IF(ISNUMBER({shock}),{k}*({qty}*{moved}*{mmr}-{maint})'
                       f'-{s}*{qty}*({moved}-{entry}),""),"")',
        # a blank liq. price on a cross short is an account below maintenance at every price
        "liq_probability": f'IF({used}=0,"",IF({err}<>"","",IF({x["h_at_once"]}=1,"",'
                           f'IF(AND(ISNUMBER({vol}),'
                           f'ISNUMBER({days})),IF(AND({vol}>=0,{days}>=0),IF(ISNUMBER({liq}),'
                           f'{odds},IF(AND({cross}=1,{s}=-1),1,0)),""),""))))',
    }


def _shock_account_formulas(last: int, mode: str) -> dict[str, str]:
    """The account-shock rows: the move (``F.account_shock``) and the cross position that
    uses most of the buffer at it (largest maintenance margin − PnL at the move)."""
    def col(key: str, helper: bool = False) -> str:
        return _col(key, last, helper)

    base, slope, use = _acct("shock_base"), _acct("shock_slope"), col("shock_use", True)
    wallet, k = _acct("shock_wallet"), _acct("shock_threshold")
    move = F.account_shock(mode, base, slope, col("side", True), col("shock_qty", True),
                           col("entry_price"), col("mark_price"), wallet,
                           col("mmr", True), col("maint", True), k)
    # an account liquidated on its ratio (portfolio.account_ratio): the exchange's equity
    # and maintenance, the threshold typed or 1
    eq, mm = _acct("account_equity"), _acct("account_maint")
    on_ratio = f"AND(ISNUMBER({eq}),ISNUMBER({mm}))"
    typed_k = rate_value(_acct("liq_threshold"))
    return {
        "shock_threshold": f"IF({on_ratio},IF(ISNUMBER({typed_k}),{typed_k},1),1)",
        "shock_wallet": f"IF({on_ratio},{eq}-{_acct('cross_upnl')}-{k}*({mm}-"
                        f"{_acct('cross_maint')}),{_acct('wallet_balance')})",
        "shock_base": f"{wallet}-SUM({col('shock_base', True)})",
        "shock_slope": f"SUM({col('shock_slope', True)})",
        "account_shock": f"IF({base}+{slope}<0,IF({on_ratio},{quoted(ALREADY_AT_RATIO)},"
                         f"{quoted(ALREADY_BELOW)}),{move})",
        "shock_position": f'IF(COUNT({use})=0,"",'
                          f'TRIM(INDEX({col("position_id")},MATCH(MAX({use}),{use},0))&""))',
    }


def account_formulas(last: int, mode: str = "native") -> dict[str, str]:
    """Account-level figures and the cross aggregates the rows share."""
    def col(key: str, helper: bool = False) -> str:
        return _col(key, last, helper)

    wallet, free = _acct("wallet_balance"), _acct("free_balance")
    cross, iso = col("cross", True), col("isolated", True)
    refused = _acct("account_error")
    shown = {
        "total_notional": f"SUM({col('notional')})",
        "total_equity": f"{wallet}+SUM({col('unrealized_pnl')})"
                        f"+SUMIFS({col('margin', True)},{iso},1)",
        "account_leverage": f'IF({_acct("total_equity")}>0,'
                            f'{_acct("total_notional")}/{_acct("total_equity")},"")',
        "worst_liq_distance": f'IF(COUNT({col("liq_distance")})=0,"",MIN({col("liq_distance")}))',
        "total_move": f"SUM({col('move')})",
        "total_allocated": f"SUM({col('allocated')})",
        "shortfall": f"{_acct('total_move')}-{_acct('total_allocated')}",
        **{k: v for k, v in _shock_account_formulas(last, mode).items()
           if k in ("account_shock", "shock_position")},
        **_ratio_formulas(),
    }
    return {
        # no total at all while an Account input is refused (the sync writes none)
        **{k: f'IF({refused}<>"","",{v})' for k, v in shown.items()},
        "totals_check": _totals_check(last),
        "account_error": _account_error(),
        "cross_notional": f"SUMIFS({col('notional')},{cross},1)",
        "cross_upnl": f"SUMIFS({col('unrealized_pnl')},{cross},1)",
        "cross_maint": f"SUMIFS({col('maint_margin')},{cross},1)",
        "cross_equity": f"{wallet}+{_acct('cross_upnl')}",
        "cross_target": f'IF(COUNT({col("cross_target", True)})=0,"",'
                        f'MIN({col("cross_target", True)}))',
        "available": f'{free}-SUMIFS({col("move")},{col("move")},"<0")',
        **{k: v for k, v in _shock_account_formulas(last, mode).items()
           if k in ("shock_base", "shock_slope", "shock_threshold", "shock_wallet")},
    }


def _ratio_formulas() -> dict[str, str]:
    """The account ratio both ways round (``leverage.portfolio.account_ratio``): blank unless
    both of the exchange's figures are there and the denominator is > 0."""
    eq, mm = _acct("account_equity"), _acct("account_maint")
    both = f"AND(ISNUMBER({eq}),ISNUMBER({mm}))"
    return {"account_mm_rate": f'IF({both},IF({eq}>0,{mm}/{eq},""),"")',
            "uni_mmr": f'IF({both},IF({mm}>0,{eq}/{mm},""),"")'}


def _account_sheet(wb: Workbook, inputs: Mapping[str, Any], last: int, mode: str) -> None:
    sheet = REBALANCE_ACCOUNT
    # the Item column fits its longest label (the account-ratio rows' are the longest), so no
    # label is cut off by the blank cell beside it
    item_width = max(len(label) for _, label in (*ACCOUNT_INPUT_ROWS, *ACCOUNT_OUTPUT_ROWS)) + 2
    ws = prepare_sheet(wb, sheet.title, [max(48.0, float(item_width)), 18.0], landscape=False,
                       header_height=None)
    mk = CellMaker(ws)
    ws.append(header_cells(mk, sheet))
    for key, label in ACCOUNT_INPUT_ROWS:
        ws.append([mk.cell(label), mk.cell(inputs.get(key), account_format(key),
                                           fill=INPUT_FILL)])
    fs = account_formulas(last, mode)
    for key, label in ACCOUNT_OUTPUT_ROWS:
        ws.append([mk.cell(label), mk.cell("=" + fs[key], account_format(key),
                                           fill=COMPUTED_FILL)])
    for key, label in ACCOUNT_HELPER_ROWS:
        ws.row_dimensions[account_row(key)].hidden = True
        ws.append([mk.cell(label), mk.cell("=" + fs[key], USD)])
    for key, _ in ACCOUNT_INPUT_ROWS:
        number_validation(ws, f"B{account_row(key)}", key, 1.0 if key == "liq_threshold" else 0.0)
    input_prompts(ws, sheet, FIRST_DATA_ROW, FIRST_DATA_ROW + len(ACCOUNT_INPUT_ROWS) - 1)


def _position_texts(positions: Sequence[Mapping[str, Any]],
                    inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each position's wrapped texts as the workbook will show them: the Check and Status
    the core's rebalance gives (the formulas compute the same) and the imported cause of a
    gap, so its row can be sized for them."""
    texts: list[dict[str, Any]] = [{"liq_gap_cause": p.get("liq_gap_cause")}
                                   for p in positions]
    wallet, free = inputs["wallet_balance"], inputs["free_balance"]
    if wallet is None or free is None:
        return texts
    try:
        columns = rebalance(positions, wallet, free, inputs["volatility"],
                            inputs["horizon_days"]).columns
    except LeverageError:  # the workbook shows why; rows keep one line
        return texts
    for key in ("warnings", "status"):
        for row, text in zip(texts, columns[key], strict=True):
            row[key] = text
    return texts


def _positions_sheet(
    wb: Workbook, positions: Sequence[Mapping[str, Any]], rows: int, mode: str,
    tiers_last: int,
    heights: Mapping[int, float] | None = None,
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
    input_prompts(ws, sheet, first, last)
    highlights(ws, sheet, last)
    ws.append(header_cells(mk, sheet, helpers.headers + [c.header for c in call_list]))
    formats = {c.key: c.number_format for c in sheet.columns}
    for i in range(rows):
        r = first + i
        p = positions[i] if i < len(positions) else {}
        fs = row_formulas(r, mode, last, tiers_last)
        if calls is not None:
            fs = calls.lift(fs, r)
        cells = [mk.cell("=" + fs[c.key], formats[c.key], align=WRAP if wraps(c) else None)
                 if c.role == "computed"
                 else mk.text(p.get(c.key), formats[c.key], align=WRAP if wraps(c) else None)
                 for c in sheet.columns]
        cells += [mk.cell("=" + fs["h_" + k]) for k in helpers.helper_keys()]
        if i == 0:  # the add-in's column calls: one array formula each, over all rows
            cells += [mk.cell(c.formula(first, last)) for c in call_list]
        if heights and i in heights:
            ws.row_dimensions[r].height = heights[i]
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
    volatility: float | None = None,
    horizon_days: float | None = None,
) -> Path:
    """Write the portfolio-rebalance workbook to ``path`` and return it.

    ``mode``: ``"udf"`` (the add-in's functions, with the ``xlwings.conf`` sheet) or
    ``"native"`` (plain formulas). ``sample``: the worked example of
    :func:`leverage_templates.sample_portfolio` (with
    :data:`leverage_templates.samples.SAMPLE_VOLATILITY` and ``SAMPLE_HORIZON_DAYS`` for the
    liquidation probability); ``False`` leaves it empty.
    ``positions``, the two balances, ``volatility`` (annualised) and ``horizon_days`` replace
    the sample. ``rows``: position rows carrying formulas (default: the
    positions plus 50 empty rows).
    """
    from .samples import SAMPLE_HORIZON_DAYS, SAMPLE_VOLATILITY, sample_portfolio

    mode = check_mode(mode)
    if positions is None and sample:
        positions, w, f = sample_portfolio()
        wallet_balance = w if wallet_balance is None else wallet_balance
        free_balance = f if free_balance is None else free_balance
        volatility = SAMPLE_VOLATILITY if volatility is None else volatility
        horizon_days = SAMPLE_HORIZON_DAYS if horizon_days is None else horizon_days
    positions = list(positions or ())
    inputs = {"wallet_balance": wallet_balance, "free_balance": free_balance,
              "volatility": volatility, "horizon_days": horizon_days}
    for name, v in inputs.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v < 0):
            raise InputError(f"{name} must be a number >= 0, got {v!r}")
    rows = check_rows(rows, len(positions), len(positions) + BLANK_EXTRA_ROWS)
    last = FIRST_DATA_ROW + rows - 1

    wb = Workbook(write_only=True)
    instructions_sheet(wb, "rebalance")
    _account_sheet(wb, inputs, last, mode)
    tier_rows = T.tier_rows(T.sheet_tables(p.get("symbol") for p in positions)) \
        if mode == "native" else []
    _positions_sheet(wb, positions, rows, mode, T.LAST_ROW,
                     text_heights(REBALANCE_POSITIONS, _position_texts(positions, inputs)))
    if mode == "udf":
        xlwings_conf_sheet(wb, UDF_MODULE)
    else:  # the tables the blank rates are looked up in
        T.add_tier_sheet(wb, tier_rows)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)
    return out
