"""Webhook URLs: AWS Lambda function-URL events in (payload format 2.0), shaped responses out.

A function's webhook key (≥ 128 random bits) is indexed at
`webhooks/<key>.json`; the function record stays the authority, so a rotated
or disabled key stops working even where an index entry lingers.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import orjson

from store import errors
from store.functions import FunctionRepo
from store.records import Function

from .deployments import DeploymentCache

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
               "application/x-www-form-urlencoded", "application/graphql")  # fmt: skip


@dataclass
class WebhookRequest:
    method: str
    path: str  # the part after /webhook/<key>, always starting with "/" (decoded)
    query_string: str
    headers: dict[str, str]  # lower-case names, repeated values comma-joined
    body: bytes
    source_ip: str
    cookies: list[str] = field(default_factory=list)
    raw_path: str | None = None  # the same as sent, percent-encoded (`path` if unknown)


def lambda_event(req: WebhookRequest, request_id: str, domain: str) -> dict:
    content_type = req.headers.get("content-type", "")
    is_text = not req.body or content_type.startswith(_TEXT_TYPES)
    if is_text:
        try:
            body = req.body.decode()
        except UnicodeDecodeError:
            is_text = False
    if not is_text:
        body = base64.b64encode(req.body).decode()
    params: dict[str, str] = {}
    for name, value in parse_qsl(req.query_string, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    stamp = datetime.now(UTC)
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.raw_path or req.path,
        "rawQueryString": req.query_string,
        "headers": req.headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "nimbus",
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": req.method,
                "path": req.path,
                "protocol": "HTTP/1.1",
                "sourceIp": req.source_ip,
                "userAgent": req.headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": stamp.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(time.time() * 1000),
        },
        "body": body,
        "isBase64Encoded": not is_text,
    }
    if params:
        event["queryStringParameters"] = params
    if req.cookies:
        event["cookies"] = req.cookies
    return event


@dataclass
class ShapedResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str] = field(default_factory=list)


def shape_response(output: bytes, content_type: str) -> ShapedResponse:
    """Lambda's rules: a `{statusCode, …}` object shapes the reply; anything else is JSON.
    A shape that cannot be sent as HTTP is a 502 `invalid_response`, as Lambda's is."""
    if content_type != "application/json":
        return ShapedResponse(200, {"content-type": content_type}, output)
    result = orjson.loads(output)
    if not (isinstance(result, dict) and _status(result.get("statusCode")) is not None):
        return ShapedResponse(200, {"content-type": "application/json"}, output)
    try:
        return _shaped(result)
    except _Unsendable as exc:
        message = f"the function's response cannot be sent: {exc}"
        body = orjson.dumps({"error": {"code": "invalid_response", "message": message}})
        return ShapedResponse(502, {"content-type": "application/json"}, body)


def scoped_cookie(cookie: str, key: str) -> str:
    """`cookie` (a Set-Cookie value) kept to the webhook of `key`: its Path moved under
    `/webhook/<key>/` and any Domain dropped.

    NOTE(security): every function's webhook shares one origin (the console's), so a
    cookie as the function wrote it (`Path=/`, the usual) would be sent to every other
    function's webhook, which could also overwrite it. A function sees its paths without
    the prefix (`/api`), so its `Path=/api` means `/webhook/<key>/api`; with no Path the
    browser's default for `/webhook/<key>` would be `/webhook`, every webhook again. The
    trailing slash keeps key `abc` from matching key `abcd`.
    """
    name_value, *attributes = cookie.split(";")
    path = "/"
    kept = []
    for attribute in attributes:
        name, _, value = attribute.strip().partition("=")
        if name.lower() == "path":
            path = value.strip() if value.strip().startswith("/") else "/"
        elif name.lower() != "domain":
            kept.append(attribute.strip())
    scoped = f"/webhook/{key}/" + path.lstrip("/")
    return "; ".join([name_value.strip(), *kept, f"Path={scoped}"])


class _Unsendable(ValueError):
    pass


