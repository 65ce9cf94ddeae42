"""The density comparison's parts: distinct variants, a round-robin load, memory from /proc."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import wasmtime

from bench import procmem, roundrobin, start_profile, variants
from bench.wasm import echo_module

GREETER_WAT = r"""
(module
  (memory (export "memory") 1)
  (data (i32.const 64) "Hello, world!")
  (func (export "_start")))
"""


def test_variant_tags_are_distinct_and_fit_the_greeting() -> None:
    tags = {variants.tag(n) for n in range(2000)}
    assert len(tags) == 2000
    assert all(len(variants.greeting(n)) == len(variants.GREETING) for n in (0, 25, 26, 1999))


def test_a_patched_module_is_valid_different_and_says_its_variant() -> None:
    wasm = bytes(wasmtime.wat2wasm(GREETER_WAT))
    first, second = variants.patched_module(wasm, 1), variants.patched_module(wasm, 2)
    assert len({wasm, first, second}) == 3 and len(first) == len(wasm)
    wasmtime.Module(wasmtime.Engine(), first)  # still a valid module
    assert variants.greeting(2).encode() + b"world!" in second


def test_a_module_without_exactly_one_greeting_is_refused() -> None:
    with pytest.raises(ValueError, match="0 copies"):
        variants.patched_module(echo_module(), 1)


def test_sources_return_their_own_variant() -> None:
    namespace: dict = {}
    exec(variants.source("python", 7), namespace)
    assert namespace["main"]({"a": 1}) == {"variant": 7, "echo": {"a": 1}}
    assert "variant: 7" in variants.source("javascript", 7)


class _Recorder(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def test_roundrobin_load_walks_every_path_in_turn() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    paths = [f"/fn/{n}/invoke" for n in range(5)]
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        result = roundrobin.run(
            url, paths, body=b'{"x": 1}', headers={}, connections=1, duration_s=1
        )
    finally:
        server.shutdown()
    seen = _Recorder.paths
    assert result.requests > 10 and result.ok_fraction == 1
    start = paths.index(seen[0])  # wrk builds one request at start-up: the walk may begin later
    assert seen[:10] == [paths[(start + i) % len(paths)] for i in range(10)]


def test_roundrobin_refuses_other_hosts() -> None:
    with pytest.raises(roundrobin.wrk.WrkError, match="aim at 127"):
        roundrobin.run("http://192.0.2.1/", ["/"], body=b"{}", headers={}, connections=1,
                       duration_s=1)  # fmt: skip


def test_an_idle_process_has_a_plausible_rss() -> None:
    cmd = [sys.executable, "-c", "import sys; print('ready', flush=True); sys.stdin.read()"]
    mib = procmem.idle_process_rss_mib(cmd)
    assert 2 < mib < 500


def test_pss_of_a_child_is_at_most_its_rss() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert 0 < procmem.pss_kib(child.pid) <= procmem.rss_kib(child.pid)
    finally:
        child.kill()
        child.wait()


def test_a_start_profile_names_our_frames_for_workers_and_master(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    master = 'process 10:"nimbus serve"'
    worker = f'{master};process 11:"nimbus serve"'
    serve = f"serve ({repo}/gateway/serve.py)"
    app = f"<module> ({repo}/gateway/app.py)"
    folded = tmp_path / "start.folded"
    folded.write_text(
        f"{worker};{serve};NimbusServer.load ({repo}/gateway/serve.py);{app};x (/lib/a.py) 3\n"
        f"{worker};{serve};Platform.start ({repo}/gateway/platform.py);y (/lib/b.py) 1\n"
        f"{master};{serve};<module> ({repo}/cli/main.py);z (/lib/c.py) 2\n"
    )
    note = start_profile.summary(folded)
    workers, master_part = note.split("; master")
    assert workers.startswith("workers (4 busy samples")
    assert "75% NimbusServer.load (gateway/serve.py)" in workers and "serve (" not in workers
    assert "25% Platform.start (gateway/platform.py)" in workers
    assert "100% <module> (cli/main.py)" in master_part
