"""Liveness, readiness and the OpenAPI document."""

from __future__ import annotations

import logging
from collections.abc import Callable

import falcon
import orjson

from store import Store, check_reads, errors

from ...background import StepFailures
from ...jobs.schedules import REFUSAL
from ..middleware import public

log = logging.getLogger("nimbus.ready")


@public
class HealthResource:
    def on_get(self, req, resp) -> None:
        resp.media = {"status": "ok"}


@public
class ReadyResource:
    """503 while the store does not answer or cannot read an object back (`check_reads`:
    a restarted SeaweedFS answers seconds before it reads), or once it was found to ignore
    conditional writes (STORE_WITHOUT_CONDITIONAL_WRITES=refuse, the default). Told to degrade, a
    server on such a store runs no schedules and serves everything else: 200, "degraded"."""

    def __init__(
        self,
        store: Store,
        schedules_state: Callable[[], str] = lambda: "disabled",
        store_refused: Callable[[], bool] = lambda: False,
    ):
        self.store = store
        self.schedules_state = schedules_state
        self.store_refused = store_refused
        # once when the store stops answering and once when it answers again, not a line
        # per probe (a kubelet's, a load balancer's: several a minute per replica)
        self._outage = StepFailures("/ready", log)

    def on_get(self, req, resp) -> None:
        try:
            check_reads(self.store)
        except errors.NimbusError as exc:
            # NOTE(security): /ready is public: the store's own error (its endpoint,
            # bucket or credentials problem) goes to the log, not to the caller.
            if isinstance(exc, errors.Unavailable):
                self._outage.failed(exc)
            else:
                log.warning("not ready: the store does not answer: %s", exc.message)
            resp.status = 503
            resp.media = {"status": "unavailable", "store": "unreachable"}
            return
        self._outage.succeeded()
        if self.store_refused():
            resp.status = 503
            resp.media = {"status": "unavailable", "store": "no_conditional_writes"}
            return
        if self.schedules_state() == "refused":
            resp.media = {"status": "degraded", "schedules": REFUSAL}
            return
        resp.media = {"status": "ready"}


@public
class OpenApiResource:
    """Made on first request, and again when `revision()` changes (a runtime is registered)."""

    def __init__(self, document: Callable[[], dict], revision: Callable[[], object]) -> None:
        self._document = document
        self._revision = revision
        self._made: tuple[object, bytes] | None = None

    def on_get(self, req, resp) -> None:
        made, revision = self._made, self._revision()
        if made is None or made[0] != revision:
            made = self._made = (revision, orjson.dumps(self._document()))
        resp.content_type = falcon.MEDIA_JSON
        resp.data = made[1]