# NOTE(security): the function's headers and cookies go out as they are, so each must be
# one line of latin-1 (WSGI's rule) and each name an HTTP token: a line break would be
# refused by the server (a 500, or a reply cut off), or split the reply where it is not.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+\Z")


def _line(value: object, what: str) -> str:
    # A JSON true is `true` in a header, as JavaScript writes it (str() says "True").
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if any(ord(c) > 255 for c in text):
        raise _Unsendable(f"{what} is not latin-1 text")
    if any((c < " " and c != "\t") or c == "\x7f" for c in text):
        raise _Unsendable(f"{what} holds a control character")
    return text


def _status(value: object) -> int | None:
    """A reply's statusCode: a number, or digits in a string (`'200'`, as AWS's own
    Node.js blueprints write it and API Gateway accepts)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 3:
        return int(value)
    return None


def _shaped(result: dict) -> ShapedResponse:
    given = result.get("headers") or {}
    if not isinstance(given, dict):
        raise _Unsendable("headers is not an object")
    headers = {}
    for name, value in given.items():
        if not _TOKEN.match(name.lower()):
            raise _Unsendable(f"{name!r} is not a header name")
        headers[name.lower()] = _line(value, f"header {name.lower()}")
    body = result.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        try:
            data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        except ValueError:  # binascii.Error
            raise _Unsendable("body is not base64") from None
    else:
        try:
            data = orjson.dumps(body)
        except orjson.JSONEncodeError:  # read to 1,024 levels, written to 254 at most
            raise _Unsendable("body nests too deep") from None
        headers.setdefault("content-type", "application/json")
    status = _status(result["statusCode"])
    if not 100 <= status <= 599:
        status = 502
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        raise _Unsendable("cookies is not a list")
    return ShapedResponse(status, headers, data, [_line(c, "a cookie") for c in cookies])


_UNKNOWN_MAX = 10_000


class WebhookDirectory:
    """Finds the function behind a webhook key, through the per-worker record cache."""

    def __init__(
        self, repo: FunctionRepo, cache: DeploymentCache, *, unknown_ttl_sec: float = 1.0
    ) -> None:
        self.repo = repo
        self.cache = cache
        self._ids: dict[str, str] = {}  # key → function id; the record has the final say
        # Keys the store does not know, until when: a flood of one wrong key costs
        # one store read per second per worker (the index's stated staleness).
        self._unknown: dict[str, float] = {}
        self.unknown_ttl_sec = unknown_ttl_sec

    def find(self, key: str) -> Function:
        return self.find_target(key)[0]

    def find_target(self, key: str) -> tuple[Function, str | None]:
        """The function behind a webhook key, and the alias whose own URL it is (or None)."""
        function_id = self._ids.get(key) or self._lookup(key)
        try:
            fn = self.cache.function(function_id)
            owner = _owner(fn, key)
            if owner is None:  # a key just rotated in: the cached record is older
                fn = self.cache.function(function_id, fresh=True)
                owner = _owner(fn, key)
        except errors.NotFound:
            self._ids.pop(key, None)
            raise errors.NotFound("no webhook at this address") from None
        if owner is None:
            self._ids.pop(key, None)
            raise errors.NotFound("no webhook at this address")
        self._ids[key] = function_id
        return fn, owner or None

    def _lookup(self, key: str) -> str:
        wall = time.monotonic()
        if self._unknown.get(key, 0.0) > wall:
            raise errors.NotFound("no webhook at this address")
        try:
            return self.repo.function_for_webhook(key)
        except errors.NotFound:
            if len(self._unknown) >= _UNKNOWN_MAX:
                self._unknown.clear()
            self._unknown[key] = wall + self.unknown_ttl_sec
            raise


def _owner(fn: Function, key: str) -> str | None:
    """ "" for the function's own URL (if on), an alias's name for its URL, else None."""
    if fn.webhook_key == key:
        return "" if fn.webhook_enabled else None
    for alias in fn.aliases.values():
        if alias.webhook_key == key:
            return alias.name
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex
