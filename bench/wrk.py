"""A thin wrapper around the real `wrk` load generator (Debian's package).

Every run is bounded in time, aimed at 127.0.0.1 only, and asks for
`--latency` so the percentiles can be read back into a `WrkResult`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

WRK = shutil.which("wrk") or "/usr/bin/wrk"
MAX_DURATION_S = 120  # no single load run may go longer than this
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"([\d.]+)(us|ms|s|m|h)\b")

# The latency distribution wrk's `done()` hook prints for the plot: dense in the
# tail, where a server's queueing shows (HdrHistogram-style).
PERCENTILES: tuple[float, ...] = (
    1,
    *range(10, 90, 10),
    *range(90, 99),
    99.0,
    99.25,
    99.5,
    99.75,
    99.9,
    99.95,
    99.99,
)  # fmt: skip  (wrk answers 0 for percentile(100): the tail stops at 99.99)
_PERCENTILE_LINE = re.compile(r"^nimbus-percentile (\S+) (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class WrkResult:
    url: str
    connections: int
    duration_s: float
    requests: int
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int = 0
    socket_errors: int = 0
    # (percentile, latency in ms) from the `done()` hook, lowest percentile first
    percentiles: tuple[tuple[float, float], ...] = ()

    @property
    def ok_fraction(self) -> float:
        """The share of answers that were 2xx/3xx (wrk counts errors as requests too)."""
        if self.requests <= 0:
            return 0.0
        return max(0.0, 1.0 - (self.non_2xx + self.socket_errors) / self.requests)

    @property
    def ok_requests_per_s(self) -> float:
        """Throughput of successful answers only: a fast 429 is not throughput."""
        return self.requests_per_s * self.ok_fraction

    def as_dict(self) -> dict:
        """The summary numbers; the percentile curve goes to the plot, not every row."""
        summary = {k: v for k, v in asdict(self).items() if k != "percentiles"}
        return {**summary, "ok_requests_per_s": self.ok_requests_per_s}


class WrkError(RuntimeError):
    pass


def lua_script(body: bytes, headers: dict[str, str], method: str = "POST") -> str:
    """A wrk script sending one fixed body with the given headers."""
    text = body.decode()
    level = 0
    while f"]{'=' * level}]" in text:  # pick a long-bracket level the body cannot close
        level += 1
    eq = "=" * level
    lines = [f'wrk.method = "{method}"', f"wrk.body = [{eq}[{text}]{eq}]"]
    for name, value in headers.items():
        lines.append(f'wrk.headers["{_lua_escape(name)}"] = "{_lua_escape(value)}"')
    # wrk's latency histogram is in microseconds; print the whole curve once, at the end.
    points = ", ".join(f"{p:g}" for p in PERCENTILES)
    lines += [
        "done = function(summary, latency, requests)",
        f"  for _, p in ipairs({{{points}}}) do",
        '    io.write(string.format("nimbus-percentile %g %d\\n", p, latency:percentile(p)))',
        "  end",
        "end",
    ]
    return "\n".join(lines) + "\n"


def _lua_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def run(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str] | None = None,
    connections: int = 16,
    duration_s: float = 3,
    threads: int = 1,
    timeout_s: float = 10,
) -> WrkResult:
    """Load `url` with POSTs of `body` for `duration_s` seconds and parse the outcome.

    One wrk thread by default: on a 2-core machine the load generator competes
    with the server for CPU, and it does so equally for both sides of a
    comparison.
    """
    host = urlparse(url).hostname
    if host not in LOCAL_HOSTS:
        raise WrkError(f"refusing to load {host!r}: benchmarks aim at 127.0.0.1 only")
    if not 1 <= duration_s <= MAX_DURATION_S or duration_s != int(duration_s):
        # NOTE: wrk reads whole seconds only (`-d0.5s` is a usage error).
        raise WrkError(f"duration {duration_s}s is not a whole number in [1, {MAX_DURATION_S}]")
    threads = max(1, min(threads, connections))
    headers = {"Content-Type": "application/json", **(headers or {})}
    with tempfile.TemporaryDirectory(prefix="nimbus-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(lua_script(body, headers))
        cmd = [
            WRK,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration_s:g}s",
            f"--timeout={timeout_s:g}s",
            "--latency",
            "-s",
            str(script),
            url,
        ]
        try:
            out = subprocess.run(
                cmd, capture_output=True, text=True, timeout=duration_s + timeout_s + 30
            )
        except subprocess.TimeoutExpired as exc:
            raise WrkError(f"wrk overran its bound: {' '.join(cmd)}") from exc
    if out.returncode != 0:
        raise WrkError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout}")
    return parse(out.stdout, url=url, connections=connections)


def parse(text: str, *, url: str = "", connections: int = 0) -> WrkResult:
    """Read wrk's `--latency` report."""

    def grab(pattern: str, default: str | None = None) -> str:
        m = re.search(pattern, text, re.MULTILINE)
        if m is None:
            if default is not None:
                return default
            raise WrkError(f"wrk output lacks {pattern!r}:\n{text}")
        return m.group(1)

    requests_line = re.search(r"^\s*(\d+) requests in ([\d.]+\w+)", text, re.MULTILINE)
    if requests_line is None:
        raise WrkError(f"wrk output lacks the request count:\n{text}")
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return WrkResult(
        url=url,
        connections=connections,
        duration_s=_seconds(requests_line.group(2)),
        requests=int(requests_line.group(1)),
        requests_per_s=float(grab(r"^Requests/sec:\s+([\d.]+)")),
        p50_ms=_seconds(grab(r"^\s+50%\s+(\S+)")) * 1000,
        p90_ms=_seconds(grab(r"^\s+90%\s+(\S+)")) * 1000,
        p99_ms=_seconds(grab(r"^\s+99%\s+(\S+)")) * 1000,
        non_2xx=int(grab(r"Non-2xx or 3xx responses:\s+(\d+)", "0")),
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
        percentiles=tuple((float(p), int(us) / 1000) for p, us in _PERCENTILE_LINE.findall(text)),
    )


def _seconds(value: str) -> float:
    m = _DURATION.fullmatch(value.strip())
    if m is None:
        raise WrkError(f"cannot read the duration {value!r}")
    return float(m.group(1)) * _UNITS_S[m.group(2)]


def version() -> str:
    try:
        out = subprocess.run([WRK, "-v"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    first = (out.stdout or out.stderr).splitlines()
    return first[0].split(" [")[0].removeprefix("wrk ") if first else "unknown"
