"""`nimbus workflows` (Amazon States Language) and `nimbus executions`."""

from __future__ import annotations

import json
import signal
import sys
import threading
from functools import partial
from pathlib import Path
from urllib.parse import quote

import click
from rich.console import Console

from ..client import WORKFLOWS, poll
from ..completion import workflow_names
from ..errors import ApiError
from ..output import ago, fields, table
from ..output import status as styled
from ..session import Session, api_options, pass_session

EXECUTIONS = "/api/v1/executions"
FINAL = ("succeeded", "failed", "timed_out", "aborted")
EXECUTION_FIELDS = ["id", "workflow", "workflow_version", "status", "input", "output", "error",
                    "cause", "started_at", "stopped_at"]  # fmt: skip


def _path(base: str, ref: str, *rest: str) -> str:
    return "/".join([base, quote(ref, safe=""), *rest])


def _json_arg(value: str | None, hint: str) -> bytes:
    """JSON text, `@FILE` or `-` (stdin); checked here so a typo is a usage error."""
    if value is None:
        return b"{}"
    if value == "-":
        raw = sys.stdin.buffer.read()
    elif value.startswith("@"):
        try:
            raw = Path(value[1:]).read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"{value[1:]}: {exc.strerror}", param_hint=hint) from None
    else:
        raw = value.encode()
    try:
        json.loads(raw)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=hint) from None
    return raw


@click.group()
def workflows() -> None:
    """Workflows of functions in Amazon States Language (Step Functions' format)."""


@workflows.command("list")
@api_options
@pass_session
def list_workflows(session: Session) -> None:
    """List workflows."""
    page = session.client.json("GET", WORKFLOWS, params={"limit": 100})

    def render(console: Console) -> None:
        grid = table("NAME", "VERSION", "STATES", "UPDATED")
        for w in page["workflows"]:
            states = len(w["definition"].get("States", {}))
            grid.add_row(w["name"], f"v{w['version']}", str(states), ago(w.get("updated_at")))
        console.print(grid)

    session.output.emit(page, render)


@workflows.command("get")
@click.argument("name", shell_complete=workflow_names)
@api_options
@pass_session
def get_workflow(session: Session, name: str) -> None:
    """Show a workflow and its definition."""
    workflow = session.client.json("GET", _path(WORKFLOWS, name))

    def render(console: Console) -> None:
        console.print(fields(workflow, ["id", "name", "version", "description", "updated_at"]))
        console.print_json(data=workflow["definition"])

    session.output.emit(workflow, render)


