"""Where everything sits in the workbooks, and how it looks: one spec for every workbook.

Sheets, columns, who owns each column, number formats, widths, drop-down lists, colours and
highlight rules, as plain data. The openpyxl workbooks (``templates``), the Google Sheets sync
and the local .xlsx sync (``sheets_bridge``) all read this module and translate it into their
own format; it imports nothing outside the core, so installing the Sheets bridge does not
bring openpyxl's builders or lxml along.

Each sheet's column keys are written here and nowhere else: the journal and the portfolio
(``leverage.journal.INPUT_COLUMNS``, ``leverage.portfolio.OUTPUT_COLUMNS``, ...) take theirs
from these sheets, and so do the bridges. The rules' rows come from the core's
:class:`~leverage.models.AdjustmentRule`, the one home of the rules.

A column is either ``input`` (the trader types it; nothing of ours ever writes to it after the
workbook is laid out), ``computed`` (ours: a formula in the workbook, a value written by the
sync) or ``imported`` (filled once by ``leverage exchange import`` when it adds the row, then the
trader's like an input; the core does not read it). Headers sit in row 1 and data starts in
row 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from leverage.models import AdjustmentRule

Role = Literal["input", "computed", "imported"]


@dataclass(frozen=True)
class Column:
    key: str  # the core's name for the field
    header: str  # what the trader reads in row 1
    role: Role
    number_format: str = "General"
    width: float = 12.0
    note: str = ""
    choices: tuple[str, ...] = ()  # a drop-down list of the only values the column takes


@dataclass(frozen=True)
class Sheet:
    title: str
    columns: tuple[Column, ...]
    highlights: tuple[Highlight, ...] = ()
    first_column: int = 1  # 1-based column of the first key (a second table on one sheet)

    def letter(self, key: str) -> str:
        """Column letter of ``key`` (A, B, ...)."""
        return column_letter(self.first_column + self.index(key))

    def index(self, key: str) -> int:
        for i, c in enumerate(self.columns):
            if c.key == key:
                return i
        raise KeyError(f"{self.title} has no column {key!r}")

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def header(self, key: str) -> str:
        """Row 1's header of column ``key`` (what a chart calls its series too)."""
        return self.columns[self.index(key)].header

    def keys(self, role: Role | None = None) -> list[str]:
        return [c.key for c in self.columns if role is None or c.role == role]


def column_letter(index: int) -> str:
    """Spreadsheet column letters of the 1-based column ``index``.

    >>> column_letter(1), column_letter(26), column_letter(27), column_letter(703)
    ('A', 'Z', 'AA', 'AAA')
    """
    if index < 1:
        raise ValueError(f"index must be >= 1, got {index}")
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# ------------------------------------------------------------------ colours
# Hex RGB, as openpyxl takes them; the Google backend converts them to its 0..1 floats.
INPUT_FILL = "FFF2CC"  # pale yellow: the trader types here
COMPUTED_FILL = "DDEBF7"  # pale blue: ours, do not type
HELPER_FILL = "EDEDED"  # grey: hidden working columns
RED_FILL = "FFC7CE"
RED_TEXT = "9C0006"
AMBER_FILL = "FFEB9C"


def role_fill(role: Role) -> str:
    """Fill of a column's header (and of computed cells): yellow for input (and imported,
    which the trader may edit), blue for ours."""
    return COMPUTED_FILL if role == "computed" else INPUT_FILL


@dataclass(frozen=True)
class Highlight:
    """A colour a column's cells take when ``condition`` holds (conditional formatting).

    ``condition`` is a spreadsheet formula without ``=``. In it ``{key}`` stands for the cell
    of column ``key`` in the first data row (relative, so it follows each row) and
    ``{buffer}`` for the trader's liquidation buffer on the journal's Rules sheet.
    """

    key: str  # the column that is coloured
    condition: str
    fill: str
    text: str | None = None  # text colour, when the rule also colours the text


