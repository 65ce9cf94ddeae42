"""Alert rules, their state and outbox, and their bounded history.

    alerts/rules/<alr_id>.json               AlertRule (a `Leased` record: one worker
                                             evaluates each window and sends each delivery)
    alerts/history/<alr_id>/<age>-<r>.json   AlertEvent, newest first (store/history.py keys)

The rule record holds what a user set, the state the evaluator reached and
the deliveries still owed (`outbox`), so a state change and the notification
it owes are written together, under the lease, in one conditional write.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from . import errors
from ._base import Store
from .functions import FunctionRepo
from .history import newest_first_key
from .records import Leased, now, parse_record

RULES_PREFIX = "alerts/rules/"
HISTORY_PREFIX = "alerts/history/"
_ALERT_ID = re.compile(r"^alr_[a-z2-7]{16}\Z")


class AlertMetric(StrEnum):
    error_rate = "error_rate"  # (function errors + timeouts + memory kills) / invocations
    p99_ms = "p99_ms"
    throttles = "throttles"  # calls refused with 429 before running
    cold_starts = "cold_starts"
    invocations = "invocations"


class AlertState(StrEnum):
    ok = "ok"
    pending = "pending"  # breaching, for less than `for_sec`
    firing = "firing"


class Notify(BaseModel):
    webhook_url: str
    secret: str  # the HMAC key; sealed (gateway/services/env_crypto.py) when keys are set


class PendingDelivery(BaseModel):
    """A notification still owed: the exact body signed and sent, and when to try next."""

    id: str  # dlv_…, also sent as X-Nimbus-Delivery (receivers may dedupe on it)
    state: Literal["firing", "resolved"]
    body: str
    attempts: int = 0
    next_at: float  # Unix seconds


class AlertRule(Leased):
    id: str
    name: str
    description: str = ""
    function_id: str | None  # None: every function of the platform
    function_name: str | None = None  # names are immutable: kept for the views and payloads
    metric: AlertMetric
    op: Literal[">", ">=", "<", "<="]
    threshold: float
    window_sec: int
    for_sec: int = 0
    repeat_sec: int | None = None  # while firing, notify again this often (window ends apart)
    notify: Notify
    enabled: bool = True
    state: AlertState = AlertState.ok
    since: datetime = Field(default_factory=now)  # when `state` began
    value: float | None = None  # the metric over the last window evaluated
    pending_since: float | None = None  # the window end that first breached (Unix s)
    notified_until: float | None = None  # the window end of the last firing notification
    evaluated_until: float | None = None  # the end of the last window evaluated (Unix s)
    evaluated_at: datetime | None = None
    outbox: list[PendingDelivery] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class AlertEvent(BaseModel):
    """One line of an alert's history: a state change, a delivery attempt, a user's change."""

    at: datetime = Field(default_factory=now)
    kind: Literal["state", "delivery", "change"]
    state: str | None = None  # ok|pending|firing; a delivery's firing|resolved
    previous: str | None = None
    value: float | None = None
    threshold: float | None = None
    window_end: datetime | None = None
    delivery_id: str | None = None
    attempt: int | None = None
    outcome: str | None = None  # delivered | retrying | failed | dropped
    status_code: int | None = None
    error: str | None = None
    detail: str | None = None  # a change's fields
    duration_ms: float | None = None
    by: str | None = None  # the worker, or "key:<id>" / "admin key" for a change


def rule_key(alert_id: str) -> str:
    return f"{RULES_PREFIX}{alert_id}.json"


def history_prefix(alert_id: str) -> str:
    return f"{HISTORY_PREFIX}{alert_id}/"


class AlertRepo:
    def __init__(self, store: Store, *, history_max: int = 200) -> None:
        self.store = store
        self.history_max = history_max
        self._records = FunctionRepo(store)  # its generic JSON read/write/compare-and-swap

    def _key(self, alert_id: str) -> str:
        if not _ALERT_ID.match(alert_id):
            raise _not_found(alert_id)
        return rule_key(alert_id)

    def create(self, rule: AlertRule) -> None:
        self._records.write(rule_key(rule.id), rule, create=True)

    def get(self, alert_id: str) -> AlertRule:
        try:
            return self._records.read(self._key(alert_id), AlertRule)[0]
        except errors.NotFound:
            raise _not_found(alert_id) from None

    def update(self, alert_id: str, mutate: Callable[[AlertRule], AlertRule | None]) -> AlertRule:
        try:
            return self._records.update(self._key(alert_id), AlertRule, mutate)
        except errors.NotFound:
            raise _not_found(alert_id) from None

    def delete(self, alert_id: str) -> None:
        key = self._key(alert_id)
        if not self.store.exists(key):
            raise _not_found(alert_id)
        self.store.delete(key)
        self.store.delete_prefix(history_prefix(alert_id))

    def keys(self) -> list[str]:
        return list(self.store.list(RULES_PREFIX))

    def list(self) -> list[AlertRule]:
        out = []
        for key in self.keys():
            with contextlib.suppress(errors.NotFound):  # deleted while we listed
                out.append(self._records.read(key, AlertRule)[0])
        return out

    # -- history ---------------------------------------------------------------------

    def append(self, alert_id: str, event: AlertEvent) -> None:
        """Add an entry; past `history_max` (and a little slack) the oldest go."""
        prefix = history_prefix(alert_id)
        self.store.put(newest_first_key(prefix, event.at), event.model_dump_json().encode(),
                       create=True)  # fmt: skip
        keys = list(self.store.list(prefix))
        if len(keys) > self.history_max + max(5, self.history_max // 10):
            self.store.delete_keys(keys[self.history_max :])

    def history(self, alert_id: str, limit: int, offset: int) -> tuple[list[AlertEvent], int]:
        """Entries newest first (at most `history_max` kept), and how many there are."""
        keys = list(self.store.list(history_prefix(alert_id)))[: self.history_max]
        out = []
        for key in keys[offset : offset + limit]:
            with contextlib.suppress(errors.NotFound):
                out.append(parse_record(AlertEvent, self.store.get(key).data, key))
        return out, len(keys)


def _not_found(alert_id: str) -> errors.NotFound:
    return errors.NotFound(f"alert {alert_id!r} not found")
