"""`POST …/{ref}/async` (202 once durable) and `GET /api/v1/invocations/{id}`."""

from __future__ import annotations

import falcon

from store.records import KeyScope

from ...jobs.asyncq import AsyncInvocations
from ...limits import ASYNC_EVENT_LIMIT, EVENT_LIMIT, MiB
from ...schemas import InvocationView
from ...services.invoke import parse_event
from ..bodies import read_bytes, require_json


class AsyncInvokeResource:
    scopes = {"POST": (KeyScope.invoke,)}

    def __init__(self, service: AsyncInvocations) -> None:
        self.service = service

    def on_post(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        require_json(req)
        event = parse_event(
            read_bytes(
                req,
                ASYNC_EVENT_LIMIT,
                what="an async event",
                hint=f" (it is stored; POST …/invoke takes up to {EVENT_LIMIT // MiB} MB)",
            )
        )
        version = req.get_param_as_int("version", min_value=1)
        alias = req.get_param("alias")
        invocation = self.service.accept(ref, event, version=version, alias=alias)
        resp.status = 202
        resp.location = f"/api/v1/invocations/{invocation.id}"
        resp.set_header("X-Nimbus-Invocation-Id", invocation.id)
        resp.set_header("X-Nimbus-Version", str(invocation.version))
        resp.media = {"invocation_id": invocation.id, "status": invocation.status}


class InvocationResource:
    scopes = {"GET": (KeyScope.invoke, KeyScope.read)}  # the caller polls its own

    def __init__(self, service: AsyncInvocations) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, invocation_id: str) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = InvocationView.of(self.service.get(invocation_id)).model_dump_json().encode()
