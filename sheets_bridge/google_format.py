"""The ``spreadsheets:batchUpdate`` requests that give a Google tab the layout's look: frozen
header, widths, number formats, fills, drop-downs, protected computed cells and highlights.
Everything they say comes from :mod:`leverage.layout`."""

from __future__ import annotations

from typing import Any

from gspread.utils import convert_hex_to_colors_dict

from leverage.instructions import PROMPTS
from leverage.layout import (
    ACCOUNT_INPUT_ROWS,
    ACCOUNT_OUTPUT_ROWS,
    COMPUTED_FILL,
    FIRST_DATA_ROW,
    INPUT_FILL,
    JOURNAL_POSITIONS,
    RULE_ROWS,
    SUMMARY_TOTALS,
    Sheet,
    account_format,
    buffer_cell,
    highlight_formula,
    role_fill,
    wraps,
)

from .charts import (
    CHARTS_SHEET,
    DATA_COLUMN,
    SLOT_ROWS,
    chart_width,
    data_column,
    series_formats,
    slot_row,
)
from .content import EXTRA_WIDTH, INSTRUCTION_WIDTHS, header_lines, instructions, prompts

Request = dict[str, Any]


def color(hex_rgb: str) -> dict[str, float]:
    """A layout colour (hex RGB) as the API's 0..1 components."""
    return dict(convert_hex_to_colors_dict("#" + hex_rgb))


def number_format(pattern: str) -> dict[str, str] | None:
    """A CellFormat.numberFormat for an Excel-style ``pattern`` (None for General)."""
    if pattern == "General":
        return None
    if "%" in pattern:
        kind = "PERCENT"
    elif "yy" in pattern:
        kind = "DATE_TIME"
    else:
        kind = "NUMBER"
    return {"type": kind, "pattern": pattern}


def box(sheet_id: int, r0: int, r1: int | None, c0: int, c1: int) -> dict[str, int]:
    """A GridRange: 0-based, end exclusive (``r1`` None: to the last row)."""
    out = {
        "sheetId": sheet_id,
        "startRowIndex": r0,
        "endRowIndex": r1,
        "startColumnIndex": c0,
        "endColumnIndex": c1,
    }
    return {k: v for k, v in out.items() if v is not None}


def _repeat(grid_range: dict[str, int], fmt: dict[str, Any]) -> Request:
    """Give every cell of ``grid_range`` the formats in ``fmt`` (and leave others alone)."""
    return {"repeatCell": {
        "range": grid_range,
        "cell": {"userEnteredFormat": fmt},
        "fields": f"userEnteredFormat({','.join(fmt)})",
    }}


def format_requests(sheet: Sheet, sheet_id: int, height: int, new: bool = True) -> list[Request]:
    """Frozen bold header, column widths and number formats, drop-downs, computed cells
    shaded and protected with a warning (the trader may still override, knowingly), and the
    highlight rules. Protections and rules are added to ``new`` tabs only: Google stacks a
    second copy of each when init runs again, while formats simply overwrite."""
    first = FIRST_DATA_ROW - 1
    out: list[Request] = [
        {"updateSheetProperties": {
            "properties": {"sheetId": sheet_id, "gridProperties": {"frozenRowCount": 1}},
            "fields": "gridProperties.frozenRowCount",
        }},
        _repeat(box(sheet_id, 0, 1, 0, len(sheet.columns)),
                {"textFormat": {"bold": True}, "wrapStrategy": "WRAP"}),
    ]
    for i, col in enumerate(sheet.columns):
        out.append({"updateDimensionProperties": {
            "range": {"sheetId": sheet_id, "dimension": "COLUMNS", "startIndex": i,
                      "endIndex": i + 1},
            "properties": {"pixelSize": int(col.width * 7 + 5)},
            "fields": "pixelSize",
        }})
        out.append(_repeat(box(sheet_id, 0, 1, i, i + 1),
                           {"backgroundColor": color(role_fill(col.role))}))
        fmt: dict[str, Any] = {}
        number = number_format(col.number_format)
        if number:
            fmt["numberFormat"] = number
        if col.role == "computed":
            fmt["backgroundColor"] = color(COMPUTED_FILL)
        if wraps(col):  # Google grows a row to its wrapped text
            fmt["wrapStrategy"] = "WRAP"
        if fmt:
            out.append(_repeat(box(sheet_id, first, height, i, i + 1), fmt))
    out.append(_row_height(sheet_id, 0, HEADER_LINE_PIXELS * header_lines(sheet) + 8))
    for p in prompts(sheet):
        last = height if p.last_row is None else p.last_row
        out.append(_validation(box(sheet_id, p.first_row - 1, last, p.column - 1, p.column),
                               p.title, p.text, list_of(p.choices)))
    computed = [i for i, c in enumerate(sheet.columns) if c.role == "computed"]
    if computed and new:
        out.append(_protect(box(sheet_id, first, height, computed[0], computed[-1] + 1)))
    if new:
        out.extend(_highlight_requests(sheet, sheet_id, height))
    if sheet.title == "Rules":
        for r, (_key, pattern, _meaning) in enumerate(RULE_ROWS, start=first):
            number = number_format(pattern)
            if number:
                out.append(_repeat(box(sheet_id, r, r + 1, 1, 2), {"numberFormat": number}))
    if sheet.title == "Account":
        keys = [k for k, _ in ACCOUNT_INPUT_ROWS] + [k for k, _ in ACCOUNT_OUTPUT_ROWS]
        for r, key in enumerate(keys, start=first):
            out.append(_repeat(box(sheet_id, r, r + 1, 1, 2),
                               {"numberFormat": number_format(account_format(key))}))
        start = first + len(ACCOUNT_INPUT_ROWS)
        if new:
            out.append(_protect(box(sheet_id, start, start + len(ACCOUNT_OUTPUT_ROWS), 1, 2)))
    return out