HEADER_ROW = 1
FIRST_DATA_ROW = 2

USD = "#,##0.00"  # the rebalance workbook is USDⓈ-margined only
# Money shows 2 decimals, the minus sign written out. A format that switches decimals by size
# ("[<1]...") loses the minus sign of a small negative amount in LibreOffice (a conditional
# section's sign is the app's to add, and each app decides otherwise), and Google Sheets
# cannot switch a cell's format by its row. So the column format is fixed, and the journal's
# coin-margined rows (a coin currency: BTC, ETH; see coin_money) take COIN_MONEY by a
# conditional format in Excel and LibreOffice (see coin_money). Google's conditional formats
# cannot set a number format, so there the sync gives each row's cells their own
# (money_format), in the write that carries their values.
MONEY = "#,##0.00;-#,##0.00"
COIN_MONEY = "#,##0.00000000;-#,##0.00000000"
# What the trader types keeps its own digits (no float noise to hide): up to 6 decimals.
TYPED_MONEY = "#,##0.00####"
# Prices from SHIB (0.00001234) through DOGE (0.16) to BTC (60,000.00), each with enough
# significant digits and no wider than 10 characters up to 999,999: 4-8 decimals under 1,
# 2-4 under 100, 2 from 100 on. Two conditions and a default section, which Excel,
# LibreOffice and Google Sheets all accept (Google allows at most two conditions).
PRICE = "[<1]0.0000####;[<100]0.00##;#,##0.00"
# A computed price (a liquidation price) has no typed digits to keep, only float noise past
# them: a fixed count of decimals by size, as a price of that size is quoted: 8 under 0.01
# (SHIB), 4 under 1 (0.6789 next to an entry of 0.6200), 2 from 1 on (54,216.87).
COMPUTED_PRICE = "[<0.01]0.00000000;[<1]0.0000;#,##0.00"
QTY = "0.########"
RATE = "0.00%"
LEV = '0.00"x"'
R_MULTIPLE = '0.00"R"'
DATE = "yyyy-mm-dd hh:mm"

EVENT_TYPES = (
    "open", "increase", "add_margin", "withdraw_margin", "partial_close", "close", "funding",
)
"""The journal's events (``leverage.journal`` says what each does): the Event column's list."""
SIDES = ("long", "short")
CONTRACTS = ("linear", "inverse")
MARGIN_MODES = ("isolated", "cross")

# ------------------------------------------------------------------ journal
JOURNAL_POSITIONS = Sheet(
    "Positions",
    (
        Column("position_id", "Position ID", "input", width=12),
        Column("symbol", "Symbol", "input", width=12),
        Column("side", "Side", "input", width=8, choices=SIDES),
        Column("contract", "Contract", "input", width=10, choices=CONTRACTS),
        Column("margin_currency", "Margin currency", "input", width=10,
               note="blank: quote (USDT) for linear, coin (BTC) for inverse"),
        Column("mmr", "Maint. margin rate", "input", RATE, 12),
        Column("maint_amount", "Maint. amount", "input", TYPED_MONEY, 12),
        Column("stop_price", "Stop price", "input", PRICE, 11,
               "planned stop: sets the initial risk of the R multiple"),
    ),
)

