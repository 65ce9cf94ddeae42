"""Alert rules evaluated from the windowed stats, and their webhooks delivered.

Every worker looks every ALERT_SCAN_SEC (`PeriodicJobs`); a rule is due when
its next window has ended and every worker has had time to write it
(`settle_sec`: one flush interval plus a margin for the write and clock
skew), or when a delivery it owes is due. A due rule is claimed with the
lease primitive, so exactly one worker of any replica evaluates each window:

1. the rule's window ending at the newest due boundary is read
   (`WindowQuery`, this worker's pending outcomes flushed first) and the
   state advanced (`alert_conditions.advance`);
2. a firing or resolved change adds a delivery to the rule's outbox, and
   the state and outbox are written together (`Leases.renew`) before any
   POST — a worker that dies later leaves the delivery owed, and the next
   claim (after the lease runs out) sends it;
3. due deliveries are POSTed, signed `X-Nimbus-Signature: sha256=<HMAC>`;
   a failure is retried with exponential backoff up to `max_attempts`;
4. the outcome is written with `Leases.finish`.

Deliveries are at least once (a worker that dies between a POST and step 4
leaves it to be sent again, with the same `X-Nimbus-Delivery` id and body).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from store import errors
from store.alerts import AlertEvent, AlertRepo, AlertRule, PendingDelivery
from store.leases import Claim, LeaseLost, Leases
from store.records import new_id

from ..services.alert_conditions import (
    Transition,
    advance,
    eval_every,
    latest_window_end,
    metric_value,
)
from ..services.alert_webhook import AlertWebhook, payload
from ..telemetry.window_query import WindowQuery

log = logging.getLogger("nimbus.alerts")
LEASE_SEC = 60.0
RECHECK_SEC = 10.0  # the longest a worker goes without re-reading a rule or the rule list


@dataclass
class _Attempt:
    delivery_id: str
    delivered: bool
    next_at: float | None  # None: no more attempts


class AlertEvaluator:
    def __init__(
        self,
        repo: AlertRepo,
        leases: Leases,
        query: WindowQuery,
        webhook: AlertWebhook,
        *,
        settle_sec: float,
        max_attempts: int = 6,
        retry_base_sec: float = 2.0,
        max_outbox: int = 10,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.repo = repo
        self.leases = leases
        self.query = query
        self.webhook = webhook
        self.settle_sec = settle_sec
        self.max_attempts = max_attempts
        self.retry_base_sec = retry_base_sec
        self.max_outbox = max_outbox
        self.clock = clock  # wall-clock Unix seconds, as the leases' (tests move it)
        self.on_event = on_event  # (kind, state or outcome): the Prometheus counters
        # PERF(nimbus): rule key → when it is next worth reading, so a rule costs one
        # read per evaluation, not one per scan; and the rule list, listed again every
        # RECHECK_SEC (a LIST per scan per worker would be most of the store's requests).
        self._skip_until: dict[str, float] = {}
        self._keys: list[str] = []
        self._keys_listed_at = -math.inf

    # -- when ------------------------------------------------------------------------

    def next_due(self, rule: AlertRule) -> float:
        """When the rule next needs a worker: its next window settled, or a delivery due."""
        times = [d.next_at for d in rule.outbox]
        if rule.enabled:
            step = eval_every(rule.window_sec)
            last = rule.evaluated_until
            if last is None:
                times.append(0.0)  # never evaluated: the newest window is due now
            else:
                times.append(last + step + self.settle_sec)
        return min(times, default=math.inf)

    def scan(self) -> int:
        """Evaluate (and deliver for) every due rule this worker can claim; how many."""
        done = 0
        if self.clock() - self._keys_listed_at >= RECHECK_SEC:
            self._keys, self._keys_listed_at = self.repo.keys(), self.clock()
            for gone in set(self._skip_until) - set(self._keys):
                del self._skip_until[gone]
        for key in self._keys:
            wall = self.clock()
            if self._skip_until.get(key, 0.0) > wall:
                continue
            try:
                claim = self.leases.claim(
                    key, AlertRule, duration_sec=LEASE_SEC,
                    ready=lambda rule, k=key: self._ready(k, rule),
                )  # fmt: skip
            except errors.NotFound:
                continue
            except errors.NimbusError as exc:
                log.warning("alert %s not claimed: %s", key, exc)
                continue
            if claim is None:
                continue
            try:
                self._work(claim)
                done += 1
            except LeaseLost:
                log.info("alert %s changed while evaluated; it is looked at again", key)
            except errors.NimbusError as exc:  # the store hiccuped: release, try next scan
                log.warning("alert %s not evaluated: %s", key, exc)
                with contextlib.suppress(LeaseLost, errors.NimbusError):
                    self.leases.finish(claim, lambda rule: None)
            finally:
                self._skip_until.pop(key, None)
        return done

    def _ready(self, key: str, rule: AlertRule) -> bool:
        wall = self.clock()
        due = self.next_due(rule)
        if due > wall:
            self._skip_until[key] = min(due, wall + RECHECK_SEC)
            return False
        if (rule.lease_until or 0) > wall:
            # Another worker has it, and will likely take its next windows too: look
            # again once per evaluation, to take over within one if that worker dies.
            self._skip_until[key] = min(rule.lease_until, wall + eval_every(rule.window_sec))
        return True

    # -- one claimed rule --------------------------------------------------------------

    def _work(self, claim: Claim[AlertRule]) -> None:
        rule = claim.record
        wall = self.clock()
        if rule.enabled:
            end = latest_window_end(rule, wall, self.settle_sec)
            if rule.evaluated_until is None or end > rule.evaluated_until:
                self._evaluate(claim, end)
        due = [d for d in claim.record.outbox if d.next_at <= self.clock()]
        attempts: list[_Attempt] = []
        if due:
            with self.leases.renewing(claim):
                attempts = [self._deliver(claim.record, d) for d in due]
        self.leases.finish(claim, lambda r: _apply(r, attempts))

    def _evaluate(self, claim: Claim[AlertRule], end: int) -> None:
        rule = claim.record
        # NOTE: totals, not series(step=window): a series aligns its start down to a
        # multiple of the step, which would stretch a 30 s window ending at :10 to 40 s.
        window = self.query.totals(rule.function_id, end - rule.window_sec, end)
        value = metric_value(window, rule.metric)
        change = advance(rule, value, end)
        if change is None:
            return
        dropped = []
        if change.notify is not None:
            rule.outbox.append(self._delivery(rule, change))
            while len(rule.outbox) > self.max_outbox:
                dropped.append(rule.outbox.pop(0))
        self.leases.renew(claim)  # the state and its delivery, durable before any POST
        if change.state != change.previous:  # (a repeat is only a delivery)
            at = datetime.fromtimestamp(end, UTC)
            self._history(rule.id, AlertEvent(
                kind="state", state=change.state, previous=change.previous, value=value,
                threshold=rule.threshold, window_end=at, by=self.leases.owner))  # fmt: skip
        for old in dropped:
            self._history(rule.id, AlertEvent(kind="delivery", state=old.state,
                                              delivery_id=old.id, outcome="dropped",
                                              error="too many deliveries owed",
                                              by=self.leases.owner))  # fmt: skip

    def _delivery(self, rule: AlertRule, change: Transition) -> PendingDelivery:
        delivery_id = new_id("dlv_")
        body = payload(rule, change.notify, delivery_id)
        return PendingDelivery(id=delivery_id, state=change.notify, body=body.decode(),
                               next_at=self.clock())  # fmt: skip

    def _deliver(self, rule: AlertRule, pending: PendingDelivery) -> _Attempt:
        attempt = pending.attempts + 1
        sent = self.webhook.send(rule, pending.id, pending.state, pending.body.encode())
        status, error, duration = sent.status_code, sent.error, sent.duration_ms
        delivered = error is None
        next_at = None
        if not delivered and attempt < self.max_attempts:
            backoff = self.retry_base_sec * 2 ** (attempt - 1) * (1 + random.random() / 2)
            next_at = self.clock() + backoff
        outcome = "delivered" if delivered else "retrying" if next_at else "failed"
        self._history(rule.id, AlertEvent(
            kind="delivery", state=pending.state, delivery_id=pending.id, attempt=attempt,
            outcome=outcome, status_code=status, error=error, duration_ms=duration,
            by=self.leases.owner))  # fmt: skip
        if not delivered:
            log.info("alert %s delivery %s attempt %d: %s", rule.id, pending.id, attempt, error)
        return _Attempt(pending.id, delivered, next_at)

    def _history(self, alert_id: str, event: AlertEvent) -> None:
        if self.on_event is not None:
            self.on_event(event.kind, event.outcome or event.state or "")
        with contextlib.suppress(errors.NimbusError):  # history is best effort; state is not
            self.repo.append(alert_id, event)


def _apply(rule: AlertRule, attempts: list[_Attempt]) -> None:
    outcome = {a.delivery_id: a for a in attempts}
    kept = []
    for pending in rule.outbox:
        attempt = outcome.get(pending.id)
        if attempt is None:
            kept.append(pending)
        elif not attempt.delivered and attempt.next_at is not None:
            pending.attempts += 1
            pending.next_at = attempt.next_at
            kept.append(pending)
    rule.outbox = kept
