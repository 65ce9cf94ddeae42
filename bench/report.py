"""The report: machine, date, versions and every comparison, as JSON and Markdown."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import plot, wrk
from .model import Comparison, Result
from .servers import REPO

PROFILE_COMMAND = "python -m bench --profile"
# Comparisons `--profile` explains (bench/profile.py) → the profile that does:
# a small compiled function takes the same gateway path as the WAT echo.
PROFILED = {"http-invoke": "http-invoke", "runtime-load": "http-invoke"}


@dataclass
class Outcome:
    """What one registered comparison produced: results, or the error that stopped it."""

    comparison: Comparison
    results: list[Result] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "kernel": platform.release(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions() -> dict:
    found = {"python": platform.python_version(), "wrk": wrk.version()}
    for package in ("wasmtime", "falcon", "gunicorn", "orjson"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["git_commit"] = git_commit()
    return found


def git_commit() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO, timeout=10)
        return out.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def build(
    outcomes: list[Outcome],
    *,
    quick: bool,
    params: dict,
    started: dt.datetime,
    machine_info: dict,
    profiles: dict[str, str],
) -> dict:
    machine_info = {**machine_info, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    return {
        "schema": 1,
        "date": started.isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "duration_s": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
        "machine": machine_info,
        "versions": versions(),
        "params": params,
        "profiles": profiles,
        "comparisons": [
            {
                "key": o.comparison.key,
                "title": o.comparison.title,
                "seconds": round(o.seconds, 1),
                "error": o.error,
                "results": [r.as_dict() for r in o.results],
            }
            for o in outcomes
        ],
    }


def write(report: dict, results_dir: Path) -> tuple[Path, Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    report["plots"] = plots(report, results_dir)
    json_path = results_dir / "latest.json"
    md_path = results_dir / "latest.md"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path


def plots(report: dict, results_dir: Path) -> dict[str, str]:
    """The latency plot next to the report: {"latency": file name}, or why it is missing."""
    (results_dir / plot.FILENAME).unlink(missing_ok=True)  # never show an older run's plot
    try:
        path = plot.latency_png(report, results_dir)
    except Exception as exc:  # a broken plot must not cost the numbers
        return {"latency_error": f"{type(exc).__name__}: {exc}"}
    return {"latency": path.name} if path else {}


def _num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def _plot_lines(plots: dict[str, str]) -> list[str]:
    if "latency" in plots:
        return [
            f"Latency distributions (every loaded side, percentile curves): "
            f"[{plots['latency']}]({plots['latency']})",
            "",
            f"![latency percentiles]({plots['latency']})",
            "",
        ]
    if "latency_error" in plots:
        return [f"No latency plot: {plots['latency_error']}", ""]
    return []


def markdown(report: dict) -> str:
    m, v = report["machine"], report["versions"]
    lines = [
        f"# Nimbus benchmarks ({report['mode']} run)",
        "",
        f"- date: {report['date']} (took {report['duration_s']} s)",
        f"- machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"kernel {m['kernel']}; load average {m['load_average_at_start']} at start, "
        f"{m['load_average_at_end']} at end",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "Ratios are Nimbus / reference, both sides measured side by side in this run "
        "(medians over repetitions). Absolute numbers on a shared 2-core machine are "
        "context only.",
        "",
        *_plot_lines(report.get("plots", {})),
        "## Summary",
        "",
        "| comparison | Nimbus | reference | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for comp in report["comparisons"]:
        if comp["error"]:
            lines.append(f"| {comp['title']} | — | — | — | ERROR: did not run |")
        for r in comp["results"]:
            lines.append(
                f"| {r['title']} | {_num(r['a']['median'])} {r['unit']} "
                f"| {_num(r['b']['median'])} {r['unit']} | {r['ratio']:.3g} | {r['verdict']} |"
            )
    lines.append("")
    missed = [
        (comp, r)
        for comp in report["comparisons"]
        for r in comp["results"]
        if r["target_met"] is False
    ]
    if missed:
        lines += ["## Targets missed", ""]
        for comp, r in missed:
            profile = report["profiles"].get(PROFILED.get(comp["key"], comp["key"]))
            if profile:
                where = f"where the time goes: `{profile}`"
            elif comp["key"] in PROFILED:
                where = f"where the time goes: run `{PROFILE_COMMAND}`"
            else:
                where = "the breakdown is in its notes below"
            lines.append(f"- **{r['title']}** — {r['verdict']}; {where}")
        lines.append("")
    for comp in report["comparisons"]:
        lines += [f"## {comp['title']}", "", f"`{comp['key']}`, {comp['seconds']} s", ""]
        if comp["error"]:
            lines += ["**ERROR — this comparison did not run:**", "", "```", comp["error"], "```"]
            lines.append("")
            continue
        for r in comp["results"]:
            lines += [f"### {r['title']}", "", f"**{r['verdict']}**", ""]
            lines += [
                "| side | median | min | max | spread | samples |",
                "|---|---|---|---|---|---|",
            ]
            for side in (r["a"], r["b"]):
                samples = ", ".join(_num(s) for s in side["samples"])
                lines.append(
                    f"| {side['label']} | {_num(side['median'])} {r['unit']} "
                    f"| {_num(side['min'])} | {_num(side['max'])} | {side['spread_pct']}% "
                    f"| {samples} |"
                )
            better = "higher" if r["higher_is_better"] else "lower"
            ratio_line = f"ratio {r['ratio']:.3g} ({r['ratio_means']}; {better} is better"
            if r["paired_ratios"]:
                pr = r["paired_ratios"]
                ratio_line += (
                    f"; per repetition {min(pr):.3g} to {max(pr):.3g}, "
                    f"median {r['paired_ratio_median']:.3g}"
                )
            lines += ["", ratio_line + ")", ""]
            lines += [f"- {note}" for note in r["notes"]]
            if r["notes"]:
                lines.append("")
    if report["profiles"]:
        lines += ["## Profiles", ""]
        lines += [f"- {key}: `{path}`" for key, path in report["profiles"].items()]
        lines.append("")
    return "\n".join(lines)
