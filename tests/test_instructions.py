"""Every column a trader types into says what to type, within the limits of every backend."""

from __future__ import annotations

import pytest

from leverage import layout as L
from leverage.instructions import (
    EXAMPLES,
    INSTRUCTIONS,
    INSTRUCTIONS_SHEET,
    MAX_TEXT,
    MAX_TITLE,
    PROMPTS,
    TIE_RULE,
)

TYPED = [(template, sheet, col) for template, sheets in L.TEMPLATES.items() for sheet in sheets
         for col in sheet.columns if col.role in ("input", "imported")]


@pytest.mark.parametrize(("template", "sheet", "col"), TYPED,
                         ids=[f"{t}-{s.title}-{c.key}" for t, s, c in TYPED])
def test_every_typed_column_has_a_prompt_within_excels_limits(template, sheet, col):
    title, text = PROMPTS[(sheet.title, col.key)]
    assert 0 < len(title) <= MAX_TITLE, title
    assert 0 < len(text) <= MAX_TEXT, (len(text), text)


def test_prompts_fit_and_name_only_existing_columns():
    known = {(s.title, c.key) for sheets in L.TEMPLATES.values() for s in sheets
             for c in s.columns}
    for (sheet, key), (title, text) in PROMPTS.items():
        assert len(title) <= MAX_TITLE and len(text) <= MAX_TEXT, (sheet, key)
        # the Charts sheet's id cell is not a layout column; every other prompt is
        assert (sheet, key) in known or sheet == "Charts", (sheet, key)


def test_the_journal_explains_amount_per_event_and_its_unit():
    _, text = PROMPTS[("Events", "amount")]
    for event in L.EVENT_TYPES:
        head = event.split("_")[0]
        assert head in text, event
    assert "margin currency" in text


def test_rebalance_instructions_and_priority_prompt_state_the_tie_rule():
    assert TIE_RULE in dict(INSTRUCTIONS["rebalance"])["Who is funded first"]
    assert "closest to liquidation" in PROMPTS[("Positions", "priority")][1]


def test_instructions_and_examples_cover_each_template():
    assert INSTRUCTIONS_SHEET == "Instructions"
    assert set(INSTRUCTIONS) == set(EXAMPLES) == set(L.TEMPLATES)
    for template, rows in EXAMPLES.items():
        titles = {s.title: s for s in L.TEMPLATES[template]}
        for sheet, row in rows:
            keys = set(titles[sheet].keys("input"))
            assert set(row) <= keys, set(row) - keys


def test_the_event_prompt_lists_every_event_and_the_instructions_explain_the_new_ones():
    _, text = PROMPTS[("Events", "event")]
    assert all(event in text for event in L.EVENT_TYPES), text
    assert "liquidates" in text and "refused" in text
    rows = dict(INSTRUCTIONS["journal"])
    assert "average entry" in rows["Increase"] and "harmonic" in rows["Increase"]
    assert "liquidation price" in rows["Liquidation"] and "refused" in rows["Liquidation"]
    assert "paid from (or into) the margin" in rows["What Amount means"]
    assert "liquidat" in rows["Summary and Charts"]
    assert any(row.get("event") == "increase" for _, row in EXAMPLES["journal"])