HEADER_LINE_PIXELS = 17  # one line of the default 10 pt font


def _row_height(sheet_id: int, row: int, pixels: int) -> Request:
    return {"updateDimensionProperties": {
        "range": {"sheetId": sheet_id, "dimension": "ROWS", "startIndex": row,
                  "endIndex": row + 1},
        "properties": {"pixelSize": pixels},
        "fields": "pixelSize",
    }}


def _column_width(sheet_id: int, col: int, chars: float, hidden: bool = False) -> Request:
    props: dict[str, Any] = {"pixelSize": int(chars * 7 + 5)}
    if hidden:
        props["hiddenByUser"] = True
    return {"updateDimensionProperties": {
        "range": {"sheetId": sheet_id, "dimension": "COLUMNS", "startIndex": col,
                  "endIndex": col + 1},
        "properties": props,
        "fields": ",".join(props),
    }}


def list_of(choices: tuple[str, ...]) -> dict[str, Any] | None:
    """A drop-down condition of fixed choices (None when there are none)."""
    if not choices:
        return None
    return {"type": "ONE_OF_LIST", "values": [{"userEnteredValue": v} for v in choices]}


def _validation(grid_range: dict[str, int], title: str, text: str,
                condition: dict[str, Any] | None) -> Request:
    """One rule per cell range: the input prompt (Google's help text), and the drop-down
    when there is one (strict: only its values). A column without a list gets a condition
    every value meets, since a rule needs one: the prompt is all it adds."""
    rule: dict[str, Any] = {"inputMessage": f"{title}: {text}"}
    if condition is None:
        rule.update(condition={"type": "CUSTOM_FORMULA", "values": [{"userEnteredValue":
                                                                        "=TRUE"}]},
                    strict=False)
    else:
        rule.update(condition=condition, strict=condition["type"] == "ONE_OF_LIST",
                    showCustomUi=True)
    return {"setDataValidation": {"range": grid_range, "rule": rule}}


def instructions_requests(sheet_id: int, template: str) -> list[Request]:
    """The Instructions tab's look: bold wrapped header, wide wrapped text column, the worked
    examples in their columns' number formats. Nothing here is protected: it is text."""
    guide = instructions(template)
    out: list[Request] = [
        _repeat(box(sheet_id, 0, len(guide.rows), 0, EXTRA_WIDTH),
                {"wrapStrategy": "WRAP", "verticalAlignment": "TOP"}),
    ]
    out += [_column_width(sheet_id, i, w) for i, w in enumerate(INSTRUCTION_WIDTHS)]
    for r in guide.headings:
        out.append(_repeat(box(sheet_id, r - 1, r, 0, EXTRA_WIDTH),
                           {"textFormat": {"bold": True}}))
    for (r, c), pattern in guide.formats.items():
        number = number_format(pattern)
        if number:
            out.append(_repeat(box(sheet_id, r - 1, r, c - 1, c), {"numberFormat": number}))
    return out


