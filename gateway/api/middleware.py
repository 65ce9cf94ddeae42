"""Cross-cutting concerns: request ids, access logs, API-key auth, the webhook sandbox."""

from __future__ import annotations

import logging
import time

import falcon

from store.records import KeyScope, sequential_id

from ..services.keys import KeyService

access_log = logging.getLogger("nimbus.access")


def header(req: falcon.Request, wsgi_name: str) -> str | None:
    """A request header by its WSGI name (`HTTP_X_REQUEST_ID` for X-Request-Id).

    PERF: falcon's `get_header` raises and catches a KeyError for an absent header
    (~2 µs); an invoke asks for six that are usually absent."""
    return req.env.get(wsgi_name)


class RequestId:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        incoming = header(req, "HTTP_X_REQUEST_ID")
        if incoming and len(incoming) <= 128:
            req.context.request_id = incoming
        else:
            req.context.request_id = sequential_id("req_")
        req.context.started = time.perf_counter()

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        resp.set_header("X-Request-Id", req.context.request_id)


def redacted(uri: str) -> str:
    """A request URI fit for logs: a webhook's key is its secret, so it is left out."""
    if uri.startswith("/webhook/"):
        key, sep, rest = uri[len("/webhook/") :].partition("/")
        key, qsep, query = key.partition("?")
        return f"/webhook/<key>{qsep}{query}{sep}{rest}" if key else uri
    return uri


class AccessLog:
    def process_response(self, req, resp, resource, req_succeeded) -> None:
        elapsed = (time.perf_counter() - req.context.get("started", time.perf_counter())) * 1000
        access_log.info(
            "%s %s %s %.1fms rid=%s",
            req.method,
            redacted(req.relative_uri),
            resp.status_code,
            elapsed,
            req.context.get("request_id"),
        )


def public(resource_class: type) -> type:
    """Mark a resource as served without an API key (health, metrics, webhooks, console)."""
    resource_class.public = True
    return resource_class


def user_content(resource_class: type) -> type:
    """Mark a resource whose answers are a function's own bytes (webhooks): see
    `UserContentSandbox`."""
    resource_class.user_content = True
    return resource_class


# NOTE(security): a webhook answers on the console's origin with whatever its function
# returns, HTML and script included. `sandbox` without `allow-same-origin` gives such a
# page an opaque origin ("null"): it cannot read the console's sessionStorage (its API
# key) or localStorage, and its requests to /api/v1 are cross-origin, so it cannot read
# them. The other flags keep a function's page working as a page (its scripts, forms,
# links that open a tab, dialogs, downloads); none of them gives an origin back.
SANDBOX = (
    "sandbox allow-scripts allow-forms allow-popups allow-popups-to-escape-sandbox"
    " allow-modals allow-downloads"
)


class UserContentSandbox:
    """Every answer of a `@user_content` resource (success, the function's failure, and
    any 4xx or 429 before it ran) carries `Content-Security-Policy: <SANDBOX>` and
    `X-Content-Type-Options: nosniff`.

    A function may send a policy of its own: it is kept as a second policy of the same
    header (`ours, theirs`). A browser enforces every policy in the list, so the function's
    can tighten the page, never loosen it (its `allow-same-origin` is void).
    """

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        if not getattr(resource, "user_content", False):
            return
        theirs = resp.get_header("Content-Security-Policy")
        resp.set_header("Content-Security-Policy", f"{SANDBOX}, {theirs}" if theirs else SANDBOX)
        resp.set_header("X-Content-Type-Options", "nosniff")


def is_normal_path(path: str) -> bool:
    """No empty, `.` or `..` segments: the form the router and the auth agree on."""
    if "//" not in path and "/." not in path:
        return True  # PERF: no empty segment but a last one, none starting with "."
    segments = path.split("/")[1:]
    if segments and segments[-1] == "":
        segments = segments[:-1]  # one trailing slash is stripped by the app's options
    return all(segment not in ("", ".", "..") for segment in segments)


def required_scopes(resource, method: str) -> tuple[KeyScope, ...]:
    """The scopes that open `method` on `resource`: its own `scopes` table, else
    `read` for GET/HEAD and `deploy` for any other method."""
    table = getattr(resource, "scopes", None) or {}
    if method in table:
        return tuple(table[method])
    return (KeyScope.read,) if method in ("GET", "HEAD") else (KeyScope.deploy,)


class ApiKeyAuth:
    """Every route needs `Authorization: Bearer <key>` unless its resource is `@public`,
    and a key whose scopes open the route (`required_scopes`); else 401, or 403.

    NOTE(security): protection is decided from the resource the router matched, never
    from the raw path: Falcon's router forgives a doubled leading slash, so a prefix
    test on `req.path` let `//api/v1/...` through without a key. Paths that are not in
    normal form are refused before routing, so no spelling reaches a resource twice.
    """

    def __init__(self, keys: KeyService) -> None:
        self.keys = keys

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not is_normal_path(req.path):
            raise falcon.HTTPNotFound(
                title="not_found", description="the path is not in normal form"
            )

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource, params
    ) -> None:
        if resource is None:
            return
        public = getattr(resource, "public", False)
        if public and not header(req, "HTTP_X_NIMBUS_LOG_TYPE"):
            return
        scheme, _, token = (header(req, "HTTP_AUTHORIZATION") or "").partition(" ")
        principal = self.keys.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if public:
            # A public resource gives a log tail only to a caller with a key (webhooks).
            req.context.principal = principal
            return
        if principal is None:
            raise falcon.HTTPUnauthorized(
                title="unauthorized",
                description="missing or wrong API key (Authorization: Bearer <key>)",
                challenges=['Bearer realm="nimbus"'],
            )
        wanted = required_scopes(resource, req.method)
        if not principal.may(*wanted):
            raise falcon.HTTPForbidden(
                title="forbidden",
                description=f"this key lacks the scope this route needs ({' or '.join(wanted)})",
            )
        req.context.principal = principal
