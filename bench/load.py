"""HTTP load side by side: wrk against several targets in alternating order, and the
report rows (throughput, p50, p99, server CPU per call) that come out of it."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import httpx
import orjson

from . import wrk
from .model import Result, Side, Target
from .servers import ServerProcess

JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class LoadTarget:
    """One URL to load with one body; `server` is whose CPU time is counted, if any."""

    url: str
    headers: dict[str, str]
    body: bytes
    server: ServerProcess | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LoadRun:
    """One wrk run and the CPU the loaded server spent meanwhile."""

    wrk: wrk.WrkResult
    server_cpu_s: float | None = None
    server_sys_s: float | None = None  # the kernel's part of server_cpu_s
    server_switches: int | None = None  # context switches of the server's threads

    @property
    def kernel_pct(self) -> float | None:
        """The kernel's share of the server's CPU during the run, in percent."""
        if self.server_sys_s is None or not self.server_cpu_s:
            return None
        return 100 * self.server_sys_s / self.server_cpu_s

    @property
    def switches_per_call(self) -> float | None:
        ok = self.wrk.requests * self.wrk.ok_fraction
        if self.server_switches is None or ok <= 0:
            return None
        return self.server_switches / ok

    @property
    def cpu_ms_per_call(self) -> float | None:
        ok = self.wrk.requests * self.wrk.ok_fraction
        if self.server_cpu_s is None or ok <= 0:
            return None
        return 1000 * self.server_cpu_s / ok


def check(target: LoadTarget, what: str) -> object:
    """One request first: a load test of an error page would measure nothing."""
    resp = httpx.post(target.url, content=target.body, headers={**target.headers, **JSON},
                      timeout=120)  # fmt: skip
    if resp.status_code != 200:
        raise RuntimeError(f"{what} answered {resp.status_code}: {resp.text[:500]}")
    return orjson.loads(resp.content)


def warm_up(targets: dict[str, LoadTarget], duration_s: float) -> None:
    """Thread pools, caches and every worker's sandboxes, before anything is measured
    (0 s: no warm-up; wrk runs whole seconds only)."""
    if duration_s <= 0:
        return
    for t in targets.values():
        wrk.run(t.url, body=t.body, headers=t.headers, connections=16, duration_s=duration_s)


def alternate(
    targets: dict[str, LoadTarget], *, connections: int, duration_s: float, reps: int
) -> dict[str, list[LoadRun]]:
    """Run wrk against every target `reps` times, reversing the order every other
    repetition so drift in the machine's load hits every side alike."""
    runs: dict[str, list[LoadRun]] = {name: [] for name in targets}
    order = list(targets)
    for rep in range(reps):
        for name in order if rep % 2 == 0 else reversed(order):
            runs[name].append(_measured(targets[name], connections, duration_s))
    return runs


def wrk_details(runs: dict[str, list[LoadRun]]) -> dict[str, list[dict]]:
    """Every wrk run's figures by side, for a result's details."""
    return {side: [r.wrk.as_dict() for r in rs] for side, rs in runs.items()}


def _measured(target: LoadTarget, connections: int, duration_s: float) -> LoadRun:
    server = target.server
    before = server.cpu_split() if server else None
    switches = server.context_switches() if server else 0
    result = wrk.run(target.url, body=target.body, headers=target.headers,
                     connections=connections, duration_s=duration_s)  # fmt: skip
    if server is None or before is None:
        return LoadRun(result)
    user, system = (after - then for after, then in zip(server.cpu_split(), before, strict=True))
    return LoadRun(result, user + system, system, server.context_switches() - switches)


def bracketed(before: list[LoadRun], after: list[LoadRun]) -> list[LoadRun]:
    """One reference sample per repetition from the two runs that bracket it (the
    first and last of the repetition): their mean rates and latencies, summed counts
    and CPU. Drift during a long repetition then hits the reference as it hits the
    sides in between."""
    return [_mean_of_two(a, b) for a, b in zip(before, after, strict=True)]


def _mean_of_two(a: LoadRun, b: LoadRun) -> LoadRun:
    x, y = a.wrk, b.wrk
    mean = wrk.WrkResult(
        url=x.url,
        connections=x.connections,
        duration_s=x.duration_s + y.duration_s,
        requests=x.requests + y.requests,
        requests_per_s=(x.requests_per_s + y.requests_per_s) / 2,
        p50_ms=(x.p50_ms + y.p50_ms) / 2,
        p90_ms=(x.p90_ms + y.p90_ms) / 2,
        p99_ms=(x.p99_ms + y.p99_ms) / 2,
        non_2xx=x.non_2xx + y.non_2xx,
        socket_errors=x.socket_errors + y.socket_errors,
        percentiles=tuple(
            (p, (ms1 + ms2) / 2)
            for (p, ms1), (_, ms2) in zip(x.percentiles, y.percentiles, strict=False)
        ),
    )
    cpu = system = switches = None
    if a.server_cpu_s is not None and b.server_cpu_s is not None:
        cpu = a.server_cpu_s + b.server_cpu_s
    if a.server_sys_s is not None and b.server_sys_s is not None:
        system = a.server_sys_s + b.server_sys_s
    if a.server_switches is not None and b.server_switches is not None:
        switches = a.server_switches + b.server_switches
    return LoadRun(mean, cpu, system, switches)


