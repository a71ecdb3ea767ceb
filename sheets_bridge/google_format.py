"""The ``spreadsheets:batchUpdate`` requests that give a Google tab the layout's look: frozen
header, widths, number formats, fills, drop-downs, protected computed cells and highlights.
Everything they say comes from :mod:`leverage.layout`."""

from __future__ import annotations

from typing import Any

from gspread.utils import convert_hex_to_colors_dict

from leverage.layout import (
    ACCOUNT_INPUT_ROWS,
    ACCOUNT_OUTPUT_ROWS,
    COMPUTED_FILL,
    FIRST_DATA_ROW,
    RULE_ROWS,
    Sheet,
    account_format,
    buffer_cell,
    highlight_formula,
    role_fill,
)

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


def box(sheet_id: int, r0: int, r1: int, c0: int, c1: int) -> dict[str, int]:
    """A GridRange: 0-based, end exclusive."""
    return {
        "sheetId": sheet_id,
        "startRowIndex": r0,
        "endRowIndex": r1,
        "startColumnIndex": c0,
        "endColumnIndex": c1,
    }


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
        if fmt:
            out.append(_repeat(box(sheet_id, first, height, i, i + 1), fmt))
        if col.choices and col.role == "input":
            out.append({"setDataValidation": {
                "range": box(sheet_id, first, height, i, i + 1),
                "rule": {
                    "condition": {"type": "ONE_OF_LIST",
                                  "values": [{"userEnteredValue": v} for v in col.choices]},
                    "strict": True,
                    "showCustomUi": True,
                },
            }})
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
