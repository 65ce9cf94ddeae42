"""`POST /api/v1/functions/{ref}/invoke`: the body is the event; the reply is the result."""

from __future__ import annotations

import falcon
import orjson

from store.records import KeyScope

from ...limits import EVENT_LIMIT
from ...services.invoke import (
    Invocation,
    InvokeService,
    parse_caller_context,
    parse_event,
)
from ..bodies import read_bytes, require_json


def send_invocation(resp: falcon.Response, inv: Invocation) -> None:
    result = inv.result
    resp.set_header("X-Nimbus-Invocation-Id", inv.id)
    resp.set_header("X-Nimbus-Duration-Ms", f"{result.duration_ms:.3f}")
    resp.set_header("X-Nimbus-Cold-Start", "true" if result.cold_start else "false")
    resp.set_header("X-Nimbus-Version", str(inv.version))
    if result.error is not None:
        failure = result.error
        resp.status = 500
        resp.set_header("X-Nimbus-Function-Error", "true")
        resp.content_type = falcon.MEDIA_JSON
        # A program has no stack; the end of its stderr is what explains the failure.
        stack = failure.stack or _tail_lines(result.logs, 20)
        body = {
            "code": "function_error",
            "type": failure.type,
            "message": failure.message,
            "stack": stack,
        }
        if failure.exit_code is not None:
            body["exit_code"] = failure.exit_code
        resp.data = orjson.dumps({"error": body})
        return
    resp.content_type = result.content_type
    resp.data = result.output


def _tail_lines(data: bytes, count: int) -> list[str]:
    return data.decode(errors="replace").splitlines()[-count:]


class InvokeResource:
    scopes = {"POST": (KeyScope.invoke,)}

    def __init__(self, service: InvokeService) -> None:
        self.service = service

    def on_post(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        require_json(req)
        event = parse_event(read_bytes(req, EVENT_LIMIT))
        context = parse_caller_context(req.get_header("X-Nimbus-Context"))
        version = req.get_param_as_int("version", min_value=1)
        alias = req.get_param("alias")
        send_invocation(
            resp, self.service.invoke(ref, event, context, version=version, alias=alias)
        )
