"""Liveness, readiness and the OpenAPI document."""

from __future__ import annotations

import logging
from collections.abc import Callable

import falcon
import orjson

from store import Store, errors

from ...jobs.schedules import REFUSAL
from ..middleware import public

log = logging.getLogger("nimbus.ready")


@public
class HealthResource:
    def on_get(self, req, resp) -> None:
        resp.media = {"status": "ok"}


@public
class ReadyResource:
    """503 while the store does not answer. A server that refuses to run schedules (its
    store ignores create-only writes) still serves everything else: 200, "degraded"."""

    def __init__(self, store: Store, schedules_state: Callable[[], str] = lambda: "disabled"):
        self.store = store
        self.schedules_state = schedules_state

    def on_get(self, req, resp) -> None:
        try:
            self.store.ping()
        except errors.NimbusError as exc:
            # NOTE(security): /ready is public: the store's own error (its endpoint,
            # bucket or credentials problem) goes to the log, not to the caller.
            log.warning("not ready: the store does not answer: %s", exc.message)
            resp.status = 503
            resp.media = {"status": "unavailable", "store": "unreachable"}
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
