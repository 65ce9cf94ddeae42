"""`nimbus alias`: names for versions with weighted routing; `nimbus canary`: the
automatic canary that moves an alias to a new version step by step."""

from __future__ import annotations

import re
import sys
import time

import click
from rich.console import Console

from .. import moments
from ..completion import function_argument
from ..output import ago, fields, table
from ..session import Session, api_options, pass_session

CANARY_NOT_PROMOTED_EXIT = 3  # as a failed invoke: the new version did not make it
_WEIGHT = re.compile(r"^(\d+)[=:](\d+(?:\.\d+)?)%?$")
ALIAS_FIELDS = ["name", "version", "routing", "description", "webhook_url", "created_at",
                "updated_at"]  # fmt: skip
CANARY_STYLES = {"progressing": "yellow", "promoted": "green", "rolled_back": "red",
                 "aborted": "dim"}  # fmt: skip


def _weights(_ctx, _param, values: tuple[str, ...]) -> dict[str, float]:
    routing: dict[str, float] = {}
    for value in values:
        match = _WEIGHT.match(value.replace(" ", ""))
        if not match:
            raise click.BadParameter(f"{value!r} is not VERSION=PERCENT (e.g. 4=10%)")
        routing[match[1]] = float(match[2])
        if not 0 < routing[match[1]] <= 100:  # the API's "routing.4: …" names no flag
            raise click.BadParameter(f"{value!r}: a weight is above 0% and at most 100%")
    return routing


def _version(session: Session, name: str, text: str) -> int:
    """A version number, or `active` / `latest` read from the function."""
    if text.isascii() and text.isdigit() and int(text) >= 1:  # isdigit() takes '²'
        return int(text)
    if text in ("active", "latest"):
        number = session.client.get_function(name).get(f"{text}_version")
        if number is None:
            raise click.UsageError(f"{name} has no {text} version yet")
        return number
    raise click.BadParameter(f"{text!r}: a version number, active or latest", param_hint="VERSION")


def split(alias: dict) -> str:
    """`v3 90% · v4 10%`: where the alias sends calls."""
    rest = 100 - sum(alias["routing"].values())
    shares = [(alias["version"], rest), *((int(v), w) for v, w in alias["routing"].items())]
    return " · ".join(f"v{v} {w:g}%" for v, w in shares)


def _canary_line(canary: dict | None) -> str:
    if not canary:
        return ""
    style = CANARY_STYLES.get(canary["status"], "")
    state = f"[{style}]{canary['status']}[/{style}]" if style else canary["status"]
    return f"canary v{canary['version']} {state} at {canary['weight']:g}%"


def alias_arguments(command):
    """NAME ALIAS: the function and its alias."""
    command = click.argument("alias_name", metavar="ALIAS")(command)
    return function_argument()(command)


@click.group()
def alias() -> None:
    """Aliases: a name (prod, beta) for a version, optionally sending a share of calls
    to others. Invoke one as `nimbus invoke hello:prod` or `--alias prod`."""


@alias.command("list")
@function_argument()
@api_options
@pass_session
def list_aliases(session: Session, name: str) -> None:
    """A function's aliases and where each sends its calls."""
    page = session.client.list_aliases(name)

    def render(console: Console) -> None:
        grid = table("ALIAS", "ROUTES", "CANARY", "UPDATED", "DESCRIPTION")
        for a in page["aliases"]:
            grid.add_row(a["name"], split(a), _canary_line(a.get("canary")),
                         ago(a["updated_at"]), a.get("description") or "")  # fmt: skip
        console.print(grid)

    session.output.emit(page, render)


@alias.command("get")
@alias_arguments
@api_options
@pass_session
def get_alias(session: Session, name: str, alias_name: str) -> None:
    """Show one alias (and its canary, if it has had one)."""
    _show_alias(session, session.client.get_alias(name, alias_name))


@alias.command("set")
@alias_arguments
@click.argument("version_text", metavar="VERSION")
@click.option("--weight", "-w", "routing", multiple=True, callback=_weights,
              metavar="VERSION=PERCENT",
              help="send this share of calls to another version (repeatable); "
                   "the rest goes to VERSION")  # fmt: skip