JOURNAL_EVENTS = Sheet(
    "Events",
    (
        Column("date", "Date", "input", DATE, 17),
        Column("position_id", "Position ID", "input", width=11),
        Column("event", "Event", "input", width=15, choices=EVENT_TYPES),
        Column("price", "Price", "input", PRICE, 11),
        Column("qty", "Qty", "input", QTY, 9),
        Column("amount", "Amount (margin or cash)", "input", TYPED_MONEY, 13,
               "open: initial margin; increase: margin added (blank: at the open's "
               "leverage); add/withdraw: margin moved; partial close: margin released; "
               "funding: cash (- paid, + received), paid from the margin"),
        Column("fee", "Fee paid", "input", TYPED_MONEY, 10, "in the margin currency; blank: 0"),
        Column("reason", "Reason", "input", width=40),
        Column("currency", "Currency", "computed", width=9),
        Column("qty_open", "Open qty", "computed", QTY, 9),
        Column("margin", "Margin committed", "computed", MONEY, 13),
        Column("mark_price", "Mark price", "computed", PRICE, 11),
        Column("notional", "Notional", "computed", MONEY, 13),
        Column("unrealized_pnl", "Unrealized PnL", "computed", MONEY, 13),
        Column("equity", "Equity", "computed", MONEY, 13),
        Column("margin_leverage", "Leverage (margin)", "computed", LEV, 10,
               "notional / margin committed"),
        Column("effective_leverage", "Leverage (equity)", "computed", LEV, 10,
               "notional / (margin + unrealized PnL)"),
        Column("liq_price", "Liq. price", "computed", COMPUTED_PRICE, 11),
        Column("liq_distance", "Liq. distance", "computed", RATE, 10),
        Column("realized_pnl", "Realized PnL", "computed", MONEY, 13),
        Column("funding", "Funding so far", "computed", MONEY, 13),
        Column("fees", "Fees so far", "computed", MONEY, 12),
        Column("net_pnl", "Net PnL", "computed", MONEY, 13,
               "realized PnL + funding - fees so far"),
        Column("r_multiple", "R multiple", "computed", R_MULTIPLE, 9,
               "net PnL / initial risk (qty x distance from entry to stop; an increase "
               "can raise it)"),
        Column("rule_breaks", "Rule breaks", "computed", width=60),
        Column("warnings", "Check", "computed", width=44),
        Column("status", "Status", "computed", width=44),
    ),
    (
        # liquidation closer than the trader's buffer: the journal's most urgent signal
        Highlight("liq_distance",
                  "AND(ISNUMBER({liq_distance}),ISNUMBER({buffer}),{liq_distance}<{buffer})",
                  RED_FILL, RED_TEXT),
        Highlight("rule_breaks", "LEN({rule_breaks})>0", AMBER_FILL),
        Highlight("warnings", "LEN({warnings})>0", AMBER_FILL),
        Highlight("status", "LEN({status})>0", RED_FILL),
    ),
)

JOURNAL_RULES = Sheet(
    "Rules",
    (
        Column("rule", "Rule", "input", width=26),
        Column("value", "Value", "input", width=10),
        Column("meaning", "What it means", "input", width=70),
    ),
)

# A rule's number format: a rate (RATE) unless it is one of these.
_RULE_FORMATS = {"max_leverage": "0.00", "max_margin_per_event": TYPED_MONEY,
                 "max_adds_while_losing": "0", "horizon_days": "0.##"}

RULE_ROWS: tuple[tuple[str, str, str], ...] = tuple(
    (key, _RULE_FORMATS.get(key, RATE), field.description or "")
    for key, field in AdjustmentRule.model_fields.items()
)
"""The Rules sheet's rows, (rule, number format, what it means): one per field of
:class:`~leverage.models.AdjustmentRule`, in its order, with its description."""

SUMMARY_SHEET = "Summary"
JOURNAL_SUMMARY = Sheet(
    SUMMARY_SHEET,
    (
        Column("position_id", "Position ID", "computed", width=12),
        Column("symbol", "Symbol", "computed", width=12),
        Column("currency", "Currency", "computed", width=9),
        Column("side", "Side", "computed", width=7),
        Column("state", "State", "computed", width=10),
        Column("opened", "Opened", "computed", DATE, 17),
        Column("closed", "Closed", "computed", DATE, 17),
        Column("events", "Events", "computed", "0", 8),
        Column("net_pnl", "Net PnL", "computed", MONEY, 13),
        Column("r_multiple", "R multiple", "computed", R_MULTIPLE, 9),
        Column("largest_leverage", "Largest leverage (equity)", "computed", LEV, 11),
        Column("rule_breaks", "Rows with rule breaks", "computed", "0", 10),
        Column("outcome", "Outcome", "computed", width=10),
        Column("equity_after", "Equity curve (net PnL of closed, cumulative)", "computed",
               MONEY, 15, "closed positions of this currency in close-date order"),
    ),
)
"""One row per position of the Positions sheet, from A1 (``journal.summary(...).positions``)."""

