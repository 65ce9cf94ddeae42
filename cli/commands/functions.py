"""Functions: create, deploy, list, get, update, delete, build (and the runtimes they use)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import click
from rich.console import Console

from .. import sources
from ..client import FUNCTIONS
from ..completion import function_argument
from ..errors import ApiError, BuildFailed
from ..output import ago, fields, table
from ..output import status as styled
from ..session import Session, api_options, pass_session

RECORD_FIELDS = [
    "id", "name", "runtime", "runtime_version", "status", "active_version", "latest_version",
    "handler", "memory_mb", "timeout_sec", "max_concurrency", "code_size", "env_vars", "tags",
    "description", "webhook_url", "created_at", "updated_at",
]  # fmt: skip


class _Concurrency(click.ParamType):
    """A --max-concurrency value: a number of invocations, or "none" (no cap: JSON null)."""

    name = "N|none"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == NO_CAP:
            return value
        if str(value).lower() == "none":
            return NO_CAP
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'none'", param, ctx)


NO_CAP = "none"


def config_options(command):
    """Settings shared by create, deploy and update."""
    for option in reversed((
        click.option("--handler", help="module.function, e.g. main.handler (file main.py)"),
        click.option("--memory", "memory_mb", type=int, help="memory limit in MB"),
        click.option("--timeout", "timeout_sec", type=float, help="time limit in seconds"),
        click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="repeatable"),
        click.option("--tag", "tags", multiple=True, help="repeatable"),
        click.option("--description"),
        click.option("--requirement", "requirements", multiple=True, metavar="SPEC",
                     help="a Python requirement (repeatable; a folder's requirements.txt too)"),
        click.option("--webhook/--no-webhook", default=None,
                     help="the public webhook URL on or off (default: on)"),
        click.option("--max-concurrency", type=_Concurrency(),
                     help="at most N invocations at once per server, beyond: 429 "
                          "(0 throttles every call; none removes the cap)"),
        click.option("--async-retries", "async_retries", type=click.IntRange(0, 2),
                     help="runs again of an async call the function failed (as Lambda's "
                          "MaximumRetryAttempts; default 0)"),
        click.option("--async-on-failure", "async_on_failure", metavar="FUNCTION",
                     help="send async calls that end failed to this function (as Lambda's "
                          "on-failure destination; 'none' removes it)"),
    )):  # fmt: skip
        command = option(command)
    return command


def wait_options(command):
    command = click.option(
        "--wait-timeout", type=float, default=600, show_default=True, metavar="SECONDS",
        help="how long to follow the build",
    )(command)  # fmt: skip
    return click.option("--no-wait", is_flag=True, help="return once the build is queued")(command)


def _settings(
    handler, memory_mb, timeout_sec, env, tags, description, requirements, webhook,
    max_concurrency, async_retries, async_on_failure,
) -> dict:  # fmt: skip
    body: dict = {}
    if async_retries is not None:
        body["async_retries"] = async_retries
    if async_on_failure is not None:
        body["async_on_failure"] = None if async_on_failure == NO_CAP else async_on_failure
    if max_concurrency is not None:
        body["max_concurrency"] = None if max_concurrency == NO_CAP else max_concurrency
    if handler:
        body["handler"] = handler
    if memory_mb is not None:
        body["memory_mb"] = memory_mb
    if timeout_sec is not None:
        body["timeout_sec"] = timeout_sec
    if env:
        body["env_vars"] = _pairs(env)
    if tags:
        body["tags"] = list(tags)
    if description is not None:
        body["description"] = description
    if requirements:
        body["requirements"] = list(requirements)
    if webhook is not None:
        body["webhook"] = webhook
    return body


def _note_dropped_env(session: Session, existing: dict, body: dict) -> None:
    """`--env` replaces the whole set (the API keeps only what is given, and it shows
    values masked, so the CLI cannot merge them): say which variables go."""
    if "env_vars" not in body:
        return
    dropped = sorted(set(existing.get("env_vars") or {}) - set(body["env_vars"]))
    if dropped:
        session.output.note(f"[yellow]--env replaces every variable: {', '.join(dropped)} "
                            "removed[/yellow] (give them again to keep them)")  # fmt: skip


def _pairs(items: tuple[str, ...]) -> dict[str, str]:
    bad = [item for item in items if "=" not in item]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not KEY=VALUE", param_hint="--env")
    return dict(item.split("=", 1) for item in items)


@click.command()
@click.argument("name")
@click.option(
    "--runtime", "-r", help="python, javascript, go, rust, c, wasm... (with --file: from the files)"
)
@click.option("--code", help="the source, inline")
@click.option("--file", "file", type=click.Path(exists=True, path_type=Path),
              help="a source file, a folder, or a .wasm / native binary")  # fmt: skip
@config_options
@wait_options
@api_options
@pass_session
def create(session: Session, name, runtime, code, file, no_wait, wait_timeout, **settings) -> None:
    """Create a function and wait for its first build.

    \b
      nimbus create hello --runtime python3.11 --handler main.handler \\
          --code 'def handler(e): return e'
    """
    if (code is None) == (file is None):
        raise click.UsageError("give the source as --code TEXT or --file PATH (one of them)")
    if code is not None and not runtime:
        raise click.UsageError("--code needs --runtime (python, javascript, go, …)")
    source = _source(session, runtime, code, file, settings["handler"])
    body = {"name": name, "runtime": source.runtime.name, **source.body, **_settings(**settings)}
    fn = session.client.create_function(body, source.artifact)
    _finish(session, fn, no_wait, wait_timeout, created=True)


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="[NAME] PATH")
@click.option("--runtime", "-r", help="default: from the files")
@click.option("--alias", "alias_name", metavar="ALIAS",
              help="then point this alias at the new version")  # fmt: skip
@click.option("--canary", "canary_alias", metavar="ALIAS",
              help="then move this alias to the new version by an automatic canary")  # fmt: skip
@config_options
@wait_options
@api_options
@pass_session
def deploy(session: Session, args, runtime, alias_name, canary_alias, no_wait, wait_timeout,
           **settings) -> None:  # fmt: skip
    """Create or update a function from a folder or a file, and follow its build.

    The runtime comes from the files (package.json, Cargo.toml, go.mod or the source
    extensions); a folder's requirements.txt becomes the Python requirements; a folder's
    function.json gives settings (name, runtime, handler, memory_mb, timeout_sec, env_vars,
    tags, ...) that flags override. NAME defaults to the folder's or file's name. With
    --alias or --canary, an alias then follows the new version (at once, or step by step as
    `nimbus canary start` does).
    """
    if len(args) > 2:
        raise click.UsageError("deploy takes [NAME] PATH")
    if alias_name and canary_alias:
        raise click.UsageError("give --alias or --canary, not both")
    if no_wait and (alias_name or canary_alias):
        raise click.UsageError("--alias and --canary need the build: drop --no-wait")
    path = Path(args[-1])
    if not path.exists():
        raise click.BadParameter(f"{path} does not exist", param_hint="PATH")
    source = _guard(sources.from_path, session.catalog, path, runtime, settings["handler"])
    name = args[0] if len(args) == 2 else source.name or _guard(sources.default_name, path)
    body = {**source.body, **_settings(**settings)}
    existing = session.client.find_function(name)
    if existing is None:
        body = {"name": name, "runtime": source.runtime.name, **body}
        fn = session.client.create_function(body, source.artifact)
    else:
        # the API refuses another runtime (422 naming both), as any refusal: exit 1
        body = {"runtime": source.runtime.name, **body}
        fn = session.client.update_function(name, body, source.artifact)
        _note_dropped_env(session, existing, body)
    then = _release(session, alias_name, canary_alias)
    _finish(session, fn, no_wait, wait_timeout, created=existing is None, then=then)


def _source(session: Session, runtime: str, code: str | None, file: Path | None, handler):
    if code is not None:
        return _guard(sources.from_code, session.catalog, runtime, code, handler)
    return _guard(sources.from_path, session.catalog, file, runtime, handler)


def _guard(make, *args):
    try:
        return make(*args)
    except sources.SourceError as exc:
        raise click.UsageError(str(exc)) from None


def _finish(
    session: Session, fn: dict, no_wait: bool, timeout: float, created: bool, then=None
) -> None:
    """Follow the new version's build (a live line on a terminal), then print the record."""
    out = session.output
    build = fn.get("latest_build") or {}
    if not no_wait and build.get("status") not in ("ready", "failed", None):
        build = _follow(session, fn["name"], build["version"], timeout)
        fn = session.client.get_function(fn["name"])
    if build.get("status") == "failed":
        details = session.client.get_build(fn["name"], build["version"])
        if not out.json:
            out.err.print(details.get("log") or "", markup=False, highlight=False)
        out.emit(fn, lambda c: None)
        raise BuildFailed(fn, details)
    verb = "created" if created else "updated"
    line = f"{verb} [bold]{fn['name']}[/bold] v{fn['latest_version']}: {styled(fn['status'])}"
    if build.get("status") != "ready":
        line += f"  (build {build.get('status')})"
    if then is not None and build.get("status") == "ready":
        key, value, note = then(fn)
        fn, line = {**fn, key: value}, f"{line}\n{note}"
    out.emit(fn, lambda c: c.print(line))


