"""Liveness, readiness and the OpenAPI document."""

from __future__ import annotations

import falcon
import orjson

from store import Store, errors

from ..middleware import public


@public
class HealthResource:
    def on_get(self, req, resp) -> None:
        resp.media = {"status": "ok"}


@public
class ReadyResource:
    def __init__(self, store: Store) -> None:
        self.store = store

    def on_get(self, req, resp) -> None:
        try:
            self.store.ping()
        except errors.NimbusError as exc:
            resp.status = 503
            resp.media = {"status": "unavailable", "store": exc.message}
            return
        resp.media = {"status": "ready"}


@public
class OpenApiResource:
    def __init__(self, document: dict) -> None:
        self._data = orjson.dumps(document)

    def on_get(self, req, resp) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._data
