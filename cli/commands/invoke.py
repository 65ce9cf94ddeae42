"""Invocation: `invoke` (sync or --async) and `invocations get`."""

from __future__ import annotations

import json
import sys
import time
from functools import partial
from pathlib import Path
from urllib.parse import quote

import click
from rich.console import Console

from ..client import FUNCTIONS, poll
from ..completion import function_argument
from ..output import ago, fields, table
from ..output import status as styled
from ..session import Session, api_options, pass_session

FUNCTION_ERROR_EXIT = 3
FINAL_INVOCATION_STATES = ("succeeded", "failed", "timed_out")
# The server's trigger enum (store.records.Trigger; tests/cli/test_offline_copies.py).
TRIGGERS = ("api", "webhook", "async", "schedule", "workflow")


@click.command()
@function_argument("target", metavar="NAME[:ALIAS|:VERSION]")
@click.option("--data", "-d", help="the event as JSON (@FILE reads a file, - reads stdin)")
@click.option(
    "--file", "-f", "file", type=click.File("rb"), help="read the event from a file (- stdin)"
)
@click.option("--async", "is_async", is_flag=True, help="queue it; print the invocation id")
@click.option("--wait", is_flag=True, help="with --async: wait for the outcome")
@click.option("--version", type=click.IntRange(1), help="a version instead of the active one")
@click.option("--alias", "-a", help="through an alias (as NAME:ALIAS)")
@click.option("--routing-key", "-k", metavar="KEY",
              help="keep calls with this key on one version of a weighted alias")  # fmt: skip
@click.option("--context", help="caller context, a JSON object (X-Nimbus-Context)")
@click.option("--verbose", "-v", is_flag=True, help="also the duration, version and log tail")
@api_options
@pass_session
def invoke(session: Session, target, data, file, is_async, wait, version, alias, routing_key,
           context, verbose) -> None:  # fmt: skip
    """Invoke a function with an event (--data, --file, or stdin with -d -) and print its result.

    \b
      nimbus invoke hello -d '{"name": "World"}'
      nimbus invoke hello:prod        # through the alias prod (or --alias prod)
      nimbus invoke hello:3           # version 3 (or --version 3)

    Exits 3 when the function itself fails (its error is printed; JSON with -o json).
    """
    event = _event(data, file)
    _check_context(context)
    if version is not None and alias is not None:
        raise click.UsageError("give --version or --alias, not both")
    if is_async and routing_key:
        raise click.UsageError("--routing-key applies to a synchronous call only")
    if is_async:
        accepted = session.client.invoke_async(target, event, version=version, alias=alias)
        if wait:
            return _show_invocation(session, _await(session, accepted["invocation_id"]))
        session.output.emit(accepted, lambda c: c.print(accepted["invocation_id"]))
        return
    outcome = session.client.invoke(
        target, event, version=version, alias=alias, context=context,
        routing_key=routing_key, tail=verbose,
    )  # fmt: skip
    if verbose and outcome.log_tail is None and outcome.invocation_id:
        name = target.partition(":")[0]
        outcome.log_tail = _log_lines(session, name, outcome.invocation_id)
    out = session.output
    if out.json:
        body = {"error": outcome.error} if outcome.error else outcome.result
        if verbose:
            body = {"result": outcome.result, "error": outcome.error,
                    **outcome.summary(), "log_tail": outcome.log_tail}  # fmt: skip
        _write(body)
    else:
        if outcome.error is None:
            _write(outcome.result, pretty=True)
        if verbose:
            _describe(out.err, outcome)
        if outcome.error is not None:
            _describe_error(out.err, outcome.error)
    if outcome.error is not None:
        sys.exit(FUNCTION_ERROR_EXIT)


def _event(data: str | None, file) -> bytes:
    if data is not None and file is not None:
        raise click.UsageError("give the event as --data or --file, not both")
    if file is not None:
        return file.read()
    if data is None:
        # NOTE: stdin only when asked (`-d -`, `-f -`): read implicitly, a script's
        # `while read …; do nimbus invoke …` loop would lose its input to the first call.
        return b""
    if data == "-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        try:
            return Path(data[1:]).read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"{data[1:]}: {exc.strerror}", param_hint="--data") from None
    return data.encode()


def _check_context(context: str | None) -> None:
    """--context here, not the API's "X-Nimbus-Context must be a JSON object": the CLI
    user never wrote that header."""
    if context is None:
        return
    try:
        value = json.loads(context)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--context") from None
    if not isinstance(value, dict):
        raise click.BadParameter("a JSON object, e.g. '{\"tenant\": \"acme\"}'",
                                 param_hint="--context")  # fmt: skip


