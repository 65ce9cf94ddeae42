"""Real wasmtime, real local store, no mocks."""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import Deployment, Sandbox, SandboxConfig
from store import LocalStore

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
CACHE = REPO / ".cache" / "sandbox-tests"

_ids = itertools.count(1)


def put_wasm(store: LocalStore, wasm: bytes) -> tuple[str, str]:
    sha = hashlib.sha256(wasm).hexdigest()
    key = f"blobs/sha256/{sha}"
    if not store.exists(key):
        store.put(key, wasm)
    return key, sha


def deployment(
    key: str, sha: str, kind: str = "module", name: str = "test-fn", **overrides
) -> Deployment:
    fields = dict(
        function_id=f"fn_test{next(_ids)}",
        function_name=name,
        version=1,
        artifact_key=key,
        artifact_sha256=sha,
        kind=kind,
        env_vars={},
        memory_mb=64,
        timeout_sec=5.0,
    )
    fields.update(overrides)
    return Deployment(**fields)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def make_sandbox(tmp_path: Path, store: LocalStore):
    made: list[Sandbox] = []

    def make(**config) -> Sandbox:
        config.setdefault("cache_dir", tmp_path / f"cache-{len(made)}")
        the_store = config.pop("store", store)
        sb = Sandbox(the_store, SandboxConfig(**config))
        made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.close()


@pytest.fixture
def sandbox(make_sandbox) -> Sandbox:
    return make_sandbox()


@pytest.fixture
def deploy(store: LocalStore, sandbox: Sandbox):
    """Put wasm in the store, precompile it (as the build pipeline does), describe it."""

    def deploy_(wasm: bytes, **overrides) -> Deployment:
        key, sha = put_wasm(store, wasm)
        sandbox.precompile(key, sha)
        overrides.setdefault("kind", sandbox.kind_of(wasm))
        return deployment(key, sha, **overrides)

    return deploy_


# -- the Python handler component (componentize-py), cached between runs ------------


def _componentize_py() -> list[str]:
    script = Path(sys.executable).with_name("componentize-py")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "componentize_py"]


def build_python_component() -> bytes:
    """Build tests/sandbox/fixtures/py_handler against wit/handler.wit (~10 s, cached)."""
    try:
        version = importlib.metadata.version("componentize-py")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("the component tests need componentize-py: pip install componentize-py")
    app = FIXTURES / "py_handler" / "app.py"
    wit = REPO / "wit" / "handler.wit"
    digest = hashlib.sha256(app.read_bytes() + wit.read_bytes() + version.encode()).hexdigest()
    out = CACHE / f"py-handler-{digest[:16]}.wasm"
    if not out.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        subprocess.run(
            [
                *_componentize_py(),
                "-d",
                str(wit.parent),
                "-w",
                "handler",
                "componentize",
                "-p",
                str(app.parent),
                "app",
                "-o",
                str(tmp),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        tmp.replace(out)
    return out.read_bytes()


@pytest.fixture(scope="session")
def python_component() -> tuple[Path, str, str]:
    """(store dir, key, sha256) of the Python component, precompiled in a store kept
    under .cache so wasmtime compiles it (~10-20 s) once per machine, not per run."""
    wasm = build_python_component()
    store_dir = CACHE / "store"
    shared = LocalStore(store_dir)
    key, sha = put_wasm(shared, wasm)
    builder = Sandbox(shared, SandboxConfig(cache_dir=CACHE / "build-cache"))
    try:
        builder.precompile(key, sha)
    finally:
        builder.close()
    return store_dir, key, sha
