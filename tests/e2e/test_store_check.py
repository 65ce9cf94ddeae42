"""A store that ignores conditional writes is refused: leases (async, builds, workflows,
alerts) and one firing per schedule tick rest on If-None-Match / If-Match.

The store here is moto behind a proxy that drops If-None-Match (tests/e2e/liar_store.py):
an S3 server that accepts a second create-only write. `STORE_WITHOUT_CONDITIONAL_WRITES=
degrade` runs on it without schedules (test_schedules.py's
test_a_store_that_ignores_create_only_writes_runs_no_schedules).
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.liar_store import liar_proxy
from tests.e2e.server import NimbusProcess, free_port
from tests.s3servers import moto_server

pytestmark = pytest.mark.s3

HINT = "STORE_WITHOUT_CONDITIONAL_WRITES=degrade"


def test_nimbus_serve_refuses_to_start_on_a_store_that_ignores_conditional_writes(
    store_ignoring_create_only,
    make_server,
):
    server: NimbusProcess = make_server(store_ignoring_create_only)
    with pytest.raises(RuntimeError, match="nimbus serve exited"):
        server.start(timeout=30)
    assert server.proc.wait(5) == 2
    log = server.log_path.read_text()
    assert "not starting: the store ignores conditional writes" in log and HINT in log


@pytest.fixture
def store_that_answers_later() -> Iterator[tuple[dict[str, str], threading.Event]]:
    """A lying store whose endpoint refuses connections until the event is set."""
    with moto_server() as moto:
        port = free_port()
        up = threading.Event()
        proxies: list[http.server.ThreadingHTTPServer] = []

        def open_later() -> None:
            up.wait()
            proxies.append(liar_proxy(moto.endpoint_url, port))
            proxies[0].serve_forever()

        threading.Thread(target=open_later, daemon=True).start()
        env = {
            **moto.env(),
            "S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "NIMBUS_STORE": "s3://late-liar/nimbus",
            "NIMBUS_API_KEY": "e2e-late-liar-" + "k" * 32,
        }
        try:
            yield env, up
        finally:
            up.set()
            for proxy in proxies:
                proxy.shutdown()


def test_a_store_found_to_ignore_conditional_writes_after_start_makes_the_server_unready(
    store_that_answers_later, make_server
):
    env, store_up = store_that_answers_later
    server: NimbusProcess = make_server(env, workers=1).launch()
    deadline = time.monotonic() + 30
    while True:
        try:
            ready = httpx.get(f"{server.url}/ready", timeout=5)
            if ready.json().get("store") == "unreachable":
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and server.proc.poll() is None
        time.sleep(0.2)
    assert ready.status_code == 503

    store_up.set()
    deadline = time.monotonic() + 40
    while (ready := httpx.get(f"{server.url}/ready", timeout=10)).json().get("store") != (
        "no_conditional_writes"
    ):
        assert time.monotonic() < deadline, ready.text
        time.sleep(0.3)
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    assert server.proc.poll() is None  # liveness (/health) still answers: no restart loop
    assert httpx.get(f"{server.url}/health").status_code == 200
    log = server.log_path.read_text()
    assert "takes no background work" in log and HINT in log
