"""Native binaries in a real Docker engine: results, warm containers and hostile binaries.

The `Sandbox` in-process against the local engine (scripts/engine.sh); every
hostile program is contained with the error the gateway maps to the right
status, and the engine's own view of the container is checked through the
Docker SDK.
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import orjson
import pytest

from sandbox import NativeConfig, Sandbox, SandboxConfig
from store import LocalStore, errors
from tests import native

from .conftest import deployment, put_wasm
from .guests import wat_module

BIN_CACHE = native.REPO / ".cache" / "native-tests"
MiB = 1 << 20


@pytest.fixture(scope="module")
def docker_host() -> str:
    return native.engine_host()


@pytest.fixture(scope="module")
def engine(docker_host: str):
    client = docker.DockerClient(base_url=docker_host)
    yield client
    client.close()


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("native")


@pytest.fixture(scope="module")
def mstore(module_dir: Path) -> LocalStore:
    return LocalStore(module_dir / "store")


@pytest.fixture(scope="module")
def sandbox(module_dir: Path, mstore: LocalStore, docker_host: str):
    box = Sandbox(
        mstore,
        SandboxConfig(
            cache_dir=module_dir / "cache",
            max_concurrent=8,
            native=NativeConfig(work_dir=module_dir / "native", docker_host=docker_host),
        ),
    )
    yield box
    box.close()


def native_dep(store: LocalStore, program: str, *, static: bool = True, **overrides):
    key, sha = put_wasm(store, native.build(program, BIN_CACHE, static=static).read_bytes())
    overrides.setdefault("name", f"native-{program.replace('_', '-')}")
    return deployment(key, sha, kind="native", **overrides)


def containers_of(engine, dep) -> list:
    return engine.containers.list(all=True, filters={"label": f"nimbus.function={dep.function_id}"})


def call(sandbox: Sandbox, dep, event: bytes = b"{}"):
    return sandbox.invoke(dep, event, {})


# -- results --------------------------------------------------------------------------


def test_result_argv_env_user(sandbox, mstore):
    env = {"GREETING": "hi", "EMPTY": "", "NIMBUS_CONTEXT": "mine"}
    dep = native_dep(mstore, "introspect", env_vars=env)
    result = sandbox.invoke(dep, b'{"a": 1}', {"invocation_id": "inv_1", "caller": "me"})
    assert result.error is None, result.logs
    assert result.content_type == "application/json"
    seen = orjson.loads(result.output)
    assert seen["argv0"] == dep.function_name and seen["argc"] == 1
    assert sorted(seen["env"]) == ["EMPTY=", "GREETING=hi"]  # nothing of the host's
    assert seen["uid"] == 65534 and seen["cwd"] == "/tmp"
    # As WASM commands get it: the platform's NIMBUS_CONTEXT wins over a variable.
    context = seen["context"]
    assert context["function_name"] == dep.function_name and context["version"] == 1
    assert context["invocation_id"] == "inv_1" and context["caller"] == "me"
    assert context["memory_limit_mb"] == 64 and context["deadline_ms"] > time.time() * 1000


def test_error_record_becomes_the_failure(sandbox, mstore):
    result = call(sandbox, native_dep(mstore, "reporter"))
    assert result.error.type == "ValueError" and result.error.message == "bad input"
    assert result.error.stack == ["handler.c:3"]
    assert result.logs == b"before the error\n"


def test_echo_static_and_dynamic(sandbox, mstore):
    for dep in (native_dep(mstore, "echo"), native_dep(mstore, "dynamic_echo", static=False)):
        event = orjson.dumps({"list": list(range(100)), "s": "é" * 10})
        result = call(sandbox, dep, event)
        assert result.error is None and result.output == event, result.logs


def test_large_event_streams_through(sandbox, mstore):
    dep = native_dep(mstore, "echo", memory_mb=32)  # the agent never holds the whole event
    event = orjson.dumps({"blob": "z" * (5 * MiB)})
    result = call(sandbox, dep, event)
    assert result.error is None and result.output == event


def test_warm_calls_reuse_one_container(sandbox, mstore, engine):
    dep = native_dep(mstore, "echo")
    first = call(sandbox, dep)
    assert first.cold_start and first.init_ms > 0
    took = []
    for _ in range(20):
        started = time.perf_counter()
        result = call(sandbox, dep, b'{"n": 1}')
        took.append((time.perf_counter() - started) * 1000)
        assert not result.cold_start and result.output == b'{"n": 1}'
    assert len(containers_of(engine, dep)) == 1
    assert statistics.median(took) < 30, took  # issue 7: warm p50 ≤ 30 ms


def test_text_output_and_function_error(sandbox, mstore):
    text = call(sandbox, native_dep(mstore, "text"))
    assert text.content_type == "text/plain" and text.output == b"plain words"
    failed = call(sandbox, native_dep(mstore, "fail"))
    assert failed.error is not None and failed.error.type == "ExitError"
    assert failed.error.exit_code == 3 and "status 3" in failed.error.message
    assert failed.logs == b"something broke\n" and failed.output == b"partial"


def test_crash_is_a_signal_failure(sandbox, mstore):
    result = call(sandbox, native_dep(mstore, "segfault"))
    assert result.error.type == "Signal" and "SIGSEGV" in result.error.message


def test_log_is_capped_with_a_note(sandbox, mstore):
    result = call(sandbox, native_dep(mstore, "chatty"))
    assert result.error is None and orjson.loads(result.output) == {"ok": True}
    assert result.logs.startswith(b"l" * 1000) and b"log truncated at 1 MB" in result.logs
    assert MiB < len(result.logs) < MiB + 200


# -- hostile binaries ---------------------------------------------------------------


def test_infinite_loop_times_out_at_the_deadline(sandbox, mstore):
    dep = native_dep(mstore, "spin", timeout_sec=1)
    call(sandbox, native_dep(mstore, "echo"))  # engine warm; the loop's own container is cold
    started = time.monotonic()
    with pytest.raises(errors.Timeout):
        call(sandbox, dep)
    assert time.monotonic() - started < 1 + 1.5  # cold start included
    started = time.monotonic()
    with pytest.raises(errors.Timeout) as caught:
        call(sandbox, dep)  # warm: the agent killed the loop and serves again
    assert 0.95 < time.monotonic() - started < 1.5
    assert caught.value.cold_start is False


def test_sleep_past_the_deadline_times_out_with_its_log(sandbox, mstore):
    dep = native_dep(mstore, "sleepy", timeout_sec=1)
    with pytest.raises(errors.Timeout) as caught:
        call(sandbox, dep)
    assert caught.value.logs == b"going to sleep\n"


def test_fork_bomb_is_contained(sandbox, mstore):
    bomb = native_dep(mstore, "fork_bomb", timeout_sec=2)
    echo = native_dep(mstore, "echo")
    call(sandbox, echo)
    during: list[float] = []
    done = threading.Event()

    def others():
        while not done.is_set():
            started = time.perf_counter()
            assert call(sandbox, echo, b'{"x": 1}').output == b'{"x": 1}'
            during.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)

    thread = threading.Thread(target=others)
    thread.start()
    try:
        for _ in range(2):  # the second call proves the container recovered
            with pytest.raises(errors.Timeout):
                call(sandbox, bomb)
    finally:
        done.set()
        thread.join()
    assert len(during) >= 5 and statistics.median(during) < 100, during


def test_memory_bomb_is_memory_limit_exceeded(sandbox, mstore):
    dep = native_dep(mstore, "memory_bomb", memory_mb=32)
    for _ in range(2):
        with pytest.raises(errors.NimbusError) as caught:
            call(sandbox, dep)
        assert caught.value.code == "memory_limit_exceeded"


def test_writing_outside_tmp_fails(sandbox, mstore):
    result = call(sandbox, native_dep(mstore, "write_root"))
    assert result.error is not None and result.error.exit_code == 1, result.output
    for path in (b"/hacked", b"/function", b"/etc/passwd", b"/usr/bin/hacked"):
        assert path + b": Read-only file system" in result.logs, result.logs


def test_no_network(sandbox, mstore, engine):
    dep = native_dep(mstore, "tcp")
    result = call(sandbox, dep)
    assert result.error is not None and result.error.exit_code == 2, result.output
    assert b"connect 1.1.1.1:80: Network is unreachable" in result.logs, result.logs
    assert b"connect 127.0.0.1:8080: Connection refused" in result.logs  # its own loopback
    (container,) = containers_of(engine, dep)
    assert container.attrs["HostConfig"]["NetworkMode"] == "none"
    assert set(container.attrs["NetworkSettings"]["Networks"] or {}) <= {"none"}  # no interfaces


def test_huge_output_is_result_too_large(sandbox, mstore):
    dep = native_dep(mstore, "flood")
    with pytest.raises(errors.NimbusError) as caught:
        call(sandbox, dep)
    assert caught.value.code == "result_too_large"
    assert call(sandbox, native_dep(mstore, "echo")).error is None


def test_each_call_starts_clean(sandbox, mstore):
    dep = native_dep(mstore, "leftovers")
    first = orjson.loads(call(sandbox, dep).output)
    second = call(sandbox, dep)
    assert not second.cold_start
    nothing = {"other_processes": 0, "had_file": False, "had_shm": False, "had_mqueue": False}
    assert orjson.loads(second.output) == {**nothing, "had_sysv": False}, first


def test_agent_cannot_be_killed_traced_or_escalated(sandbox, mstore):
    dep = native_dep(mstore, "escape")
    seen = orjson.loads(call(sandbox, dep).output)
    assert seen["setuid_root"] == -1 and seen["ptrace"] == -1 and seen["ptrace_errno"] == 1
    assert seen["agent_environ_readable"] is False
    assert seen["capeff"] == "0000000000000000"
    again = call(sandbox, dep)
    assert not again.cold_start and again.error is None  # the agent survived kill(1, SIGKILL)


def test_container_settings_as_the_engine_sees_them(sandbox, mstore, engine):
    dep = native_dep(mstore, "echo", memory_mb=48)
    call(sandbox, dep)
    (container,) = containers_of(engine, dep)
    host = container.attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Memory"] == 48 * MiB
    assert host["PidsLimit"] == 64
    assert host["NanoCpus"] == 10**9  # one core: a fork bomb leaves the others alone
    assert "/tmp" in host["Tmpfs"] and "size=16m" in host["Tmpfs"]["/tmp"]
    assert container.attrs["Config"]["User"] == "65534:65534"
    binds = {b.split(":")[1]: b.split(":")[2] for b in host["Binds"]}
    assert binds == {"/function": "ro", "/run/nimbus": "ro"}
    assert container.attrs["Config"]["Labels"]["nimbus.function"] == dep.function_id


def test_functions_never_share_containers(sandbox, mstore, engine):
    a, b = native_dep(mstore, "echo"), native_dep(mstore, "echo")
    call(sandbox, a)
    call(sandbox, b)
    (ca,), (cb,) = containers_of(engine, a), containers_of(engine, b)
    assert ca.id != cb.id


def test_concurrent_calls_get_their_own_containers(sandbox, mstore, engine):
    dep = native_dep(mstore, "echo")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: call(sandbox, dep, str(i).encode()), range(8)))
    assert [r.output for r in results] == [str(i).encode() for i in range(8)]
    assert 1 <= len(containers_of(engine, dep)) <= 4


def test_a_removed_container_is_replaced(sandbox, mstore, engine):
    dep = native_dep(mstore, "echo")
    call(sandbox, dep)
    (container,) = containers_of(engine, dep)
    container.remove(force=True)
    result = call(sandbox, dep, b"[1]")
    assert result.output == b"[1]" and result.cold_start


def test_a_start_the_busy_engine_loses_is_tried_again_and_leaves_nothing(
    sandbox, mstore, engine, monkeypatch
):
    """The engine makes the container, but its answer is lost (a loaded engine past the
    API timeout): the call is served by a second start and the orphan is removed."""
    from sandbox._docker_engine import EngineBusy

    dep = native_dep(mstore, "echo", name="native-busy-engine")
    executor = sandbox._native.get()
    real_run, starts = executor.engine.run, []

    def run_then_lose_the_answer(spec):
        starts.append(real_run(spec))
        if len(starts) == 1:
            raise EngineBusy("the container engine does not answer: Read timed out")
        return starts[-1]

    monkeypatch.setattr(executor.engine, "run", run_then_lose_the_answer)
    result = call(sandbox, dep, b"[7]")
    assert result.output == b"[7]" and result.cold_start and len(starts) == 2

    def ids() -> list[str]:  # sparse: no inspect of a container removed meanwhile
        label = f"nimbus.function={dep.function_id}"
        return [
            c.id for c in engine.containers.list(all=True, sparse=True, filters={"label": label})
        ]

    deadline = time.monotonic() + 10
    while len(ids()) > 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ids() == [starts[1]]


# -- lifecycle and degraded engines ---------------------------------------------------


def test_idle_containers_are_reaped(tmp_path, store, docker_host, engine):
    box = Sandbox(
        store,
        SandboxConfig(
            cache_dir=tmp_path / "cache",
            native=NativeConfig(work_dir=tmp_path / "n", docker_host=docker_host, idle_sec=0.5),
        ),
    )
    try:
        dep = native_dep(store, "echo")
        call(box, dep)
        assert len(containers_of(engine, dep)) == 1
        deadline = time.monotonic() + 10
        while containers_of(engine, dep) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert containers_of(engine, dep) == []
        assert box._native.stats()["native_idle"] == 0
        assert call(box, dep).cold_start
    finally:
        box.close()
    time.sleep(0.5)
    assert containers_of(engine, dep) == []  # close() leaves nothing behind


def test_no_engine_is_engine_unavailable_and_wasm_still_runs(tmp_path, store):
    box = Sandbox(
        store,
        SandboxConfig(
            cache_dir=tmp_path / "cache",
            native=NativeConfig(
                work_dir=tmp_path / "n", docker_host=f"unix://{tmp_path}/nothing.sock"
            ),
        ),
    )
    try:
        with pytest.raises(errors.NimbusError) as caught:
            call(box, native_dep(store, "echo"))
        assert caught.value.code == "engine_unavailable"
        key, sha = put_wasm(store, wat_module("ECHO"))
        box.precompile(key, sha)
        assert call(box, deployment(key, sha), b'{"w": 1}').output == b'{"w": 1}'
    finally:
        box.close()


def test_no_native_config_is_engine_unavailable(tmp_path, store):
    box = Sandbox(store, SandboxConfig(cache_dir=tmp_path / "cache"))
    with pytest.raises(errors.NimbusError) as caught:
        call(box, native_dep(store, "echo"))
    assert caught.value.code == "engine_unavailable"


def test_missing_image_is_engine_unavailable_never_pulled(tmp_path, store, docker_host, engine):
    image = "nimbus/native-runtime:not-built"
    box = Sandbox(
        store,
        SandboxConfig(
            cache_dir=tmp_path / "cache",
            native=NativeConfig(work_dir=tmp_path / "n", docker_host=docker_host, image=image),
        ),
    )
    try:
        with pytest.raises(errors.NimbusError) as caught:
            call(box, native_dep(store, "echo"))
        assert caught.value.code == "engine_unavailable"
        assert "runtime-image.sh" in caught.value.message
        assert not engine.images.list(name="nimbus/native-runtime:not-built")
    finally:
        box.close()
