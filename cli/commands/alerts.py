"""`nimbus alerts`: rules on the windowed stats that POST a signed webhook when they
start and stop breaching."""

from __future__ import annotations

import re
from urllib.parse import quote

import click
from rich.console import Console

from .. import moments
from ..completion import function_names
from ..output import ago, fields, table
from ..session import Session, api_options, pass_session

ALERTS = "/api/v1/alerts"
STATES = ("ok", "pending", "firing")
STATE_STYLES = {"ok": "green", "pending": "yellow", "firing": "bold red"}
_CONDITION = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=|>|<|gte|gt|lte|lt)\s*(\S+)\s*$")
ALERT_FIELDS = ["id", "name", "description", "function", "condition", "window", "for",
                "notify", "enabled", "state", "since", "value", "evaluated_until",
                "evaluate_every_sec", "pending_deliveries", "created_at"]  # fmt: skip


def _alert(session: Session, alert_id: str, *rest: str) -> str:
    """A rule's path, by its id or by the name `alerts list` shows beside it."""
    alert_id = session.id_by_name(ALERTS, "alerts", "alr_", alert_id)
    return "/".join([ALERTS, quote(alert_id, safe=""), *rest])


def _condition(text: str) -> dict:
    """`error_rate > 0.05` → metric, op and threshold (the server checks the metric)."""
    match = _CONDITION.match(text)
    try:
        threshold = float(match[3]) if match else None
    except ValueError:
        threshold = None
    if threshold is None:
        raise click.BadParameter(
            f"{text!r}: METRIC OP NUMBER, e.g. 'error_rate > 0.05' or 'p99_ms >= 250'",
            param_hint="CONDITION",
        )
    return {"metric": match[1], "op": match[2], "threshold": threshold}


def _seconds(text: str | None, hint: str) -> int | None:
    if text is None:
        return None
    try:
        return int(moments.seconds(text))
    except ValueError:
        raise click.BadParameter(f"{text!r}: seconds, or 30s, 5m, 1h", param_hint=hint) from None


def rule_options(command):
    """What create and update share (update changes only what is given)."""
    for option in reversed((
        click.option("--function", "-f", shell_complete=function_names,
                     help="watch this function (default: every function together)"),
        click.option("--for", "for_", metavar="DURATION",
                     help="breach this long before firing (pending meanwhile)"),
        click.option("--secret", help="HMAC key of X-Nimbus-Signature (default: generated, "
                                      "shown once)"),
        click.option("--description"),
    )):  # fmt: skip
        command = option(command)
    return command


def _fields(function, for_, secret, description, webhook) -> dict:
    body: dict = {}
    if function is not None:
        body["function"] = function
    if for_ is not None:
        body["for_sec"] = _seconds(for_, "--for")
    if description is not None:
        body["description"] = description
    if webhook is not None or secret is not None:
        if webhook is None:
            raise click.UsageError("--secret goes with --webhook (the notification's URL)")
        body["notify"] = {"webhook_url": webhook, **({"secret": secret} if secret else {})}
    return body


def _state(value: str) -> str:
    style = STATE_STYLES.get(value)
    return f"[{style}]{value}[/{style}]" if style else value


def condition_text(alert: dict) -> str:
    return f"{alert['metric']} {alert['op']} {alert['threshold']:g}"


def _show(session: Session, alert: dict) -> None:
    def render(console: Console) -> None:
        view = dict(
            alert, state=_state(alert["state"]), condition=condition_text(alert),
            function=(alert.get("function") or {}).get("name") or "every function",
            window=f"{alert['window_sec']} s", notify=alert["notify"]["webhook_url"],
            **{"for": f"{alert['for_sec']} s" if alert.get("for_sec") else None},
        )  # fmt: skip
        console.print(fields(view, ALERT_FIELDS))
        secret = alert["notify"].get("secret")
        if secret:
            console.print(f"[bold]secret[/bold]  {secret}", markup=True, highlight=False)
            session.output.note("the secret is shown once: keep it to verify X-Nimbus-Signature")

    session.output.emit(alert, render)


@click.group()
def alerts() -> None:
    """Alert rules: a metric of a function (or of all) over a window, e.g. error_rate > 0.05
    over 5 minutes, POSTed to a webhook when it fires and when it resolves."""


@alerts.command("list")
@click.option("--function", "-f", shell_complete=function_names, help="only this function's")
@click.option("--state", type=click.Choice(STATES))
@api_options
@pass_session
def list_alerts(session: Session, function: str | None, state: str | None) -> None:
    """List alert rules with their state and last value."""
    params = {k: v for k, v in (("function", function), ("state", state)) if v}
    page = session.client.json("GET", ALERTS, params=params)

    def render(console: Console) -> None:
        grid = table("ID", "NAME", "FUNCTION", "CONDITION", "WINDOW", "STATE", "SINCE", "VALUE")
        for a in page["alerts"]:
            state = _state(a["state"]) if a["enabled"] else "[dim]disabled[/dim]"
            value = "" if a.get("value") is None else f"{a['value']:g}"
            grid.add_row(a["id"], a["name"], (a.get("function") or {}).get("name") or "*",
                         condition_text(a), f"{a['window_sec']}s", state, ago(a["since"]),
                         value)  # fmt: skip
        console.print(grid)

    session.output.emit(page, render)


