"""The MCP server as a host launches it: the SDK's stdio client starting `nimbus-mcp`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from mcp import Client, ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.e2e import wasm as w
from tests.e2e.server import NIMBUS, free_port
from tests.e2e.test_observability import deploy, once

NIMBUS_MCP = NIMBUS.with_name("nimbus-mcp")
WRITE_TOOLS = {"deploy_function", "invoke_function", "invoke_async", "rollback"}


@asynccontextmanager
async def mcp_session(
    server, *extra: str, home: Path, command: tuple = (NIMBUS_MCP,), errlog=sys.stderr
):
    """The seed's host config: command + ["--api-url", URL]; the key from the environment."""
    params = StdioServerParameters(
        command=str(command[0]),
        args=[*command[1:], "--api-url", server.url, *extra],
        env={"NIMBUS_API_KEY": server.api_key, "HOME": str(home), "PATH": os.environ["PATH"]},
    )
    async with (
        stdio_client(params, errlog=errlog) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def _data(result) -> dict:
    assert not result.is_error, result.content[0].text
    return result.structured_content or json.loads(result.content[0].text)


async def _finished(session: ClientSession, invocation_id: str) -> dict:
    """The async invocation's record once it ends: the status tool, polled as a model would."""
    record = {"status": "queued"}
    for _ in range(150):
        record = _data(await session.call_tool("get_invocation", {"invocation_id": invocation_id}))
        if record["status"] not in ("queued", "running"):
            break
        await anyio.sleep(0.2)
    return record


def test_tools_deploy_and_invoke_a_python_function(make_server, tmp_path):
    server = make_server().start()

    async def scenario():
        async with mcp_session(server, home=tmp_path) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert set(tools) >= WRITE_TOOLS
            assert {"list_functions", "get_function", "get_build", "get_logs"} <= set(tools)
            assert all(tool.description for tool in tools.values())

            code = (
                "def handler(event):\n    print('hi from mcp')\n    return {'n': event['n'] * 2}\n"
            )
            deployed = _data(await session.call_tool("deploy_function", {
                "name": "mcp-double", "runtime": "python", "code": code,
                "handler": "main.handler",
            }))  # fmt: skip
            assert deployed["status"] == "active" and deployed["build_status"] == "ready"

            called = _data(await session.call_tool(
                "invoke_function", {"name": "mcp-double", "event": {"n": 21}}
            ))  # fmt: skip
            assert called["result"] == {"n": 42} and called["version"] == 1

            listed = _data(await session.call_tool("list_functions", {}))
            assert [fn["name"] for fn in listed["functions"]] == ["mcp-double"]

            logs = _data(await session.call_tool(
                "get_logs", {"name": "mcp-double", "invocation_id": called["invocation_id"]}
            ))  # fmt: skip
            assert any("hi from mcp" in line for line in logs["lines"])

            recent = await session.read_resource("nimbus://functions/mcp-double/logs")
            assert "hi from mcp" in recent.contents[0].text
            source = await session.read_resource("nimbus://functions/mcp-double/code")
            assert json.loads(source.contents[0].text)["files"] == {"main.py": code}

            crash = await session.call_tool(
                "invoke_function", {"name": "mcp-double", "event": {"m": 1}}
            )
            assert crash.is_error and "KeyError" in crash.content[0].text

            missing = await session.call_tool("get_function", {"name": "nope"})
            assert missing.is_error and "not_found" in missing.content[0].text

            queued = _data(await session.call_tool(
                "invoke_async", {"name": "mcp-double", "event": {"n": 5}}
            ))  # fmt: skip
            record = await _finished(session, queued["invocation_id"])
            assert record["status"] == "succeeded" and record["result"] == {"n": 10}
            return queued["invocation_id"]

    invocation_id = anyio.run(scenario)
    with server.client() as api:  # the effect, seen through the REST API
        assert api.get("/api/v1/functions/mcp-double").json()["active_version"] == 1
        assert api.get(f"/api/v1/invocations/{invocation_id}").json()["result"] == {"n": 10}


def test_failed_build_is_a_tool_error_with_the_compilers_message(make_server, tmp_path):
    server = make_server().start()
    good = "def main(event):\n  return 1\n"

    async def scenario():
        async with mcp_session(server, home=tmp_path) as session:
            deploy = {"name": "mcp-broken", "runtime": "python", "code": good}
            assert not (await session.call_tool("deploy_function", deploy)).is_error
            broken = await session.call_tool(
                "deploy_function", {**deploy, "code": "def main(event):\n  return (\n"}
            )
            # the resource says "the active version": v1 serves, not the failed v2
            source = await session.read_resource("nimbus://functions/mcp-broken/code")
            return broken, json.loads(source.contents[0].text)

    result, source = anyio.run(scenario)
    assert result.is_error
    text = result.content[0].text
    assert "failed" in text and "SyntaxError" in text and "never closed" in text
    assert (source["version"], source["files"]) == (1, {"handler.py": good})


def test_read_only_hides_every_tool_that_changes_or_runs(make_server, tmp_path):
    server = make_server().start()

    async def scenario():
        read_only = mcp_session(server, "--read-only", home=tmp_path, command=(NIMBUS, "mcp"))
        async with read_only as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            refused = await session.call_tool(
                "deploy_function", {"name": "x", "runtime": "python", "code": "x"}
            )
            return names, refused

    names, refused = anyio.run(scenario)
    assert not names & WRITE_TOOLS
    assert {"list_functions", "get_function", "get_logs", "list_versions"} <= names
    assert refused.is_error
    with server.client() as api:
        assert api.get("/api/v1/functions").json()["total"] == 0


def test_streamable_http_with_http_flag(make_server, tmp_path):
    server = make_server().start()
    port = free_port()
    proc = subprocess.Popen(
        [str(NIMBUS), "mcp", "--http", "--port", str(port), "--api-url", server.url],
        env={**os.environ, "NIMBUS_API_KEY": server.api_key, "HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    async def scenario():
        with anyio.fail_after(20):
            while True:  # until uvicorn listens
                try:
                    await (await anyio.connect_tcp("127.0.0.1", port)).aclose()
                    break
                except OSError:
                    await anyio.sleep(0.1)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            listed = await client.call_tool("list_functions", {})
            return names, listed

    try:
        names, listed = anyio.run(scenario)
    finally:
        proc.terminate()
        proc.wait(10)
    assert "deploy_function" in names
    assert _data(listed) == {"total": 0, "functions": []}


def test_a_build_still_running_returns_its_status_and_how_to_poll(make_server, tmp_path):
    server = make_server().start()

    async def scenario():
        async with mcp_session(server, home=tmp_path) as session:
            first = await session.call_tool("deploy_function", {
                "name": "mcp-slow", "runtime": "python", "wait_seconds": 0,
                "code": "def main(event):\n    return 1\n",
            })  # fmt: skip
            polled = []
            with anyio.fail_after(60):
                while not polled or polled[-1]["status"] not in ("ready", "failed"):
                    polled.append(_data(await session.call_tool(
                        "get_build", {"name": "mcp-slow", "version": 1}
                    )))  # fmt: skip
                    await anyio.sleep(0.2)
            return _data(first), polled

    first, polled = anyio.run(scenario)
    assert first["build_status"] in ("queued", "building")
    assert "get_build(name='mcp-slow', version=1)" in first["next"]
    assert polled[-1]["status"] == "ready"


def test_list_versions_roll_back_and_invoke_an_alias(make_server, tmp_path):
    server = make_server().start()
    deploy(server, "mcp-versions", w.constant_wat(b'{"v":1}'))
    resp = once(server, "PUT", "/api/v1/functions/mcp-versions?wait=true",
                json={"artifact_base64": w.b64(w.wat(w.constant_wat(b'{"v":2}')))})  # fmt: skip
    assert resp.json()["active_version"] == 2
    resp = once(server, "POST", "/api/v1/functions/mcp-versions/aliases",
                json={"name": "prod", "version": 1, "routing": {"2": 25}})  # fmt: skip
    assert resp.status_code == 201

    async def scenario():
        async with mcp_session(server, home=tmp_path) as session:
            listed = _data(await session.call_tool("list_versions", {"name": "mcp-versions"}))
            assert [(v["version"], v["active"]) for v in listed["versions"]] == [
                (2, True),
                (1, False),
            ]
            assert listed["aliases"] == [{"name": "prod", "version": 1, "routing": {"2": 25.0}}]

            rolled = _data(await session.call_tool(
                "rollback", {"name": "mcp-versions", "version": 1, "reason": "v2 is wrong"}
            ))  # fmt: skip
            assert rolled == {"name": "mcp-versions", "active_version": 1, "previous_version": 2}
            missing = await session.call_tool("rollback", {"name": "mcp-versions", "version": 9})
            assert missing.is_error and "not_found" in missing.content[0].text

            await anyio.sleep(1.1)  # every worker's record cache
            pinned = _data(await session.call_tool(
                "invoke_function", {"name": "mcp-versions:2"}
            ))  # fmt: skip
            assert pinned["result"] == {"v": 2} and pinned["version"] == 2
            plain = _data(await session.call_tool("invoke_function", {"name": "mcp-versions"}))
            assert plain["result"] == {"v": 1}
            # invoke_async takes `version` as invoke_function does (it had no such argument)
            queued = _data(await session.call_tool(
                "invoke_async", {"name": "mcp-versions", "version": 2}
            ))  # fmt: skip
            record = await _finished(session, queued["invocation_id"])
            assert (record["version"], record["result"]) == (2, {"v": 2})

    anyio.run(scenario)
    with server.client() as api:  # the effect, seen through the REST API
        assert api.get("/api/v1/functions/mcp-versions").json()["active_version"] == 1
        history = api.get("/api/v1/functions/mcp-versions/history").json()["entries"]
        assert history[0]["action"] == "rollback" and history[0]["reason"] == "v2 is wrong"


def test_the_hosts_log_gets_no_line_per_api_request(make_server, tmp_path):
    # A host keeps the server's stderr as its log: one "HTTP Request: GET …" per tool call
    # buried what the SDK says there (a tool that failed, and why).
    server = make_server().start()
    log_path = tmp_path / "mcp-stderr.log"

    async def scenario():
        with log_path.open("w") as errlog:
            async with mcp_session(server, home=tmp_path, errlog=errlog) as session:
                for _ in range(3):
                    assert not (await session.call_tool("list_functions", {})).is_error

    anyio.run(scenario)
    assert "HTTP Request" not in log_path.read_text(), log_path.read_text()
