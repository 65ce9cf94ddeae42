"""Resident memory of real processes, read from /proc.

RSS counts pages shared between processes (the gunicorn workers share the
master's imports and the mmapped precompiled runtimes) once per process, so
the sum over workers overstates what they cost together; PSS splits shared
pages between their users and sums to the real total. Both are reported.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from .servers import ServerProcess

MIB = 1024


def _kib(path: Path, field: str) -> int:
    for line in path.read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise ValueError(f"{path} has no {field}")


def rss_kib(pid: int) -> int:
    return _kib(Path(f"/proc/{pid}/status"), "VmRSS")


def pss_kib(pid: int) -> int:
    return _kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss")


@dataclass(frozen=True)
class ServerMemory:
    """A gunicorn server's memory: the master and the sum over its workers, in MiB."""

    master_rss_mib: float
    workers_rss_mib: float
    workers_pss_mib: float
    workers: int

    def as_dict(self) -> dict:
        return {k: round(v, 1) for k, v in asdict(self).items()}


def server_memory(server: ServerProcess) -> ServerMemory:
    workers = server.worker_pids()
    if not workers:
        raise RuntimeError(f"{server.name} has no workers to measure")
    return ServerMemory(
        master_rss_mib=rss_kib(server.pid) / MIB,
        workers_rss_mib=sum(rss_kib(pid) for pid in workers) / MIB,
        workers_pss_mib=sum(pss_kib(pid) for pid in workers) / MIB,
        workers=len(workers),
    )


def idle_process_rss_mib(cmd: list[str]) -> float:
    """RSS of one process of the process-per-function model once it is ready to serve.

    `cmd` must print one line when it is ready and then wait on stdin.
    """
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        if not proc.stdout.readline():
            raise RuntimeError(f"{cmd[0]} exited before it was ready")
        return rss_kib(proc.pid) / MIB
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(10)