def _write(value, pretty: bool = False) -> None:
    if isinstance(value, str):
        sys.stdout.write(value if value.endswith("\n") else value + "\n")
    else:
        sys.stdout.write(json.dumps(value, indent=2 if pretty else None, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _describe(err: Console, outcome) -> None:
    cold = " (cold start)" if outcome.cold_start else ""
    duration = f"{outcome.duration_ms:.1f} ms" if outcome.duration_ms is not None else "?"
    err.print(
        f"[dim]invocation {outcome.invocation_id} · v{outcome.version} · {duration}{cold}[/dim]"
    )
    if outcome.log_tail:
        err.print("[dim]── log ──[/dim]")
        err.print(outcome.log_tail.rstrip("\n"), markup=False, highlight=False)


def _describe_error(err: Console, error: dict) -> None:
    err.print(f"[bold red]{error.get('type') or error.get('code') or 'Error'}[/bold red]: "
              f"{error.get('message', '')}", highlight=False)  # fmt: skip
    stack = error.get("stack") or []
    if stack:
        err.print("\n".join(stack) if isinstance(stack, list) else str(stack), markup=False)


def _log_lines(session: Session, name: str, invocation_id: str) -> str | None:
    """The invocation's log from the logs API (a server without `X-Nimbus-Log-Tail`).
    NOTE: logs are written off the request path; another worker's arrive within ~0.5 s."""
    for _ in range(8):
        entries = session.client.logs(name, invocation_id=invocation_id, limit=200)
        if entries:
            # stdout is the result (program form); what the function logged is stderr.
            return "\n".join(e["line"] for e in entries if e["stream"] == "stderr")
        time.sleep(0.25)
    return None


def _await(session: Session, invocation_id: str, timeout: float = 330) -> dict:
    fetch = partial(session.client.get_invocation, invocation_id)
    return poll(fetch, FINAL_INVOCATION_STATES, timeout, interval=0.3)


def _show_invocation(session: Session, record: dict) -> None:
    def render(console: Console) -> None:
        ms = record.get("duration_ms")
        view = dict(record, status=styled(record["status"]), function=record["function"]["name"],
                    duration=None if ms is None else f"{ms:.1f} ms")  # fmt: skip
        keys = ["id", "function", "version", "status", "attempts", "duration",
                "created_at", "finished_at"]  # fmt: skip
        console.print(fields(view, keys))
        if record["status"] == "succeeded":
            console.print_json(data=record.get("result"))
        elif record.get("error"):
            _describe_error(console, record["error"])

    session.output.emit(record, render)
    if record["status"] in ("failed", "timed_out"):
        sys.exit(FUNCTION_ERROR_EXIT)


@click.group()
def invocations() -> None:
    """Invocations: a function's recent ones, or one async invocation."""


@invocations.command("get")
@click.argument("invocation_id")
@click.option("--wait", is_flag=True, help="wait until it has finished")
@api_options
@pass_session
def get_invocation(session: Session, invocation_id: str, wait: bool) -> None:
    """Show an async invocation: status, attempts, result or error."""
    record = (
        _await(session, invocation_id) if wait else session.client.get_invocation(invocation_id)
    )
    _show_invocation(session, record)


@invocations.command("list")
@function_argument()
@click.option("--status", type=click.Choice(["queued", "running", *FINAL_INVOCATION_STATES]))
@click.option("--trigger", type=click.Choice(TRIGGERS))
@click.option("--since", help="RFC 3339 time, Unix seconds, or an age like 10m, 2h, 1d")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@api_options
@pass_session
def list_invocations(session: Session, name, status, trigger, since, limit) -> None:
    """A function's recent invocations (every trigger), newest first."""
    given = {"status": status, "trigger": trigger, "since": since, "limit": limit}
    page = session.client.json(
        "GET", f"{FUNCTIONS}/{quote(name, safe='')}/invocations",
        params={k: v for k, v in given.items() if v is not None},
    )  # fmt: skip

    def render(console: Console) -> None:
        grid = table("ID", "VERSION", "TRIGGER", "STATUS", "DURATION", "ERROR", "WHEN")
        for i in page["invocations"]:
            duration = f"{i['duration_ms']:.1f} ms" if i.get("duration_ms") is not None else ""
            grid.add_row(i["id"], f"v{i['version']}", i["trigger"], styled(i["status"]),
                         duration, i.get("error_code") or "", ago(i["created_at"]))  # fmt: skip
        console.print(grid)

    session.output.emit(page, render)
    if page.get("searched_since") and not session.output.json:
        session.output.note(
            f"[dim]searched back to {page['searched_since']} only (the server reads a bounded "
            "number of log batches per listing); older invocations were not searched[/dim]"
        )
