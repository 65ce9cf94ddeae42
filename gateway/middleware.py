"""Cross-cutting concerns: request ids, access logs, API-key auth."""

from __future__ import annotations

import hmac
import logging
import time

import falcon

from store.records import sequential_id

access_log = logging.getLogger("nimbus.access")


class RequestId:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        incoming = req.get_header("X-Request-Id")
        if incoming and len(incoming) <= 128:
            req.context.request_id = incoming
        else:
            req.context.request_id = sequential_id("req_")
        req.context.started = time.perf_counter()

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        resp.set_header("X-Request-Id", req.context.request_id)


class AccessLog:
    def process_response(self, req, resp, resource, req_succeeded) -> None:
        elapsed = (time.perf_counter() - req.context.get("started", time.perf_counter())) * 1000
        access_log.info(
            "%s %s %s %.1fms rid=%s",
            req.method,
            req.relative_uri,
            resp.status_code,
            elapsed,
            req.context.get("request_id"),
        )


class ApiKeyAuth:
    """Every `/api/v1` route needs `Authorization: Bearer <key>`."""

    def __init__(self, api_key: str, prefix: str = "/api/v1") -> None:
        self._key = api_key.encode()
        self._prefix = prefix

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not (req.path == self._prefix or req.path.startswith(self._prefix + "/")):
            return
        header = req.get_header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._key):
            raise falcon.HTTPUnauthorized(
                title="unauthorized",
                description="missing or wrong API key (Authorization: Bearer <key>)",
                challenges=['Bearer realm="nimbus"'],
            )
