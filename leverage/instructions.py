"""What the workbooks tell a trader: the input prompt of every column and the Instructions tab.

Pure data, read by every backend (the openpyxl templates, the Google Sheets and local .xlsx
sync), so a sentence is written once:

* :data:`PROMPTS`: ``(sheet title, column key) -> (title, text)``, the message a spreadsheet
  shows when a cell of that column is selected (Excel's input message, Google's
  ``inputMessage``). Excel cuts a title after 32 characters and a text after 255, so every
  prompt stays within :data:`MAX_TITLE` / :data:`MAX_TEXT` (a test checks it). Both workbooks
  have a "Positions" sheet; their shared columns (id, symbol, side, contract, rates) mean
  the same in both, so one prompt serves both.
* :data:`INSTRUCTIONS`: per template, the rows ``(heading, text)`` of its first tab,
  :data:`INSTRUCTIONS_SHEET`.
* :data:`EXAMPLES`: per template, worked example rows ``(sheet title, {column key: value})``
  the Instructions tab shows under the sheet's own headers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .layout import AMBER_FILL, COMPUTED_FILL, INPUT_FILL, RED_FILL

INSTRUCTIONS_SHEET = "Instructions"
MAX_TITLE = 32  # Excel's limit for a data validation's prompt title
MAX_TEXT = 255  # ... and for its text

TIE_RULE = (
    "Adds are funded in Priority order (1 first) from the free balance plus withdrawals. "
    "Among equal priorities the position closest to liquidation (smallest Liq. distance) "
    "is funded first; then row order."
)

_RATE = "A fraction: type 0.005 or 0.5% (text) for 0.5 %; 0.5 means 50 %."
_MMR = ("Maintenance margin rate of the exchange's tier. " + _RATE + " Blank: the Symbol's "
        "tier at qty x entry (no table: 0.005). A typed rate 2x off the tier's is flagged.")
_MAINT = ("Maintenance amount of the tier (the exchange's 'maint. amount' / cum), in the "
          "position's margin currency. Blank: the tier's if the rate is blank too, else 0.")
_FROM_SYMBOL = (
    "Rate from the Symbol",
    "Leave Maint. margin rate blank and the rate and amount come from the Symbol's tier table "
    "(BTCUSDT: Binance's; bybit:BTCUSDT: Bybit's) at the notional at entry, qty x entry. "
    "Native workbooks read the Tiers tab (paste more tables there); the add-in reads every "
    "shipped and fetched table (leverage tiers fetch). A typed rate is your override; more "
    "than 2x off the tier's, Check says so.")

# One prompt per (sheet, column): journal Positions/Events/Rules, rebalance Account/Positions.
PROMPTS: dict[tuple[str, str], tuple[str, str]] = {
    # ---------------------------------------------------------------- both Positions sheets
    ("Positions", "position_id"): (
        "Position ID",
        "Your own short label, unique per position (e.g. BTC-L1). Journal: Events rows name "
        "it to link to this position.",
    ),
    ("Positions", "symbol"): (
        "Symbol",
        "The exchange's symbol, e.g. BTCUSDT (Binance's) or bybit:BTCUSDT. With Maint. margin "
        "rate blank, the rate and amount come from its tier table (native workbooks: the "
        "Tiers tab).",
    ),
    ("Positions", "side"): ("Side", "long or short (pick from the list)."),
    ("Positions", "contract"): (
        "Contract",
        "linear: USDT/USDC-margined, qty in coins. inverse: coin-margined, qty in USD of "
        "contracts, margin and PnL in the coin. The rebalance workbook takes linear only.",
    ),
    ("Positions", "mmr"): ("Maint. margin rate", _MMR),
    ("Positions", "maint_amount"): ("Maint. amount", _MAINT),
    # ---------------------------------------------------------------- journal Positions
    ("Positions", "margin_currency"): (
        "Margin currency",
        "Currency of margin, fees, funding and PnL for this position, e.g. USDT or BTC. "
        "Blank: quote for linear, coin for inverse. Totals are kept per currency.",
    ),
    ("Positions", "stop_price"): (
        "Stop price (optional)",
        "Your planned stop when you opened, > 0. Sets the initial risk of the R multiple: "
        "qty x |entry - stop| (inverse: qty x |1/stop - 1/entry|, in coin). Blank: no R "
        "multiple.",
    ),
    # ---------------------------------------------------------------- journal Events
    ("Events", "date"): (
        "Date (required)",
        "When it happened: a date or date-time, e.g. 2026-01-03 09:00. Each position's "
        "events are replayed in date order (ties: row order); a row dated out of order is "
        "flagged.",
    ),
    ("Events", "position_id"): (
        "Position ID",
        "The Position ID of a row on the Positions sheet.",
    ),
    ("Events", "event"): (
        "Event",
        "open, increase, add_margin, withdraw_margin, partial_close, close or funding. One "
        "open per position, first. increase: more qty at Price (new average "
        "entry). An event at or beyond the liq. price liquidates the position; its later "
        "rows are refused.",
    ),
    ("Events", "price"): (
        "Price",
        "open/increase: fill price. partial_close/close: exit price. add/withdraw/funding: "
        "the mark at the time (funding: blank = last mark). At or beyond the liq. price: the "
        "position is liquidated there.",
    ),
    ("Events", "qty"): (
        "Qty",
        "open: size (> 0; linear in coins, inverse in USD of contracts). increase: qty "
        "added (> 0). partial_close: qty closed, less than the open qty. Blank for other "
        "events.",
    ),
    ("Events", "amount"): (
        "Amount (margin or cash)",
        "In the margin currency. open: initial margin. increase: margin added with it (blank: "
        "at the open's leverage). add/withdraw_margin: margin moved. partial_close: margin "
        "released (blank: pro rata). funding: cash, - paid + received. close: blank.",
    ),
    ("Events", "fee"): (
        "Fee paid (optional)",
        "Trading fee of this event, >= 0, in the position's margin currency. Blank: 0. "
        "Counted in Fees so far and Net PnL.",
    ),
    ("Events", "reason"): (
        "Reason",
        "Why you did it, in your words (text only; never computed). Rule breaks and checks "
        "appear to the right.",
    ),
    # ---------------------------------------------------------------- journal Rules
    ("Rules", "rule"): (
        "Rule",
        "The rule's name, read by the journal: keep it as written.",
    ),
    ("Rules", "value"): (
        "Value",
        "The rule's threshold (see What it means). Rates as fractions or text: 0.05 or 5%. "
        "Blank: the rule is off.",
    ),
    ("Rules", "meaning"): (
        "What it means",
        "What the rule flags. Notes only: editing this text changes nothing.",
    ),
    # ---------------------------------------------------------------- journal Charts
    ("Charts", "position_id"): (
        "Position ID to chart",
        "Pick a position: the chart beside shows its leverage and liq. distance over time "
        "(open rows only).",
    ),
    # ---------------------------------------------------------------- rebalance Account
    ("Account", "item"): (
        "Item",
        "What the value beside is. Labels only: keep the rows in place.",
    ),
    ("Account", "value"): (
        "Value",
        "Balances in USDT. Volatility: annualised fraction, 0.6 or 60%. Horizon: days. "
        "Volatility and horizon blank: no liq. probability. Account equity and maintenance: "
        "unified / portfolio margin only (blank otherwise).",
    ),
    # ---------------------------------------------------------------- rebalance Positions
    ("Positions", "qty"): ("Qty", "Position size in coins, > 0 (as the exchange shows it)."),
    ("Positions", "entry_price"): ("Entry price", "Average entry price, > 0."),
    ("Positions", "mark_price"): ("Mark price", "Mark price now, > 0 (the exchange's mark)."),
    ("Positions", "margin"): (
        "Isolated margin",
        "Margin posted on an isolated position now, in USDT (>= 0); required for isolated "
        "(blank is not 0). Ignored for cross (cross positions share the wallet).",
    ),
    ("Positions", "margin_mode"): (
        "Margin mode",
        "isolated or cross. Blank: isolated.",
    ),
    ("Positions", "target_leverage"): (
        "Target leverage",
        "Equity-based leverage you want, > 0 (e.g. 5). Blank, with no Target liq. distance: no "
        "margin move (watched, not steered). Cross rows share one equity: the account is "
        "brought to the lowest cross target; a cross row asking for another is flagged.",
    ),
    ("Positions", "target_liq_distance"): (
        "Target liq. distance",
        "Isolated only: how far liquidation should be from the mark, 0 to 1; 0.2 or 20% = "
        "20 % away. Wins over Target leverage.",
    ),
    ("Positions", "priority"): (
        "Priority",
        "1 is funded first, then 2, ... Blank: 1. Equal priorities: the position closest to "
        "liquidation (smallest Liq. distance) first, then row order.",
    ),
    ("Positions", "exchange_liq_price"): (
        "Exchange liq. price",
        "Filled by the exchange import: the liquidation price the exchange showed. Blank: it "
        "showed none. You may edit it.",
    ),
    ("Positions", "liq_gap_cause"): (
        "Likely cause of the gap",
        "Filled by the exchange import: why our Liq. price may differ from the exchange's. "
        "You may edit it.",
    ),
}

_COLOURS = (
    "Yellow headers: you type there. Blue: computed, never type over them. A red cell in "
    "Status says why the row could not be computed (journal: or that it liquidated the "
    "position); amber marks a check or rule break that does not stop the row (read it, "
    "then decide). Grey columns are hidden working columns."
)

COLOUR_LEGEND: tuple[tuple[str, str], ...] = (
    (INPUT_FILL, "Yellow header: you type in this column (or the exchange import filled it)."),
    (COMPUTED_FILL, "Blue header: computed for you; do not type over it."),
    (RED_FILL, "Red Status cell: the row could not be computed, or it liquidated the "
               "position; it says why."),
    (AMBER_FILL, "Amber cell: a check or rule break; the row is still computed."),
)
"""(hex fill, meaning): the colour key under the Instructions tab's "Colours" row."""

INSTRUCTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "journal": (
        ("What this workbook is",
         "A journal of leveraged positions, one row per event (open, increase, margin moves, "
         "funding, closes); after each: leverage, liquidation price and distance, PnL after "
         "fees and funding, rule breaks."),
        ("Positions tab",
         "One row per position, typed once: Position ID, Symbol, Side, Contract (linear or "
         "inverse), Margin currency, maintenance margin rate and amount (from the exchange's "
         "tier), and an optional Stop price for the R multiple."),
        ("Events tab",
         "One row per event, yellow columns only: Date, Position ID, Event, Price, Qty, "
         "Amount, Fee, Reason. Each position's events are replayed in date order (ties keep "
         "row order), so a row typed late still lands in its place; it is flagged in Check."),
        ("What Amount means",
         "open: initial margin. increase: the margin that comes with it (blank: at the "
         "open's leverage). add_margin / withdraw_margin: the margin moved (> 0). "
         "partial_close: margin released (blank: the closed share). funding: the cash flow, "
         "negative when paid, paid from (or into) the margin. close: blank. Always in the "
         "margin currency (the Currency column): USDT for linear, the coin (BTC) for inverse."),
        ("Increase",
         "Adds Qty at Price: the entry becomes the average entry (inverse: the harmonic "
         "one), the margin grows by Amount, the Fee is booked; the R multiple's risk becomes "
         "the whole position's loss at the stop if larger. Rules treat it as an add."),
        ("Liquidation",
         "An event priced at or beyond the liquidation price the position had before it "
         "(funding without a price: the last mark) liquidates it there: the margin is lost "
         "and its later events are refused. A withdrawal or increase that would put the "
         "liquidation price at or beyond its own price is refused, as on the exchange."),
        ("Rates",
         "A rate is a fraction: 0.5 % is 0.005, or type the text 0.5%. A rate typed as 0.5 "
         "means 50 %; where that makes a position liquidated at once the row says so."),
        _FROM_SYMBOL,
        ("Computed columns",
         "Open qty, margin committed, mark, notional, unrealized PnL, equity, leverage on "
         "margin (notional / margin) and on equity (notional / (margin + unrealized PnL)), "
         "liquidation price and distance, realized PnL, funding, fees, net PnL (realized + "
         "funding - fees), R multiple (net PnL / initial risk at the stop), rule breaks, "
         "Check and Status."),
        ("Rules tab",
         "Your own limits, written before you trade. Blank turns a rule off. Breaks show in "
         "Rule breaks; a liquidation closer than min_liq_distance turns Liq. distance red."),
        ("Summary and Charts",
         "Summary: per position net PnL, R multiple, largest leverage, rule breaks, outcome "
         "(liquidated among them); per currency win rate, liquidations, expectancy, total. "
         "Charts: pick a Position ID to plot its leverage and liq. distance over time."),
        ("Colours", _COLOURS),
        ("Example rows",
         "Below: a BTC long of 0.5 at 60,000 on 3,000 USDT (10x), stop 57,000; 1,000 USDT "
         "added on a dip; 0.2 more at 62,000 (Amount blank: 1,240 USDT, at 10x)."),
    ),
    "rebalance": (
        ("What this workbook is",
         "Margin moves that bring each USDT-margined position to its target leverage or "
         "liquidation distance, funded from your free balance in priority order."),
        ("Account tab",
         "Type the cross wallet balance (without isolated margins) and the free balance "
         "available for margin moves, in USDT; volatility (annualised) and horizon (days) "
         "give each position's chance of touching liquidation. The rest is computed. "
         "Totals check names the rows left out of the totals (an input error: out of every "
         "total; no margin move: out of the move totals; no liq. price: out of the worst "
         "distance), or the Account value that is refused; a blank balance is never 0. "
         "An account liquidated on its ratio (Bybit unified cross or portfolio margin, "
         "Binance portfolio margin): the exchange's account equity, maintenance margin and "
         "threshold (the import fills them) give the account MM rate, uniMMR and the move "
         "of all marks that reaches the threshold."),
        ("Positions tab",
         "One row per position: Side, Qty, Entry and Mark price, Isolated margin, Margin "
         "mode, a Target leverage or (isolated) a Target liq. distance, Priority, and the "
         "tier's maintenance margin rate and amount."),
        ("Rates",
         "A rate is a fraction: 0.5 % is 0.005, or type the text 0.5%. A rate typed as 0.5 "
         "means 50 %: an isolated row is then refused as liquidated at once, a cross row "
         "gets a note in Check."),
        _FROM_SYMBOL,
        ("Computed columns",
         "Notional, unrealized PnL, maintenance margin, leverage on equity, liquidation "
         "price and distance, the margin move to reach the target (> 0 add, < 0 withdraw), "
         "the amount allocated, Check, Status, and the liquidation probability."),
        ("Cross rows",
         "Cross positions share one equity, so the cross account has one leverage: a cross "
         "row's Leverage (equity; cross: account) is the whole cross account's, the same on "
         "every cross row. The moves bring the cross account to one target, the lowest Target "
         "leverage of its rows, each row taking its share by notional; a cross row that asked "
         "for another target gets a note in Check, since its own cannot be met alone."),
        ("Who is funded first", TIE_RULE + " Withdrawals always go through. An amber "
         "Allocated cell got less than its move: the free balance ran out."),
        ("Colours", _COLOURS),
        ("Example row",
         "The row below: an isolated BTC long, 0.1 BTC entered at 60,000, mark 58,000, "
         "1,000 USDT margin, to be brought to 5x equity-based leverage."),
    ),
}

