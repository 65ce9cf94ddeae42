"""`POST /api/v1/functions/{ref}/invoke`: the body is the event; the reply is the result."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager

import falcon
import orjson

from store import errors
from store.records import KeyScope

from ...limits import EVENT_LIMIT
from ...services.invoke import (
    Invocation,
    InvokeService,
    parse_caller_context,
    parse_event,
)
from ...services.targets import parse_target, version_number
from ...telemetry.logs import log_tail
from ...telemetry.recorder import InvocationOutcome
from ..bodies import read_bytes, require_json
from ..middleware import header


def wants_log_tail(req: falcon.Request) -> bool:
    """`X-Nimbus-Log-Type: Tail` from a caller whose key may invoke."""
    if (header(req, "HTTP_X_NIMBUS_LOG_TYPE") or "").lower() != "tail":
        return False
    principal = req.context.get("principal")
    return principal is not None and principal.may(KeyScope.invoke)


def set_log_tail(resp: falcon.Response, outcome: InvocationOutcome | None) -> None:
    if outcome is not None:
        resp.set_header("X-Nimbus-Log-Tail", base64.b64encode(log_tail(outcome)).decode())


@contextmanager
def log_tail_on_error(
    req: falcon.Request, resp: falcon.Response, *, facts: bool = False
) -> Iterator[None]:
    """A call stopped by the platform (timeout, memory) still answers with its tail, and
    (`facts`: the invoke route) with its version, duration and cold start, as a function
    error does."""
    try:
        yield
    except errors.NimbusError as exc:
        answer_stopped(req, resp, exc, facts=facts)
        raise


def answer_stopped(
    req: falcon.Request, resp: falcon.Response, exc: errors.NimbusError, *, facts: bool
) -> None:
    """What `log_tail_on_error` adds to the error response of a call stopped by the platform."""
    outcome = getattr(exc, "outcome", None)
    if wants_log_tail(req):
        set_log_tail(resp, outcome)
    if facts and outcome is not None and outcome.status in ("failed", "timed_out"):
        resp.set_header("X-Nimbus-Duration-Ms", f"{outcome.duration_ms:.3f}")
        resp.set_header("X-Nimbus-Cold-Start", "true" if outcome.cold_start else "false")
        resp.set_header("X-Nimbus-Version", str(outcome.version))


def version_override(req: falcon.Request) -> int | None:
    """`X-Nimbus-Version-Override: N` pins a version for testing (callers with a key only:
    the invoke routes always need one; webhooks ignore the header)."""
    raw = header(req, "HTTP_X_NIMBUS_VERSION_OVERRIDE")
    if raw is None:
        return None
    number = version_number(raw.strip())
    if number is None:
        raise errors.Invalid(
            "X-Nimbus-Version-Override must be a version number",
            details=[{"field": "X-Nimbus-Version-Override", "message": "not a version number"}],
        )
    return number


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
        event = parse_event(read_bytes(req, EVENT_LIMIT, what="an event"))
        context = parse_caller_context(header(req, "HTTP_X_NIMBUS_CONTEXT"))
        if req.query_string:
            version = req.get_param_as_int("version", min_value=1)
            target = parse_target(ref, version=version, alias=req.get_param("alias"))
        else:
            target = parse_target(ref)  # PERF: the usual call names no version or alias
        if target.alias is not None:
            resp.set_header("X-Nimbus-Alias", target.alias)
        try:
            inv = self.service.invoke(
                target, event, context,
                routing_key=header(req, "HTTP_X_NIMBUS_ROUTING_KEY"),
                override=version_override(req),
            )  # fmt: skip
        except errors.NimbusError as exc:
            # PERF: log_tail_on_error's work without a context manager on every call
            answer_stopped(req, resp, exc, facts=True)
            raise
        if wants_log_tail(req):
            set_log_tail(resp, inv.outcome)
        send_invocation(resp, inv)
