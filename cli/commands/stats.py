"""`nimbus stats NAME`: calls, errors, cold starts and latency over a window, per version."""

from __future__ import annotations

from urllib.parse import quote

import click
from rich.console import Console

from .. import moments
from ..client import FUNCTIONS
from ..completion import function_argument
from ..output import fields, table
from ..session import Session, api_options, pass_session


@click.command()
@function_argument(required=False)
@click.option("--since", default="1h", show_default=True,
              help="an age (15m, 2h, 1d), RFC 3339 time or Unix seconds")  # fmt: skip
@click.option("--step", help="seconds per point of the series (JSON output)")
@click.option("--version", type=click.IntRange(1), help="only this version")
@api_options
@pass_session
def stats(session: Session, name: str | None, since: str, step: str | None,
          version: int | None) -> None:  # fmt: skip
    """A function's invocations, errors and latency since a time, by version (without
    NAME: the whole platform's, by function)."""
    if version is not None and name is None:
        raise click.UsageError("--version needs a function NAME")
    given = {"since": moments.since(since), "step": step, "version": version}
    path = f"{FUNCTIONS}/{quote(name, safe='')}/stats" if name else "/api/v1/stats"
    view = session.client.json(
        "GET", path, params={k: v for k, v in given.items() if v is not None}
    )  # fmt: skip

    def render(console: Console) -> None:
        first = "VERSION" if name else "FUNCTION"
        grid = table(first, "CALLS", "ERRORS", "ERROR %", "COLD", "THROTTLED",
                     "P50 ms", "P95 ms", "P99 ms")  # fmt: skip
        if name:
            rows = sorted(view["by_version"].items(), key=lambda item: int(item[0]))
            labelled = [(f"v{v}", w) for v, w in rows]
        else:
            labelled = sorted(view["by_function"].items())
        for label, window in [*labelled, ("all", view["totals"])]:
            grid.add_row(label, *_cells(window))
        console.print(grid)
        # NOTE: it read "others' calls up to 0.5 s late": whose calls?
        console.print(f"[dim]since {view['since']} · calls served by other workers "
                      f"show within {view['staleness_sec']:g} s[/dim]")  # fmt: skip

    session.output.emit(view, render)


@click.command()
@api_options
@pass_session
def quota(session: Session) -> None:
    """The server's limits and what is used of them."""
    view = session.client.json("GET", "/api/v1/quota")

    def render(console: Console) -> None:
        limits, usage = view["limits"], view["usage"]
        running = usage["concurrent_invocations"]["server"]
        rows = {
            "functions": f"{usage['functions']} of {limits['max_functions']}",
            "running now": f"{running} of {limits['max_concurrent']} "
                           f"({limits['workers']} workers)",
            "stored code": f"{usage['stored_bytes']:,} bytes",
            "memory_mb": _range(limits["memory_mb"]),
            **_floors(limits["memory_mb"]),
            "timeout_sec": _range(limits["timeout_sec"]),
            "code size": _range(limits["code_size_bytes"]) + " bytes",
            "event size": f"{limits['event_size_bytes']:,} bytes",
            "log retention": f"{limits['log_retention_hours']:g} h",
        }  # fmt: skip
        console.print(fields(rows, list(rows)))

    session.output.emit(view, render)


def _range(limit: dict) -> str:
    """`min 64, max 4,096, default 128` (per-runtime detail is in the JSON)."""
    return ", ".join(f"{k} {_number(v)}" for k, v in limit.items() if isinstance(v, int | float))


def _floors(memory: dict) -> dict[str, str]:
    """`32 for go, python, javascript`: runtimes whose smallest memory_mb is above the
    server's (a Python function given the table's `min 16` was refused with 422)."""
    by_floor: dict[int, list[str]] = {}
    for runtime, floor in (memory.get("min_by_runtime") or {}).items():
        if floor != memory.get("min"):
            by_floor.setdefault(floor, []).append(runtime)
    text = "; ".join(
        f"{_number(f)} for {', '.join(names)}" for f, names in sorted(by_floor.items())
    )
    return {"memory_mb min": text} if text else {}


def _number(value: float) -> str:
    # NOTE: not `:,g`, which keeps 6 digits: a 50 MB limit read "5.24288e+07"
    return f"{value:,.0f}" if value == int(value) else f"{value:,}"


def _cells(window: dict) -> list[str]:
    rate = window.get("error_rate")
    latency = window["duration_ms"]

    def ms(key: str) -> str:
        return "" if latency.get(key) is None else f"{latency[key]:.1f}"

    return [
        str(window["invocations"]), str(window["errors"]),
        "" if rate is None else f"{rate * 100:.1f}", str(window["cold_starts"]),
        str(window["throttled"]), ms("p50"), ms("p95"), ms("p99"),
    ]  # fmt: skip
