"""Alert rules: create, list, read, update, enable/disable, delete, history.

What a rule means is `alert_conditions.py`; the evaluation and the webhook
deliveries are `jobs/alerts.py`'s. The webhook secret is stored sealed when
NIMBUS_ENV_KEYS is set; a generated one is shown once, in the create answer.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from store import errors
from store.alerts import AlertEvent, AlertMetric, AlertRepo, AlertRule, AlertState, Notify
from store.functions import FunctionRepo
from store.records import new_id, now

from ..schemas import (
    AlertCreate,
    AlertHistory,
    AlertList,
    AlertNotifyBody,
    AlertNotifyView,
    AlertTestResult,
    AlertUpdate,
    AlertView,
    InvocationFunction,
)
from .alert_conditions import OP_ALIASES, OPS, eval_every
from .alert_webhook import AlertWebhook, payload
from .outbound import check_url

ALERT_ID_PREFIX = "alr_"
_CONDITION = ("function_id", "metric", "op", "threshold", "window_sec", "for_sec")


def normal_op(op: str) -> str:
    op = op.strip().lower()
    op = OP_ALIASES.get(op, op)
    if op not in OPS:
        raise errors.Invalid.field("op", "one of >, >=, <, <= (or gt, gte, lt, lte)")
    return op


def _check_threshold(metric: AlertMetric, threshold: float) -> None:
    if metric == AlertMetric.error_rate and not 0 <= threshold <= 1:
        raise errors.Invalid.field("threshold", "an error rate is a fraction from 0 to 1")
    if threshold < 0:
        raise errors.Invalid.field("threshold", "the metrics are never negative")


def masked_url(url: str) -> str:
    """The URL with a password in it masked (a receiver's basic auth is a secret too)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:****@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class AlertService:
    def __init__(
        self,
        repo: AlertRepo,
        functions: FunctionRepo,
        webhook: AlertWebhook,
        *,
        allow_private: bool,
        max_alerts: int = 1000,
    ) -> None:
        self.repo = repo
        self.functions = functions
        self.webhook = webhook
        self.cipher = webhook.cipher
        self.allow_private = allow_private
        self.max_alerts = max_alerts

    # -- views -------------------------------------------------------------------------

    def view(self, rule: AlertRule, *, secret: str | None = None) -> AlertView:
        function = None
        if rule.function_id is not None:
            function = InvocationFunction(id=rule.function_id,
                                          name=rule.function_name or rule.function_id)  # fmt: skip
        until = rule.evaluated_until
        return AlertView(
            id=rule.id, name=rule.name, description=rule.description, function=function,
            metric=rule.metric, op=rule.op, threshold=rule.threshold,
            window_sec=rule.window_sec, for_sec=rule.for_sec, repeat_sec=rule.repeat_sec,
            notify=AlertNotifyView(webhook_url=masked_url(rule.notify.webhook_url), secret=secret),
            enabled=rule.enabled, state=rule.state, since=rule.since, value=rule.value,
            evaluated_until=None if until is None else datetime.fromtimestamp(until, UTC),
            evaluated_at=rule.evaluated_at, evaluate_every_sec=eval_every(rule.window_sec),
            pending_deliveries=len(rule.outbox),
            created_at=rule.created_at, updated_at=rule.updated_at,
        )  # fmt: skip

    # -- reads -------------------------------------------------------------------------

    def list(self, *, function: str | None = None, state: str | None = None) -> AlertList:
        rules = self.repo.list()
        if function:
            function_id, _ = self._function(function)  # 422 naming it if there is none
            rules = [r for r in rules if r.function_id == function_id]
        if state:
            rules = [r for r in rules if r.state == state]
        views = sorted((self.view(r) for r in rules), key=lambda v: v.created_at)
        return AlertList(alerts=views, total=len(views))

    def get(self, alert_id: str) -> AlertView:
        return self.view(self.repo.get(alert_id))

    def history(self, alert_id: str, *, limit: int, offset: int) -> AlertHistory:
        self.repo.get(alert_id)  # 404 for an unknown alert
        events, total = self.repo.history(alert_id, limit, offset)
        return AlertHistory(events=events, total=total, limit=limit, offset=offset)

    # -- writes ------------------------------------------------------------------------

    def create(self, body: AlertCreate, *, actor: str) -> AlertView:
        if len(self.repo.keys()) >= self.max_alerts:
            raise errors.Conflict(f"there are {self.max_alerts} alerts, the most there may be",
                                  code="quota_exceeded")  # fmt: skip
        metric = AlertMetric(body.metric)
        _check_threshold(metric, body.threshold)
        secret = body.notify.secret or "nas_" + secrets.token_urlsafe(32)
        notify = Notify(webhook_url=self._url(body.notify), secret=self._sealed(secret))
        function_id, function_name = self._function(body.function)
        rule = AlertRule(
            id=new_id(ALERT_ID_PREFIX), name=body.name, description=body.description or "",
            function_id=function_id, function_name=function_name, metric=metric,
            op=normal_op(body.op), threshold=body.threshold, window_sec=body.window_sec,
            for_sec=body.for_sec or 0, repeat_sec=body.repeat_sec, notify=notify,
            enabled=True if body.enabled is None else body.enabled,
        )  # fmt: skip
        shown = None if body.notify.secret else secret  # generated: shown this once
        self.repo.create(rule)
        self.repo.append(rule.id, AlertEvent(kind="change", state="created", by=actor))
        return self.view(rule, secret=shown)

    def update(self, alert_id: str, body: AlertUpdate, *, actor: str) -> AlertView:
        fields = body.model_dump(exclude_unset=True)
        op = normal_op(body.op) if body.op is not None else None
        url = self._url(body.notify) if body.notify is not None else None
        function = self._function(body.function) if "function" in fields else None

        def apply(rule: AlertRule) -> AlertRule:
            before = tuple(getattr(rule, f) for f in _CONDITION)
            for name in ("name", "threshold", "window_sec", "for_sec"):
                if fields.get(name) is not None:
                    setattr(rule, name, fields[name])
            if body.description is not None:
                rule.description = body.description
            if "repeat_sec" in fields:  # null turns repeats off
                rule.repeat_sec = body.repeat_sec
            if body.metric is not None:
                rule.metric = AlertMetric(body.metric)
            if op is not None:
                rule.op = op
            if function is not None:
                rule.function_id, rule.function_name = function
            if url is not None:  # a new URL without a secret keeps the secret
                secret = body.notify.secret
                rule.notify = Notify(webhook_url=url, secret=rule.notify.secret
                                     if secret is None else self._sealed(secret))  # fmt: skip
            _check_threshold(rule.metric, rule.threshold)
            if before != tuple(getattr(rule, f) for f in _CONDITION):
                _restart_pending(rule)
            if body.enabled is not None and body.enabled != rule.enabled:
                rule.enabled = body.enabled
                if not rule.enabled:  # silenced: no notification, evaluation starts afresh
                    rule.state, rule.since, rule.pending_since = AlertState.ok, now(), None
            rule.updated_at = now()
            return rule

        rule = self.repo.update(alert_id, apply)
        what = "disabled" if body.enabled is False else "enabled" if body.enabled else "updated"
        detail = "changed: " + ", ".join(sorted(fields))
        self.repo.append(rule.id, AlertEvent(kind="change", state=what, detail=detail, by=actor))
        return self.view(rule)

    def set_enabled(self, alert_id: str, enabled: bool, *, actor: str) -> AlertView:
        return self.update(alert_id, AlertUpdate(enabled=enabled), actor=actor)

    def delete(self, alert_id: str) -> None:
        self.repo.delete(alert_id)

    def test(self, alert_id: str, *, actor: str) -> AlertTestResult:
        """Send a signed `test` notification now (state unchanged), as the rule would."""
        rule = self.repo.get(alert_id)
        delivery_id = new_id("dlv_")
        sent = self.webhook.send(rule, delivery_id, "test", payload(rule, "test", delivery_id))
        result = AlertTestResult(delivery_id=delivery_id, delivered=sent.delivered,
                                 status_code=sent.status_code, error=sent.error,
                                 duration_ms=sent.duration_ms)  # fmt: skip
        self.repo.append(rule.id, AlertEvent(
            kind="delivery", state="test", delivery_id=delivery_id, attempt=1,
            outcome="delivered" if sent.delivered else "failed", status_code=sent.status_code,
            error=sent.error, duration_ms=sent.duration_ms, by=actor))  # fmt: skip
        return result

    # -- parts -------------------------------------------------------------------------

    def _url(self, body: AlertNotifyBody) -> str:
        return check_url(body.webhook_url.strip(), allow_private=self.allow_private)

    def _sealed(self, secret: str) -> str:
        return self.cipher.seal({"secret": secret})["secret"]

    def _function(self, ref: str | None) -> tuple[str | None, str | None]:
        if ref is None or ref == "":
            return None, None
        if ":" in ref:
            raise errors.Invalid.field(
                "function", "a function id or name: a rule watches all its versions"
            )
        try:
            fn, _ = self.functions.resolve(ref)
        except errors.NotFound:
            raise errors.Invalid.field("function", f"no function {ref!r}") from None
        return fn.id, fn.name


def _restart_pending(rule: AlertRule) -> None:
    """A changed condition counts `for_sec` afresh (a firing rule is re-decided next window)."""
    rule.pending_since = None
    if rule.state == AlertState.pending:
        rule.state, rule.since = AlertState.ok, now()
