"""The core's guardrails reach the journal: a position liquidated at once is the row's
status (with the percent hint), and a maintenance rate typed as percent text is read."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

import leverage as lv
from leverage.errors import InputError
from leverage.journal import LIQUIDATED_AT_ONCE, JournalPosition, read_date, replay

OPEN = {"date": "2026-01-03", "position_id": "B", "event": "open", "price": 60_000, "qty": 1,
        "amount": 6_000}


def test_mmr_typed_as_a_percent_number_is_the_core_s_liquidated_at_once_error() -> None:
    # the case: 0.5 meaning 0.5 % put the liquidation price at 108,000, "0.00 % away"
    r = replay([{"position_id": "B", "side": "long", "mmr": 0.5}], [OPEN])
    status = r.columns["status"][0]
    with pytest.raises(lv.PositionError) as core_error:
        lv.liq_price("long", 1, 60_000, 6_000, 0.5)
    assert status == str(core_error.value)
    assert "liquidated at once" in status
    assert status.endswith("; " + lv.percent_hint("mmr", 0.5))
    assert status.endswith("mmr 0.5 is 50 %; for 0.5 % type 0.005 or 0.5%")
    assert r.problems[0].reason == LIQUIDATED_AT_ONCE
    assert math.isnan(r.columns["liq_price"][0]) and math.isnan(r.columns["liq_distance"][0])
    assert r.columns["margin"][0] == 6_000 and r.applied[0]  # the open itself is recorded


def test_adding_enough_margin_clears_the_error_on_the_next_row() -> None:
    add = {**OPEN, "date": "2026-01-04", "event": "add_margin", "amount": 30_000}
    r = replay([{"position_id": "B", "side": "long", "mmr": 0.5}], [OPEN, add])
    assert r.columns["status"][1] == ""
    assert r.columns["liq_price"][1] == lv.liq_price("long", 1, 60_000, 36_000, 0.5)


@pytest.mark.parametrize("typed", ["0.5%", " 0.5 %", 0.005])
def test_mmr_typed_as_percent_text_is_a_rate(typed: object) -> None:
    assert JournalPosition.build(position_id="B", side="long", mmr=typed).mmr == 0.005
    r = replay([{"position_id": "B", "side": "long", "mmr": typed}], [OPEN])
    assert r.columns["status"] == [""]
    assert r.columns["liq_price"][0] == lv.liq_price("long", 1, 60_000, 6_000, 0.005)


def test_other_text_for_the_mmr_is_still_refused_naming_it() -> None:
    with pytest.raises(lv.InputError, match="mmr"):
        JournalPosition.build(position_id="B", side="long", mmr="half a percent")


@pytest.mark.parametrize("typed", [2958465.999999999, "9999-12-31T23:59:59-01:00",
                                   "0001-01-01T00:00:00+01:00",
                                   datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))])
def test_read_date_past_the_calendar_is_an_input_error(typed: object) -> None:
    with pytest.raises(InputError, match="date must be a date from 0001-01-01 to 9999-12-31"):
        read_date(typed)