def _release(session: Session, alias_name: str | None, canary_alias: str | None):
    """After a deploy's build: point an alias at the new version, or start a canary to it
    (default steps), so one command releases behind an alias."""
    from .aliases import split

    def point(fn: dict) -> tuple[str, dict, str]:
        version = fn["latest_version"]
        if canary_alias:
            view = session.client.start_canary(fn["name"], canary_alias, {"version": version})
            return "alias", view, (f"canary started: {fn['name']}:{canary_alias} → v{version} "
                                   f"({split(view)}; nimbus canary status {fn['name']} "
                                   f"{canary_alias} --watch)")  # fmt: skip
        view, _ = session.client.set_alias(fn["name"], alias_name, {"version": version})
        return "alias", view, f"{fn['name']}:{alias_name} → {split(view)}"

    return point if (alias_name or canary_alias) else None


def _follow(session: Session, name: str, version: int, timeout: float) -> dict:
    out = session.output
    started = time.monotonic()
    if out.json or not out.err.is_terminal:
        return session.client.wait_for_build(name, version, timeout)
    with out.err.status(f"building {name} v{version}") as spinner:

        def show(build: dict) -> None:
            lines = [line for line in (build.get("log") or "").splitlines() if line.strip()]
            last = f" — {lines[-1][:80]}" if lines else ""
            spinner.update(
                f"{build['status']} {name} v{version} {time.monotonic() - started:.1f}s{last}"
            )

        build = session.client.wait_for_build(name, version, timeout, on_poll=show)
    out.note(f"build {styled(build['status'])} in {time.monotonic() - started:.1f}s")
    return build