SUMMARY_TOTALS = Sheet(
    SUMMARY_SHEET,
    (
        Column("currency", "Currency", "computed", width=9),
        Column("closed", "Closed positions", "computed", "0", 10),
        Column("wins", "Wins", "computed", "0", 7),
        Column("liquidations", "Liquidations", "computed", "0", 13),
        Column("win_rate", "Win rate", "computed", RATE, 9),
        Column("expectancy", "Expectancy (net PnL per trade)", "computed", MONEY, 13),
        Column("expectancy_r", "Expectancy (R)", "computed", R_MULTIPLE, 11,
               "mean R multiple of the closed positions with a stop"),
        Column("total_net_pnl", "Total net PnL", "computed", MONEY, 13),
    ),
    first_column=len(JOURNAL_SUMMARY.columns) + 2,  # one blank column after the positions
)
"""One row per margin currency, on the Summary sheet right of ``JOURNAL_SUMMARY``
(``journal.summary(...).totals``)."""


# --------------------------------------------------------------- rebalance
REBALANCE_POSITIONS = Sheet(
    "Positions",
    (
        Column("position_id", "Position ID", "input", width=11),
        Column("symbol", "Symbol", "input", width=11),
        Column("side", "Side", "input", width=7, choices=SIDES),
        # USDⓈ-margined only: the portfolio refuses inverse rows
        Column("contract", "Contract", "input", width=9, choices=("linear",)),
        Column("qty", "Qty", "input", QTY, 9),
        Column("entry_price", "Entry price", "input", PRICE, 11),
        Column("mark_price", "Mark price", "input", PRICE, 11),
        Column("margin", "Isolated margin", "input", USD, 11),
        Column("margin_mode", "Margin mode", "input", width=10, choices=MARGIN_MODES),
        Column("target_leverage", "Target leverage", "input", LEV, 10),
        Column("target_liq_distance", "Target liq. distance", "input", RATE, 10),
        Column("priority", "Priority", "input", "0", 8),
        Column("mmr", "Maint. margin rate", "input", RATE, 10),
        Column("maint_amount", "Maint. amount", "input", USD, 10),
        Column("notional", "Notional", "computed", USD, 12),
        Column("unrealized_pnl", "Unrealized PnL", "computed", USD, 12),
        Column("maint_margin", "Maint. margin", "computed", USD, 11),
        # a cross row's equity is its share of the cross equity: its leverage is the account's
        Column("leverage", "Leverage (equity; cross: account)", "computed", LEV, 12,
               "isolated: notional / (margin + PnL); cross: the whole cross account's, "
               "cross notional / cross equity, the same on every cross row"),
        Column("liq_price", "Liq. price", "computed", COMPUTED_PRICE, 11),
        Column("liq_distance", "Liq. distance", "computed", RATE, 10),
        Column("move", "Margin move", "computed", USD, 12,
               "> 0 add, < 0 withdraw; cross: this row's share of the move that brings the "
               "cross account to its target (the lowest cross Target leverage)"),
        Column("allocated", "Allocated", "computed", USD, 12),
        Column("warnings", "Check", "computed", width=36,
               note="flags that do not stop the row (e.g. a rate that looks like a percent)"),
        Column("status", "Status", "computed", width=44),
        Column("liq_probability", "Liq. probability", "computed", RATE, 10,
               "chance the mark touches the liq. price within the horizon (Account sheet)"),
        # the reconcile column: our Liq. price against the exchange's (exchange_bridge)
        Column("liq_gap", "Liq. gap vs exchange", "computed", RATE, 11,
               "(Liq. price − Exchange liq. price) ÷ Exchange liq. price"),
        Column("exchange_liq_price", "Exchange liq. price", "imported", PRICE, 12,
               "as the exchange showed it at the import; blank: it shows none"),
        Column("liq_gap_cause", "Likely cause of the gap", "imported", width=40),
    ),
    (
        Highlight("status", "LEN({status})>0", RED_FILL),
        Highlight("warnings", "LEN({warnings})>0", AMBER_FILL),
        # not enough free balance to fund the whole move
        Highlight("allocated", "AND(ISNUMBER({allocated}),ISNUMBER({move}),{allocated}<{move})",
                  AMBER_FILL),
    ),
)
RECONCILE_COLUMNS = ("liq_gap",)  # computed by the sync, not by the portfolio