@workflows.command("deploy")
@click.argument("name", shell_complete=workflow_names)
@click.argument("definition", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--description")
@api_options
@pass_session
def deploy_workflow(session: Session, name: str, definition: Path, description) -> None:
    """Create a workflow from an ASL JSON file, or give it a new version.

    The file holds the definition (StartAt, States), or a workflow as the API takes or
    gives it (`{"name", "definition", ...}`, what `nimbus workflows get -o json` prints):
    its definition and description are used, NAME names the workflow."""
    try:
        asl = json.loads(definition.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="DEFINITION") from None
    if isinstance(asl, dict) and "States" not in asl and isinstance(asl.get("definition"), dict):
        # NOTE: the README's request bodies and `workflows get` wrap the definition; taken
        # as it is, the server refused it with "unknown field definition".
        if description is None and isinstance(asl.get("description"), str):
            description = asl["description"] or None
        asl = asl["definition"]
    body = {"definition": asl, **({"description": description} if description else {})}
    client = session.client
    try:
        client.json("GET", _path(WORKFLOWS, name))
    except ApiError as exc:
        if exc.status != 404:
            raise
        workflow = client.json("POST", WORKFLOWS, json={"name": name, **body})
    else:
        workflow = client.json("PUT", _path(WORKFLOWS, name), json=body)
    session.output.emit(workflow, lambda c: c.print(f"{workflow['name']} v{workflow['version']}"))


@workflows.command("delete")
@click.argument("name", shell_complete=workflow_names)
@api_options
@pass_session
def delete_workflow(session: Session, name: str) -> None:
    """Delete a workflow."""
    session.client.request("DELETE", _path(WORKFLOWS, name))
    session.output.emit({"deleted": name}, lambda c: c.print(f"deleted {name}"))


@workflows.command("start")
@click.argument("name", shell_complete=workflow_names)
@click.option("--input", "--data", "-d", "input_",
              help="the input as JSON (@FILE, - for stdin)")  # fmt: skip
@click.option("--wait", is_flag=True, help="wait for the execution to finish")
@click.option("--watch", is_flag=True, help="print its events as they happen, then the outcome")
@api_options
@pass_session
def start(session: Session, name: str, input_: str | None, wait: bool, watch: bool) -> None:
    """Start an execution; prints its id (or, with --wait or --watch, its outcome)."""
    execution = session.client.json(
        "POST", _path(WORKFLOWS, name, "executions"), content=_json_arg(input_, "--input"),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    if watch:
        return _watch(session, execution["id"])
    if wait:
        return _show(session, _await(session, execution["id"]))
    session.output.emit(execution, lambda c: c.print(execution["id"]))


def _await(session: Session, execution_id: str, timeout: float = 3600) -> dict:
    fetch = partial(session.client.json, "GET", _path(EXECUTIONS, execution_id))
    return poll(fetch, FINAL, timeout, interval=0.5)


def _show(session: Session, execution: dict) -> None:
    def render(console: Console) -> None:
        view = dict(execution, status=styled(execution["status"]),
                    workflow=execution["workflow"]["name"])  # fmt: skip
        console.print(fields(view, EXECUTION_FIELDS))

    session.output.emit(execution, render)
    if execution["status"] in ("failed", "timed_out", "aborted"):
        sys.exit(3)  # as a failed invoke: the work failed, not the API call


@click.group()
def executions() -> None:
    """Executions of workflows: list, get, watch, history, stop."""


@executions.command("list")
@click.argument("workflow", shell_complete=workflow_names)
@click.option("--status", type=click.Choice(["running", *FINAL]))
@api_options
@pass_session
def list_executions(session: Session, workflow: str, status: str | None) -> None:
    """List a workflow's executions, newest first."""
    params = {"limit": 100, **({"status": status} if status else {})}
    page = session.client.json("GET", _path(WORKFLOWS, workflow, "executions"), params=params)

    def render(console: Console) -> None:
        grid = table("ID", "VERSION", "STATUS", "STARTED", "ERROR")
        for e in page["executions"]:
            grid.add_row(e["id"], f"v{e['workflow_version']}", styled(e["status"]),
                         ago(e["started_at"]), e.get("error") or "")  # fmt: skip
        console.print(grid)

    session.output.emit(page, render)


@executions.command("get")
@click.argument("execution_id")
@click.option("--wait", is_flag=True, help="wait until it has finished")
@api_options
@pass_session
def get_execution(session: Session, execution_id: str, wait: bool) -> None:
    """Show an execution: status, input, output or error. Exits 3 if it failed."""
    if wait:
        return _show(session, _await(session, execution_id))
    _show(session, session.client.json("GET", _path(EXECUTIONS, execution_id)))


@executions.command("watch")
@click.argument("execution_id")
@click.option("--interval", type=float, default=0.5, hidden=True)
@api_options
@pass_session
def watch(session: Session, execution_id: str, interval: float) -> None:
    """Print an execution's events as they happen (stderr), then its outcome; exits 3
    if it failed."""
    _watch(session, execution_id, interval)


def _watch(session: Session, execution_id: str, interval: float = 0.5) -> None:
    # Ctrl+C only sets a flag, seen between polls: an interrupt raised inside an HTTP
    # call could leave the client's connection pool locked, and the exit then hangs
    # (seen once under load: the watcher outlived SIGINT by 30 s).
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return _poll(session, execution_id, interval, stop)  # signals reach the main thread only
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        _poll(session, execution_id, interval, stop)
    finally:
        signal.signal(signal.SIGINT, previous)


def _poll(session: Session, execution_id: str, interval: float, stop: threading.Event) -> None:
    printed = 0
    while True:
        # the record first: a final record read before the history means no event is missed
        execution = session.client.json("GET", _path(EXECUTIONS, execution_id))
        events = session.client.json("GET", _path(EXECUTIONS, execution_id, "history"))["events"]
        for event in events[printed:]:
            state = f" {event['state']}" if event.get("state") else ""
            session.output.note(f"[dim]{event['timestamp'][11:23]}[/dim] {event['type']}{state}")
        printed = len(events)
        if execution["status"] in FINAL:
            return _show(session, execution)
        if stop.wait(interval):
            session.output.note(f"stopped watching; the execution goes on "
                                f"(nimbus executions stop {execution_id} stops it)")  # fmt: skip
            raise click.Abort


@executions.command("history")
@click.argument("execution_id")
@api_options
@pass_session
def history(session: Session, execution_id: str) -> None:
    """An execution's events (Step Functions' names: TaskStateEntered, TaskSucceeded...)."""
    page = session.client.json("GET", _path(EXECUTIONS, execution_id, "history"))

    def render(console: Console) -> None:
        grid = table("#", "TIME", "EVENT", "STATE")
        for e in page["events"]:
            grid.add_row(str(e["id"]), e["timestamp"][11:23], e["type"], e.get("state") or "")
        console.print(grid)

    session.output.emit(page, render)


@executions.command("stop")
@click.argument("execution_id")
@click.option("--error", help="an error name to record")
@click.option("--cause", help="why")
@api_options
@pass_session
def stop(session: Session, execution_id: str, error: str | None, cause: str | None) -> None:
    """Stop a running execution (it ends as aborted)."""
    body = {k: v for k, v in (("error", error), ("cause", cause)) if v}
    execution = session.client.json("POST", _path(EXECUTIONS, execution_id, "stop"), json=body)
    session.output.emit(execution, lambda c: c.print(f"{execution_id} {execution['status']}"))
