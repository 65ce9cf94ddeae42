"""Real servers for the e2e suite: `nimbus serve` on the local store and on SeaweedFS."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.liar_store import liar_proxy
from tests.e2e.server import NimbusProcess
from tests.s3servers import S3Server, moto_server, seaweedfs_server


@pytest.fixture(scope="session")
def e2e_seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweedfs_server(tmp_path_factory.mktemp("e2e-seaweedfs")) as server:
        yield server


def s3_env(server: S3Server) -> dict[str, str]:
    return {
        **server.env(),
        "NIMBUS_STORE": f"s3://nimbus-e2e/{uuid.uuid4().hex[:10]}",
        "NIMBUS_API_KEY": "e2e-" + uuid.uuid4().hex,
    }


@pytest.fixture
def make_server(tmp_path: Path, request: pytest.FixtureRequest):
    """Start servers for one test; every one is stopped (or killed) at the end."""
    started: list[NimbusProcess] = []

    def make(env: dict[str, str] | None = None, data_dir: Path | None = None, **kw):
        server = NimbusProcess(data_dir or tmp_path / f"data{len(started)}", env, **kw)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend_env(request) -> dict[str, str]:
    """Extra environment for a fresh server on each store backend."""
    if request.param == "s3":
        return s3_env(request.getfixturevalue("e2e_seaweedfs"))
    return {}


@pytest.fixture(scope="module", params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def server(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[NimbusProcess]:
    """One server per module and backend, shared by that module's API tests."""
    env = s3_env(request.getfixturevalue("e2e_seaweedfs")) if request.param == "s3" else None
    proc = NimbusProcess(tmp_path_factory.mktemp(f"srv-{request.param}") / "data", env)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def api(server: NimbusProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def name() -> str:
    return f"fn-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store_ignoring_create_only() -> Iterator[dict[str, str]]:
    """The environment of a server on a store that accepts a second create-only write."""
    with moto_server() as moto:
        proxy = liar_proxy(moto.endpoint_url)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        try:
            yield {
                **moto.env(),
                "S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.server_port}",
                "NIMBUS_STORE": "s3://liar/nimbus",
                "NIMBUS_API_KEY": "e2e-liar-" + "k" * 32,
            }
        finally:
            proxy.shutdown()
