"""What an alert rule means: its metric over a window, its condition, and its state machine.

Pure functions over the windowed stats (telemetry/windows.py), so the
evaluator (jobs/alerts.py) and the tests share one definition:

- a window is the rule's `window_sec` ending at a 10 s slot boundary, read
  once every writer has flushed it;
- `error_rate` and `p99_ms` have no value over a window without invocations
  (never breaching: "no data" resolves); the counts are 0 then;
- breaching for `for_sec` (window ends apart) moves ok → pending → firing;
  with `for_sec` 0 the first breaching window fires. A window that does not
  breach resolves a firing rule and drops a pending one silently;
- a firing rule with `repeat_sec` says `firing` again each time that long
  has passed (window ends apart) since it last said so.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from store.alerts import AlertMetric, AlertRule, AlertState

from ..telemetry import histogram
from ..telemetry.windows import SLOT_SEC, Window, floor_to

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
OP_ALIASES = {"gt": ">", "gte": ">=", "ge": ">=", "lt": "<", "lte": "<=", "le": "<="}
MAX_EVAL_EVERY_SEC = 60


def eval_every(window_sec: int) -> int:
    """Seconds between a rule's evaluations: about six per window, every 10 s to every minute.

    PERF(nimbus): each evaluation reads the window's stats objects; a one-hour window
    looked at every 10 s would read every writer's minute objects 360 times an hour.
    """
    return min(MAX_EVAL_EVERY_SEC, max(SLOT_SEC, floor_to(window_sec // 6, SLOT_SEC)))


def latest_window_end(rule: AlertRule, now: float, settle_sec: float) -> int:
    """The end of the newest window every worker has written by `now`."""
    return floor_to(now - settle_sec, eval_every(rule.window_sec))


def metric_value(window: Window, metric: AlertMetric) -> float | None:
    if metric == AlertMetric.error_rate:
        return window.errors / window.invocations if window.invocations else None
    if metric == AlertMetric.p99_ms:
        p99 = histogram.quantile(window.latency, 0.99)
        if p99 is None or window.duration_max_ms is None:
            return None
        return min(p99, window.duration_max_ms)  # a bucket's bound, never beyond what was seen
    if metric == AlertMetric.throttles:
        return float(window.throttled)
    if metric == AlertMetric.cold_starts:
        return float(window.cold_starts)
    return float(window.invocations)


def breaches(rule: AlertRule, value: float | None) -> bool:
    return value is not None and OPS[rule.op](value, rule.threshold)


@dataclass(frozen=True)
class Transition:
    previous: AlertState
    state: AlertState
    notify: Literal["firing", "resolved"] | None  # what the webhook is told, if anything


def advance(rule: AlertRule, value: float | None, window_end: float) -> Transition | None:
    """Apply one window's value to the rule's state (in place); the change, if any."""
    previous = rule.state
    rule.value = value
    rule.evaluated_until = window_end
    rule.evaluated_at = datetime.now(UTC)
    if breaches(rule, value):
        if rule.pending_since is None:
            rule.pending_since = window_end
        due = window_end - rule.pending_since >= rule.for_sec
        state = AlertState.firing if due or previous == AlertState.firing else AlertState.pending
    else:
        rule.pending_since = None
        state = AlertState.ok
    if state == previous:
        if state == AlertState.firing and _repeat_due(rule, window_end):
            rule.notified_until = window_end
            return Transition(previous, state, "firing")
        return None
    rule.state = state
    rule.since = datetime.fromtimestamp(window_end, UTC)
    if state == AlertState.firing:
        rule.notified_until = window_end
        notify = "firing"
    elif previous == AlertState.firing:
        notify = "resolved"
    else:
        notify = None
    return Transition(previous, state, notify)


def _repeat_due(rule: AlertRule, window_end: float) -> bool:
    last = rule.notified_until
    return rule.repeat_sec is not None and (last is None or window_end - last >= rule.repeat_sec)
