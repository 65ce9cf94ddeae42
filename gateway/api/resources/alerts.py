"""`/api/v1/alerts[/{alert_id}[/enable|/disable|/test|/history]]`: thin resources.

Scopes: reads need `read`, every change `deploy` (the defaults). A deploy
key can thereby make the server POST to a URL it names; the address guard
(services/outbound.py) keeps that to public addresses unless the operator
allows private ones.
"""

from __future__ import annotations

import falcon

from store import errors

from ...schemas import AlertCreate, AlertUpdate
from ...services.alerts import AlertService
from ..bodies import read_model
from .versions import actor_of, send

_BODY_LIMIT = 64 * 1024


class AlertsResource:
    def __init__(self, service: AlertService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        state = req.get_param("state")
        if state is not None and state not in ("ok", "pending", "firing"):
            raise errors.Invalid(
                "state: one of ok, pending, firing",
                details=[{"field": "state", "message": "ok|pending|firing"}],
            )
        send(resp, self.service.list(function=req.get_param("function"), state=state))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        view = self.service.create(read_model(req, AlertCreate, _BODY_LIMIT), actor=actor_of(req))
        resp.location = f"{req.path}/{view.id}"
        send(resp, view, status=201)


class AlertResource:
    def __init__(self, service: AlertService) -> None:
        self.service = service

    def on_get(self, req, resp, alert_id: str) -> None:
        send(resp, self.service.get(alert_id))

    def on_put(self, req, resp, alert_id: str) -> None:
        body = read_model(req, AlertUpdate, _BODY_LIMIT)
        send(resp, self.service.update(alert_id, body, actor=actor_of(req)))

    on_patch = on_put

    def on_delete(self, req, resp, alert_id: str) -> None:
        self.service.delete(alert_id)
        resp.status = 204


class AlertSwitchResource:
    """`POST …/enable` or `…/disable` (disabling is silent: no resolved notification)."""

    def __init__(self, service: AlertService, *, enabled: bool) -> None:
        self.service = service
        self.enabled = enabled

    def on_post(self, req, resp, alert_id: str) -> None:
        send(resp, self.service.set_enabled(alert_id, self.enabled, actor=actor_of(req)))


class AlertTestResource:
    """`POST …/test`: a signed `test` notification now; 200 with what the receiver said."""

    def __init__(self, service: AlertService) -> None:
        self.service = service

    def on_post(self, req, resp, alert_id: str) -> None:
        send(resp, self.service.test(alert_id, actor=actor_of(req)))


class AlertHistoryResource:
    def __init__(self, service: AlertService) -> None:
        self.service = service

    def on_get(self, req, resp, alert_id: str) -> None:
        limit = _bounded(req, "limit", 50, 1, 200)
        offset = _bounded(req, "offset", 0, 0, 10**6)
        send(resp, self.service.history(alert_id, limit=limit, offset=offset))


def _bounded(req: falcon.Request, name: str, default: int, low: int, high: int) -> int:
    raw = req.get_param(name)
    if raw is None:
        return default
    # NOTE: isascii: isdigit() is true for '²', which int() refuses
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or not low <= int(raw) <= high:
        message = f"a whole number from {low} to {high}"
        raise errors.Invalid.field(name, message)
    return int(raw)
