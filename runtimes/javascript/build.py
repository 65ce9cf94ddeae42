"""Build, precompile and smoke-test the shared JavaScript runtime (scripts/runtimes/javascript.sh).

Steps, each timed:
1. assemble the WIT folder: the build world (wit/world.wit here), the published
   `runtime` world (wit/handler.wit) and the WASI 0.2 packages componentize-js
   ships, then componentize src/runtime.js (SpiderMonkey, ~1-3 min);
2. precompile the component with the sandbox's own engine into the seed cache
   folder `.cache/runtimes/cache/` (the 30-80 s compile no server does);
3. run a smoke function and `check` through a real Sandbox, write manifest.json.

Everything lands in `.cache/runtimes/javascript-<id>/` only when complete.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from compiler import layout  # noqa: E402
from compiler.runtimes import javascript as js  # noqa: E402
from compiler.runtimes.seeds import ensure_seed, precompile_seed  # noqa: E402
from sandbox import Deployment, Sandbox, SandboxConfig, engine_tag  # noqa: E402
from store import LocalStore  # noqa: E402
from store.functions import FunctionRepo  # noqa: E402

SEED_CACHE_DIR = js.RUNTIMES_DIR / "cache"  # the sandbox's seed folder (scripts/runtimes/)
WASI_VERSION = "0.2.12"  # the WASI packages StarlingMonkey imports
WASI_PACKAGES = ("wasi-cli", "wasi-clocks", "wasi-filesystem", "wasi-io", "wasi-random",
                 "wasi-sockets")  # fmt: skip
WORLD = "javascript-runtime"
# StarlingMonkey features the runtime leaves out: no network (DESIGN.md) and no
# HTTP handler world, so the component imports no wasi:http at all.
DISABLED = ("http", "fetch-event")

_SMOKE = """\
exports.main = async (event, context) => {
  await new Promise((resolve) => setTimeout(resolve, 1));
  return { sum: event.a + event.b, name: context.function_name, env: process.env.SMOKE };
};
"""


def step(name: str, began: list[float]) -> float:
    now = time.monotonic()
    took = now - began[0]
    print(f"    {name}: {took:.1f}s", flush=True)
    began[0] = now
    return took


def componentize_js_version() -> str:
    package = js.NODE_MODULES / "@bytecodealliance" / "componentize-js" / "package.json"
    return json.loads(package.read_text())["version"]


def assemble_wit(dest: Path) -> None:
    deps = dest / "deps"
    (deps / "nimbus-function").mkdir(parents=True)
    shutil.copyfile(js.SOURCES / "wit" / "world.wit", dest / "world.wit")
    shutil.copyfile(js.WIT_DIR / "handler.wit", deps / "nimbus-function" / "handler.wit")
    builtin = js.NODE_MODULES / "@bytecodealliance" / "jco" / "lib" / "wit" / "builtin"
    for name in WASI_PACKAGES:
        (deps / name).mkdir()
        shutil.copyfile(builtin / WASI_VERSION / name / "package.wit", deps / name / "package.wit")


def componentize(work: Path, out: Path) -> None:
    wit = work / "wit"
    assemble_wit(wit)
    shutil.copyfile(js.SOURCES / "src" / "runtime.js", work / "runtime.js")
    tool = js.NODE_MODULES / ".bin" / "componentize-js"
    subprocess.run(
        [str(tool), "runtime.js", "--wit", "wit", "--world-name", WORLD,
         "--disable", *DISABLED, "--out", str(out)],
        cwd=work,
        check=True,
        timeout=1800,
    )  # fmt: skip


def smoke(store: LocalStore, wasm: tuple[str, str]) -> tuple[str, dict, float]:
    """Run and check a tiny function on the new runtime; (result, check facts, fresh-call ms)."""
    repo = FunctionRepo(store)
    key, sha = repo.put_blob(_SMOKE.encode())
    dep = Deployment(
        function_id="fn_runtimebuild",
        function_name="runtime-build",
        version=1,
        artifact_key=wasm[0],
        artifact_sha256=wasm[1],
        kind="runtime",
        handler="handler.main",
        source_key=key,
        source_sha256=sha,
        env_vars={"SMOKE": "yes"},
        memory_mb=64,
        timeout_sec=30,
    )
    sandbox = Sandbox(store, SandboxConfig(cache_dir=SEED_CACHE_DIR))
    try:
        facts = json.loads(sandbox.check(dep))
        timings = []
        for _ in range(5):
            result = sandbox.invoke(dep, b'{"a": 1, "b": 2}', {})
            if result.error is not None:
                raise RuntimeError(f"the smoke test failed: {result.error}")
            timings.append(result.duration_ms)
    finally:
        sandbox.close()
    expected = {"sum": 3, "name": "runtime-build", "env": "yes"}
    if json.loads(result.output) != expected:
        raise RuntimeError(f"the smoke test returned {result.output!r}, not {expected}")
    return result.output.decode(), facts, sorted(timings)[len(timings) // 2]


def build(root: Path) -> js.JavaScriptRuntime:
    final = js.runtime_folder(root)
    began = [time.monotonic()]
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-js-", dir=root))
    try:
        wasm_path = work / "runtime.wasm"
        (work / "src").mkdir()
        componentize(work / "src", wasm_path)
        componentize_s = step(f"componentized ({wasm_path.stat().st_size >> 20} MB)", began)

        store = LocalStore(work / "store")
        repo = FunctionRepo(store)
        wasm = repo.put_blob_file(wasm_path)
        precompile_seed(store, wasm, SEED_CACHE_DIR)
        precompile_s = step("precompiled into the seed cache", began)

        output, facts, call_ms = smoke(store, wasm)
        step(f"smoke test: {output}, fresh instance + call {call_ms:.1f} ms", began)

        shutil.rmtree(work / "store")
        shutil.rmtree(work / "src")
        version = (
            f"SpiderMonkey (StarlingMonkey, componentize-js {componentize_js_version()}, "
            f"nimbus-runtime {js.runtime_revision()})"
        )
        manifest = {
            "runtime_version": version,
            "engine": facts.get("engine"),
            "wasm_sha256": wasm[1],
            "wasm_bytes": wasm_path.stat().st_size,
            "componentize_sec": round(componentize_s, 1),
            "precompile_sec": round(precompile_s, 1),
            "smoke_call_ms": round(call_ms, 2),
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        work.chmod(0o755)
        work.rename(final)
        return js.JavaScriptRuntime(final, version)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def prune(root: Path, keep: Path) -> None:
    """Remove runtimes built from older sources, and their precompiled seeds, unless a
    checkout of this repository (a git worktree) still expects one (a server still
    serving an old version loads its artifacts from the store, not from here)."""
    in_use = layout.checkouts_runtime_ids(js.runtime_id, REPO) or set()
    for folder in root.glob("javascript-*"):
        if folder == keep or not folder.is_dir():
            continue
        if folder.name.removeprefix("javascript-") in in_use:
            print(f"    kept {folder.name}: another checkout of this repository uses it")
            continue
        try:
            sha = json.loads((folder / "manifest.json").read_text())["wasm_sha256"]
        except (OSError, ValueError, KeyError):
            sha = None
        if sha:
            for seed in SEED_CACHE_DIR.glob(f"*/{sha}"):
                shutil.rmtree(seed, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        print(f"    removed the older runtime {folder.name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args()
    found = js.installed()
    if found is not None and not args.force:
        print(f"==> JavaScript runtime up to date: {found.runtime_version} ({found.folder.name})")
        if ensure_seed(found.wasm, found.wasm_sha256, SEED_CACHE_DIR):
            print(f"    precompiled it for this engine ({engine_tag()})")
        return 0
    print(f"==> building the shared JavaScript runtime ({js.runtime_folder().name}, ~2-4 min once)")
    started = time.monotonic()
    built = build(js.RUNTIMES_DIR)
    prune(js.RUNTIMES_DIR, built.folder)
    print(f"==> {built.runtime_version} in {time.monotonic() - started:.0f}s: {built.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