@click.option("--description")
@click.option("--webhook/--no-webhook", default=None, help="the alias's own public URL")
@api_options
@pass_session
def set_alias(session: Session, name, alias_name, version_text, routing, description,
              webhook) -> None:  # fmt: skip
    """Create an alias or repoint it (its weights are replaced by those given).

    \b
      nimbus alias set hello prod 3                 # every call to v3
      nimbus alias set hello prod 3 --weight 4=10%  # v3 90 %, v4 10 %
      nimbus alias set hello prod latest
    """
    body: dict = {"version": _version(session, name, version_text), "routing": routing}
    if str(body["version"]) in routing:
        raise click.BadParameter(
            f"v{body['version']} is VERSION, which takes the rest: weight another version",
            param_hint="--weight",
        )
    if description is not None:
        body["description"] = description
    if webhook is not None:
        body["webhook"] = webhook
    view, created = session.client.set_alias(name, alias_name, body)
    verb = "created" if created else "updated"
    session.output.emit(view, lambda c: c.print(f"{verb} {name}:{view['name']} → {split(view)}"))


@alias.command("delete")
@alias_arguments
@api_options
@pass_session
def delete_alias(session: Session, name: str, alias_name: str) -> None:
    """Delete an alias (refused while a schedule or workflow uses it)."""
    session.client.delete_alias(name, alias_name)
    gone = f"{name}:{alias_name}"
    session.output.emit({"deleted": gone}, lambda c: c.print(f"deleted {gone}"))


def _show_alias(session: Session, view: dict) -> None:
    def render(console: Console) -> None:
        console.print(fields({**view, "routing": split(view)}, ALIAS_FIELDS))
        if view.get("canary"):
            console.print()
            _render_canary(console, view["canary"])

    session.output.emit(view, render)


# -- canary ------------------------------------------------------------------------------


@click.group()
def canary() -> None:
    """An automatic canary: move an alias to a new version step by step, promoted when
    its error rate (and p99) stay under the limits, rolled back at once otherwise."""


@canary.command("start")
@alias_arguments
@click.argument("version_text", metavar="VERSION")
@click.option("--steps", default="10,25,50,100", show_default=True,
              help="% of the alias's calls on VERSION, step by step")  # fmt: skip
@click.option("--interval", default="60", show_default=True,
              help="time on each step: seconds, or 30s, 5m, 1h (at least 5 s)")  # fmt: skip
@click.option("--max-error-rate", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="roll back above this share of failed calls (0-1)")  # fmt: skip
@click.option("--min-invocations", type=click.IntRange(1), default=10, show_default=True,
              help="calls a step needs before it is judged")  # fmt: skip
@click.option("--max-p99-ms", type=click.FloatRange(0, min_open=True),
              help="roll back above this p99 latency")  # fmt: skip
@click.option("--on-idle", type=click.Choice(["hold", "promote", "rollback"]), default="hold",
              show_default=True, help="what a step without enough calls comes to")  # fmt: skip
@click.option("--idle-intervals", type=click.IntRange(1), default=3, show_default=True,
              help="intervals a step may lack calls before --on-idle acts")  # fmt: skip
@click.option("--wait", is_flag=True, help="follow it until promoted or rolled back")
@api_options
@pass_session
def start_canary(session: Session, name, alias_name, version_text, steps, interval,
                 max_error_rate, min_invocations, max_p99_ms, on_idle, idle_intervals,
                 wait) -> None:  # fmt: skip
    """Start moving ALIAS to VERSION step by step (an automatic canary).

    \b
      nimbus canary start hello prod 5 --steps 10,50

    With --wait, exits 0 once promoted and 3 if rolled back or aborted.
    """
    body = {
        "version": _version(session, name, version_text),
        "steps": _steps(steps),
        "interval_sec": _interval(interval),
        "max_error_rate": max_error_rate,
        "min_invocations": min_invocations,
        "on_idle": on_idle,
        "idle_intervals": idle_intervals,
    }
    if max_p99_ms is not None:
        body["max_p99_ms"] = max_p99_ms
    view = session.client.start_canary(name, alias_name, body)
    if wait:
        return _follow(session, name, alias_name, view)
    _show_canary(session, view)


