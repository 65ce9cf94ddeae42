"""`/api/v1/keys[/{key_id}]`: API keys with scopes (admin only)."""

from __future__ import annotations

import falcon

from store.records import KeyScope

from ...schemas import KeyCreate
from ...services.keys import KeyService
from ..bodies import read_model
from .functions import _send

_ADMIN = {method: (KeyScope.admin,) for method in ("GET", "POST", "DELETE")}


class KeysResource:
    scopes = _ADMIN

    def __init__(self, service: KeyService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _send(resp, self.service.list())

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        created = self.service.create(read_model(req, KeyCreate, 64 * 1024))
        resp.location = f"/api/v1/keys/{created.id}"
        _send(resp, created, status=201)


class KeyResource:
    scopes = _ADMIN

    def __init__(self, service: KeyService) -> None:
        self.service = service

    def on_delete(self, req: falcon.Request, resp: falcon.Response, key_id: str) -> None:
        self.service.revoke(key_id)
        resp.status = 204
