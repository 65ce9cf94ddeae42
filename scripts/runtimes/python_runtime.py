"""Build, compile and warm the shared Python runtime (scripts/runtimes/python.sh).

Steps, each timed:
1. extract CPython's stdlib from componentize-py and componentize runner.py
   against the `runtime` world (compiler.runtimes.python_runtime);
2. precompile the component with the sandbox's own engine into the seed
   cache folder `.cache/runtimes/cache/` (the 10-40 s compile no server does);
3. compile every stdlib module to .pyc *with the guest's CPython*, by running
   `pyc_compile.py` as an ordinary function on the new runtime with the plain
   stdlib mounted read-only; the host writes the .pyc files and archives;
4. run a smoke function on the final stdlib archive (which unpacks it into the
   seed folder too), `check` for the Python version, write manifest.json.

Everything lands in `.cache/runtimes/python-<id>/` only when complete.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compiler import layout
from compiler.runtimes import python_runtime as rt
from compiler.runtimes.seeds import ensure_seed, precompile_seed
from sandbox import Deployment, Mount, Sandbox, SandboxConfig, engine_tag
from store import LocalStore
from store.functions import FunctionRepo

REPO = Path(__file__).resolve().parents[2]
_PYC_BATCH = 120  # stdlib files per invocation (the result stays under 6 MB)


def step(name: str, began: list[float]) -> None:
    now = time.monotonic()
    print(f"    {name}: {now - began[0]:.1f}s", flush=True)
    began[0] = now


def deployment(repo: FunctionRepo, wasm: tuple[str, str], source: str, mounts, **kw) -> Deployment:
    key, sha = repo.put_blob(source.encode())
    return Deployment(
        function_id="fn_runtimebuild",
        function_name="runtime-build",
        version=1,
        artifact_key=wasm[0],
        artifact_sha256=wasm[1],
        kind="runtime",
        handler="handler.main",
        source_key=key,
        source_sha256=sha,
        mounts=mounts,
        **kw,
    )


def build(root: Path) -> rt.PythonRuntime:
    final = rt.runtime_folder(root)
    began = [time.monotonic()]
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        stdlib = work / "stdlib"
        count = rt.extract_stdlib(stdlib)
        rt.archive(stdlib, work / "stdlib-source.tar")
        step(f"extracted the stdlib ({count} files)", began)
        rt.componentize(work / "runtime.wasm")
        step(f"componentized ({(work / 'runtime.wasm').stat().st_size >> 20} MB)", began)

        store = LocalStore(work / "store")
        repo = FunctionRepo(store)
        wasm = repo.put_blob_file(work / "runtime.wasm")
        precompile_seed(store, wasm, rt.SEED_CACHE_DIR)
        step("precompiled into the seed cache", began)

        pycs = 0
        source_mount = Mount(rt.STDLIB_MOUNT, *repo.put_blob_file(work / "stdlib-source.tar"))
        sandbox = Sandbox(
            store,
            SandboxConfig(cache_dir=work / "cache", seed_cache_dirs=(rt.SEED_CACHE_DIR,)),
        )
        try:
            files = json.dumps({"handler.py": rt.PYC_COMPILER.read_text()})
            dep = deployment(repo, wasm, files, (source_mount,), memory_mb=1024, timeout_sec=300)
            paths = sorted(str(p.relative_to(stdlib)) for p in stdlib.rglob("*.py"))
            for i in range(0, len(paths), _PYC_BATCH):
                event = {"paths": [f"{rt.STDLIB_MOUNT}/{p}" for p in paths[i : i + _PYC_BATCH]]}
                result = sandbox.invoke(dep, json.dumps(event).encode(), {})
                if result.error is not None:
                    raise RuntimeError(f"compiling the stdlib failed: {result.error}")
                for guest_path, data in json.loads(result.output).items():
                    source = stdlib / guest_path.removeprefix(rt.STDLIB_MOUNT + "/")
                    # The guest is CPython 3.14: its cache tag is cpython-314.
                    target = source.parent / "__pycache__" / f"{source.stem}.cpython-314.pyc"
                    target.parent.mkdir(exist_ok=True)
                    target.write_bytes(base64.b64decode(data))
                    pycs += 1
        finally:
            sandbox.close()
        rt.archive(stdlib, work / "stdlib.tar")
        step(f"compiled {pycs} stdlib modules to .pyc in the guest", began)

        check = Sandbox(store, SandboxConfig(cache_dir=rt.SEED_CACHE_DIR))
        try:
            mount = Mount(rt.STDLIB_MOUNT, *repo.put_blob_file(work / "stdlib.tar"))
            smoke = json.dumps({"handler.py": _SMOKE})
            dep = deployment(repo, wasm, smoke, (mount,), memory_mb=128, timeout_sec=60)
            result = sandbox_run(check, dep)
            facts = json.loads(check.check(dep))
        finally:
            check.close()
        step(f"smoke test ({result})", began)

        shutil.rmtree(work / "store")
        shutil.rmtree(work / "cache", ignore_errors=True)
        shutil.rmtree(stdlib)
        (work / "stdlib-source.tar").unlink()
        built = rt.write_manifest(
            work,
            facts["python"],
            {"wasm_sha256": wasm[1], "stdlib_sha256": mount.archive_sha256, "pyc": pycs},
        )
        shutil.rmtree(final, ignore_errors=True)
        work.chmod(0o755)
        work.rename(final)
        return rt.PythonRuntime(final, built.runtime_version, built.python_version)
    finally:
        shutil.rmtree(work, ignore_errors=True)


_SMOKE = """\
import heapq, email.utils, json
def main(event, context):
    return {"largest": heapq.nlargest(1, [3, 1, 2]), "ok": True}
