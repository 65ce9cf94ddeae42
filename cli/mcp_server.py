"""The MCP server: a few well-described tools over the REST API, for AI assistants.

Kept small on purpose (each tool's description costs the model context): list and read
functions, deploy and wait for the build, invoke, read logs, list versions and roll back.
`read_only` drops every tool that changes or runs anything.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from .client import Client
from .errors import ApiError

INSTRUCTIONS = """\
Nimbus runs serverless functions (Python, JavaScript, Go, Rust, C, or WebAssembly) in
sandboxes. Deploy source with deploy_function, then call it with invoke_function. A Python
handler is `def main(event, context)` in handler.py (handler "handler.main"); JavaScript is
`export function main(event, context)` in handler.js. The event and the result are JSON.
Read a function's logs with get_logs. Functions are addressed by name; every deploy
makes a new version, and rollback serves an earlier one again at once."""

READ = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False)
RUN = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=True)
# changes what every caller is served, so a host may ask before it runs
SWITCH = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True,
                         openWorldHint=False)  # fmt: skip
LOG_TAIL_LINES = 40

Name = Annotated[str, Field(description="the function's name (or its fn_… id)")]
Target = Annotated[
    str,
    Field(description="the function's name; name:alias or name:3 calls that alias or version"),
]


def build_server(client: Client, read_only: bool = False) -> MCPServer:
    server = MCPServer("nimbus", instructions=INSTRUCTIONS, version="0.1.0")
    tools = NimbusTools(client)
    server.add_tool(tools.list_functions, annotations=READ)
    server.add_tool(tools.get_function, annotations=READ)
    server.add_tool(tools.get_build, annotations=READ)
    server.add_tool(tools.get_logs, annotations=READ)
    server.add_tool(tools.get_invocation, annotations=READ)
    server.add_tool(tools.list_versions, annotations=READ)
    if not read_only:
        server.add_tool(tools.deploy_function, annotations=WRITE)
        server.add_tool(tools.invoke_function, annotations=RUN)
        server.add_tool(tools.invoke_async, annotations=RUN)
        server.add_tool(tools.rollback, annotations=SWITCH)
    server.resource(
        "nimbus://functions/{name}/code",
        description="A function's source files (the active version)",
        mime_type="application/json",
    )(tools.code_resource)
    server.resource(
        "nimbus://functions/{name}/logs",
        description="A function's most recent log lines",
        mime_type="text/plain",
    )(tools.logs_resource)
    return server


class NimbusTools:
    def __init__(self, client: Client) -> None:
        self.client = client

    def _call(self, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except ApiError as exc:
            raise ToolError(f"{exc.code} ({exc.status}): {exc.message}") from None

    # -- reading -----------------------------------------------------------------

    def list_functions(
        self,
        name_contains: Annotated[str | None, Field(description="filter: part of the name")] = None,
        tag: Annotated[str | None, Field(description="filter: functions with this tag")] = None,
        status: Annotated[
            str | None, Field(description="filter: creating, active, failed or offline")
        ] = None,
    ) -> dict:
        """List the deployed functions with their runtime, status and versions."""
        page = self._call(
            self.client.list_functions, name=name_contains, tags=tag, status=status, limit=100
        )
        return {
            "total": page["total"],
            "functions": [_summary(fn) for fn in page["functions"]],
        }

    def get_function(self, name: Name) -> dict:
        """One function's full record: runtime, status, active and latest version, the
        latest build's outcome, limits, environment variable names, webhook URL."""
        return self._call(self.client.get_function, name)

    def get_build(
        self,
        name: Name,
        version: Annotated[int | None, Field(description="default: the latest")] = None,
    ) -> dict:
        """A version's build: status (queued, building, ready, failed), the compiler's
        error and the end of the build log. Poll this after deploy_function returns a
        build that is still running."""
        build = self._call(self.client.get_build, name, version)
        return _build_view(build)

    def get_logs(
        self,
        name: Name,
        invocation_id: Annotated[
            str | None, Field(description="only this invocation's lines")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="at most this many lines")] = 50,
    ) -> dict:
        """A function's recent invocation logs, oldest first: what it printed (stdout,
        stderr) and one platform line per invocation with its outcome and duration."""
        entries = self._call(self.client.logs, name, invocation_id=invocation_id, limit=limit)
        return {"lines": [_line(e) for e in entries]}

    def get_invocation(
        self, invocation_id: Annotated[str, Field(description="from invoke_async")]
    ) -> dict:
        """An async invocation's status (queued, running, succeeded, failed, timed_out),
        its result or error, attempts and duration."""
        return self._call(self.client.get_invocation, invocation_id)

    def list_versions(self, name: Name) -> dict:
        """A function's versions, newest first (the 20 latest): build status, which one is
        active, and its aliases with where each sends calls (routing: version → % of calls,
        the rest to the alias's version) and any canary in progress."""
        page = self._call(self.client.list_versions, name, limit=20)
        aliases = self._call(self.client.list_aliases, name)["aliases"]
        keys = ("version", "status", "active", "aliases", "error", "description", "created_at")
        return {
            "total": page["total"],
            "versions": [{k: v.get(k) for k in keys} for v in page["versions"]],
            "aliases": [_alias_summary(a) for a in aliases],
        }

    # -- changing and running ----------------------------------------------------

    def deploy_function(
        self,
        name: Annotated[str, Field(description="DNS label: a-z, 0-9 and '-'")],
        runtime: Annotated[str, Field(description="python, javascript, go, rust or c")],
        code: Annotated[
            str | None,
            Field(description="the source of one file (stored as the handler's file)"),
        ] = None,
        files: Annotated[
            dict[str, str] | None,
            Field(description="several source files: path → text (instead of code)"),
        ] = None,
        handler: Annotated[
            str | None,
            Field(description="module.function, e.g. main.handler; default handler.main"),
        ] = None,
        requirements: Annotated[
            list[str] | None, Field(description="Python packages (pure Python)")
        ] = None,
        env_vars: Annotated[dict[str, str] | None, Field(description="environment")] = None,
        memory_mb: Annotated[int | None, Field(ge=1)] = None,
        timeout_sec: Annotated[float | None, Field(gt=0)] = None,
        wait_seconds: Annotated[
            float, Field(ge=0, le=600, description="how long to wait for the build")
        ] = 60,
    ) -> dict:
        """Create a function, or update it if the name exists (a new version), and wait
        for the build. Returns the function when its build is ready; a build still
        running after wait_seconds returns its status (poll get_build); a failed build
        is an error with the compiler's message."""
        if (code is None) == (files is None):
            raise ToolError("give the source as either code or files")
        # One `code` file is named by the server after the handler (main.handler → main.py).
        body: dict[str, Any] = {"files": files} if files is not None else {"code": code}
        optional = {"handler": handler, "requirements": requirements, "env_vars": env_vars,
                    "memory_mb": memory_mb, "timeout_sec": timeout_sec}  # fmt: skip
        body.update({k: v for k, v in optional.items() if v is not None})
        existing = self._call(self.client.find_function, name)
        if existing is None:
            fn = self._call(self.client.create_function, {"name": name, "runtime": runtime, **body})
        else:
            fn = self._call(self.client.update_function, name, body)
        version = fn["latest_version"]
        build = self._call(self.client.wait_for_build, name, version, wait_seconds)
        if build["status"] == "failed":
            view = _build_view(build)
            raise ToolError(
                f"the build of {name} v{version} failed: {build.get('error')}\n"
                f"build log (end):\n{view['log_tail']}"
            )
        if build["status"] != "ready":
            return {
                "name": name, "version": version, "build_status": build["status"],
                "next": f"the build is still {build['status']}: call get_build(name={name!r}, "
                        f"version={version}) until it is ready or failed",
            }  # fmt: skip
        fn = self._call(self.client.get_function, name)
        return {**_summary(fn), "build_status": "ready", "webhook_url": fn.get("webhook_url")}

    def invoke_function(
        self,
        name: Target,
        event: Annotated[Any, Field(description="the event: any JSON value")] = None,
        version: Annotated[int | None, Field(description="default: the active version")] = None,
    ) -> dict:
        """Call a function synchronously with an event and return its result, with the
        invocation id, duration and version. A function that raises or crashes is an
        error with its type, message and stack."""
        payload = json.dumps({} if event is None else event).encode()
        outcome = self._call(self.client.invoke, name, payload, version=version)
        if outcome.error is not None:
            error = outcome.error
            stack = error.get("stack") or []
            stack_text = "\n".join(stack) if isinstance(stack, list) else str(stack)
            raise ToolError(
                f"{error.get('type') or error.get('code') or 'Error'}: {error.get('message')} "
                f"(invocation {outcome.invocation_id})\n{stack_text}".rstrip()
            )
        return {"result": outcome.result, **outcome.summary()}

    def invoke_async(
        self,
        name: Target,
        event: Annotated[Any, Field(description="the event: any JSON value")] = None,
        version: Annotated[int | None, Field(description="default: the active version")] = None,
    ) -> dict:
        """Queue an invocation and return its invocation_id at once; get_invocation
        reports its status and result. Use it for long-running work."""
        payload = json.dumps({} if event is None else event).encode()
        return self._call(self.client.invoke_async, name, payload, version=version)

    def rollback(
        self,
        name: Name,
        version: Annotated[int, Field(ge=1, description="a ready version (see list_versions)")],
        reason: Annotated[str | None, Field(description="why, kept in the history")] = None,
    ) -> dict:
        """Serve an earlier (or any ready) version of a function at once, without a
        rebuild; every caller gets it within a second. Aliases keep their own versions."""
        before = self._call(self.client.get_function, name).get("active_version")
        fn = self._call(self.client.rollback, name, version, reason)
        return {"name": fn["name"], "active_version": fn["active_version"],
                "previous_version": before}  # fmt: skip

    # -- resources ---------------------------------------------------------------

    def code_resource(self, name: str) -> str:
        try:
            # the active version, as the description says (the code API's default is the
            # one the next update starts from: the latest, whose build may have failed)
            active = self.client.get_function(name).get("active_version")
            resp = self.client.get_code(name, active)
        except ApiError as exc:
            raise ResourceError(f"{exc.code}: {exc.message}") from None
        if resp.headers.get("content-type", "").startswith("application/json"):
            return resp.text
        return json.dumps({"binary": True, "bytes": len(resp.content)})

    def logs_resource(self, name: str) -> str:
        try:
            entries = self.client.logs(name, limit=100)
        except ApiError as exc:
            raise ResourceError(f"{exc.code}: {exc.message}") from None
        return "\n".join(_line(e) for e in entries)


def _summary(fn: dict) -> dict:
    keys = ("name", "runtime", "status", "active_version", "latest_version", "updated_at")
    return {key: fn.get(key) for key in keys}


def _alias_summary(alias: dict) -> dict:
    canary = alias.get("canary") or {}
    summary = {"name": alias["name"], "version": alias["version"], "routing": alias["routing"]}
    if canary.get("status") == "progressing":
        summary["canary"] = {k: canary.get(k) for k in ("version", "weight", "status")}
    return summary


def _build_view(build: dict) -> dict:
    lines = (build.get("log") or "").splitlines()
    return {
        "version": build["version"],
        "status": build["status"],
        "error": build.get("error"),
        "log_tail": "\n".join(lines[-LOG_TAIL_LINES:]),
    }


def _line(entry: dict) -> str:
    return f"{entry['ts']} {entry['invocation_id']} {entry['stream']}: {entry['line']}"
