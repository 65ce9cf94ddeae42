"""`nimbus stats NAME`: calls, errors, cold starts and latency over a window, per version."""

from __future__ import annotations

from urllib.parse import quote

import click
from rich.console import Console

from .. import moments
from ..client import FUNCTIONS
from ..output import table
from ..session import Session, api_options, pass_session


@click.command()
@click.argument("name")
@click.option("--since", default="1h", show_default=True,
              help="an age (15m, 2h, 1d), RFC 3339 time or Unix seconds")  # fmt: skip
@click.option("--step", help="seconds per point of the series (JSON output)")
@click.option("--version", type=click.IntRange(1), help="only this version")
@api_options
@pass_session
def stats(session: Session, name: str, since: str, step: str | None, version: int | None) -> None:
    """A function's invocations, errors and latency since a time, by version."""
    given = {"since": moments.since(since), "step": step, "version": version}
    view = session.client.json(
        "GET", f"{FUNCTIONS}/{quote(name, safe='')}/stats",
        params={k: v for k, v in given.items() if v is not None},
    )  # fmt: skip

    def render(console: Console) -> None:
        grid = table("VERSION", "CALLS", "ERRORS", "ERROR %", "COLD", "THROTTLED",
                     "P50 ms", "P95 ms", "P99 ms")  # fmt: skip
        rows = sorted(view["by_version"].items(), key=lambda item: int(item[0]))
        for label, window in [*((f"v{v}", w) for v, w in rows), ("all", view["totals"])]:
            grid.add_row(label, *_cells(window))
        console.print(grid)
        console.print(f"[dim]since {view['since']} · others' calls up to "
                      f"{view['staleness_sec']:g} s late[/dim]")  # fmt: skip

    session.output.emit(view, render)


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