@alerts.command("get")
@click.argument("alert_id", metavar="ID|NAME")
@api_options
@pass_session
def get_alert(session: Session, alert_id: str) -> None:
    """Show a rule: its condition, state since when, last value, webhook."""
    _show(session, session.client.json("GET", _alert(session, alert_id)))


@alerts.command("create")
@click.argument("name")
@click.argument("condition")
@click.option(
    "--window",
    required=True,
    metavar="DURATION",
    help="the window the metric is taken over: 30s, 5m, 1h (a multiple of 10 s)",
)
@click.option("--webhook", required=True, metavar="URL", help="where firing/resolved is POSTed")
@rule_options
@click.option("--disabled", is_flag=True, help="create it switched off")
@api_options
@pass_session
def create_alert(session: Session, name, condition, window, webhook, disabled, **options) -> None:
    """Add a rule. CONDITION is METRIC OP NUMBER; metrics: error_rate (0-1), p99_ms,
    throttles, cold_starts, invocations. --window and --webhook are required (a rule
    has no default window or destination).

    \b
      nimbus alerts create "checkout failing" 'error_rate > 0.05' -f checkout \\
          --window 5m --for 1m --webhook https://hooks.example.com/nimbus
    """
    body = {"name": name, **_condition(condition), "window_sec": _seconds(window, "--window"),
            **_fields(webhook=webhook, **options)}  # fmt: skip
    if disabled:
        body["enabled"] = False
    _show(session, session.client.json("POST", ALERTS, json=body))


@alerts.command("update")
@click.argument("alert_id", metavar="ID|NAME")
@click.option("--name")
@click.option("--condition", help="METRIC OP NUMBER, e.g. 'p99_ms > 300'")
@click.option("--window", metavar="DURATION")
@click.option("--webhook", metavar="URL")
@rule_options
@api_options
@pass_session
def update_alert(session: Session, alert_id, name, condition, window, webhook, **options) -> None:
    """Change a rule (only what is given; a changed condition counts --for afresh)."""
    body = _fields(webhook=webhook, **options)
    if name is not None:
        body["name"] = name
    if condition is not None:
        body.update(_condition(condition))
    if window is not None:
        body["window_sec"] = _seconds(window, "--window")
    if not body:
        raise click.UsageError("nothing to change: give at least one option")
    _show(session, session.client.json("PUT", _alert(session, alert_id), json=body))


def _switch(verb: str):
    note = " (silently: no 'resolved' is sent)" if verb == "disable" else ""

    @alerts.command(verb, help=f"{verb.capitalize()} a rule{note}.")
    @click.argument("alert_id", metavar="ID|NAME")
    @api_options
    @pass_session
    def switch(session: Session, alert_id: str) -> None:
        _show(session, session.client.json("POST", _alert(session, alert_id, verb)))

    return switch


enable = _switch("enable")
disable = _switch("disable")


@alerts.command("delete")
@click.argument("alert_id", metavar="ID|NAME")
@api_options
@pass_session
def delete_alert(session: Session, alert_id: str) -> None:
    """Delete a rule."""
    session.client.request("DELETE", _alert(session, alert_id))
    session.output.emit({"deleted": alert_id}, lambda c: c.print(f"deleted {alert_id}"))


@alerts.command("history")
@click.argument("alert_id", metavar="ID|NAME")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@api_options
@pass_session
def alert_history(session: Session, alert_id: str, limit: int) -> None:
    """State changes, webhook deliveries (with their answers) and edits, newest first."""
    page = session.client.json("GET", _alert(session, alert_id, "history"), params={"limit": limit})

    def render(console: Console) -> None:
        grid = table("WHEN", "KIND", "STATE", "VALUE", "DELIVERY", "DETAIL")
        for e in page["events"]:
            state = e.get("state") or ""
            if e.get("previous"):
                state = f"{e['previous']} → {state}"
            value = "" if e.get("value") is None else f"{e['value']:g}"
            delivery = ""
            if e["kind"] == "delivery":
                delivery = f"#{e.get('attempt')} {e.get('outcome') or ''}".strip()
            detail = e.get("error") or e.get("detail") or (
                f"HTTP {e['status_code']}" if e.get("status_code") else "")  # fmt: skip
            grid.add_row(ago(e["at"]), e["kind"], state, value, delivery,
                         detail or e.get("by") or "")  # fmt: skip
        console.print(grid)

    session.output.emit(page, render)
