"""wrk spreading its requests round-robin over many URL paths of one server.

A density run invokes N functions in turn; `bench.wrk` sends one fixed
request, so this builds a Lua script whose `request()` walks a list of paths.
Same bounds as `bench.wrk`: 127.0.0.1 only, a capped duration, `--latency`.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from . import wrk


def lua_script(paths: list[str], body: bytes, headers: dict[str, str]) -> str:
    """A script POSTing `body` to each of `paths` in turn (one wrk thread: one walk)."""
    listed = ",\n".join(f'  "{_lua_escape(p)}"' for p in paths)
    return (
        wrk.lua_script(body, headers)
        + f"local paths = {{\n{listed}\n}}\n"
        + "local i = 0\n"
        + "request = function()\n"
        + "  i = i % #paths + 1\n"
        + "  return wrk.format(nil, paths[i])\n"
        + "end\n"
    )


def _lua_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def run(
    base_url: str,
    paths: list[str],
    *,
    body: bytes,
    headers: dict[str, str],
    connections: int,
    duration_s: float,
    timeout_s: float = 10,
) -> wrk.WrkResult:
    """Load `base_url` for `duration_s` seconds, each request to the next of `paths`."""
    if urlparse(base_url).hostname not in wrk.LOCAL_HOSTS:
        raise wrk.WrkError(f"refusing to load {base_url!r}: benchmarks aim at 127.0.0.1 only")
    if not 0 < duration_s <= wrk.MAX_DURATION_S:
        raise wrk.WrkError(f"duration {duration_s}s is outside (0, {wrk.MAX_DURATION_S}]")
    headers = {"Content-Type": "application/json", **headers}
    with tempfile.TemporaryDirectory(prefix="nimbus-wrk-rr-") as tmp:
        script = Path(tmp) / "roundrobin.lua"
        script.write_text(lua_script(paths, body, headers))
        cmd = [wrk.WRK, "-t1", f"-c{connections}", f"-d{duration_s:g}s",
               f"--timeout={timeout_s:g}s", "--latency", "-s", str(script), base_url]  # fmt: skip
        try:
            out = subprocess.run(
                cmd, capture_output=True, text=True, timeout=duration_s + timeout_s + 30
            )
        except subprocess.TimeoutExpired as exc:
            raise wrk.WrkError(f"wrk overran its bound: {' '.join(cmd)}") from exc
    if out.returncode != 0:
        raise wrk.WrkError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout}")
    return wrk.parse(out.stdout, url=base_url, connections=connections)