REBALANCE_ACCOUNT = Sheet(
    "Account",
    (
        Column("item", "Item", "input", width=30),
        Column("value", "Value", "input", USD, 16),
    ),
)

ACCOUNT_INPUT_ROWS: tuple[tuple[str, str], ...] = (
    ("wallet_balance", "Cross wallet balance (without isolated margin)"),
    ("free_balance", "Free balance available for margin moves"),
    ("volatility", "Volatility (annualised) for liq. probability"),
    ("horizon_days", "Horizon (days) for liq. probability"),
    # unified / portfolio-margin accounts (liquidated on the account ratio): the exchange's
    # figures; blank for an account liquidated per position
    ("account_equity", "Account equity (unified / portfolio margin, as the exchange states)"),
    ("account_maint", "Account maintenance margin (as the exchange states)"),
    ("liq_threshold", "Liquidated at equity ÷ maintenance of (blank: 100%; Binance PM 105%)"),
)
ACCOUNT_OUTPUT_ROWS: tuple[tuple[str, str], ...] = (
    # the totals' own status: the rows left out of them, by name (portfolio.rows_left_out),
    # or an Account input refused as the sync refuses it
    ("totals_check", "Totals check (rows left out)"),
    ("total_notional", "Total notional"),
    ("total_equity", "Total equity"),
    ("account_leverage", "Account leverage"),
    ("worst_liq_distance", "Worst liquidation distance"),
    ("total_move", "Total margin moves needed"),
    ("total_allocated", "Total allocated"),
    ("shortfall", "Shortfall (needed but not funded)"),
    ("account_shock", "Move of all marks that liquidates the cross account"),
    ("shock_position", "Cross position using most of the buffer at that move"),
    ("account_mm_rate", "Account MM rate = maintenance ÷ equity (Bybit UTA: liquidated at 100%)"),
    ("uni_mmr", "uniMMR = equity ÷ maintenance (Binance PM: liquidated at ≤ 105%)"),
)
"""Account sheet: label in column A, value in column B; inputs first, then computed rows
(rows 2.. for inputs, then the computed rows right after)."""

def account_format(key: str) -> str:
    """Number format of an Account row's value (USD unless a leverage, a rate, days or the
    shock position's id)."""
    return {"account_leverage": LEV, "worst_liq_distance": RATE, "volatility": RATE,
            "account_shock": RATE, "horizon_days": "0.##", "account_mm_rate": RATE,
            "uni_mmr": RATE, "liq_threshold": RATE,
            "shock_position": "General", "totals_check": "General"}.get(key, USD)


TEMPLATES = {
    # SUMMARY_TOTALS shares the Summary sheet with JOURNAL_SUMMARY (see its first_column)
    "journal": (JOURNAL_POSITIONS, JOURNAL_EVENTS, JOURNAL_SUMMARY, JOURNAL_RULES),
    "rebalance": (REBALANCE_ACCOUNT, REBALANCE_POSITIONS),
}


# ------------------------------------------------------------ helper columns
# Working columns of the native formulas (the running state of a position, the row it
# continues from, ...). They sit right of the computed columns, are hidden in the built
# workbook, and are neither input nor output: the Sheets bridge never reads or writes them.
# REBALANCE_POSITIONS above is unchanged; these extend it to the right (the journal's hidden
# columns are defined with its formulas, in templates/journal.py).


