"""`…/aliases` and `…/aliases/{name}`: thin resources over `AliasService`."""

from __future__ import annotations

import falcon

from ...schemas import AliasBody, CanaryBody
from ...services.aliases import AliasService
from ...services.canary import CanaryService
from ..bodies import read_model
from .versions import actor_of, send

_BODY_LIMIT = 64 * 1024


class AliasesResource:
    def __init__(self, service: AliasService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        send(resp, self.service.list(ref))

    def on_post(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        body = read_model(req, AliasBody, _BODY_LIMIT)
        view = self.service.create(ref, body, actor=actor_of(req))
        resp.location = f"/api/v1/functions/{ref}/aliases/{view.name}"
        send(resp, view, status=201)


class AliasResource:
    def __init__(self, service: AliasService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, ref: str, name: str) -> None:
        send(resp, self.service.get(ref, name))

    def on_put(self, req: falcon.Request, resp: falcon.Response, ref: str, name: str) -> None:
        body = read_model(req, AliasBody, _BODY_LIMIT)
        send(resp, self.service.update(ref, name, body, actor=actor_of(req)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, ref: str, name: str) -> None:
        self.service.delete(ref, name, actor=actor_of(req))
        resp.status = 204


class CanaryResource:
    def __init__(self, service: CanaryService) -> None:
        self.service = service

    def on_post(self, req: falcon.Request, resp: falcon.Response, ref: str, name: str) -> None:
        body = read_model(req, CanaryBody, _BODY_LIMIT)
        send(resp, self.service.start(ref, name, body, actor=actor_of(req)), status=201)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, ref: str, name: str) -> None:
        send(resp, self.service.abort(ref, name, actor=actor_of(req)))
