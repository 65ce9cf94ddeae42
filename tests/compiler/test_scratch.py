"""Bounded build folders (size-limited tmpfs mounts): what a dead worker leaves is released."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler import bounded_folder, release_orphans

_KILLED_MID_BUILD = """
import os, signal, sys
from pathlib import Path
from compiler import bounded_folder
out = Path(sys.argv[1])
with bounded_folder(out, 16) as bounded:
    (out / "object.o").write_bytes(b"x" * (4 << 20))
    print(bounded, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # a worker killed mid-build
"""


def _mounted(path: Path) -> bool:
    return f" {path} " in Path("/proc/self/mountinfo").read_text()


def test_a_folder_left_mounted_by_a_killed_worker_is_released(tmp_path):
    with bounded_folder(tmp_path, 0) as bounded:
        assert bounded is False  # 0: no bound, nothing mounted
    mine = tmp_path / "mine" / "out"
    mine.mkdir(parents=True)
    dead = tmp_path / "fn_x-1-abc" / "out"
    dead.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_BUILD, str(dead)],
        capture_output=True, text=True, timeout=30, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    if done.stdout.strip() != "True":
        pytest.skip("mounting a tmpfs needs CAP_SYS_ADMIN")
    assert done.returncode == -9
    assert _mounted(dead) and (dead / "object.o").stat().st_size == 4 << 20
    with bounded_folder(mine, 16) as bounded:
        assert bounded
        assert release_orphans(tmp_path) == [dead]  # not this live process's own
        assert _mounted(mine) and not _mounted(dead)
        assert not (dead / "object.o").exists()  # the memory it held is free
    assert not _mounted(mine)
    assert release_orphans(tmp_path) == []


def test_a_folder_of_a_killed_worker_not_yet_reaped_is_released(tmp_path):
    """kill -9 of a whole server leaves its workers as zombies until someone reaps them; a
    server started meanwhile took them for alive and left their folders mounted."""
    dead = tmp_path / "fn_x-1-abc" / "out"
    dead.mkdir(parents=True)
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_MID_BUILD, str(dead)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    try:
        if child.stdout.readline().strip() != "True":
            pytest.skip("mounting a tmpfs needs CAP_SYS_ADMIN")
        stat = Path(f"/proc/{child.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":  # killed, not reaped
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert _mounted(dead)
        assert release_orphans(tmp_path) == [dead]
        assert not _mounted(dead)
    finally:
        child.wait(10)
        child.stdout.close()
        if _mounted(dead):
            subprocess.run(["umount", "-l", str(dead)], check=False)
