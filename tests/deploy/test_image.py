"""The server image (Containerfile), built and run on the local engine as a user runs it.

`scripts/image/offline.sh` builds it with no registry (cached: ~1 s when
nothing changed); a container from it serves the REST API on 8080 as a
non-root user, deploys and invokes a Python function, reports healthy, and on
SIGTERM lets a call in flight finish, then exits 0. A second container on the
same volume serves the function again: its start → first invoke is printed.
The engine has no port forwarding, so the API is reached through
`NamespaceRelay` (tests/deploy/netns.py) at the container's bridge address.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.conftest import BUILD_JAIL_SECURITY_OPTS
from tests.deploy.netns import NamespaceRelay
from tests.native import engine_host

pytestmark = pytest.mark.timeout(900)  # a cold image build (base, wheelhouse) is minutes

REPO = Path(__file__).resolve().parents[2]
API_KEY = "image-test-" + uuid.uuid4().hex
GRACE_SEC = 20  # GRACEFUL_TIMEOUT_SEC given to the containers below

# What source builds' jail needs from the engine, as the README's "Container image" says.
BUILD_JAIL_OPTIONS = tuple(
    word for option in BUILD_JAIL_SECURITY_OPTS for word in ("--security-opt", option)
)

HELLO = "def main(event, context):\n    return {'hello': event.get('name', 'world')}\n"
SLOW = """import time

def main(event):
    time.sleep(event['sec'])
    return {'slept': event['sec']}
