"""`GET /api/v1/functions/{ref}/logs`: a function's invocation logs, newest first."""

from __future__ import annotations

import falcon

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
