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

LOCAL = "local"
SEAWEEDFS = pytest.param("seaweedfs", marks=pytest.mark.s3)
MOTO = pytest.param("moto", marks=pytest.mark.s3)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweedfs_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def moto() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


@pytest.fixture(params=[LOCAL, SEAWEEDFS, MOTO])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeStore]:
    """A factory of stores on one backend: `make_store(name)` is namespace `name`."""
    yield from _store_factory(request, tmp_path, monkeypatch)


@pytest.fixture
def store(make_store: MakeStore) -> Store:
    return _main_store(make_store)


# NOTE: moto checks If-Match / If-None-Match and then writes without a lock,
# so concurrent conditional writes can both succeed (lost updates seen with a
# short GIL switch interval), and concurrent GET/PUT of one key sometimes
# fails inside moto with a 500. Races run only where CAS is atomic.
@pytest.fixture(params=[LOCAL, SEAWEEDFS])
def cas_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    """A store on a backend whose conditional writes are atomic under concurrency."""
    yield from _one_store(request, tmp_path, monkeypatch)


@pytest.fixture(params=[SEAWEEDFS, MOTO])
def s3_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    """A store on each S3 server (for what only S3 has: its requests, its answers)."""
    yield from _one_store(request, tmp_path, monkeypatch)


def _one_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    for make in _store_factory(request, tmp_path, monkeypatch):
        yield _main_store(make)


def _main_store(make_store: MakeStore) -> Store:
    store = make_store("main")
    store.ping()  # S3: creates the bucket on first use
    return store


def _store_factory(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeStore]:
    if request.param == "local":
        yield lambda name: LocalStore(tmp_path / name)
        return

    from store._s3 import S3Store

    server: S3Server = request.getfixturevalue(request.param)
    for var, value in server.env().items():  # boto3 reads credentials from the environment
        monkeypatch.setenv(var, value)
    test_id = uuid.uuid4().hex[:12]
    stores: list[S3Store] = []

    def make(name: str) -> Store:
        store = S3Store(
            BUCKET, f"{test_id}/{name}", endpoint_url=server.endpoint_url, region=server.region
        )
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()
