"""The console's shell and assets as the gateway serves them (in-process; the browser tests
in tests/console drive the built console through a real server)."""

from __future__ import annotations

import gzip
import re

import pytest
from falcon import testing

from gateway.api.app import create_app
from gateway.platform import Platform
from gateway.settings import Settings

KEY = "test-key"
SHELL = """<!doctype html><html><head><meta name="csp-nonce" content="{{nonce}}">
<link rel="stylesheet" href="/assets/style-ABC.css">
<script type="module" src="/assets/app-ABC.js"></script></head><body></body></html>"""


@pytest.fixture
def built(tmp_path):
    folder = tmp_path / "console"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(SHELL)
    (folder / "assets" / "app-ABC.js").write_text("console.log('app')")
    (folder / "assets" / "app-ABC.js.gz").write_bytes(gzip.compress(b"console.log('app')"))
    (folder / "assets" / "style-ABC.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("not an asset")
    return folder


def _client(tmp_path, console_dir):
    settings = Settings(data_dir=tmp_path / "data", nimbus_api_key=KEY, console_dir=console_dir)
    platform = Platform.open(settings)
    return platform, testing.TestClient(create_app(platform, KEY))


@pytest.fixture
def anonymous(tmp_path, built):
    _, client = _client(tmp_path, built)
    return client


def test_the_shell_has_a_strict_csp_with_a_fresh_nonce_and_no_inline_script(anonymous):
    first, second = anonymous.simulate_get("/"), anonymous.simulate_get("/")
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
    csp = first.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'content="{nonce}"' in first.text and "{{nonce}}" not in first.text
    assert nonce not in second.headers["Content-Security-Policy"]  # one per response
    assert first.headers["Cache-Control"] == "no-cache"
    assert re.findall(r"<script(?![^>]*\bsrc=)", first.text) == []  # every script is a file


def test_assets_are_long_cached_and_served_gzipped_when_asked(anonymous):
    plain = anonymous.simulate_get("/assets/app-ABC.js")
    assert plain.status_code == 200 and plain.text == "console.log('app')"
    assert plain.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert plain.headers["content-type"].startswith("text/javascript")
    assert plain.headers["X-Content-Type-Options"] == "nosniff"
    packed = anonymous.simulate_get("/assets/app-ABC.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.content) == b"console.log('app')"
    css = anonymous.simulate_get("/assets/style-ABC.css", headers={"Accept-Encoding": "gzip"})
    assert css.text == "body{}" and "Content-Encoding" not in css.headers  # no .gz built


def test_no_console_answer_can_be_framed_and_its_window_is_its_own(tmp_path, anonymous):
    """Webhook pages share this origin (sandboxed, tests/gateway/test_webhook_responses.py):
    none may frame the console, and none that opens it keeps a handle on its window."""
    shell = anonymous.simulate_get("/")
    assert "frame-ancestors 'none'" in shell.headers["Content-Security-Policy"]
    assert "sandbox" not in shell.headers["Content-Security-Policy"]  # the console's origin
    assert shell.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    _, unbuilt = _client(tmp_path / "unbuilt", tmp_path / "missing")
    for resp in (shell, anonymous.simulate_get("/assets/app-ABC.js"), unbuilt.simulate_get("/")):
        assert resp.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    "path",
    [
        "/assets/nope-123.js",
        "/assets/app-ABC.js.gz",
        "/assets/..%2Fsecret.txt",
        "/assets/%2E%2E",
        "/assets/index.html",
        "/assets/../index.html",
    ],
)
def test_only_built_asset_names_are_served(anonymous, path):
    resp = anonymous.simulate_get(path)
    assert resp.status_code == 404, (path, resp.status_code)
    assert "not an asset" not in resp.text


def test_an_unbuilt_console_says_how_to_build_it(tmp_path):
    _, client = _client(tmp_path, tmp_path / "missing")
    resp = client.simulate_get("/")
    assert resp.status_code == 503 and "make install" in resp.text
    assert client.simulate_get("/api/v1/functions").status_code == 401  # the API is unaffected
