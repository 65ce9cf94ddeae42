"""`--since` as users type it."""

from __future__ import annotations

from datetime import UTC, datetime

from cli import moments


def test_an_age_becomes_a_time_and_the_rest_passes_through():
    ten_minutes_ago = datetime.fromisoformat(moments.since("10m").replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - ten_minutes_ago).total_seconds() - 600) < 5
    assert moments.since("2026-12-05T09:00:00Z") == "2026-12-05T09:00:00Z"
    assert moments.since("1733389200") == "1733389200"
    assert moments.since("5x") == "5x"  # the API says what is wrong with it
    assert moments.since(None) is None


def test_an_age_python_cannot_count_passes_through_for_the_api_to_refuse():
    """'²m' passed isdigit() and crashed int(); 99999999999d overflowed timedelta: both
    ended the CLI with a traceback."""
    assert moments.since("²m") == "²m"
    assert moments.since("99999999999d") == "99999999999d"