"""


def sandbox_run(sandbox: Sandbox, dep: Deployment) -> str:
    result = sandbox.invoke(dep, b"{}", {})
    if result.error is not None:
        raise RuntimeError(f"the smoke test failed: {result.error}")
    return result.output.decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args()
    found = rt.installed()
    if found is not None and not args.force:
        print(f"==> Python runtime up to date: {found.runtime_version} ({found.folder.name})")
        if ensure_seed(found.wasm, found.wasm_sha256, rt.SEED_CACHE_DIR):
            print(f"    precompiled it for this engine ({engine_tag()})")
        return 0
    print(f"==> building the shared Python runtime ({rt.runtime_folder().name}, ~1-2 min once)")
    started = time.monotonic()
    built = build(rt.RUNTIMES_DIR)
    print(f"==> {built.runtime_version} in {time.monotonic() - started:.0f}s: {built.folder}")
    prune(built.folder)
    return 0


def prune(keep: Path, repo: Path = REPO) -> None:
    """Remove earlier Python runtimes beside `keep`, and what only they left in the seed
    cache, unless a checkout of `repo` (a git worktree) still expects one
    (`layout.checkouts_runtime_ids`). Outside git, all but `keep` go, as before."""

    def shas(folder: Path) -> set[str]:
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError):
            return set()
        return {manifest.get("wasm_sha256"), manifest.get("stdlib_sha256")} - {None}

    wanted = layout.checkouts_runtime_ids(rt.runtime_id, repo) or set()
    wanted.add(keep.name.removeprefix("python-"))
    folders = [f for f in keep.parent.glob("python-*") if f.is_dir()]
    kept = [f for f in folders if f.name.removeprefix("python-") in wanted]
    kept_shas = set().union(*(shas(f) for f in kept))  # one stdlib serves many runtimes
    for old in folders:
        if old in kept:
            if old != keep:
                print(f"    kept {old.name}: another checkout of this repository uses it")
            continue
        for sha in shas(old) - kept_shas:
            for leftover in (keep.parent / rt.SEED_CACHE_DIR.name).glob(f"*/{sha}"):
                shutil.rmtree(leftover, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
        print(f"    removed the earlier runtime {old.name}")


if __name__ == "__main__":
    sys.exit(main())
