"""Schedule expressions: cron in a time zone (across DST), names, seconds, rate(); 422s."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.services import cron
from store import errors


def _ticks(expression: str, timezone: str, start: str, count: int) -> list[str]:
    ticks = cron.parse(expression, timezone)
    at, out = datetime.fromisoformat(start), []
    for _ in range(count):
        at = ticks.next_after(at)
        out.append(at.isoformat())
    return out


def test_daily_job_in_berlin_across_spring_forward_runs_after_the_jump():
    # 2026-03-29 02:00 CET jumps to 03:00 CEST: 02:30 local does not exist that day.
    assert _ticks("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00+00:00", 3) == [
        "2026-03-28T01:30:00+00:00",  # 02:30 CET
        "2026-03-29T01:00:00+00:00",  # right after the jump: 03:00 CEST
        "2026-03-30T00:30:00+00:00",  # 02:30 CEST
    ]


def test_daily_job_in_berlin_across_fall_back_runs_once():
    # 2026-10-25 03:00 CEST falls back to 02:00 CET: 02:30 local happens twice.
    assert _ticks("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00+00:00", 2) == [
        "2026-10-25T00:30:00+00:00",  # the first 02:30 (CEST) only
        "2026-10-26T01:30:00+00:00",  # 02:30 CET
    ]


def test_interval_job_in_new_york_runs_on_every_real_half_hour_of_the_repeated_hour():
    # 2026-11-01 02:00 EDT falls back to 01:00 EST.
    assert _ticks("*/30 * * * *", "America/New_York", "2026-11-01T05:10:00+00:00", 4) == [
        "2026-11-01T05:30:00+00:00",  # 01:30 EDT
        "2026-11-01T06:00:00+00:00",  # 01:00 EST
        "2026-11-01T06:30:00+00:00",  # 01:30 EST
        "2026-11-01T07:00:00+00:00",  # 02:00 EST
    ]


def test_weekday_names_and_local_time_in_tokyo():
    assert _ticks("0 9 * * mon-fri", "Asia/Tokyo", "2026-12-04T01:00:00+00:00", 2) == [
        "2026-12-07T00:00:00+00:00",  # Monday 09:00 JST (Friday's 09:00 had passed)
        "2026-12-08T00:00:00+00:00",
    ]


def test_six_fields_put_seconds_first():
    assert _ticks("*/20 * * * * *", "UTC", "2026-01-01T00:00:05+00:00", 3) == [
        "2026-01-01T00:00:20+00:00",
        "2026-01-01T00:00:40+00:00",
        "2026-01-01T00:01:00+00:00",
    ]
    assert _ticks("30 0 * * * *", "UTC", "2026-01-01T00:00:00+00:00", 1) == [
        "2026-01-01T00:00:30+00:00"
    ]


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("@hourly", "2026-01-01T11:00:00+00:00"),
        ("@daily", "2026-01-02T00:00:00+00:00"),
        ("@midnight", "2026-01-02T00:00:00+00:00"),
        ("@weekly", "2026-01-04T00:00:00+00:00"),  # Sunday
        ("@monthly", "2026-02-01T00:00:00+00:00"),
        ("@yearly", "2027-01-01T00:00:00+00:00"),
        ("@ANNUALLY", "2027-01-01T00:00:00+00:00"),
    ],
)
def test_named_expressions(name, first):
    assert _ticks(name, "UTC", "2026-01-01T10:15:00+00:00", 1) == [first]


def test_rate_ticks_fall_on_the_anchor_plus_whole_periods_in_any_zone():
    anchor = datetime(2026, 1, 1, 10, 0, 7, 400000, tzinfo=UTC)  # sub-second part dropped
    every_5m = cron.parse("rate(5 minutes)", "Asia/Kolkata", anchor=anchor)
    at = datetime(2026, 1, 1, 10, 12, 0, tzinfo=UTC)
    assert every_5m.next_after(at) == datetime(2026, 1, 1, 10, 15, 7, tzinfo=UTC)
    assert every_5m.next_after(datetime(2026, 1, 1, 10, 15, 7, tzinfo=UTC)) == datetime(
        2026, 1, 1, 10, 20, 7, tzinfo=UTC
    )
    assert every_5m.next_after(anchor) == datetime(2026, 1, 1, 10, 5, 7, tzinfo=UTC)
    every_second = cron.parse("rate(1 second)", anchor=anchor)
    assert every_second.next_after(at) == datetime(2026, 1, 1, 10, 12, 1, tzinfo=UTC)
    assert every_second.describe() == "Every second"
    assert cron.parse("rate(2 seconds)").describe() == "Every 2 seconds"
    assert cron.parse("rate(1 day)").describe() == "Every day"
    assert cron.parse("rate(120 minutes)").describe() == "Every 2 hours"


def test_cron_summary_is_in_words():
    assert cron.parse("0 9 * * 1-5", "Europe/Berlin").describe() == (
        "At 09:00 on Monday through Friday"
    )


@pytest.mark.parametrize(
    ("rule", "fields"),
    [
        ("cron(0 12 * * ? *)", "0 12 * * *"),
        ("cron(0/15 8-17 ? * MON-FRI *)", "0/15 8-17 * * MON-FRI"),
        ("cron(0 12 ? * 2-6 *)", "0 12 * * 1-5"),  # EventBridge's 1 is Sunday
        ("cron(0 10 ? * 1,7 *)", "0 10 * * 0,6"),
        ("cron(0 10 ? * 6#3 *)", "0 10 * * 5#3"),  # the occurrence is not a weekday
        ("cron(0 18 ? * 6L *)", "0 18 * * 5L"),
        ("cron(15 10 L * ? *)", "15 10 L * *"),
    ],
)
def test_eventbridge_cron_rules_read_as_eventbridge_reads_them(rule, fields):
    assert cron.parse(rule, "UTC").fields == fields


@pytest.mark.parametrize(
    ("expression", "timezone", "field", "says"),
    [
        ("61 * * * *", "UTC", "expression", "bad minute"),
        ("0 25 * * *", "UTC", "expression", "bad hour"),
        ("0 0 30 2 *", "UTC", "expression", "bad day-of-month"),
        ("* * *", "UTC", "expression", "has 3 fields"),
        ("* * * * * * *", "UTC", "expression", "has 7 fields"),
        ("@fortnightly", "UTC", "expression", "unknown name"),
        ("rate(0 seconds)", "UTC", "expression", "from 1 second"),
        ("rate(367 days)", "UTC", "expression", "366 days"),
        ("rate(5 weeks)", "UTC", "expression", "second(s), minute(s)"),
        ("rate(five minutes)", "UTC", "expression", "is not a rate"),
        ("cron(0 12 * * ? 2027)", "UTC", "expression", "only * is supported in the year"),
        ("cron(0 12 * * ?)", "UTC", "expression", "takes 6 fields"),
        ("cron(0 12 ? * 0 *)", "UTC", "expression", "1-7 (1 is Sunday)"),
        ("cron(61 12 * * ? *)", "UTC", "expression", "bad minute"),
        ("@hourly", "Mars/Olympus", "timezone", "not an IANA time zone"),
        ("@hourly", "../../etc/passwd", "timezone", "not an IANA time zone"),
        ("rate(1 minute)", "Nowhere", "timezone", "not an IANA time zone"),
    ],
)
def test_bad_expressions_are_422_naming_the_problem(expression, timezone, field, says):
    with pytest.raises(errors.Invalid) as caught:
        cron.parse(expression, timezone)
    assert [d["field"] for d in caught.value.details] == [field]
    assert says in caught.value.message