@dataclass(frozen=True)
class Helpers:
    """Hidden working columns placed right after ``sheet``'s own columns."""

    sheet: Sheet
    columns: tuple[tuple[str, str], ...]  # (key, header)

    def letter(self, key: str) -> str:
        for i, (k, _) in enumerate(self.columns):
            if k == key:
                return column_letter(len(self.sheet.columns) + i + 1)
        raise KeyError(f"{self.sheet.title} has no helper column {key!r}")

    @property
    def headers(self) -> list[str]:
        return [h for _, h in self.columns]

    def helper_keys(self) -> list[str]:
        return [k for k, _ in self.columns]


REBALANCE_HELPERS = Helpers(
    REBALANCE_POSITIONS,
    (
        ("used", "(helper) row in use"),
        ("side", "(helper) side (+1 long, -1 short)"),
        ("error", "(helper) input problem"),
        ("cross", "(helper) cross and valid"),
        ("isolated", "(helper) isolated and valid"),
        ("margin", "(helper) isolated margin"),
        ("target_leverage", "(helper) target leverage"),
        ("target_liq_distance", "(helper) target liq. distance"),
        ("priority", "(helper) priority"),
        ("mmr", "(helper) maint. margin rate"),
        ("maint", "(helper) maint. amount"),
        ("share", "(helper) share of the cross equity"),
        ("target_price", "(helper) liq. price that meets the target distance"),
        ("shock_qty", "(helper) qty in the cross account (0: not cross)"),
        ("shock_base", "(helper) cross s*qty*entry - maint. amount"),
        ("shock_slope", "(helper) cross qty*mark*(s - mmr)"),
        ("shock_use", "(helper) maint. margin - PnL at the account-shock move"),
        # adds of equal priority are funded closest-to-liquidation first: the distance, rounded
        # so that SUMIFS's text criteria ("<"&x) compare it exactly; no liq. price sorts last
        ("rank_distance", "(helper) liq. distance for ranking equal priorities"),
        ("iso_liq", "(helper) isolated liq. price as typed (at or beyond entry included)"),
        ("at_once", "(helper) isolated and liquidated at once (1)"),
        # the rows left out of the totals, named on the Account sheet's Totals check
        ("left_out", "(helper) input error: left out of every total (1)"),
        ("no_move", "(helper) a Status and no margin move: left out of the moves (1)"),
        ("left_out_names", "(helper) rows left out of every total, down to this one"),
        ("no_move_names", "(helper) rows left out of the moves, down to this one"),
        ("no_distance", "(helper) a Status and no liq. price: out of the worst distance (1)"),
        ("no_distance_names", "(helper) rows left out of the worst distance, down to this one"),
        # cross rows share one target, the lowest of theirs (portfolio.cross_target_note)
        ("cross_target", "(helper) a cross row's target leverage"),
        ("cross_flag", "(helper) Check: cross liq. price beyond entry, mmr like a percent"),
        ("target_flag", "(helper) Check: this cross row's target is not the account's"),
        # the rate from the Symbol (leverage.tiers.symbol_rate; templates/_tiers.py)
        ("tier_row", "(helper) Tiers sheet row of the Symbol's table (0: none)"),
        ("tier", "(helper) the Symbol's tier table"),
        ("tier_mmr", "(helper) the tier's maint. margin rate at qty x entry"),
        ("tier_maint", "(helper) the tier's maint. amount at qty x entry"),
        ("tier_flag", "(helper) Check: a typed rate more than 2x off the tier's"),
    ),
)