@click.command("list")
@click.option("--name", help="a part of the name")
@click.option("--tag", "tags", multiple=True, help="must have this tag (repeatable)")
@click.option("--runtime")
@click.option("--status", type=click.Choice(["creating", "active", "failed", "offline"]))
@click.option("--limit", type=click.IntRange(1, 100), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@api_options
@pass_session
def list_functions(session: Session, name, tags, runtime, status, limit, offset) -> None:
    """List functions."""
    page = session.client.list_functions(
        name=name, tags=",".join(tags) or None, runtime=runtime, status=status,
        limit=limit, offset=offset,
    )  # fmt: skip

    def render(console: Console) -> None:
        grid = table("NAME", "RUNTIME", "STATUS", "VERSION", "MEMORY", "UPDATED")
        for fn in page["functions"]:
            active, latest = fn.get("active_version"), fn["latest_version"]
            served = f"v{active}" if active else "none"  # no version has built yet
            version = served if active == latest else f"{served} (latest v{latest})"
            grid.add_row(
                fn["name"], fn["runtime"], styled(fn["status"]), version,
                f"{fn['memory_mb']} MB", ago(fn.get("updated_at")),
            )  # fmt: skip
        console.print(grid)
        shown = len(page["functions"])
        if page["total"] > shown:
            console.print(f"[dim]{shown} of {page['total']} (--offset for more)[/dim]")

    session.output.emit(page, render)


@click.command()
@function_argument()
@api_options
@pass_session
def get(session: Session, name: str) -> None:
    """Show a function's record."""
    fn = session.client.get_function(name)

    def render(console: Console) -> None:
        view = dict(fn, status=styled(fn["status"]))
        console.print(fields(view, RECORD_FIELDS))
        build = fn.get("latest_build")
        if build and build["status"] != "ready":
            error = f": {build['error']}" if build.get("error") else ""
            console.print(f"[bold]latest build[/bold]  v{build['version']} "
                          f"{styled(build['status'])}{error}", markup=True)  # fmt: skip

    session.output.emit(fn, render)


@click.command()
@function_argument()
@click.option("--status", type=click.Choice(["active", "offline"]),
              help="offline stops serving; active serves again")  # fmt: skip
@click.option("--code", help="new source, inline (as create takes it)")
@click.option("--file", "file", type=click.Path(exists=True, path_type=Path),
              help="new source: a file, a folder, or a .wasm / native binary")  # fmt: skip
@config_options
@wait_options
@api_options
@pass_session
def update(session: Session, name, status, code, file, no_wait, wait_timeout, **settings) -> None:
    """Change a function's code or settings (either makes a version).

    \b
      nimbus update hello --memory 256
      nimbus update hello --code 'def handler(e): return {"v": 2}'
    """
    if code is not None and file is not None:
        raise click.UsageError("give the source as --code TEXT or --file PATH, not both")
    body = _settings(**settings)
    if status:
        body["status"] = status
    if not body and code is None and file is None:
        raise click.UsageError("nothing to change: give at least one option")
    artifact = None
    if "env_vars" in body or code is not None or file is not None:
        existing = session.client.get_function(name)
        _note_dropped_env(session, existing, body)
        if code is not None or file is not None:
            runtime = existing["runtime"] if code is not None else None
            source = _source(session, runtime, code, file, settings["handler"])
            if file is not None:  # the API refuses another runtime (422), as deploy's
                body["runtime"] = source.runtime.name
            body, artifact = {**source.body, **body}, source.artifact
    fn = session.client.update_function(name, body, artifact)
    _finish(session, fn, no_wait, wait_timeout, created=False)


@click.command()
@function_argument("names", nargs=-1, required=True, metavar="NAME...")
@api_options
@pass_session
def delete(session: Session, names: tuple[str, ...]) -> None:
    """Delete functions (their versions, logs and webhook go with them)."""
    deleted, failed = [], []
    for name in names:  # as `rm a b c`: one that cannot be deleted stops none of the others
        try:
            session.client.delete_function(name)
            deleted.append(name)
        except ApiError as exc:
            failed.append(exc)
    if failed:
        if deleted:
            session.output.note(f"deleted {', '.join(deleted)}")
        for exc in failed[:-1]:
            session.output.note(f"Error: {exc}")
        raise failed[-1]
    session.output.emit({"deleted": deleted}, lambda c: c.print(f"deleted {', '.join(deleted)}"))


@click.command()
@function_argument()
@click.option("--version", type=int, help="default: the latest")
@api_options
@pass_session
def build(session: Session, name: str, version: int | None) -> None:
    """Show a version's build status and log."""
    info = session.client.get_build(name, version)

    def render(console: Console) -> None:
        error = f": {info['error']}" if info.get("error") else ""
        console.print(f"v{info['version']} {styled(info['status'])}{error}")
        console.print(info.get("log") or "", markup=False)

    session.output.emit(info, render)


@click.command()
@api_options
@pass_session
def runtimes(session: Session) -> None:
    """List the runtimes, their aliases and source files."""
    catalog = session.catalog
    data = [
        {"name": r.name, "aliases": list(r.aliases), "extensions": list(r.extensions),
         "default_handler": r.default_handler, "binary": r.binary}
        for r in catalog.runtimes
    ]  # fmt: skip

    def render(console: Console) -> None:
        grid = table("RUNTIME", "ALIASES", "FILES", "DEFAULT HANDLER")
        for r in catalog.runtimes:
            files = ", ".join(r.extensions) or ("binary" if r.binary else "")
            grid.add_row(r.name, ", ".join(r.aliases), files, r.default_handler or "")
        console.print(grid)

    session.output.emit({"runtimes": data}, render)


@click.group()
def webhook() -> None:
    """A function's public webhook URL (no API key; Lambda function-URL events)."""


@webhook.command("url")
@function_argument()
@api_options
@pass_session
def webhook_url(session: Session, name: str) -> None:
    """Print the function's webhook URL, or NAME:ALIAS's own (nothing when it is off)."""
    function, _, alias = name.partition(":")
    if alias:  # as `invoke NAME:ALIAS` names it; `alias set --webhook` gives it a URL
        found = session.client.get_alias(function, alias)
        _show_webhook(session, {**found, "name": name})
        return
    _show_webhook(session, session.client.get_function(name))


@webhook.command("rotate")
@function_argument()
@api_options
@pass_session
def webhook_rotate(session: Session, name: str) -> None:
    """Give the webhook a new secret URL; the old one stops working within a second."""
    _show_webhook(session, session.client.json(
        "POST", f"{FUNCTIONS}/{quote(name, safe='')}/webhook/rotate"))  # fmt: skip


def _show_webhook(session: Session, fn: dict) -> None:
    view = {"name": fn["name"], "webhook_url": fn.get("webhook_url")}
    session.output.emit(view, lambda c: c.print(view["webhook_url"] or "(off)", markup=False))
