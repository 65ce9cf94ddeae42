"""Shell completion as bash asks for it (`_NIMBUS_COMPLETE=bash_complete`), names from a
real server."""

from __future__ import annotations

import os
import subprocess
import time

from tests.e2e import wasm as w
from tests.e2e.server import NIMBUS
from tests.e2e.test_observability import deploy, once


def complete(*words: str, **env: str) -> list[str]:
    """What bash's Tab offers after `nimbus WORDS` (the last word is being typed)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NIMBUS_")}
    out = subprocess.run(
        [str(NIMBUS)], capture_output=True, text=True, timeout=30,
        env={**clean, **env, "_NIMBUS_COMPLETE": "bash_complete",
             "COMP_WORDS": " ".join(["nimbus", *words]), "COMP_CWORD": str(len(words))},
    )  # fmt: skip
    assert out.returncode == 0 and not out.stderr, out.stderr
    return [line.split(",", 1)[1] for line in out.stdout.splitlines() if line]


def test_tab_completes_commands_function_names_and_aliases(make_server, tmp_path):
    server = make_server().start()
    for name in ("hello", "help-desk", "other"):
        deploy(server, name, w.constant_wat(b"{}"))
    once(server, "POST", "/api/v1/functions/hello/aliases", json={"name": "prod", "version": 1})
    once(server, "POST", "/api/v1/functions/hello/aliases", json={"name": "beta", "version": 1})
    env = {"NIMBUS_API_URL": server.url, "NIMBUS_API_KEY": server.api_key}

    assert complete("can", **env) == ["canary"]
    assert complete("canary", "", **env) == ["abort", "start", "status"]
    assert complete("invoke", "hel", **env) == ["hello", "help-desk"]
    assert complete("invoke", "hello:", **env) == ["hello:beta", "hello:prod"]
    assert complete("versions", "o", **env) == ["other"]
    # the connection from flags typed before the command works as well as the environment
    flags = ["--url", server.url, "--api-key", server.api_key]
    assert complete(*flags, "alias", "list", "he") == ["hello", "help-desk"]

    started = time.monotonic()  # no server: nothing offered, nothing printed, no wait
    assert complete("invoke", "he", NIMBUS_API_URL="http://127.0.0.1:9") == []
    assert time.monotonic() - started < 10
    assert complete("invoke", "he", NIMBUS_API_URL=server.url, NIMBUS_API_KEY="wrong") == []
