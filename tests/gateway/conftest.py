"""The gateway in-process: one platform on a temporary local store, and a client with the key."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from falcon import testing

from gateway.api.app import create_app
from gateway.platform import Platform
from gateway.settings import Settings

KEY = "test-key"


@contextlib.contextmanager
def running_platform(tmp_path, **settings) -> Iterator[tuple[Platform, testing.TestClient]]:
    """A started platform on a local store under `tmp_path`, and a client with the key."""
    platform = Platform.open(
        Settings(data_dir=tmp_path, build_poll_sec=0.05, nimbus_api_key=KEY, **settings)
    )
    platform.start()
    try:
        yield (
            platform,
            testing.TestClient(
                create_app(platform, KEY), headers={"Authorization": f"Bearer {KEY}"}
            ),
        )
    finally:
        platform.stop()


@pytest.fixture
def platform(tmp_path):
    settings = Settings(data_dir=tmp_path, build_poll_sec=0.05, nimbus_api_key=KEY)
    platform = Platform.open(settings)
    platform.start()
    yield platform
    platform.stop()


@pytest.fixture
def client(platform) -> testing.TestClient:
    return testing.TestClient(create_app(platform, KEY), headers={"Authorization": f"Bearer {KEY}"})