"""


class Engine:
    """The docker CLI against the local engine, and a way into its network namespace."""

    def __init__(self, host: str) -> None:
        self.env = {"DOCKER_HOST": host, "PATH": "/usr/local/bin:/usr/bin:/bin"}
        socket_dir = Path(host.removeprefix("unix://")).parent
        pidfile = socket_dir / "dockerd.pid"
        # scripts/engine.sh's dockerd lives in its own network namespace; any other
        # engine shares ours.
        self.netns_pid = int(pidfile.read_text()) if pidfile.exists() else None

    def __call__(self, *args: str, timeout: float = 60, check: bool = True) -> str:
        out = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and out.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout.strip()


class Container:
    """One `docker run` of the image, reached at its bridge address through a relay."""

    def __init__(self, engine: Engine, image: str, network: str, volume: str) -> None:
        self.engine = engine
        self.name = f"nimbus-image-test-{uuid.uuid4().hex[:8]}"
        self.started = time.monotonic()
        engine(
            "run", "--detach", "--pull=never", "--name", self.name,
            "--network", network, "--volume", f"{volume}:/data",
            "--env", f"NIMBUS_API_KEY={API_KEY}", "--env", "WORKERS=1",
            "--env", f"GRACEFUL_TIMEOUT_SEC={GRACE_SEC}",
            *BUILD_JAIL_OPTIONS,
            image,
        )  # fmt: skip
        address = self.inspect("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
        self.relay = NamespaceRelay(engine.netns_pid or os.getpid(), (address, 8080))
        self.client = httpx.Client(
            base_url=self.relay.url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=60,
        )

    def inspect(self, template: str) -> str:
        return self.engine("inspect", "--format", template, self.name)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.client.get("/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.inspect("{{.State.Running}}") != "true":
                break
            time.sleep(0.1)
        logs = self.engine("logs", "--tail", "40", self.name, check=False)
        raise AssertionError(f"{self.name} did not become ready:\n{logs}")

    def close(self) -> None:
        self.client.close()
        self.relay.close()
        self.engine("rm", "--force", self.name, check=False)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(engine_host())


@pytest.fixture(scope="module")
def image(engine: Engine) -> str:
    started = time.monotonic()
    out = subprocess.run(
        [str(REPO / "scripts" / "image" / "offline.sh")],
        env={**engine.env, "HOME": str(Path.home())},
        capture_output=True,
        text=True,
        timeout=840,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    print(f"image {out.stdout.strip()} ready in {time.monotonic() - started:.1f} s")
    if " built: " in out.stderr:  # a build ran: other pyproject.toml's wheelhouses are gone
        key = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
        kept = {p.name for p in (REPO / ".cache" / "image").glob("wheelhouse-*")}
        assert {n for n in kept if not n.endswith(".partial")} == {f"wheelhouse-{key}"}
    return out.stdout.strip()


@pytest.fixture(scope="module")
def network(engine: Engine) -> Iterator[str]:
    name = f"nimbus-image-test-{uuid.uuid4().hex[:8]}"
    engine("network", "create", name)
    yield name
    engine("network", "rm", name, check=False)


@pytest.fixture(scope="module")
def volume(engine: Engine) -> Iterator[str]:
    name = engine("volume", "create")
    yield name
    engine("volume", "rm", "--force", name, check=False)


@pytest.fixture(scope="module")
def server(engine: Engine, image: str, network: str, volume: str) -> Iterator[Container]:
    container = Container(engine, image, network, volume)
    try:
        container.wait_ready()
        yield container
    finally:
        container.close()


JS = "export function main(event) {\n  return { js: event.name, node: typeof process };\n}\n"


def deploy(client: httpx.Client, name: str, code: str, runtime: str = "python") -> dict:
    body = {"name": name, "runtime": runtime, "code": code}
    response = client.post("/api/v1/functions", params={"wait": "true"}, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "active", response.json()
    return response.json()


def test_the_server_runs_as_a_non_root_user_with_the_image_settings(server: Container):
    assert server.inspect("{{.Config.User}}") == "nimbus"
    env = dict(item.split("=", 1) for item in json.loads(server.inspect("{{json .Config.Env}}")))
    assert env["HOST"] == "0.0.0.0" and env["PORT"] == "8080" and env["DATA_DIR"] == "/data"
    # PID 1 is `nimbus serve` (gunicorn's master); it and its worker run as uid 10001.
    status = server.engine("exec", server.name, "cat", "/proc/1/status", "/proc/1/cmdline")
    uids = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")]
    gids = [line.split()[1:] for line in status.splitlines() if line.startswith("Gid:")]
    assert uids == [["10001"] * 4] and gids == [["10001"] * 4]
    assert "nimbus" in status
    assert server.client.get("/health").status_code == 200


def test_a_python_function_deploys_and_invokes(server: Container):
    record = deploy(server.client, "hello", HELLO)
    assert record["runtime_version"].startswith("CPython 3.14")
    response = server.client.post("/api/v1/functions/hello/invoke", json={"name": "image"})
    assert response.status_code == 200, response.text
    assert response.json() == {"hello": "image"}


def test_guest_calls_run_on_native_lanes(server: Container):
    """The image carries the sandbox's native lanes (scripts/native-lanes.sh), so guarded
    guest calls do not fall back to Python threads: its one worker reports them."""
    deploy(server.client, "lanes", HELLO)
    assert server.client.post("/api/v1/functions/lanes/invoke", json={}).status_code == 200
    deadline = time.monotonic() + 15  # the gauges are sampled as the worker flushes (~1 s)
    while True:
        samples = {
            s.name: s.value
            for family in text_string_to_metric_families(server.client.get("/metrics").text)
            for s in family.samples
        }
        if samples.get("nimbus_sandbox_native_lanes") == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert samples.get("nimbus_sandbox_native_lanes") == 1, (
        f"native lanes: {samples.get('nimbus_sandbox_native_lanes')}, "
        f"slots: {samples.get('nimbus_sandbox_slots')}"
    )


def test_a_javascript_function_deploys_and_invokes(server: Container):
    record = deploy(server.client, "hello-js", JS, runtime="javascript")
    assert record["runtime_version"].startswith("SpiderMonkey")
    response = server.client.post("/api/v1/functions/hello-js/invoke", json={"name": "image"})
    assert response.status_code == 200, response.text
    assert response.json() == {"js": "image", "node": "object"}


def test_the_healthcheck_reports_healthy(server: Container):
    deadline = time.monotonic() + 45  # the first check runs one interval (10 s) after start
    while (health := server.inspect("{{.State.Health.Status}}")) == "starting":
        assert time.monotonic() < deadline, "still starting"
        time.sleep(0.5)
    assert health == "healthy", server.inspect("{{json .State.Health}}")


def test_sigterm_drains_a_call_in_flight_and_the_volume_serves_a_new_container(
    server: Container, engine: Engine, image: str, network: str, volume: str
):
    deploy(server.client, "slow", SLOW)
    outcome: dict = {}

    def call() -> None:
        response = server.client.post("/api/v1/functions/slow/invoke", json={"sec": 3})
        outcome["response"] = response

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(1)  # the call is running in the guest
    stopped = time.monotonic()
    engine("kill", "--signal", "TERM", server.name)
    exit_code = engine("wait", server.name, timeout=GRACE_SEC + 15)
    exited_after = time.monotonic() - stopped
    caller.join(timeout=10)

    assert outcome["response"].status_code == 200, outcome["response"].text
    assert outcome["response"].json() == {"slept": 3}
    assert exit_code == "0", engine("logs", "--tail", "40", server.name, check=False)
    assert exited_after < GRACE_SEC, f"exited {exited_after:.1f} s after SIGTERM"

    # Scale from zero: a new container on the same volume serves the deployed function.
    second = Container(engine, image, network, volume)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = second.client.post("/api/v1/functions/hello/invoke", json={})
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "no invoke within 60 s of the start"
            time.sleep(0.05)
        first_invoke = time.monotonic() - second.started
        assert response.json() == {"hello": "world"}
        print(f"drained and exited {exited_after:.1f} s after SIGTERM; "
              f"docker run → first invoke {first_invoke:.2f} s")  # fmt: skip
    finally:
        second.close()
