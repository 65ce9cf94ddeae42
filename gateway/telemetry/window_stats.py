"""Windowed stats as the API shows them: `GET …/functions/{id}/stats`, `GET /api/v1/stats?since=`.

Query parameters, all optional:
- `since`, `until`: RFC 3339, Unix seconds, or an age (`90s`, `15m`, `6h`, `7d`);
  default: the last hour, until now.
- `step`: seconds (`10`, `60`) or `10s`/`5m`/`1h`, a multiple of 10 s; default:
  about 60 points over the range (a whole number of minutes past an hour's range).
- `version` (function stats): only that version's invocations.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime

from store import errors
from store.functions import FunctionRepo

from ..schemas import (
    InvocationFunction,
    LatencyView,
    WindowPointView,
    WindowStatsView,
    WindowView,
)
from . import histogram
from .counts import rate
from .window_query import WindowQuery, WindowSeries
from .windows import MINUTE, SLOT_SEC, Window

DEFAULT_RANGE_SEC = 3600
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])\Z")
# A moment the view can show: from the Unix epoch to the last second of year 9999.
_LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def age_seconds(text: str) -> float | None:
    """`15m` → 900.0; None when the text is not an age."""
    m = _AGE.match(text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def parse_moment(field: str, text: str | None, now: float) -> float | None:
    """RFC 3339, Unix seconds, or an age before now (`15m`); from 1970 to 9999."""
    if text is None or text == "":
        return None
    if (age := age_seconds(text)) is not None:
        return _in_range(field, now - age)
    try:
        return _in_range(field, float(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise errors.Invalid.field(
            field, "use RFC 3339, Unix seconds, or an age such as 15m"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _in_range(field, moment.timestamp())


def _in_range(field: str, seconds: float) -> float:
    # NOTE: float() takes "nan", "inf" and "1e400", and a moment past year 9999 has no
    # datetime: each made a 500 further on, not a 422 here.
    if not 0 <= seconds <= _LATEST:  # false for NaN too
        raise errors.Invalid.field(field, "must be a moment from 1970 to 9999")
    return seconds


def parse_step(text: str | None, since: float, until: float) -> int:
    if text is None or text == "":
        return default_step(until - since)
    m = _AGE.match(text)
    try:
        seconds = float(m.group(1)) * _UNITS[m.group(2)] if m else float(text)
    except ValueError:
        raise errors.Invalid.field("step", "use seconds (60) or 10s, 5m, 1h") from None
    if not math.isfinite(seconds) or seconds != int(seconds):
        raise errors.Invalid.field("step", f"must be a positive multiple of {SLOT_SEC} seconds")
    return int(seconds)


def default_step(span: float) -> int:
    """About 60 points; whole minutes beyond an hour, so hour roll-ups can answer."""
    step = max(SLOT_SEC, math.ceil(span / 60 / SLOT_SEC) * SLOT_SEC)
    return math.ceil(step / MINUTE) * MINUTE if span > 3600 else step


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def window_view(w: Window) -> WindowView:
    n = w.invocations
    return WindowView(
        invocations=n,
        **w.by_status(),
        errors=w.errors,
        error_rate=rate(w.errors, n),
        error_codes=dict(sorted(w.error_codes.items())),
        duration_ms=LatencyView(
            min=_round(w.duration_min_ms),
            avg=w.avg_ms(n),
            max=_round(w.duration_max_ms),
            p50=_quantile(w, 0.50),
            p95=_quantile(w, 0.95),
            p99=_quantile(w, 0.99),
        ),
    )


def _quantile(w: Window, q: float) -> float | None:
    value = histogram.quantile(w.latency, q)
    if value is None:
        return None
    # the bucket's upper bound, but never beyond what was seen
    return _round(min(value, w.duration_max_ms) if w.duration_max_ms is not None else value)


def _moment(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class WindowStatsService:
    def __init__(self, repo: FunctionRepo, query: WindowQuery, staleness_sec: float) -> None:
        self.repo = repo
        self.query = query
        self.staleness_sec = staleness_sec

    def _range(self, since: str | None, until: str | None, step: str | None):
        now = time.time()
        end = parse_moment("until", until, now) or now
        start = parse_moment("since", since, now)
        start = end - DEFAULT_RANGE_SEC if start is None else start
        return start, end, parse_step(step, start, end)

    def function_stats(
        self,
        ref: str,
        *,
        since: str | None = None,
        until: str | None = None,
        step: str | None = None,
        version: int | None = None,
    ) -> WindowStatsView:
        fn, _ = self.repo.resolve(ref)
        start, end, seconds = self._range(since, until, step)
        series = self.query.series(start, end, seconds, function_id=fn.id, version=version)
        return self._view(series, InvocationFunction(id=fn.id, name=fn.name), version)

    def platform_stats(
        self, *, since: str | None = None, until: str | None = None, step: str | None = None
    ) -> WindowStatsView:
        start, end, seconds = self._range(since, until, step)
        series = self.query.series(start, end, seconds)
        names = {fn.id: fn.name for fn in self.repo.list_functions()}
        view = self._view(series, None, None, per_version=False)
        view.by_function = {
            names.get(fid, fid): window_view(w) for fid, w in sorted(series.by_function.items())
        }
        return view

    def _view(
        self,
        series: WindowSeries,
        function: InvocationFunction | None,
        version: int | None,
        *,
        per_version: bool = True,
    ) -> WindowStatsView:
        def versions(by: dict[int, Window]) -> dict[str, WindowView]:
            return {str(v): window_view(w) for v, w in sorted(by.items())} if per_version else {}

        return WindowStatsView(
            function=function,
            version=version,
            since=_moment(series.since),
            until=_moment(series.until),
            step_sec=series.step,
            resolution_sec=series.resolution,
            staleness_sec=self.staleness_sec,
            totals=window_view(series.total),
            by_version=versions(series.by_version),
            series=[
                WindowPointView(
                    start=_moment(p.start),
                    by_version=versions(p.by_version),
                    **window_view(p.total).model_dump(),
                )
                for p in series.points
            ],
        )
