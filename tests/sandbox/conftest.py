"""Real wasmtime, real local store, no mocks."""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import json
import os
import subprocess
import sys
import time
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


class RuntimeInstance:
    """A fresh instance of a runtime deployment's component, made as the sandbox makes
    one (nothing loaded yet), for calling the runtime world's exports directly."""

    def __init__(self, sandbox: Sandbox, dep: Deployment) -> None:
        from sandbox._component import HandlerInstance
        from sandbox._runtime_world import RUN, runtime_call

        sandbox.prepare(dep)
        worker = sandbox._worker()
        loaded, _ = worker.artifacts.load(dep.artifact_key, dep.artifact_sha256, "component")
        code = worker.prepared(dep).code
        self.ticks = worker.host.deadline_ticks(dep.timeout_sec)
        deadline_ms = int((time.time() + dep.timeout_sec) * 1000)
        self.context = json.dumps({"function_name": dep.function_name, "deadline_ms": deadline_ms})
        self.inst = HandlerInstance(worker.host.engine, worker.host.component_linker(), loaded,
                                    [dep.function_name], {}, dep.memory_mb << 20, self.ticks,
                                    **runtime_call(RUN, code))  # fmt: skip

    def run(self, handler: str, event: str) -> object:
        """The `run` export with no source (the instance's own, once loaded)."""
        from sandbox._component_call import call_strings

        return call_strings(self.inst.func, self.inst.store, "", handler, event, self.context)

    def __enter__(self) -> RuntimeInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.inst.close()


def warm_up_runs_none_of_the_function(sandbox: Sandbox, dep: Deployment) -> None:
    """The host's warm-up of `run` (on a fresh instance, then as part of a pre-warm) runs
    nothing of `dep`, whose top level logs "loading" and whose handler logs "called" and
    answers how often it ran."""
    from sandbox._component import WARM_UP

    with RuntimeInstance(sandbox, dep) as fresh:
        # Nothing loaded yet: the warm-up answers with its event and loads nothing.
        assert json.loads(fresh.run(WARM_UP, '{"a": [1, "\\u00e9"]}')) == {"a": [1, "é"]}
        assert fresh.inst.logs.take() == b""
        fresh.inst.preload(fresh.context, fresh.ticks)  # `load`, then the host's warm-up
        assert fresh.inst.logs.take() == b"loading\n"
        assert fresh.inst.call("{}", fresh.context, fresh.ticks) == "1"  # the first call
        assert fresh.inst.logs.take() == b"called\n"


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