def median_curve(runs: list[LoadRun]) -> list[list[float]]:
    """The latency distribution over repetitions: each percentile's median, in ms."""
    by_pct: dict[float, list[float]] = {}
    for run in runs:
        for pct, ms in run.wrk.percentiles:
            by_pct.setdefault(pct, []).append(ms)
    return [[pct, statistics.median(values)] for pct, values in sorted(by_pct.items())]


def conns_text(connections: int) -> str:
    return f"{connections} connection{'' if connections == 1 else 's'}"


def error_notes(runs: dict[str, list[LoadRun]]) -> list[str]:
    notes = []
    for name, results in runs.items():
        bad = sum(r.wrk.non_2xx + r.wrk.socket_errors for r in results)
        total = sum(r.wrk.requests for r in results)
        if bad:
            notes.append(
                f"{name}: {bad} of {total} answers were errors (non-2xx or socket); "
                "throughput counts successful answers only"
            )
    return notes


@dataclass(frozen=True)
class Pair:
    """Nimbus's runs (`a`) against the reference's (`b`) at one connection count."""

    key: str  # e.g. "http-invoke-16c": rows become "<key>-rps", "<key>-p50", "<key>-p99"
    title: str  # e.g. "HTTP invoke vs bare echo, 16 connections"
    connections: int
    a_label: str
    a: list[LoadRun]
    b_label: str
    b: list[LoadRun]
    panel: str = ""  # the plot panel these curves belong to; "" keeps them off the plot

    def rows(self, *, target: Target | None = None, details: dict | None = None) -> list[Result]:
        """Throughput (with the target and details) then p50 and p99 latency."""
        details = dict(details or {})
        if self.panel:
            details["latency_curves"] = {
                "panel": self.panel,
                "reference": self.b_label,
                "curves": {self.a_label: median_curve(self.a), self.b_label: median_curve(self.b)},
            }
        rows = [
            Result(
                key=f"{self.key}-rps",
                title=f"{self.title}: throughput",
                unit="req/s",
                higher_is_better=True,
                a=Side(self.a_label, [r.wrk.ok_requests_per_s for r in self.a]),
                b=Side(self.b_label, [r.wrk.ok_requests_per_s for r in self.b]),
                target=target,
                notes=error_notes({self.a_label: self.a, self.b_label: self.b}),
                details=details,
            )
        ]
        for pct in ("p50", "p99"):
            rows.append(
                Result(
                    key=f"{self.key}-{pct}",
                    title=f"{self.title}: {pct} latency",
                    unit="ms",
                    higher_is_better=False,
                    a=Side(self.a_label, [getattr(r.wrk, f"{pct}_ms") for r in self.a]),
                    b=Side(self.b_label, [getattr(r.wrk, f"{pct}_ms") for r in self.b]),
                )
            )
        return rows

    def kernel_row(self, key: str, title: str, target: Target | None = None) -> Result | None:
        """The kernel's share of the server's CPU, both sides (None when not counted)."""
        note = ("system time over user + system time of the server's processes during the "
                "load: mapping, faulting and unmapping guest memory shows here")  # fmt: skip
        return self._server_row(key, title, "% kernel", lambda r: r.kernel_pct, note, target)

    def switches_row(self, key: str, title: str) -> Result | None:
        """Context switches of the server's threads per successful call, both sides."""
        note = ("voluntary + involuntary switches of every server thread during the load, "
                "per call: hand-offs between threads and waits for the GIL show here")  # fmt: skip
        return self._server_row(key, title, "switches/call", lambda r: r.switches_per_call, note)

    def cpu_row(self, key: str, title: str) -> Result | None:
        """Server CPU per successful call, both sides (None when it was not counted)."""
        a = [r.cpu_ms_per_call for r in self.a]
        b = [r.cpu_ms_per_call for r in self.b]
        if None in a or None in b:
            return None
        added = statistics.median(a) - statistics.median(b)  # type: ignore[arg-type]
        note = (f"server CPU (master + workers, user + system) per successful call at "
                f"{conns_text(self.connections)}: Nimbus adds {added:.3g} ms per invocation "
                "over the bare echo")  # fmt: skip
        return self._server_row(key, title, "ms CPU/call", lambda r: r.cpu_ms_per_call, note)

    def _server_row(self, key, title, unit, measure, note, target=None) -> Result | None:
        a = [measure(r) for r in self.a]
        b = [measure(r) for r in self.b]
        if None in a or None in b:
            return None
        return Result(key=key, title=title, unit=unit, higher_is_better=False,
                      a=Side(self.a_label, a), b=Side(self.b_label, b), target=target,
                      notes=[note])  # fmt: skip