ACCOUNT_HELPER_ROWS: tuple[tuple[str, str], ...] = (
    ("account_error", "(helper) the first Account input refused, as the sync says it"),
    ("cross_notional", "(helper) cross notional"),
    ("cross_upnl", "(helper) cross unrealized PnL"),
    ("cross_maint", "(helper) cross maint. margin"),
    ("cross_equity", "(helper) cross equity"),
    ("cross_target", "(helper) the cross account's target: the lowest cross target"),
    ("available", "(helper) money for adds (free balance + withdrawals)"),
    ("shock_base", "(helper) account shock C = wallet - sum of cross s*qty*entry - maint"),
    ("shock_slope", "(helper) account shock D = sum of cross qty*mark*(s - k*mmr)"),
    ("shock_threshold", "(helper) k: equity / maintenance at liquidation (1 unless on ratio)"),
    ("shock_wallet", "(helper) the shock's wallet: cross wallet, or the exchange's equity "
                     "less cross PnL and k * maintenance beyond the rows'"),
)
"""Account sheet rows right after ``ACCOUNT_OUTPUT_ROWS`` (hidden in the built workbook)."""


def account_row(key: str) -> int:
    """Sheet row of an Account item (inputs, then outputs, then helper rows)."""
    keys = [k for k, _ in ACCOUNT_INPUT_ROWS + ACCOUNT_OUTPUT_ROWS + ACCOUNT_HELPER_ROWS]
    return FIRST_DATA_ROW + keys.index(key)


def rule_row(key: str) -> int:
    """Sheet row of a rule on the journal's Rules sheet."""
    return FIRST_DATA_ROW + [r[0] for r in RULE_ROWS].index(key)


XLWINGS_CONF_SHEET = "xlwings.conf"

# How a built workbook computes: ``udf`` cells call the add-in's functions; ``native`` cells
# are plain spreadsheet formulas (Excel without the add-in, LibreOffice, Google Sheets).
MODES = ("udf", "native")


def buffer_cell() -> tuple[str, int]:
    """(sheet title, row) of the trader's liquidation buffer; the value sits in column B."""
    return JOURNAL_RULES.title, rule_row("min_liq_distance")


def excel_buffer() -> str:
    """The liquidation buffer as an absolute reference in Excel's notation.

    >>> excel_buffer()
    'Rules!$B$8'
    """
    title, row = buffer_cell()
    return f"{title}!$B${row}"


def highlight_formula(sheet: Sheet, h: Highlight, buffer: str) -> str:
    """``h``'s condition as a formula (with ``=``) for the first data row of ``sheet``;
    ``buffer`` is how the backend spells the reference to the liquidation buffer.

    >>> h = REBALANCE_POSITIONS.highlights[2]
    >>> highlight_formula(REBALANCE_POSITIONS, h, "Rules!$B$8")
    '=AND(ISNUMBER(V2),ISNUMBER(U2),V2<U2)'
    """
    cells = {c.key: f"{sheet.letter(c.key)}{FIRST_DATA_ROW}" for c in sheet.columns}
    return "=" + h.condition.format(buffer=buffer, **cells)


def choice_message(column: Column) -> tuple[str, str]:
    """(title, text) of the message a spreadsheet shows when a drop-down cell gets a value
    outside ``column.choices``."""
    return (f"Not a valid {column.header.lower()}",
            f"{column.header} must be one of: {', '.join(column.choices)}.")


# ------------------------------------------------------------ print look
WRAPPED = frozenset({"reason", "rule_breaks", "warnings", "status", "liq_gap_cause", "meaning"})
"""Keys of the text columns whose cells wrap (every backend), so a long flag or message shows
whole in a column narrow enough to print: rows grow to their text where the app sizes them
(Excel, LibreOffice and Google size a row that has no height of its own)."""


def wraps(column: Column) -> bool:
    """Whether ``column``'s cells wrap their text (:data:`WRAPPED`)."""
    return column.key in WRAPPED


LINE_HEIGHT = 15.0  # points a line of 11-point text takes in a row
BOLD_CHAR = 1.1  # a bold header letter is about this many of the width unit's "0"s wide


