"""An engine restart is survived: a private engine (scripts/engine.sh with its own
folder) is stopped under a warm function and started again."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from sandbox import NativeConfig, Sandbox, SandboxConfig
from store import errors
from tests import native

from .conftest import deployment, put_wasm

BIN_CACHE = native.REPO / ".cache" / "native-tests"


def engine(command: str, engine_dir: Path) -> str:
    env = {**os.environ, "NIMBUS_ENGINE_DIR": str(engine_dir)}
    env.pop("DOCKER_HOST", None)
    out = subprocess.run(
        [str(native.ENGINE_SCRIPT), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=native.REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture
def private_engine():
    # Short path: the engine's sockets live under it.
    engine_dir = Path(tempfile.mkdtemp(prefix="nimbus-engine-", dir="/tmp"))
    try:
        printed = engine("start", engine_dir)
        host = [x for x in printed.splitlines() if x.startswith("DOCKER_HOST=")][-1]
        yield engine_dir, host.split("=", 1)[1]
    finally:
        engine("stop", engine_dir)
        subprocess.run(["rm", "-rf", str(engine_dir)], check=False)


def test_engine_restart_is_survived(tmp_path, store, private_engine):
    engine_dir, docker_host = private_engine
    box = Sandbox(
        store,
        SandboxConfig(
            cache_dir=tmp_path / "cache",
            native=NativeConfig(work_dir=tmp_path / "native", docker_host=docker_host),
        ),
    )
    try:
        key, sha = put_wasm(store, native.build("echo", BIN_CACHE).read_bytes())
        dep = deployment(key, sha, kind="native", name="survivor")
        assert box.invoke(dep, b"[1]", {}).cold_start
        assert not box.invoke(dep, b"[2]", {}).cold_start

        engine("stop", engine_dir)  # its containers die with it
        with pytest.raises(errors.NimbusError) as caught:
            box.invoke(dep, b"[3]", {})
        assert caught.value.code == "engine_unavailable"

        engine("start", engine_dir)
        again = box.invoke(dep, b"[4]", {})
        assert again.output == b"[4]" and again.cold_start  # a new container replaced the dead one
        assert not box.invoke(dep, b"[5]", {}).cold_start
    finally:
        box.close()
