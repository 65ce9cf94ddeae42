"""The `nimbus` command: `serve` runs the platform; other commands talk to the REST API."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .errors import ApiError

if TYPE_CHECKING:
    from .client import Client

EXTENSIONS = {".go": "go", ".rs": "rust", ".c": "c", ".py": "python", ".js": "javascript",
              ".mjs": "javascript", ".wasm": "wasm"}  # fmt: skip


def _print(data) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group()
@click.version_option("0.1.0", prog_name="nimbus")
@click.option("--url", envvar="NIMBUS_URL", default="http://127.0.0.1:8080", show_default=True)
@click.option("--api-key", envvar="NIMBUS_API_KEY", help="default: $DATA_DIR/api_key")
@click.pass_context
def main(ctx: click.Context, url: str, api_key: str | None) -> None:
    """Nimbus: a self-hostable WebAssembly function platform."""
    ctx.obj = (url, api_key)


def _client(ctx: click.Context) -> Client:
    from .client import Client, default_key  # PERF: httpx only for the API commands

    url, key = ctx.obj
    return Client(url, key or default_key())


def _run(call):
    try:
        return call()
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--host", help="address to bind (HOST)")
@click.option("--port", type=int, help="port to bind (PORT)")
@click.option("--workers", type=int, help="gunicorn workers (WORKERS)")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the platform (needs the server extra: pip install 'nimbus[server]')."""
    try:
        from gateway.serve import serve as run
        from gateway.settings import Settings
        from store.errors import NimbusError
    except ImportError as exc:  # a client-only install
        raise click.ClickException(
            f"the server is not installed ({exc}); install nimbus[server]"
        ) from None
    overrides = {k: v for k, v in (("host", host), ("port", port), ("workers", workers)) if v}
    try:
        run(Settings(**overrides))
    except NimbusError as exc:
        raise click.ClickException(exc.message) from None


@main.command()
@click.argument("name")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--runtime", help="default: from the file's extension")
@click.option("--memory", "memory_mb", type=int)
@click.option("--timeout", "timeout_sec", type=float)
@click.option("--env", "env", multiple=True, help="KEY=VALUE, repeatable")
@click.pass_context
def deploy(ctx, name, source: Path, runtime, memory_mb, timeout_sec, env) -> None:
    """Create NAME from SOURCE, or update it if it exists; waits for the build."""
    runtime = runtime or EXTENSIONS.get(source.suffix)
    if runtime is None:
        raise click.UsageError(f"cannot tell the runtime of {source.name}: pass --runtime")
    body: dict = {}
    if runtime in ("wasm", "native"):
        body["artifact_base64"] = base64.b64encode(source.read_bytes()).decode()
    else:
        body["code"] = source.read_text()
    if memory_mb:
        body["memory_mb"] = memory_mb
    if timeout_sec:
        body["timeout_sec"] = timeout_sec
    if env:
        body["env_vars"] = dict(item.split("=", 1) for item in env)
    client = _client(ctx)
    try:
        client.json("GET", f"/api/v1/functions/{name}")
        fn = _run(lambda: client.json("PUT", f"/api/v1/functions/{name}?wait=true", json=body))
    except ApiError as exc:
        if exc.status != 404:
            raise click.ClickException(str(exc)) from None
        body.update(name=name, runtime=runtime)
        fn = _run(lambda: client.json("POST", "/api/v1/functions?wait=true", json=body))
    _print(fn)
    if fn["latest_build"] and fn["latest_build"]["status"] == "failed":
        sys.exit(1)


@main.command("list")
@click.option("--name")
@click.option("--tags")
@click.pass_context
def list_(ctx, name, tags) -> None:
    """List functions."""
    params = {k: v for k, v in (("name", name), ("tags", tags)) if v}
    page = _run(lambda: _client(ctx).json("GET", "/api/v1/functions", params=params))
    for fn in page["functions"]:
        click.echo(
            f"{fn['name']:<30} {fn['runtime']:<11} {fn['status']:<9} v{fn['active_version']}"
        )


@main.command()
@click.argument("name")
@click.pass_context
def get(ctx, name) -> None:
    """Show a function's record."""
    _print(_run(lambda: _client(ctx).json("GET", f"/api/v1/functions/{name}")))


@main.command()
@click.argument("name")
@click.option("--data", "-d", default="{}", help="the event as JSON (@FILE reads a file)")
@click.option("--async", "is_async", is_flag=True, help="queue it and print the invocation id")
@click.pass_context
def invoke(ctx, name, data: str, is_async: bool) -> None:
    """Invoke NAME with an event and print its result."""
    body = Path(data[1:]).read_bytes() if data.startswith("@") else data.encode()
    client = _client(ctx)
    path = f"/api/v1/functions/{name}/{'async' if is_async else 'invoke'}"
    resp = _run(lambda: client.request(
        "POST", path, content=body, headers={"Content-Type": "application/json"}))  # fmt: skip
    click.echo(resp.text)
    if resp.headers.get("X-Nimbus-Function-Error"):
        sys.exit(1)


@main.command()
@click.argument("name")
@click.pass_context
def delete(ctx, name) -> None:
    """Delete a function."""
    _run(lambda: _client(ctx).request("DELETE", f"/api/v1/functions/{name}"))
    click.echo(f"deleted {name}")


@main.command()
@click.argument("name")
@click.option("--version", type=int)
@click.pass_context
def build(ctx, name, version) -> None:
    """Show a version's build status and log."""
    params = {"version": version} if version else {}
    info = _run(lambda: _client(ctx).json("GET", f"/api/v1/functions/{name}/build", params=params))
    click.echo(
        f"v{info['version']} {info['status']}" + (f": {info['error']}" if info["error"] else "")
    )
    click.echo(info["log"])


if __name__ == "__main__":
    main()
