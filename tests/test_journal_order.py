"""Journal dates: required, read from every form a spreadsheet gives, and each position's
events replayed in (date, row) order, with messages that name the real cause."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leverage as lv
from leverage import journal
from leverage.journal import (
    AFTER_CLOSE,
    BEFORE_OPEN,
    DATE_REQUIRED,
    INVALID_INPUT,
    NO_OPEN,
    OPEN_FAILED,
    UNKNOWN_POSITION,
    read_date,
    replay,
)

POSITIONS = [{"position_id": "BTC-1", "side": "long", "mmr": 0.005}]


def ev(day: object, event: str, price: float | None = None, qty: float | None = None,
       amount: float | None = None, pid: str = "BTC-1", **more: object) -> dict:
    when = f"2026-01-{day:02d}" if isinstance(day, int) else day
    return {"date": when, "position_id": pid, "event": event, "price": price, "qty": qty,
            "amount": amount, **more}


OPEN = ev(3, "open", 60_000, 1, 6_000)


# ------------------------------------------------------------------ reading dates
@pytest.mark.parametrize("value", [
    datetime(2026, 1, 3, 9, 0),
    "2026-01-03 09:00",
    "2026-01-03T09:00:00",
    " 2026-01-03 09:00 ",
    46025.375,  # the spreadsheet serial of 2026-01-03 09:00 (days since 1899-12-30)
    datetime(2026, 1, 3, 10, 0, tzinfo=timezone(timedelta(hours=1))),  # 09:00 UTC
])
def test_every_form_of_one_moment_reads_the_same(value: object) -> None:
    assert read_date(value) == datetime(2026, 1, 3, 9, 0)


def test_a_day_without_time_is_midnight_and_serials_round_to_the_second() -> None:
    assert read_date(date(2026, 1, 3)) == read_date("2026-01-03") == read_date(46025)
    # 09:01 as Google returns it: a float a hair below the exact minute
    assert read_date(46025 + 541 / 1440 - 1e-9) == datetime(2026, 1, 3, 9, 1)
    assert read_date(datetime(2026, 1, 3, tzinfo=UTC)) == datetime(2026, 1, 3)


@pytest.mark.parametrize(("value", "message"), [
    (None, DATE_REQUIRED),
    ("", DATE_REQUIRED),
    ("   ", DATE_REQUIRED),
    (math.nan, DATE_REQUIRED),
    ("yesterday", "date must be a date, got 'yesterday'"),
    ("03/01/2026", "date must be a date, got '03/01/2026'"),
    (True, "date must be a date, got TRUE"),
    (0, "date must be a date, got 0"),
    (-5, "date must be a date, got -5"),
    (3e6, "date must be a date, got 3000000"),
    (math.inf, "date must be a date, got inf"),
])
def test_a_blank_or_a_non_date_is_refused_with_its_message(value: object, message: str) -> None:
    with pytest.raises(lv.InputError) as err:
        read_date(value)
    assert str(err.value) == message
    assert DATE_REQUIRED == "date is required: type when the event happened"


def test_rows_without_a_date_are_refused_and_the_rest_still_compute() -> None:
    events = [OPEN, ev(None, "add_margin", 59_000, amount=100),
              ev("yesterday", "add_margin", 59_000, amount=100), ev(5, "add_margin", 59_000,
                                                                   amount=500)]
    r = replay(POSITIONS, events)
    assert r.columns["status"][1] == "date is required: type when the event happened"
    assert r.columns["status"][2] == "date must be a date, got 'yesterday'"
    assert [(p.reason, p.argument) for p in r.problems[1:3]] == [(INVALID_INPUT, "date")] * 2
    assert r.applied == [True, False, False, True]
    assert r.columns["margin"][3] == 6_500  # only the dated add applied
    assert math.isnan(r.columns["margin"][1])  # an undated row has no place to show a state
    assert r.dates[1] is None and r.dates[3] == datetime(2026, 1, 5)


# ------------------------------------------------------------------ order
def test_a_row_typed_out_of_order_is_applied_in_date_order_and_flagged() -> None:
    events = [OPEN, ev(9, "add_margin", 57_000, amount=2_000),
              ev(5, "withdraw_margin", 63_000, amount=1_000)]
    r = replay(POSITIONS, events)
    # date order: open (6,000), withdraw on the 5th (5,000), add on the 9th (7,000)
    assert r.columns["margin"] == [6_000, 7_000, 5_000]
    assert r.columns["mark_price"] == [60_000, 57_000, 63_000]
    assert r.columns["warnings"] == [
        "", "",
        "dated 2026-01-05, earlier than a row above it dated 2026-01-09: applied in date order",
    ]
    assert r.columns["status"] == ["", "", ""]


def test_ties_keep_row_order_and_are_not_flagged() -> None:
    events = [OPEN, ev(4, "add_margin", 60_000, amount=1_000),
              ev(4, "withdraw_margin", 60_000, amount=6_500)]
    r = replay(POSITIONS, events)
    assert r.columns["margin"] == [6_000, 7_000, 500]
    assert r.columns["warnings"] == ["", "", ""]


def test_other_positions_rows_do_not_make_a_row_out_of_order() -> None:
    positions = [*POSITIONS, {"position_id": "ETH-1", "side": "short"}]
    events = [ev(9, "open", 3_000, 1, 300, pid="ETH-1"), OPEN]
    assert replay(positions, events).columns["warnings"] == ["", ""]


def test_a_withdrawal_dated_before_the_open_says_so_with_both_dates() -> None:
    # the case: listed after the open, dated before it
    r = replay(POSITIONS, [OPEN, ev(1, "withdraw_margin", 60_000, amount=500)])
    assert r.columns["status"][1] == "dated 2026-01-01, before the position's open (2026-01-03)"
    assert r.problems[1].reason == BEFORE_OPEN
    assert r.columns["warnings"][1].startswith("dated 2026-01-01, earlier than a row above")
    assert math.isnan(r.columns["margin"][1]) and not r.applied[1]
    assert r.columns["margin"][0] == 6_000  # the open is untouched


def test_a_row_above_the_open_on_the_same_date_says_to_move_it() -> None:
    r = replay(POSITIONS, [ev(3, "add_margin", 60_000, amount=1), OPEN])
    assert r.columns["status"][0] == (
        "listed above the position's open of the same date (2026-01-03): move it below the open")
    assert r.problems[0].reason == BEFORE_OPEN and r.columns["status"][1] == ""


def test_rows_after_a_failed_open_name_the_open_not_a_consequence() -> None:
    events = [ev(3, "open", 60_000, 1, -6_000), ev(4, "add_margin", 59_000, amount=100),
              ev(5, "close", 61_000)]
    r = replay(POSITIONS, events)
    assert r.columns["status"][0] == "amount must be > 0, got -6000"
    cause = "the position's open (2026-01-03) could not be applied: fix that row first"
    assert r.columns["status"][1:] == [cause, cause]
    assert [p.reason for p in r.problems[1:]] == [OPEN_FAILED, OPEN_FAILED]


def test_a_second_open_after_a_failed_one_opens_the_position() -> None:
    events = [ev(3, "open", 60_000, 1, "six"), ev(4, "add_margin", 59_000, amount=100),
              ev(5, "open", 60_000, 1, 6_000), ev(6, "add_margin", 59_000, amount=100)]
    r = replay(POSITIONS, events)
    assert r.columns["status"][0] == "amount must be a number, got 'six'"
    assert r.problems[1].reason == OPEN_FAILED
    assert r.columns["status"][2:] == ["", ""] and r.columns["margin"][3] == 6_100


def test_events_of_a_position_without_an_open_say_it_has_none() -> None:
    r = replay(POSITIONS, [ev(4, "add_margin", 59_000, amount=100)])
    assert r.columns["status"] == ["position 'BTC-1' has no open event: type its open row first"]
    assert r.problems[0].reason == NO_OPEN


def test_events_after_the_close_name_its_date() -> None:
    r = replay(POSITIONS, [OPEN, ev(5, "close", 61_000), ev(6, "funding", amount=-1)])
    assert r.columns["status"][2] == "event 'funding' comes after the position's close (2026-01-05)"
    assert r.problems[2].reason == AFTER_CLOSE
    assert r.columns["qty_open"][2] == 0  # the closed state, unchanged


def test_an_unknown_position_is_named_before_its_date_or_event() -> None:
    r = replay(POSITIONS, [ev(None, "bogus", pid="NOPE")])
    assert r.problems[0].reason == UNKNOWN_POSITION
    assert r.columns["currency"][0] == ""


def test_a_close_dated_after_an_event_typed_below_it_closes_last() -> None:
    events = [OPEN, ev(8, "close", 62_000), ev(6, "partial_close", 61_000, 0.5)]
    r = replay(POSITIONS, events)
    # date order: open, partial close of half at 61,000 (+500), close of the rest (+1,000)
    assert r.columns["realized_pnl"] == [0, 1_500, 500]
    assert r.columns["status"] == ["", "", ""]
    assert r.columns["warnings"][2].endswith("dated 2026-01-08: applied in date order")


# ------------------------------------------------------------------ invariance
_STORY = [
    ("open", 60_000, 1, 6_000),
    ("funding", None, None, -3),
    ("add_margin", 58_000, None, 1_000),
    ("withdraw_margin", 61_000, None, 500),
    ("partial_close", 62_000, 0.25, None),
    ("close", 63_000, None, None),
]


@settings(max_examples=40, deadline=None)
@given(st.permutations(range(2 * len(_STORY))), st.integers(1, 20))
def test_row_order_never_changes_a_row_s_figures(order: list[int], gap: int) -> None:
    """Two positions, distinct dates: any row order gives each row the same figures (the
    out-of-order flag aside)."""
    positions = [*POSITIONS, {"position_id": "ETH-1", "side": "short", "mmr": 0.01}]
    rows = []
    for p, pid in enumerate(("BTC-1", "ETH-1")):
        for k, (kind, price, qty, amount) in enumerate(_STORY):
            rows.append({"date": datetime(2026, 1, 1) + timedelta(hours=k * gap + p),
                         "position_id": pid, "event": kind, "price": price, "qty": qty,
                         "amount": amount, "fee": 1.5})
    shuffled = [rows[i] for i in order]
    base, other = replay(positions, rows), replay(positions, shuffled)
    for j, i in enumerate(order):
        a, b = base.row(i), other.row(j)
        a.pop("warnings"), b.pop("warnings")
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == b[key] or (a[key] != a[key] and b[key] != b[key]), key
    flagged = [j for j in range(len(order)) if other.columns["warnings"][j]]
    # a row is flagged exactly when a row above it of its position is dated later
    want = [j for j in range(len(order)) if any(
        shuffled[k]["position_id"] == shuffled[j]["position_id"]
        and shuffled[k]["date"] > shuffled[j]["date"] for k in range(j))]
    assert flagged == want


def test_the_typed_columns_sit_left_of_the_computed_ones() -> None:
    from leverage import layout

    assert layout.JOURNAL_EVENTS.keys() == [*journal.INPUT_COLUMNS, *journal.OUTPUT_COLUMNS]


@settings(max_examples=50, deadline=None)
@given(st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(9999, 12, 31),
                    allow_imaginary=False).map(lambda d: d.replace(microsecond=0)))
def test_a_date_written_as_a_serial_reads_back_the_same(when: datetime) -> None:
    assert read_date(journal.date_serial(when)) == when