def wrapped_lines(text: str, width: float, char: float = 1.0) -> int:
    """Lines ``text`` takes wrapped at word boundaries in a column ``width`` wide (Excel's
    unit: the width of a "0"), each character ``char`` such units wide; a word longer than
    a line is broken across lines, as spreadsheets do. An estimate on the generous side:
    no backend measures text for us before the file is opened.

    >>> wrapped_lines("Liq. gap vs exchange", 11, BOLD_CHAR), wrapped_lines("Qty", 9)
    (3, 1)
    """
    room = max(1, int((width - 1) / char))  # a column loses about one unit to its padding
    lines, used = 0, room  # "used" = room forces the first word onto a new line
    for paragraph in str(text).split("\n"):
        used = room
        for word in paragraph.split():
            if used + 1 + len(word) <= room and used:
                used += 1 + len(word)
                continue
            full, rest = divmod(len(word), room)
            lines += full + (1 if rest else 0)
            used = rest if rest else room
        if not paragraph.split():
            lines += 1
    return max(lines, 1)


def row_height(lines: int) -> float | None:
    """Points a row needs for ``lines`` of wrapped 11-point text: :data:`LINE_HEIGHT` a line
    and a little margin; None for one line (the row keeps the app's default height).
    Excel and LibreOffice do not grow a row to a text they did not lay out themselves (a
    formula's result, a value a program wrote), so a workbook writer sizes the rows.

    >>> row_height(1), row_height(3)
    (None, 48.0)
    """
    return lines * LINE_HEIGHT + 3 if lines > 1 else None


def coin_money(sheet: Sheet) -> tuple[str, tuple[str, ...]] | None:
    """(formula, keys) of ``sheet``'s coin-margined money: the computed :data:`MONEY` columns
    of a sheet with a ``currency`` column, and a conditional-format formula (no ``=``, for
    the first data row, the currency column absolute so one rule serves every key) that
    holds on a row whose currency is a coin: not blank, not ``quote`` (the journal's label
    for a linear position's unnamed quote currency), no "USD" in its name (BTC or ``coin``,
    not USDT, USDC or USD). Excel and LibreOffice show those cells at :data:`COIN_MONEY`'s
    8 decimals
    (0.00713300 BTC, not 0.01). Google's conditional formats cannot set a number format, so
    there the sync writes each row's own (:func:`money_format`, the same rule in Python).
    None: the sheet has no such columns.

    >>> coin_money(JOURNAL_SUMMARY)
    ('AND($C2<>"",$C2<>"quote",ISERROR(SEARCH("USD",$C2)))', ('net_pnl', 'equity_after'))
    """
    if "currency" not in sheet.keys("computed"):
        return None
    keys = tuple(c.key for c in sheet.columns
                 if c.role == "computed" and c.number_format == MONEY)
    if not keys:
        return None
    cell = f"${sheet.letter('currency')}{FIRST_DATA_ROW}"
    return f'AND({cell}<>"",{cell}<>"quote",ISERROR(SEARCH("USD",{cell})))', keys


def money_format(currency: object) -> str:
    """The number format of a money cell on a row whose currency is ``currency``: the rule of
    :func:`coin_money`'s formula in Python, for a spreadsheet that cannot apply it by itself
    (Google). A coin (not blank, not ``quote``, no "USD" in its name; any case, as the
    spreadsheets compare) takes :data:`COIN_MONEY`'s 8 decimals, so a 0.00012345 BTC margin
    reads to the satoshi; anything else, a blank included, :data:`MONEY`'s 2.

    >>> [money_format(c) == COIN_MONEY for c in ("BTC", "eth", "coin")]
    [True, True, True]
    >>> [money_format(c) == MONEY for c in ("USDT", "usdc", "quote", "", None)]
    [True, True, True, True, True]
    """
    text = "" if currency is None else str(currency)
    upper = text.upper()
    return COIN_MONEY if text and upper != "QUOTE" and "USD" not in upper else MONEY
