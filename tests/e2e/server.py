"""A real `nimbus serve` (gunicorn master + workers) in its own process group."""

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

REPO = Path(__file__).resolve().parents[2]
NIMBUS = Path(sys.executable).parent / "nimbus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NimbusProcess:
    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        workers: int = 2,
        args: tuple[str, ...] = (),
    ):
        self.data_dir = data_dir
        self.args = args  # given to `nimbus serve`
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            "DATA_DIR": str(data_dir),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WORKERS": str(workers),
            "LOG_LEVEL": "warning",
            "BUILD_LEASE_SEC": "3",
            "BUILD_POLL_SEC": "0.2",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def api_key(self) -> str:
        return self.env.get("NIMBUS_API_KEY") or (self.data_dir / "api_key").read_text().strip()

    def launch(self) -> NimbusProcess:
        """Start the process, without waiting for it to be ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [str(NIMBUS), "serve", *self.args],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: we end exactly what we started
        )
        return self

    def start(self, timeout: float = 30) -> NimbusProcess:
        self.launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nimbus serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"nimbus serve did not become ready: {self.log_path.read_text()}")

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM the master (graceful: in-flight requests finish); kill -9 the group if it
        has not ended within `timeout`."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """kill -9 the whole process group: master and workers die mid-work."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def client(self, key: str | None = None, timeout: float = 60) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key or self.api_key}"},
            timeout=timeout,
        )

    def worker_pids(self) -> list[int]:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True
        )
        return [int(p) for p in out.stdout.split()]
