"""`GET …/{ref}/logs` and `GET …/{ref}/invocations`: what a function's calls did, newest first."""

from __future__ import annotations

import falcon

from ...telemetry.invocations import InvocationLister
from ...telemetry.logs import LogReader


class LogsResource:
    def __init__(self, reader: LogReader) -> None:
        self.reader = reader

    def on_get(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        found = self.reader.entries(
            ref,
            since=req.get_param("since"),
            limit=req.get_param("limit"),
            invocation_id=req.get_param("invocation_id"),
        )
        resp.content_type = falcon.MEDIA_JSON
        resp.data = found.model_dump_json().encode()


class InvocationListResource:
    def __init__(self, lister: InvocationLister) -> None:
        self.lister = lister

    def on_get(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        found = self.lister.list(
            ref,
            limit=req.get_param("limit"),
            since=req.get_param("since"),
            status=req.get_param("status"),
            trigger=req.get_param("trigger"),
        )
        resp.content_type = falcon.MEDIA_JSON
        resp.data = found.model_dump_json().encode()
