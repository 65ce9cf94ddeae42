"""One store per test, on every backend: local files, SeaweedFS and moto.

The S3 servers start once per session. Each S3 test gets its own key prefix
in one shared bucket (SeaweedFS makes a volume per bucket, so a bucket per
test would be slow and run out of volumes). A server that fails to start
makes its tests error, never skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from store import LocalStore, Store
from tests.s3servers import S3Server, moto_server, seaweedfs_server

BUCKET = "nimbus-conformance"

MakeStore = Callable[[str], Store]


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweedfs_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def moto() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


@pytest.fixture(
    params=[
        "local",
        pytest.param("seaweedfs", marks=pytest.mark.s3),
        pytest.param("moto", marks=pytest.mark.s3),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[MakeStore]:
    """A factory of stores sharing one backend: `make_store(name)` is namespace `name`."""
    stores: list[Store] = []
    if backend == "local":

        def make(name: str) -> Store:
            return LocalStore(tmp_path / name)

    else:
        from store._s3 import S3Store

        server: S3Server = request.getfixturevalue(backend)
        for var, value in server.env().items():
            monkeypatch.setenv(var, value)
        test_id = uuid.uuid4().hex[:12]

        def make(name: str) -> Store:
            store = S3Store(
                BUCKET, f"{test_id}/{name}", endpoint_url=server.endpoint_url, region=server.region
            )
            stores.append(store)
            return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store: MakeStore) -> Store:
    store = make_store("main")
    store.ping()  # creates the bucket on first use
    return store
