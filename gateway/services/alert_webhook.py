"""An alert's webhook: the payload, its signature, one signed POST and what came of it.

POST <webhook_url>
Content-Type: application/json
X-Nimbus-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the rule's secret>
X-Nimbus-Delivery: dlv_…          (the same on every retry of one notification)
X-Nimbus-Event: alert.firing | alert.resolved | alert.test

{"alert", "name", "state", "metric", "op", "value", "threshold", "function",
 "window_sec", "at", "delivery"}
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass

import httpx
import orjson

from store import errors
from store.alerts import AlertRule

from .env_crypto import EnvCipher
from .outbound import OutboundClient, Refused

log = logging.getLogger("nimbus.alerts")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(rule: AlertRule, state: str, delivery_id: str) -> bytes:
    """The body of a notification about `rule` as it stands (its value, since)."""
    return orjson.dumps({
        "alert": rule.id,
        "name": rule.name,
        "state": state,
        "metric": rule.metric.value,
        "op": rule.op,
        "value": rule.value,
        "threshold": rule.threshold,
        "function": rule.function_name,
        "window_sec": rule.window_sec,
        "at": rule.since.isoformat().replace("+00:00", "Z"),
        "delivery": delivery_id,
    })  # fmt: skip


@dataclass(frozen=True)
class Sent:
    status_code: int | None  # None: no answer
    error: str | None  # None: delivered (a 2xx)
    duration_ms: float | None

    @property
    def delivered(self) -> bool:
        return self.error is None


class AlertWebhook:
    def __init__(self, outbound: OutboundClient, cipher: EnvCipher) -> None:
        self.outbound = outbound
        self.cipher = cipher  # rules' secrets are sealed at rest when NIMBUS_ENV_KEYS is set

    def secret_of(self, rule: AlertRule) -> str:
        return self.cipher.open({"secret": rule.notify.secret})["secret"]

    def send(self, rule: AlertRule, delivery_id: str, state: str, body: bytes) -> Sent:
        """One signed POST; never raises for the receiver's or the network's failures."""
        try:
            secret = self.secret_of(rule)
        except errors.NimbusError as exc:  # sealed with a key this server lacks
            log.warning("alert %s: %s", rule.id, exc)
            return Sent(None, "the webhook secret cannot be opened on this server "
                              "(NIMBUS_ENV_KEYS)", None)  # fmt: skip
        headers = {"X-Nimbus-Signature": signature(secret, body),
                   "X-Nimbus-Delivery": delivery_id,
                   "X-Nimbus-Event": f"alert.{state}"}  # fmt: skip
        try:
            answer = self.outbound.post(rule.notify.webhook_url, body, headers)
        except Refused as exc:
            return Sent(None, str(exc), None)
        except httpx.HTTPError as exc:
            return Sent(None, f"{type(exc).__name__}: {exc}"[:300], None)
        status, duration = answer.status_code, round(answer.duration_ms, 1)
        error = None if 200 <= status < 300 else f"the receiver answered {status}"
        return Sent(status, error, duration)
