"""The servers a benchmark loads: each a real process group we start and stop by PID.

`ServerProcess` is any HTTP server started as a subprocess on a free
127.0.0.1 port; `NimbusServer` is a real `nimbus serve` with an API key and
a helper to deploy functions; the bare echo baseline is in `bench.baseline`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    """A small, explicit environment: no host settings leak into the servers."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    env.update(extra)
    return env


class ServerProcess:
    """A server in its own process group, ready once `ready_path` answers 200."""

    ready_path = "/health"

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.cmd = cmd
        self.env = env
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: we end exactly what we started
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self._log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout}s:\n{self._log_tail()}")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the master by PID; only if it will not go, SIGKILL its own group."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def cpu_seconds(self) -> float:
        """User + system CPU of every live process in the server's session (master, workers).

        Read around a load run, the difference over the answers it served is the
        server's CPU cost per request, whatever the load generator took.
        """
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the server's session: the second is the kernel's."""
        user = system = 0
        for _, fields in self._session_stats():
            # After the command: state ppid pgrp session … utime(12) stime(13), 0-based here.
            user += int(fields[11])
            system += int(fields[12])
        ticks = os.sysconf("SC_CLK_TCK")
        return user / ticks, system / ticks

    def _session_stats(self) -> list[tuple[int, list[str]]]:
        """(pid, /proc/PID/stat fields after the command) of every live process in the
        server's session (master and workers)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # the process ended while we looked
            if int(fields[3]) == self.pid:
                found.append((int(stat.parent.name), fields))
        return found

    def context_switches(self) -> int:
        """Voluntary + involuntary context switches of every live thread of the server's
        session so far (threads that ended are not counted)."""
        total = 0
        for pid, _ in self._session_stats():
            for status in Path(f"/proc/{pid}/task").glob("*/status"):
                try:
                    lines = status.read_text().splitlines()
                except OSError:
                    continue  # the thread ended while we looked
                total += sum(int(line.split()[1]) for line in lines if "ctxt_switches:" in line)
        return total

    def worker_pids(self) -> list[int]:
        """The gunicorn workers (children of the master we started)."""
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.pid)], capture_output=True, text=True
        )
        return [int(p) for p in out.stdout.split()]

    def _log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


class NimbusServer(ServerProcess):
    """A real `nimbus serve` (gunicorn master + workers) on the local store."""

    ready_path = "/ready"

    def __init__(
        self, data_dir: Path, log_dir: Path, workers: int = 2, name: str = "nimbus", **env: str
    ) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            name,
            [str(BIN / "nimbus"), "serve"],
            base_env(
                DATA_DIR=str(data_dir),
                HOST="127.0.0.1",
                PORT=str(free_port()),
                WORKERS=str(workers),
                LOG_LEVEL="warning",
                **env,
            ),
            log_dir,
        )

    @property
    def api_key(self) -> str:
        return self.env.get("NIMBUS_API_KEY") or (self.data_dir / "api_key").read_text().strip()

    def client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=timeout,
        )

    def deploy_wasm(self, name: str, artifact_base64: str) -> dict:
        """Create a `wasm` function and wait for its build; the record must be active."""
        return self.deploy(name, "wasm", artifact_base64=artifact_base64)

    def deploy(self, name: str, runtime: str, **fields: object) -> dict:
        """Create a function (`code`, `files`, `artifact_base64`, settings…) and wait
        for its build; the record must be active."""
        with self.client(timeout=600) as api:
            resp = api.post(
                "/api/v1/functions",
                params={"wait": "true"},
                json={"name": name, "runtime": runtime, **fields},
            )
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"deploying {name} failed: {resp.status_code} {resp.text}")
        record = resp.json()
        if record.get("status") != "active":
            raise RuntimeError(f"function {name} is not active after its build: {record}")
        return record

    def invoke_url(self, name: str) -> str:
        return f"{self.url}/api/v1/functions/{name}/invoke"
