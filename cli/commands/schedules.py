"""`nimbus schedules`: cron and rate() triggers of a function (or, with --workflow, of a
workflow: each tick starts an execution)."""

from __future__ import annotations

import json

import click
from rich.console import Console

from ..completion import function_argument
from ..output import ago, fields, table
from ..session import Session, api_options, pass_session

VIEW_FIELDS = ["id", "expression", "summary", "timezone", "qualifier", "event", "enabled",
               "description", "next_run_at", "last_run_at", "last_invocation_id"]  # fmt: skip


def _event(value: str | None):
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--event") from None


def schedule_options(command):
    for option in reversed((
        click.option("--event", help="the JSON event each tick sends (default {})"),
        click.option("--timezone", "--tz", "timezone", help="IANA name (default UTC)"),
        click.option("--qualifier", help="a version number or an alias (default: active)"),
        click.option("--description"),
    )):  # fmt: skip
        command = option(command)
    return command


def _body(event, timezone, qualifier, description) -> dict:
    given = {"event": _event(event), "timezone": timezone, "qualifier": qualifier,
             "description": description}  # fmt: skip
    return {k: v for k, v in given.items() if v is not None}


def owner_arguments(command):
    """NAME (a function, or a workflow with --workflow)."""
    command = click.option(
        "--workflow", "-W", "workflow", is_flag=True,
        help="NAME is a workflow: each tick starts an execution",
    )(command)  # fmt: skip
    return function_argument()(command)


def _show(session: Session, schedule: dict) -> None:
    session.output.emit(schedule, lambda c: c.print(fields(schedule, VIEW_FIELDS)))


@click.group()
def schedules() -> None:
    """Run a function (or, with --workflow, a workflow) on a schedule: cron (5 or 6
    fields, @hourly) or rate(5 minutes)."""


@schedules.command("list")
@function_argument(required=False)
@click.option("--workflow", "-W", "workflow", is_flag=True, help="NAME is a workflow")
@click.option("--name", "part", help="without NAME: of functions and workflows whose name "
              "holds this")  # fmt: skip
@click.option("--enabled/--disabled", "enabled", default=None,
              help="without NAME: only those switched on (off)")  # fmt: skip
@click.option("--limit", type=click.IntRange(1, 100), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@api_options
@pass_session
def list_schedules(session: Session, name, workflow, part, enabled, limit, offset) -> None:
    """List a function's schedules and when each runs next; without NAME, every
    function's and workflow's."""
    if name is None:
        if workflow:
            raise click.UsageError("--workflow names a workflow: give its NAME")
        page = session.client.list_all_schedules(
            name=part, enabled=enabled, limit=limit, offset=offset
        )
    elif any(_given(p) for p in ("part", "enabled", "limit", "offset")):
        raise click.UsageError("--name, --enabled/--disabled, --limit and --offset list every "
                               "schedule: give no NAME")  # fmt: skip
    else:
        page = session.client.list_schedules(name, workflow)

    def render(console: Console) -> None:
        owner = ("OWNER",) if name is None else ()
        grid = table(*owner, "ID", "EXPRESSION", "WHEN", "ENABLED", "NEXT", "LAST")
        for s in page["schedules"]:
            of = (_owner(s),) if name is None else ()
            grid.add_row(*of, s["id"], s["expression"], s["summary"],
                         "yes" if s["enabled"] else "no", s.get("next_run_at") or "",
                         ago(s.get("last_run_at")))  # fmt: skip
        console.print(grid)
        shown = len(page["schedules"])
        if page["total"] > shown:
            console.print(f"[dim]{shown} of {page['total']} (--offset for more)[/dim]")

    session.output.emit(page, render)


def _given(param: str) -> bool:
    source = click.get_current_context().get_parameter_source(param)
    return source is not None and source != click.core.ParameterSource.DEFAULT


def _owner(schedule: dict) -> str:
    if schedule.get("workflow_name"):
        return f"workflow {schedule['workflow_name']}"
    return schedule.get("function_name") or schedule.get("function_id") or ""


@schedules.command("create")
@owner_arguments
@click.argument("expression")
@schedule_options
@click.option("--disabled", is_flag=True, help="create it switched off")
@api_options
@pass_session
def create_schedule(session: Session, name, workflow, expression, disabled, **options) -> None:
    """Add a schedule: cron, @daily or rate(5 minutes).

    \b
      nimbus schedules create report 'rate(5 minutes)'
      nimbus schedules create report '0 9 * * mon-fri' --timezone Europe/Berlin
    """
    body = {"expression": expression, **_body(**options)}
    if disabled:
        body["enabled"] = False
    _show(session, session.client.create_schedule(name, body, workflow))


@schedules.command("get")
@owner_arguments
@click.argument("schedule_id")
@api_options
@pass_session
def get_schedule(session: Session, name: str, workflow: bool, schedule_id: str) -> None:
    """Show one schedule."""
    _show(session, session.client.get_schedule(name, schedule_id, workflow))


@schedules.command("update")
@owner_arguments
@click.argument("schedule_id")
@click.option("--expression")
@schedule_options
@click.option("--enable/--disable", "enabled", default=None)
@api_options
@pass_session
def update_schedule(session: Session, name, workflow, schedule_id, expression, enabled,
                    **options) -> None:  # fmt: skip
    """Change a schedule (only what is given)."""
    body = _body(**options)
    if expression:
        body["expression"] = expression
    if enabled is not None:
        body["enabled"] = enabled
    if not body:
        raise click.UsageError("nothing to change: give at least one option")
    _show(session, session.client.update_schedule(name, schedule_id, body, workflow))


def _switch(enabled: bool, verb: str):
    @schedules.command(verb, help=f"{verb.capitalize()} a schedule (it keeps its settings).")
    @owner_arguments
    @click.argument("schedule_id")
    @api_options
    @pass_session
    def switch(session: Session, name: str, workflow: bool, schedule_id: str) -> None:
        body = {"enabled": enabled}
        _show(session, session.client.update_schedule(name, schedule_id, body, workflow))

    return switch


enable = _switch(True, "enable")
disable = _switch(False, "disable")


@schedules.command("delete")
@owner_arguments
@click.argument("schedule_id")
@api_options
@pass_session
def delete_schedule(session: Session, name: str, workflow: bool, schedule_id: str) -> None:
    """Delete a schedule."""
    session.client.delete_schedule(name, schedule_id, workflow)
    session.output.emit({"deleted": schedule_id}, lambda c: c.print(f"deleted {schedule_id}"))