EXAMPLES: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "journal": (
        ("Positions", {"position_id": "BTC-L1", "symbol": "BTCUSDT", "side": "long",
                       "contract": "linear", "margin_currency": "USDT", "mmr": 0.004,
                       "maint_amount": 0, "stop_price": 57_000}),
        ("Events", {"date": dt.datetime(2026, 1, 3, 9, 0), "position_id": "BTC-L1", "event": "open",
                    "price": 60_000, "qty": 0.5, "amount": 3_000, "fee": 1.2,
                    "reason": "Breakout; stop 57k"}),
        ("Events", {"date": dt.datetime(2026, 1, 5, 9, 0), "position_id": "BTC-L1",
                    "event": "add_margin", "price": 57_500, "amount": 1_000,
                    "reason": "Dip: liquidation too close"}),
        ("Events", {"date": dt.datetime(2026, 1, 7, 9, 0), "position_id": "BTC-L1",
                    "event": "increase", "price": 62_000, "qty": 0.2, "fee": 0.5,
                    "reason": "Breakout held: added 0.2"}),
    ),
    "rebalance": (
        ("Positions", {"position_id": "BTC-1", "symbol": "BTCUSDT", "side": "long",
                       "contract": "linear", "qty": 0.1, "entry_price": 60_000,
                       "mark_price": 58_000, "margin": 1_000, "margin_mode": "isolated",
                       "target_leverage": 5, "priority": 1, "mmr": 0.004,
                       "maint_amount": 0}),
    ),
}


def prompt(sheet: str, key: str) -> tuple[str, str] | None:
    """The (title, text) prompt of column ``key`` on sheet ``sheet``; None if it has none
    (computed columns have none: the header's note says what they are).

    >>> prompt("Events", "fee")[0]
    'Fee paid (optional)'
    >>> prompt("Events", "liq_price") is None
    True
    """
    return PROMPTS.get((sheet, key))
