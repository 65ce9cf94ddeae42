"""`ANY /webhook/{key}[/{path}]`: anonymous callers reach a function by its secret URL."""

from __future__ import annotations

from urllib.parse import unquote

import falcon
import orjson

from store.records import Trigger

from ...jobs.asyncq import AsyncInvocations
from ...limits import EVENT_LIMIT
from ...services.invoke import InvokeService
from ...services.webhooks import (
    WebhookDirectory,
    WebhookRequest,
    lambda_event,
    scoped_cookie,
    shape_response,
)
from ..bodies import read_bytes
from ..middleware import public, user_content
from .invoke import log_tail_on_error, set_log_tail, wants_log_tail

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# Headers a function's shaped reply may not set: the server frames the reply itself, and
# NOTE(security): `Service-Worker-Allowed` would let a webhook's script register a service
# worker for the whole origin (scope "/"), the console's included, where it would see
# every console request with the admin's API key (browsers allow it on localhost and
# https). Without the header a webhook's worker is confined to /webhook/ (and its sandboxed
# page cannot register one at all: see middleware.SANDBOX). `Clear-Site-Data` acts on the
# origin whatever the sandbox: a webhook's visitor would lose the console's saved events
# (localStorage) and its sign-in.
_NOT_THE_FUNCTIONS = frozenset(
    {"content-length", "transfer-encoding", "connection", "service-worker-allowed",
     "clear-site-data"}
)  # fmt: skip


def _headers(req: falcon.Request) -> dict[str, str]:
    # WSGI already joins repeated headers with commas, as Lambda does.
    return {name.lower(): value for name, value in req.headers.items()}


def _raw_path(req: falcon.Request, key: str, path: str) -> str | None:
    """The path after the key as the caller sent it (`/a%2Fb`), as Lambda's `rawPath`
    is; Falcon routes on the decoded one. None where the server does not say."""
    raw_uri = req.env.get("RAW_URI") or req.env.get("REQUEST_URI")  # gunicorn's, uwsgi's
    if not raw_uri:
        return None
    _, found, rest = raw_uri.partition("?")[0].partition(f"/webhook/{key}")
    rest = rest or "/"
    return rest if found and unquote(rest) == path else None


@public
@user_content
class WebhookResource:
    def __init__(
        self, directory: WebhookDirectory, invoker: InvokeService, queue: AsyncInvocations
    ) -> None:
        self.directory = directory
        self.invoker = invoker
        self.queue = queue
        for method in METHODS:
            setattr(self, f"on_{method.lower()}", self._handle)

    def _handle(self, req: falcon.Request, resp: falcon.Response, key: str, path: str = "") -> None:
        req.context.anonymous = True  # errors carry fixed messages (api/errors.py)
        fn, alias = self.directory.find_target(key)
        headers = _headers(req)
        cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
        event = lambda_event(
            WebhookRequest(
                method=req.method,
                path="/" + path,
                query_string=req.query_string,
                headers=headers,
                body=read_bytes(req, EVENT_LIMIT),
                source_ip=req.remote_addr or "",
                cookies=cookies,
                raw_path=_raw_path(req, key, "/" + path),
            ),
            request_id=req.context.request_id,
            domain=req.host,
        )
        if (req.get_header("X-Nimbus-Invocation-Type") or "").lower() == "event":
            accepted = self.queue.accept(
                fn.id, orjson.dumps(event), alias=alias, trigger=Trigger.webhook
            )
            resp.status = 202
            resp.set_header("X-Nimbus-Invocation-Id", accepted.id)
            resp.media = {"invocation_id": accepted.id, "status": accepted.status}
            return
        # NOTE: an alias's public URL keeps a caller on one version by routing key, as
        # Cloudflare's version key does; the pin header needs an API key (not honored here)
        routing_key = req.get_header("X-Nimbus-Routing-Key") if alias else None
        with log_tail_on_error(req, resp):
            inv = self.invoker.invoke(
                fn.id, orjson.dumps(event), {}, alias=alias, trigger=Trigger.webhook,
                routing_key=routing_key,
            )  # fmt: skip
        if wants_log_tail(req):
            set_log_tail(resp, inv.outcome)
        resp.set_header("X-Nimbus-Invocation-Id", inv.id)
        if inv.result.error is not None:
            # NOTE: anonymous callers never see a stack or a message of the function's.
            resp.status = 502
            resp.content_type = falcon.MEDIA_JSON
            resp.data = orjson.dumps({"error": {
                "code": "function_error",
                "message": "the function failed; see its logs",
                "invocation_id": inv.id,
            }})  # fmt: skip
            return
        shaped = shape_response(inv.result.output, inv.result.content_type)
        resp.status = shaped.status
        for name, value in shaped.headers.items():
            if name in _NOT_THE_FUNCTIONS:
                continue
            if name == "set-cookie":
                resp.append_header("Set-Cookie", scoped_cookie(value, key))
                continue
            resp.set_header(name, value)
        for cookie in shaped.cookies:
            resp.append_header("Set-Cookie", scoped_cookie(cookie, key))
        resp.data = shaped.body
