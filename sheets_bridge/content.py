"""The cells ``init`` writes: headers, the rule and account labels, and optional sample rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from leverage.errors import InputError
from leverage.layout import (
    ACCOUNT_INPUT_ROWS,
    ACCOUNT_OUTPUT_ROWS,
    RULE_ROWS,
    TEMPLATES,
    Sheet,
)

from .backend import Grid


def _data_rows(sheet: Sheet, rows: Sequence[Mapping[str, Any]]) -> Grid:
    """Input cells of ``rows`` (dicts by column key); computed cells are left to the sync."""
    inputs = set(sheet.keys("input"))
    return [[r.get(c.key) if c.key in inputs else None for c in sheet.columns] for r in rows]


def _samples() -> Any:
    """The workbooks' worked samples (a pure-Python module: no openpyxl or lxml needed)."""
    try:
        from leverage_templates import samples
    except ImportError:
        raise InputError(
            "--sample needs the workbooks' samples (leverage_templates), which this "
            "installation does not have; run init without --sample"
        ) from None
    return samples


def layout_rows(template: str, sample: bool = False) -> dict[str, Grid]:
    """Sheet title -> rows from row 1 (headers first) that ``init`` writes RAW."""
    if template not in TEMPLATES:
        raise InputError(f"template must be one of {', '.join(TEMPLATES)}, got {template!r}")
    sheets = TEMPLATES[template]
    out: dict[str, Grid] = {s.title: [list(s.headers)] for s in sheets}
    if template == "journal":
        positions_sheet, events_sheet, rules_sheet = sheets
        positions, events, rule_values = _samples().sample_journal() if sample else ([], [], {})
        rule_values = dict(rule_values or {})
        out[rules_sheet.title] += [
            [key, rule_values.get(key), meaning] for key, _fmt, meaning in RULE_ROWS
        ]
        out[positions_sheet.title] += _data_rows(positions_sheet, positions)
        out[events_sheet.title] += _data_rows(events_sheet, events)
    else:
        account_sheet, positions_sheet = sheets
        balances: dict[str, Any] = {}
        positions: list[Any] = []
        if sample:
            samples = _samples()
            positions, wallet, free = samples.sample_portfolio()
            balances = {"wallet_balance": wallet, "free_balance": free,
                        "volatility": samples.SAMPLE_VOLATILITY,
                        "horizon_days": samples.SAMPLE_HORIZON_DAYS}
        out[account_sheet.title] += [[label, balances.get(key)]
                                     for key, label in ACCOUNT_INPUT_ROWS]
        out[account_sheet.title] += [[label, None] for _key, label in ACCOUNT_OUTPUT_ROWS]
        out[positions_sheet.title] += _data_rows(positions_sheet, positions)
    return out
