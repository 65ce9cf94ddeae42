"""The REST client: the CLI and the MCP server talk to Nimbus only through this."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .errors import ApiError

FINAL_BUILD_STATES = ("ready", "failed")
FUNCTIONS = "/api/v1/functions"
WORKFLOWS = "/api/v1/workflows"
SCHEDULES = "/api/v1/schedules"


@dataclass
class InvokeResult:
    """One synchronous invocation as the API reported it."""

    status: int
    result: Any  # the parsed JSON result, or text for a program's non-JSON stdout
    error: dict | None  # the function error object (`X-Nimbus-Function-Error`)
    invocation_id: str | None
    duration_ms: float | None
    version: int | None
    cold_start: bool | None
    log_tail: str | None

    def summary(self) -> dict[str, Any]:
        return {
            "invocation_id": self.invocation_id,
            "version": self.version,
            "duration_ms": self.duration_ms,
            "cold_start": self.cold_start,
        }


class Client:
    def __init__(self, url: str, key: str | None, timeout: float = 330) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.keyless = not key
        try:
            self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        except httpx.InvalidURL as exc:
            raise ApiError(0, "invalid_url", f"{url}: {exc}") from None

    def close(self) -> None:
        self.http.close()

    # -- transport ---------------------------------------------------------------

    def request(
        self, method: str, path: str, *, failed_call: bool = False, **kw: Any
    ) -> httpx.Response:
        """The answer; an error answer raises ApiError, except (`failed_call`) the answers
        of an invoke that ran and failed: a function error, its timeout, memory or result."""
        try:
            resp = self.http.request(method, path, **kw)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise ApiError(0, "invalid_url", f"{self.http.base_url}: {exc}") from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ApiError(0, "unreachable", _unreachable(self.http.base_url, exc)) from None
        except httpx.HTTPError as exc:  # it answered, then broke off or took too long
            raise ApiError(0, "unreachable", f"{self.http.base_url}: {exc}") from None
        if resp.status_code == 401 and self.keyless:
            raise ApiError(401, "unauthorized", NO_KEY)
        if resp.status_code >= 400 and not (failed_call and _the_call_failed(resp)):
            raise _api_error(resp)
        return resp

    def json(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.request(method, path, **kw)
        return resp.json() if resp.content else None

    # -- functions ---------------------------------------------------------------

    def list_functions(self, **filters: Any) -> dict:
        params = {k: v for k, v in filters.items() if v is not None and v != ""}
        return self.json("GET", FUNCTIONS, params=params)

    def get_function(self, name: str) -> dict:
        return self.json("GET", _fn(name))

    def find_function(self, name: str) -> dict | None:
        try:
            return self.get_function(name)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create_function(self, body: dict, artifact: Path | None = None, wait: bool = False) -> dict:
        return self._send_function("POST", FUNCTIONS, body, artifact, wait)

    def update_function(
        self, name: str, body: dict, artifact: Path | None = None, wait: bool = False
    ) -> dict:
        return self._send_function("PUT", _fn(name), body, artifact, wait)

    def _send_function(
        self, method: str, path: str, body: dict, artifact: Path | None, wait: bool
    ) -> dict:
        if artifact is None:
            return self.json(method, path, json=body, params=_wait(wait))
        # A binary goes as multipart: streamed from the file, no base64 (+33 %) in memory.
        with artifact.open("rb") as data:
            parts = {
                "artifact": (artifact.name, data, "application/octet-stream"),
                "metadata": (None, json.dumps(body), "application/json"),
            }
            return self.json(method, path, files=parts, params=_wait(wait))

    def delete_function(self, name: str) -> None:
        self.request("DELETE", _fn(name))

    def get_code(self, name: str, version: int | None = None) -> httpx.Response:
        return self.request("GET", _fn(name, "code"), params=_version(version))

    def get_build(self, name: str, version: int | None = None) -> dict:
        return self.json("GET", _fn(name, "build"), params=_version(version))

    def wait_for_build(
        self,
        name: str,
        version: int,
        timeout: float,
        on_poll: Callable[[dict], None] | None = None,
        interval: float = 0.5,
    ) -> dict:
        """Poll a version's build until it is ready or failed, or `timeout` seconds pass
        (then the last status is returned as it is: queued or building)."""

        def fetch() -> dict:
            build = self.get_build(name, version)
            if on_poll:
                on_poll(build)
            return build

        return poll(fetch, FINAL_BUILD_STATES, timeout, interval)

    # -- invocation --------------------------------------------------------------

    def invoke(
        self,
        target: str,
        event: bytes,
        *,
        version: int | None = None,
        alias: str | None = None,
        context: str | None = None,
        routing_key: str | None = None,
        tail: bool = False,
    ) -> InvokeResult:
        """Call `target` (`name`, `name:alias` or `name:version`; the server parses it)."""
        headers = {"Content-Type": "application/json"}
        if context:
            headers["X-Nimbus-Context"] = context
        if routing_key:
            headers["X-Nimbus-Routing-Key"] = routing_key
        if tail:
            headers["X-Nimbus-Log-Type"] = "Tail"
        resp = self.request(
            "POST",
            _fn(target, "invoke"),
            content=event,
            headers=headers,
            params=_qualifier(version, alias),
            failed_call=True,
        )
        failed = _the_call_failed(resp)
        body = _result(resp)
        version_header = resp.headers.get("X-Nimbus-Version")
        duration = resp.headers.get("X-Nimbus-Duration-Ms")
        cold = resp.headers.get("X-Nimbus-Cold-Start")
        return InvokeResult(
            status=resp.status_code,
            result=None if failed else body,
            error=(body or {}).get("error") if failed and isinstance(body, dict) else None,
            invocation_id=resp.headers.get("X-Nimbus-Invocation-Id"),
            duration_ms=float(duration) if duration else None,
            version=int(version_header) if version_header else None,
            cold_start=None if cold is None else cold == "true",
            log_tail=_log_tail(resp.headers.get("X-Nimbus-Log-Tail")),
        )

    def invoke_async(
        self, target: str, event: bytes, version: int | None = None, alias: str | None = None
    ) -> dict:
        return self.json(
            "POST",
            _fn(target, "async"),
            content=event,
            headers={"Content-Type": "application/json"},
            params=_qualifier(version, alias),
        )

    def get_invocation(self, invocation_id: str) -> dict:
        return self.json("GET", f"/api/v1/invocations/{quote(invocation_id, safe='')}")

    def logs(
        self,
        name: str,
        *,
        since: str | None = None,
        limit: int | None = None,
        invocation_id: str | None = None,
    ) -> list[dict]:
        """Log entries, oldest first (the API answers newest first)."""
        params = {"since": since, "limit": limit, "invocation_id": invocation_id}
        page = self.json(
            "GET", _fn(name, "logs"), params={k: v for k, v in params.items() if v is not None}
        )
        return list(reversed(page["entries"]))

    # -- versions, aliases, canaries -------------------------------------------------

    def list_versions(self, name: str, limit: int = 20, offset: int = 0) -> dict:
        return self.json("GET", _fn(name, "versions"), params={"limit": limit, "offset": offset})

    def get_version(self, name: str, version: int) -> dict:
        return self.json("GET", _fn(name, "versions", str(version)))

    def rollback(self, name: str, version: int, reason: str | None = None) -> dict:
        body = {"reason": reason} if reason else {}
        return self.json("POST", _fn(name, "versions", str(version), "rollback"), json=body)

    def history(self, name: str, limit: int = 20, offset: int = 0) -> dict:
        return self.json("GET", _fn(name, "history"), params={"limit": limit, "offset": offset})

    def list_aliases(self, name: str) -> dict:
        return self.json("GET", _fn(name, "aliases"))

    def get_alias(self, name: str, alias: str) -> dict:
        return self.json("GET", _fn(name, "aliases", quote(alias, safe="")))

    def set_alias(self, name: str, alias: str, body: dict) -> tuple[dict, bool]:
        """Create the alias, or replace it if it exists; the alias and whether it is new."""
        try:
            return self.json("POST", _fn(name, "aliases"), json={"name": alias, **body}), True
        except ApiError as exc:
            if exc.code != "alias_exists":
                raise
        return self.json("PUT", _fn(name, "aliases", quote(alias, safe="")), json=body), False

    def delete_alias(self, name: str, alias: str) -> None:
        self.request("DELETE", _fn(name, "aliases", quote(alias, safe="")))

    def start_canary(self, name: str, alias: str, body: dict) -> dict:
        return self.json("POST", _fn(name, "aliases", quote(alias, safe=""), "canary"), json=body)

    def abort_canary(self, name: str, alias: str) -> dict:
        return self.json("DELETE", _fn(name, "aliases", quote(alias, safe=""), "canary"))

    # -- schedules (of a function, or of a workflow with workflow=True) ----------

    def list_schedules(self, name: str, workflow: bool = False) -> dict:
        return self.json("GET", _schedules(name, workflow))

    def list_all_schedules(self, **filters: Any) -> dict:
        """Every function's and workflow's schedules (`name`, `enabled`, `limit`, `offset`)."""
        params = {k: v for k, v in filters.items() if v is not None and v != ""}
        return self.json("GET", SCHEDULES, params=params)

    def create_schedule(self, name: str, body: dict, workflow: bool = False) -> dict:
        return self.json("POST", _schedules(name, workflow), json=body)

    def get_schedule(self, name: str, schedule_id: str, workflow: bool = False) -> dict:
        return self.json("GET", _schedules(name, workflow, schedule_id))

    def update_schedule(
        self, name: str, schedule_id: str, body: dict, workflow: bool = False
    ) -> dict:
        return self.json("PUT", _schedules(name, workflow, schedule_id), json=body)

    def delete_schedule(self, name: str, schedule_id: str, workflow: bool = False) -> None:
        self.request("DELETE", _schedules(name, workflow, schedule_id))


def poll(
    fetch: Callable[[], dict], final: tuple[str, ...], timeout: float, interval: float
) -> dict:
    """Call `fetch` until the record's `status` is one of `final` or `timeout` seconds pass;
    the last record either way."""
    deadline = time.monotonic() + timeout
    while True:
        record = fetch()
        if record["status"] in final or time.monotonic() >= deadline:
            return record
        time.sleep(min(interval, max(deadline - time.monotonic(), 0.05)))


def _fn(name: str, *rest: str) -> str:
    # ':' stays as it is: `hello:prod` is a target the server parses (services/targets.py)
    return "/".join([FUNCTIONS, quote(name, safe=":"), *rest])


def _schedules(name: str, workflow: bool, *schedule_id: str) -> str:
    owner = f"{WORKFLOWS}/{quote(name, safe='')}" if workflow else _fn(name)
    return "/".join([owner, "schedules", *(quote(s, safe="") for s in schedule_id)])


def _wait(wait: bool) -> dict:
    return {"wait": "true"} if wait else {}


def _version(version: int | None) -> dict:
    return {"version": version} if version is not None else {}


def _qualifier(version: int | None, alias: str | None) -> dict:
    return {**_version(version), **({"alias": alias} if alias is not None else {})}


# What a first command without any configuration meets: say how to fix it.
NO_KEY = (
    "no API key given: pass --api-key KEY or --api-key-file PATH (a server's key is in "
    "its data/api_key), set NIMBUS_API_KEY, or save one with `nimbus config init`"
)


def _unreachable(url: httpx.URL, exc: httpx.HTTPError) -> str:
    return (
        f"cannot reach {url} ({exc or type(exc).__name__}): is `nimbus serve` running there? "
        "Point --api-url (NIMBUS_API_URL, or `nimbus config init`) at your server"
    )


# The function ran and failed by its own doing (the server counts these against the function,
# not the platform): as a function error, the CLI exits 3 and shows the call's log tail.
FUNCTION_FAILURES = {"timeout", "memory_limit_exceeded", "result_too_large"}


def _the_call_failed(resp: httpx.Response) -> bool:
    if resp.headers.get("X-Nimbus-Function-Error"):
        return True
    if resp.status_code not in (500, 502, 504) or not resp.headers.get("X-Nimbus-Invocation-Id"):
        return False
    try:
        return resp.json()["error"]["code"] in FUNCTION_FAILURES
    except (ValueError, KeyError, TypeError):
        return False


def _api_error(resp: httpx.Response) -> ApiError:
    try:
        error = resp.json()["error"]
        return ApiError(resp.status_code, error["code"], error["message"], error.get("details"))
    except (ValueError, KeyError, TypeError):
        return ApiError(resp.status_code, "error", resp.text[:500] or resp.reason_phrase)


def _result(resp: httpx.Response) -> Any:
    if not resp.content:
        return None
    if resp.headers.get("content-type", "").startswith("application/json"):
        try:
            return resp.json()
        except json.JSONDecodeError:
            pass
    return resp.text


def _log_tail(header: str | None) -> str | None:
    """`X-Nimbus-Log-Tail` is base64 (as Lambda's `LogResult`)."""
    if not header:
        return None
    try:
        return base64.b64decode(header, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return header