@canary.command("status")
@alias_arguments
@click.option("--wait", "--watch", "wait", is_flag=True,
              help="follow it until promoted or rolled back")  # fmt: skip
@api_options
@pass_session
def canary_status(session: Session, name: str, alias_name: str, wait: bool) -> None:
    """An alias's canary: its step, weight, status and every decision with its numbers."""
    view = session.client.get_alias(name, alias_name)
    if view.get("canary") is None:
        raise click.ClickException(f"{name}:{alias_name} has never had a canary")
    if wait:
        return _follow(session, name, alias_name, view)
    _show_canary(session, view)


@canary.command("abort")
@alias_arguments
@api_options
@pass_session
def abort_canary(session: Session, name: str, alias_name: str) -> None:
    """Stop the canary: the alias serves its previous version alone again."""
    _show_canary(session, session.client.abort_canary(name, alias_name))


# NOTE: checked here as the API checks them (CanaryBody), so a mistake names the flag
# typed, not the API's field ("interval_sec: Input should be greater than or equal to 5")
INTERVAL_RANGE = (5, 86400)


def _steps(text: str) -> list[float]:
    try:
        steps = [float(part.strip().rstrip("%")) for part in text.split(",") if part.strip()]
    except ValueError:
        steps = []
    if not steps or steps != sorted(set(steps)) or not 0 < steps[0] <= steps[-1] <= 100:
        raise click.BadParameter(f"{text!r}: increasing percentages above 0, at most 100, "
                                 "like 10,25,50,100", param_hint="--steps")  # fmt: skip
    return steps


def _interval(text: str) -> float:
    low, high = INTERVAL_RANGE
    try:
        seconds = moments.seconds(text)
    except ValueError:
        seconds = None
    if seconds is None or not low <= seconds <= high:
        raise click.BadParameter(f"{text!r}: from {low}s to 1d, e.g. 30s, 5m, 1h",
                                 param_hint="--interval")  # fmt: skip
    return seconds


def _show_canary(session: Session, view: dict) -> None:
    session.output.emit(view, lambda c: _render_canary(c, view["canary"], view))


def _render_canary(console: Console, canary: dict, view: dict | None = None) -> None:
    head = f"{_canary_line(canary)} (from v{canary['from_version']}), steps " + ", ".join(
        f"{s:g}%" for s in canary["steps"]
    )
    console.print(head + (f" · {split(view)}" if view else ""))
    if canary.get("reason"):
        console.print(f"reason: {canary['reason']}", markup=False)
    grid = table("WHEN", "STEP", "WEIGHT", "DECISION", "CALLS", "ERRORS", "P99 ms", "REASON")
    for event in canary.get("history", []):
        grid.add_row(*_event_cells(event))
    console.print(grid)


def _event_cells(event: dict) -> list[str]:
    p99 = event.get("p99_ms")
    return [ago(event["at"]), str(event["step"] + 1), f"{event['weight']:g}%",
            event["decision"], str(event.get("invocations", 0)), str(event.get("errors", 0)),
            "" if p99 is None else f"{p99:.1f}", event.get("reason") or ""]  # fmt: skip


def _follow(session: Session, name: str, alias_name: str, view: dict, interval=1.0) -> None:
    """Poll the alias until its canary is decided, printing each decision as it lands
    (on stderr, so `-o json` prints one document: the final alias)."""
    out = session.output
    printed = 0
    while True:
        events = view["canary"].get("history", [])
        for event in events[printed:]:
            cells = _event_cells(event)
            out.note(f"step {cells[1]} at {cells[2]}: {event['decision']} "
                     f"({cells[4]} calls, {cells[5]} errors) {cells[7]}".rstrip())  # fmt: skip
        printed = len(events)
        if view["canary"]["status"] != "progressing":
            _show_canary(session, view)
            if view["canary"]["status"] != "promoted":
                sys.exit(CANARY_NOT_PROMOTED_EXIT)
            return
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            out.note(f"stopped watching; the canary goes on (nimbus canary abort {name} "
                     f"{alias_name} stops it)")  # fmt: skip
            raise click.Abort from None
        view = session.client.get_alias(name, alias_name)
