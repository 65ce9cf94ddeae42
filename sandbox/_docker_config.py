"""Settings of the native executor (Linux binaries in Docker containers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Keep in step with `NIMBUS_AGENT_VERSION` in sandbox/agent/agent.c: the wire
# protocol between a worker and the agent in its containers, and the tag
# scripts/runtime-image.sh gives the image.
AGENT_VERSION = "2"
DEFAULT_IMAGE = f"nimbus/native-runtime:agent-{AGENT_VERSION}"


@dataclass(frozen=True)
class NativeConfig:
    """How a worker runs native functions. Passed in explicitly, like `SandboxConfig`."""

    # Where the function binaries and the agents' sockets live on this host. The
    # engine bind-mounts from here, so it must see the same path (a local engine).
    work_dir: Path
    docker_host: str | None = None  # None: the engine's default socket
    image: str = DEFAULT_IMAGE  # built locally by scripts/runtime-image.sh, never pulled
    idle_sec: float = 300.0  # a warm container unused this long is removed
    max_idle_per_function: int = 4  # warm containers kept per function version per worker
    max_idle_total: int = 64  # per worker; beyond it the least recently used go
    pids_limit: int = 64  # processes and threads per container (fork bombs stop here)
    tmpfs_mb: int = 16  # the writable /tmp (counts against the function's memory)
    nofile: int = 1024  # open files per process
    # CPU quota per container (cores; None or 0: none). One core by default, so a guest's
    # spinning processes (a fork bomb: pids_limit of them) leave the host's other cores
    # to the gateway and to every other function.
    cpus: float | None = 1.0
    start_timeout_sec: float = 15.0  # create + start + the agent's hello
    api_timeout_sec: float = 15.0  # one engine API call
    grace_sec: float = 2.0  # past the deadline before a silent agent's container is killed

    def __post_init__(self) -> None:
        object.__setattr__(self, "work_dir", Path(self.work_dir).resolve())
        if self.pids_limit < 2 or self.tmpfs_mb < 1 or self.idle_sec <= 0:
            raise ValueError("pids_limit ≥ 2, tmpfs_mb ≥ 1 and idle_sec > 0 are required")
