"""One place that turns any failure into DESIGN.md's `{"error": ...}` body and status."""

from __future__ import annotations

import difflib
import logging
import re

import falcon
import orjson
from pydantic import BaseModel, ValidationError

from store import errors

from .. import schemas
from ..limits import ASYNC_EVENT_LIMIT, EVENT_LIMIT, KiB, MiB

log = logging.getLogger("nimbus.errors")

# The status of every error comes from its class alone.
_STATUS = {
    errors.BadRequest: 400,
    errors.UnsupportedMediaType: 415,
    errors.MemoryLimitExceeded: 500,
    errors.ResultTooLarge: 502,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Invalid: 422,
    errors.RecordUnreadable: 500,
    errors.TooLarge: 413,
    errors.LimitExceeded: 429,
    errors.Timeout: 504,
    errors.Unavailable: 503,
}


def status_of(exc: errors.NimbusError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def error_body(code: str, message: str, details=None) -> bytes:
    body = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return orjson.dumps({"error": body})


def _respond(resp: falcon.Response, status: int, body: bytes) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = body


# NOTE(security): anonymous callers (webhooks) get a fixed message per status: never
# a function's name, its build error or a host setting (DOCKER_HOST) in a message.
_ANONYMOUS_MESSAGES = {
    404: "no webhook at this address",
    409: "the function cannot serve requests now",
    # not "the request is too large": which limit? (neither is a secret)
    413: f"the request body is too large: at most {EVENT_LIMIT // MiB} MB, "
    f"{ASYNC_EVENT_LIMIT // KiB} KB with X-Nimbus-Invocation-Type: Event",
    429: "too many requests",
    500: "the function failed",
    502: "the function failed",
    503: "the service is unavailable",
    504: "the function timed out",
}


def handle_nimbus_error(req, resp, exc: errors.NimbusError, params) -> None:
    status = status_of(exc)
    if req.context.get("anonymous"):
        message = _ANONYMOUS_MESSAGES.get(status, "the request failed")
        _respond(resp, status, error_body(exc.code, message))
    else:
        _respond(resp, status, error_body(exc.code, exc.message, exc.details))
    invocation_id = getattr(exc, "invocation_id", None)
    if invocation_id:  # it ran (and failed) or was throttled: its record has this id
        resp.set_header("X-Nimbus-Invocation-Id", invocation_id)
    if isinstance(exc, errors.LimitExceeded | errors.Unavailable) or exc.code == "not_ready":
        resp.set_header("Retry-After", str(getattr(exc, "retry_after", 1)))


def _unknown_field(model_name: str, loc: tuple) -> str:
    """What to send instead of a field the body does not take (pydantic says only "Extra
    inputs are not permitted": `memroy_mb` was refused without naming `memory_mb`)."""
    model = getattr(schemas, model_name, None)
    if len(loc) != 1 or not (isinstance(model, type) and issubclass(model, BaseModel)):
        return "unknown field"
    known = sorted(f.alias or name for name, f in model.model_fields.items())
    close = difflib.get_close_matches(str(loc[0]), known, n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {close[0]}?"
    return f"unknown field; this body takes {', '.join(known)}"


def handle_validation_error(req, resp, exc: ValidationError, params) -> None:
    details = [
        {
            "field": ".".join(str(p) for p in e["loc"]) or "body",
            # pydantic prefixes a validator's own ValueError with its class name
            "message": _unknown_field(exc.title, e["loc"])
            if e["type"] == "extra_forbidden"
            else e["msg"].removeprefix("Value error, "),
        }
        for e in exc.errors(include_url=False)
    ]
    # The message says what is wrong, not only where: clients (the CLI, the MCP tools)
    # often show the message alone.
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    _respond(resp, 422, error_body("validation_error", message, details))


# Falcon's `get_param_as_int` failure: 'The "version" parameter is invalid. The value must
# be an integer.' (the name is kept only in the text).
_BAD_PARAM = re.compile(r'The "([^"]+)" parameter is invalid\. (.*)', re.S)


def handle_invalid_param(req, resp, exc: falcon.HTTPInvalidParam, params) -> None:
    """A query parameter of the wrong type is a 422 naming it, as every other bad field is
    (`?limit=ten` was already one; `?version=ten` was Falcon's 400)."""
    found = _BAD_PARAM.match(exc.description or "")
    if found is None:
        return handle_http_error(req, resp, exc, params)
    field, problem = found.group(1), found.group(2).rstrip(".")
    problem = problem[:1].lower() + problem[1:]
    _respond(resp, 422, error_body("validation_error", f"{field}: {problem}",
                                   [{"field": field, "message": problem}]))  # fmt: skip


def handle_http_error(req, resp, exc: falcon.HTTPError, params) -> None:
    code = {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        411: "length_required",
        413: "too_large",
        415: "unsupported_media_type",
    }.get(exc.status_code, "error")
    message = exc.description or exc.title or "error"
    if isinstance(exc, falcon.HTTPRouteNotFound):  # Falcon's says "404 Not Found"
        message = f"no route {req.method} {req.path} (GET /openapi.json lists every route)"
    elif exc.status_code == 405:  # Falcon's says "405 Method Not Allowed" and no more
        allowed = [m.strip() for m in (exc.headers or {}).get("Allow", "").split(",")]
        allowed = [m for m in allowed if m and m != "OPTIONS"]
        message = f"{req.method} is not allowed on {req.path}" + (
            f"; it takes {' or '.join(allowed)}" if allowed else ""
        )
    _respond(resp, exc.status_code, error_body(code, message))
    for name, value in (exc.headers or {}).items():
        resp.set_header(name, value)


def handle_unexpected(req, resp, exc: Exception, params) -> None:
    request_id = req.context.get("request_id", "")
    # the answer names the request id: the log line must too, for a user's report to find it
    log.exception("unhandled error on %s %s rid=%s", req.method, req.path, request_id)
    _respond(resp, 500, error_body("internal", f"internal error (request id {request_id})"))


def install(app: falcon.App) -> None:
    # Falcon picks the most specific handler for each exception.
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(falcon.HTTPInvalidParam, handle_invalid_param)
    app.add_error_handler(ValidationError, handle_validation_error)
    app.add_error_handler(errors.NimbusError, handle_nimbus_error)