def chart_requests(sheet_id: int, slots: int) -> list[Request]:
    """The Charts tab: picked-id cells with their drop-down and prompt, hidden chart-data
    columns, and one chart per slot plus the equity curve, each over open-ended ranges."""
    title, text = PROMPTS[(CHARTS_SHEET, "position_id")]
    out: list[Request] = [_column_width(sheet_id, 0, 24)]
    for c in range(DATA_COLUMN - 1, chart_width(slots)):
        out.append(_column_width(sheet_id, c, 12, hidden=True))
    for k in range(slots + 1):
        label = slot_row(k) - 1
        out.append(_repeat(box(sheet_id, label, label + 1, 0, 1), {
            "textFormat": {"bold": True}, "wrapStrategy": "WRAP"}))
        out.append(_repeat(box(sheet_id, label + 2, label + 3, 0, 1), {
            "wrapStrategy": "WRAP", "verticalAlignment": "TOP"}))  # the empty chart's note
        pick = box(sheet_id, label + 1, label + 2, 0, 1)
        out.append(_repeat(pick, {"backgroundColor": color(INPUT_FILL)}))
        if k < slots:
            ids_range = f"='{JOURNAL_POSITIONS.title}'!$A$2:$A"
            out.append(_validation(pick, title, text, {
                "type": "ONE_OF_RANGE", "values": [{"userEnteredValue": ids_range}]}))
        else:  # the currencies the Summary's totals list
            col = SUMMARY_TOTALS.letter("currency")
            out.append({"setDataValidation": {"range": pick, "rule": {
                "condition": {"type": "ONE_OF_RANGE", "values": [
                    {"userEnteredValue": f"='{SUMMARY_TOTALS.title}'!${col}$2:${col}"}]},
                "strict": False, "showCustomUi": True}}})
        out.append(_chart(sheet_id, k, slots, label))
    for k in range(slots + 1):  # the charts' axes show the data's formats
        for j, pattern in enumerate(series_formats(k == slots)):
            c = data_column(k) - 1 + j
            out.append(_repeat(box(sheet_id, 1, None, c, c + 1),
                               {"numberFormat": number_format(pattern)}))
    return out


def _series(sheet_id: int, col: int) -> dict[str, Any]:
    """One column of chart data from row 1 (its header) down, open-ended."""
    return {"sourceRange": {"sources": [{"sheetId": sheet_id, "startRowIndex": 0,
                                         "startColumnIndex": col, "endColumnIndex": col + 1}]}}


def _chart(sheet_id: int, k: int, slots: int, label_row: int) -> Request:
    first = data_column(k) - 1
    equity = k == slots
    axes: list[dict[str, Any]]
    if equity:
        title = "Equity curve: cumulative net PnL of closed positions"
        series = [{"series": _series(sheet_id, first + 1), "targetAxis": "LEFT_AXIS"}]
        axes = [{"position": "BOTTOM_AXIS", "title": "Closed"},
                {"position": "LEFT_AXIS", "title": "Net PnL (margin currency)"}]
    else:
        title = f"Slot {k + 1}: leverage and liquidation distance (open rows only)"
        series = [{"series": _series(sheet_id, first + 1), "targetAxis": "LEFT_AXIS"},
                  {"series": _series(sheet_id, first + 2), "targetAxis": "RIGHT_AXIS"}]
        # both from 0 (EXPLICIT: an unset max falls back to the scale Google picks for the
        # data, so nothing is cut off and an empty chart is not stretched)
        axes = [{"position": "BOTTOM_AXIS", "title": "Date"},
                {"position": "LEFT_AXIS", "title": "Leverage (equity), x",
                 "viewWindowOptions": {"viewWindowMin": 0, "viewWindowMode": "EXPLICIT"}},
                {"position": "RIGHT_AXIS", "title": "Liq. distance",
                 "viewWindowOptions": {"viewWindowMin": 0, "viewWindowMode": "EXPLICIT"}}]
    return {"addChart": {"chart": {
        "spec": {
            "title": title,
            "hiddenDimensionStrategy": "SHOW_ALL",  # the chart data sits in hidden columns
            "basicChart": {
                "chartType": "LINE",
                "legendPosition": "BOTTOM_LEGEND",
                "headerCount": 1,
                "axis": axes,
                "domains": [{"domain": _series(sheet_id, first)}],
                "series": series,
            },
        },
        "position": {"overlayPosition": {
            "anchorCell": {"sheetId": sheet_id, "rowIndex": label_row, "columnIndex": 2},
            "widthPixels": 760, "heightPixels": SLOT_ROWS * 21 - 24,
        }},
    }}}


def _highlight_requests(sheet: Sheet, sheet_id: int, height: int) -> list[Request]:
    """The layout's highlights as conditional formats. Google only lets such a formula reach
    another tab via INDIRECT."""
    title, row = buffer_cell()
    buffer = f'INDIRECT("{title}!B{row}")'
    out = []
    for h in sheet.highlights:
        col = sheet.index(h.key)
        look: dict[str, Any] = {"backgroundColor": color(h.fill)}
        if h.text:
            look["textFormat"] = {"foregroundColor": color(h.text)}
        out.append({"addConditionalFormatRule": {"index": 0, "rule": {
            "ranges": [box(sheet_id, FIRST_DATA_ROW - 1, height, col, col + 1)],
            "booleanRule": {
                "condition": {"type": "CUSTOM_FORMULA", "values": [
                    {"userEnteredValue": highlight_formula(sheet, h, buffer)}]},
                "format": look,
            },
        }}})
    return out


def _protect(grid_range: dict[str, int]) -> Request:
    return {"addProtectedRange": {"protectedRange": {
        "range": grid_range,
        "description": "computed by `leverage sheets sync`: edits here are overwritten",
        "warningOnly": True,
    }}}
