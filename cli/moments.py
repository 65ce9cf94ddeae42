"""Times as users type them: an age (`10m`, `2h`, `1d`) or what the API takes as it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since(value: str | None) -> str | None:
    """`10m` → the RFC 3339 time ten minutes ago; RFC 3339 or Unix seconds pass through."""
    if not value:
        return value
    count = value[:-1]
    # NOTE: isascii: isdigit() is true for '²', which int() refuses
    if value[-1] in UNITS and count.isascii() and count.isdigit():
        try:
            moment = datetime.now(UTC) - timedelta(seconds=int(count) * UNITS[value[-1]])
        except OverflowError:
            return value  # before year 1: the API says what is wrong with it
        return moment.isoformat().replace("+00:00", "Z")
    return value


def seconds(value: str) -> float:
    """`90`, `90s`, `5m`, `1h` → seconds; ValueError otherwise."""
    unit = UNITS.get(value[-1:], 0)
    number = float(value[:-1] if unit else value)
    if number < 0:
        raise ValueError(f"{value!r} is negative")
    return number * (unit or 1)
