"""`/api/v1/functions…`: thin resources over `FunctionService`."""

from __future__ import annotations

import threading
from pathlib import Path

import falcon
import orjson

from store import errors

from ...limits import BINARY_LIMIT, SOURCE_LIMIT
from ...schemas import BulkDelete, BulkUpdate, FunctionCreate, FunctionUpdate
from ...services.functions import FunctionService
from ..bodies import is_multipart, multipart_upload, read_model
from .versions import actor_of

# base64 of the largest binary, plus room for the other fields
_JSON_LIMIT = BINARY_LIMIT * 4 // 3 + 1024 * 1024
# A body without `artifact_base64` holds source: JSON-escaped source can grow, but
# not past this, so larger bodies are refused before they are parsed.
_SOURCE_JSON_LIMIT = 4 * SOURCE_LIMIT + 1024 * 1024


def _send(resp: falcon.Response, model, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = model.model_dump_json().encode()


def _int_param(req: falcon.Request, name: str, default: int | None = None) -> int | None:
    raw = req.get_param(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.Invalid(
            f"{name} must be an integer", details=[{"field": name, "message": "not an integer"}]
        ) from None


class _Writes:
    """Create and update share the JSON/multipart body handling and `?wait=true`."""

    def __init__(
        self,
        service: FunctionService,
        spool: Path,
        build_wait_sec: float,
        waiters: threading.BoundedSemaphore | None = None,
    ) -> None:
        self.service = service
        self.spool = spool
        self.build_wait_sec = build_wait_sec
        # Requests held open by `?wait=true`, shared by create and update.
        self.waiters = waiters or threading.BoundedSemaphore(8)

    def _write(self, req, resp, model, action):
        """Run a write; `?wait=true` holds a request thread, so only a few at once."""
        if not req.get_param_as_bool("wait", default=False):
            return self._written(req, resp, *self._with_body(req, model, action))
        if not self.waiters.acquire(blocking=False):
            raise errors.LimitExceeded(
                "too many requests are waiting for builds (?wait=true); retry, or poll "
                "GET /api/v1/functions/{id}/build",
                retry_after=5,
            )
        try:
            return self._written(req, resp, *self._with_body(req, model, action))
        finally:
            self.waiters.release()

    def _with_body(self, req, model, action):
        if is_multipart(req):
            with multipart_upload(req, model, BINARY_LIMIT, self.spool) as (body, upload):
                return action(body, upload)
        body = read_model(
            req, model, _JSON_LIMIT, unless=(_SOURCE_JSON_LIMIT, b'"artifact_base64"')
        )
        return action(body, None)

    def _written(self, req, resp, fn, version: int | None):
        """Name the version a write made; with `?wait=true`, return once it is built."""
        if version is None:
            return fn
        resp.set_header("X-Nimbus-Version", str(version))
        if req.get_param_as_bool("wait", default=False):
            self.service.wait_for_build(fn.id, version, self.build_wait_sec)
            fn = self.service.get(fn.id)
        return fn


class FunctionsResource(_Writes):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        tags = [t for t in (req.get_param("tags") or "").split(",") if t]
        _send(
            resp,
            self.service.list(
                name=req.get_param("name"),
                tags=tags,
                runtime=req.get_param("runtime"),
                status=req.get_param("status"),
                limit=_int_param(req, "limit", 20),
                offset=_int_param(req, "offset", 0),
            ),
        )

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor = actor_of(req)
        fn = self._write(req, resp, FunctionCreate,
                         lambda b, u: self.service.create(b, u, actor=actor))  # fmt: skip
        resp.location = f"/api/v1/functions/{fn.id}"
        _send(resp, self.service.view(fn), status=201)


class FunctionResource(_Writes):
    def on_get(self, req, resp, ref: str) -> None:
        _send(resp, self.service.view(self.service.get(ref)))

    def on_put(self, req, resp, ref: str) -> None:
        actor = actor_of(req)
        fn = self._write(req, resp, FunctionUpdate,
                         lambda b, u: self.service.update(ref, b, u, actor=actor))  # fmt: skip
        _send(resp, self.service.view(fn))

    on_patch = on_put

    def on_delete(self, req, resp, ref: str) -> None:
        self.service.delete(ref)
        resp.status = 204


class FunctionCodeResource:
    def __init__(self, service: FunctionService) -> None:
        self.service = service

    def on_get(self, req, resp, ref: str) -> None:
        version, data = self.service.code(ref, _int_param(req, "version"))
        resp.set_header("X-Nimbus-Version", str(version.version))
        if version.source_kind == "files":
            resp.content_type = falcon.MEDIA_JSON
            resp.data = orjson.dumps(
                {"version": version.version, "runtime": version.runtime,
                 "handler": version.handler, "files": orjson.loads(data)}
            )  # fmt: skip
        else:
            resp.content_type = (
                "application/wasm" if version.runtime == "wasm" else ("application/octet-stream")
            )
            resp.data = data


class FunctionBuildResource:
    def __init__(self, service: FunctionService) -> None:
        self.service = service

    def on_get(self, req, resp, ref: str) -> None:
        _send(resp, self.service.build(ref, _int_param(req, "version")))


class BulkDeleteResource:
    def __init__(self, service: FunctionService) -> None:
        self.service = service

    def on_post(self, req, resp) -> None:
        _send(resp, self.service.bulk_delete(read_model(req, BulkDelete, 1024 * 1024).ids))


class BulkUpdateResource:
    def __init__(self, service: FunctionService) -> None:
        self.service = service

    def on_post(self, req, resp) -> None:
        _send(resp, self.service.bulk_update(read_model(req, BulkUpdate, 1024 * 1024)))


class WebhookRotateResource:
    def __init__(self, service: FunctionService) -> None:
        self.service = service

    def on_post(self, req, resp, ref: str) -> None:
        _send(resp, self.service.view(self.service.rotate_webhook(ref)))
