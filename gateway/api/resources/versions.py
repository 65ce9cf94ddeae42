"""`…/versions`, `…/versions/{v}`, `…/versions/{v}/rollback`, `…/history`: thin resources."""

from __future__ import annotations

import falcon

from store import errors

from ...schemas import RollbackBody
from ...services.targets import version_number
from ...services.versions import VersionService
from ..bodies import read_model

_BODY_LIMIT = 64 * 1024


def send(resp: falcon.Response, model, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = model.model_dump_json().encode()


def actor_of(req: falcon.Request) -> str:
    """Who made a change, for the history: the API key's id (never the secret)."""
    principal = req.context.get("principal")
    key_id = getattr(principal, "key_id", None)
    return f"key:{key_id}" if key_id else "admin key"


def path_version(text: str) -> int:
    """The `{version}` of a path: a positive number, else no such version."""
    number = version_number(text)
    if number is None:
        raise errors.NotFound(f"version {text!r} not found")
    return number


def page_params(req: falcon.Request) -> dict:
    return {
        "limit": req.get_param_as_int("limit", default=20),
        "offset": req.get_param_as_int("offset", default=0),
    }


class VersionsResource:
    def __init__(self, service: VersionService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        send(resp, self.service.list(ref, **page_params(req)))


class VersionResource:
    def __init__(self, service: VersionService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, ref: str, version: str) -> None:
        send(resp, self.service.get(ref, path_version(version)))


class RollbackResource:
    def __init__(self, service: VersionService, view) -> None:
        self.service = service
        self.view = view  # Function → FunctionView

    def on_post(self, req: falcon.Request, resp: falcon.Response, ref: str, version: str) -> None:
        number = path_version(version)
        body = read_model(req, RollbackBody, _BODY_LIMIT, optional=True)
        fn = self.service.rollback(ref, number, actor=actor_of(req), reason=body.reason or "")
        resp.set_header("X-Nimbus-Version", str(fn.active_version))
        send(resp, self.view(fn))


class HistoryResource:
    def __init__(self, service: VersionService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        send(resp, self.service.history_page(ref, **page_params(req)))
