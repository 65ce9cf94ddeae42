"""Schedule expressions: when a schedule's ticks fall.

Three forms, all computed by a maintained library or plain arithmetic:

- cron, 5 fields (`minute hour day month weekday`) or 6 with seconds first
  (`second minute hour day month weekday`, as Quartz, Spring and node-cron
  write it), evaluated by `cronsim` in the schedule's IANA time zone. Across
  DST changes it follows Debian cron: a fixed-time job in a skipped hour runs
  right after the jump, and once (not twice) in a repeated hour; interval
  jobs (`*/30 * * * *`) run on every real occurrence.
- the `@yearly`-style names, short for their 5-field expressions.
- EventBridge's `cron(minute hour day month weekday year)`, so a rule ports
  unchanged: `?` is `*`, weekdays 1-7 are Sunday-Saturday (cron's 0-6), and the
  year must be `*`.
- EventBridge's `rate(N unit)`, extended down to seconds: ticks fall on the
  schedule's anchor (its creation, or its last expression change) plus whole
  periods, in absolute time, so time zones do not apply.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from store import errors

NAMED = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_RATE = re.compile(r"^rate\(\s*(\d+)\s+([a-z]+)\s*\)$")
_RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_MAX_RATE_SEC = 366 * 86400


def zone(name: str) -> ZoneInfo:
    """An IANA time zone by name, or 422 naming the `timezone` field."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        message = f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)"
        raise errors.Invalid.field("timezone", message) from None


@dataclass(frozen=True)
class Rate:
    period_sec: int
    anchor: datetime

    def next_after(self, after: datetime) -> datetime:
        periods = math.floor((after - self.anchor).total_seconds() / self.period_sec) + 1
        return self.anchor + timedelta(seconds=max(1, periods) * self.period_sec)

    def describe(self) -> str:
        for unit, seconds in reversed(_RATE_UNITS.items()):
            if self.period_sec % seconds == 0:
                count = self.period_sec // seconds
                return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
        raise AssertionError("a second divides every period")


@dataclass(frozen=True)
class Cron:
    fields: str  # upper case (cronsim knows MON, JAN); 6 fields: seconds first
    zone: ZoneInfo

    def next_after(self, after: datetime) -> datetime:
        local = after.astimezone(self.zone)
        return next(CronSim(self.fields, local)).astimezone(UTC)

    def describe(self) -> str:
        return CronSim(self.fields, datetime.now(self.zone)).explain()


Ticks = Rate | Cron


def parse(expression: str, timezone: str = "UTC", *, anchor: datetime | None = None) -> Ticks:
    """The ticks of `expression`, or 422 naming what is wrong with it."""
    text = " ".join(expression.split())
    tz = zone(timezone)  # checked for rates too, though they keep absolute time
    if text.lower().startswith("rate("):
        return _parse_rate(text.lower(), anchor or datetime.now(UTC))
    fields = _eventbridge(text) if text.lower().startswith("cron(") else NAMED.get(text.lower())
    if fields is None and text.startswith("@"):
        raise errors.Invalid.field(
            "expression", f"unknown name {text!r}; use one of {', '.join(sorted(NAMED))}"
        )
    if fields is None:
        parts = text.upper().split(" ")
        if len(parts) not in (5, 6):
            raise errors.Invalid.field(
                "expression",
                f"{expression!r} has {len(parts)} fields; cron takes 5 (minute hour day "
                "month weekday) or 6 (second first), or use @hourly-style names or rate(N unit)",
            )
        fields = " ".join(parts)
    try:
        cron = Cron(fields, tz)
        cron.next_after(datetime.now(UTC))  # an expression that never fires fails here
    except (CronSimError, StopIteration) as exc:
        reason = str(exc).lower() or "it never fires"
        message = f"{expression!r} is not a valid cron expression: {reason}"
        raise errors.Invalid.field("expression", message) from None
    return cron


def _eventbridge(text: str) -> str:
    """EventBridge's `cron(0 12 ? * MON-FRI *)` as the 5 fields cron reads."""
    parts = text.upper().removeprefix("CRON(").removesuffix(")").split()
    if not text.endswith(")") or len(parts) != 6:
        raise errors.Invalid.field(
            "expression",
            f"{text!r}: EventBridge's cron(…) takes 6 fields: minute hour day-of-month "
            "month day-of-week year",
        )
    minute, hour, day, month, weekday, year = ("*" if p == "?" else p for p in parts)
    if year != "*":
        raise errors.Invalid.field("expression", f"{text!r}: only * is supported in the year field")

    # EventBridge counts weekdays 1-7 from Sunday, cron 0-6: every number but a
    # step (`/2`) or an occurrence (`#3`) moves down by one.
    def shift(found: re.Match) -> str:
        number = int(found.group(0))
        if not 1 <= number <= 7:
            raise errors.Invalid.field(
                "expression",
                f"{text!r}: day-of-week in cron(…) is 1-7 (1 is Sunday) or SUN-SAT",
            )
        return str(number - 1)

    weekday = re.sub(r"(?<![/#\d])\d+", shift, weekday)
    return " ".join((minute, hour, day, month, weekday))


def _parse_rate(text: str, anchor: datetime) -> Rate:
    match = _RATE.match(text)
    unit = match.group(2).removesuffix("s") if match else None
    if match is None or unit not in _RATE_UNITS:
        raise errors.Invalid.field(
            "expression",
            f"{text!r} is not a rate; write rate(N unit) with unit second(s), minute(s), "
            "hour(s) or day(s)",
        )
    count = int(match.group(1))
    if not 1 <= count * _RATE_UNITS[unit] <= _MAX_RATE_SEC:
        raise errors.Invalid.field(
            "expression", "a rate's period must be from 1 second to 366 days"
        )
    return Rate(count * _RATE_UNITS[unit], anchor.replace(microsecond=0))
