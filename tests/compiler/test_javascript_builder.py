"""The `javascript` builder: esbuild bundles (jailed), npm dependencies, what is refused.

These need esbuild (scripts/runtimes/javascript.sh installs it) and the build
jail, not the runtime component: a stand-in runtime folder names the artifact.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

from compiler import BuildFailed, BuildLog, BuildRequest
from compiler.runtimes import javascript as js


@pytest.fixture
def runtimes_dir(tmp_path: Path) -> Path:
    root = tmp_path / "runtimes"
    folder = js.runtime_folder(root)
    folder.mkdir(parents=True)
    (folder / "runtime.wasm").write_bytes(b"\0asm stand-in")
    (folder / "manifest.json").write_text(json.dumps({"runtime_version": "JS test runtime"}))
    return root


def build(tmp_path: Path, runtimes_dir: Path, files: dict[str, str], handler="handler.main"):
    out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
    out.mkdir()
    request = BuildRequest("fn_x", 1, "javascript", handler, None, None, files=files)
    log = BuildLog(out / "build.log")
    try:
        result = js.JavaScriptBuilder(runtimes_dir=runtimes_dir).build(request, out, log)
        return result, log.text()
    finally:
        log.close()


def source_map(bundle: str) -> dict:
    encoded = bundle.rsplit("base64,", 1)[1].strip()
    return json.loads(base64.b64decode(encoded))


def test_esm_becomes_one_commonjs_bundle_with_a_source_map(tmp_path, runtimes_dir):
    files = {
        "handler.js": "import { twice } from './lib/util.js';\n"
        "export async function main(e) { return twice(e.n); }\n",
        "lib/util.js": "export const twice = (n) => n * 2;\n",
    }
    result, log = build(tmp_path, runtimes_dir, files)
    assert result.kind == "runtime"
    assert result.runtime_version == "JS test runtime"
    assert result.artifact == js.runtime_folder(runtimes_dir) / "runtime.wasm"
    text = result.bundle.read_text()
    assert "module.exports" in text and not re.search(r"^\s*(import|export) ", text, re.M)
    assert sorted(source_map(text)["sources"]) == ["handler.js", "lib/util.js"]
    assert "entry handler.js, export 'main'" in log
    assert re.search(r"bundled: \d+ bytes", log)


def test_syntax_error_names_file_and_line(tmp_path, runtimes_dir):
    files = {"handler.js": "exports.main = (e) => {\n  let x = 1;\n  return x +* 2;\n};\n"}
    with pytest.raises(BuildFailed, match=r'handler\.js:3:13: Unexpected "\*"'):
        build(tmp_path, runtimes_dir, files)


@pytest.mark.parametrize(
    ("files", "handler", "message"),
    [
        ({"handler.js": "exports.other = 1;"}, "handler.main", "does not export 'main'"),
        ({"handler.js": "export function other() {}"}, "handler.main", "does not export 'main'"),
        ({"index.js": "exports.main = 1;"}, "handler.main", "no handler.js among"),
        ({"handler.js": "exports.main = 1;"}, "handler.ma-in", "must look like 'file.export'"),
        ({"../x.js": "exports.main = 1;"}, "handler.main", "invalid file name"),
        ({"handler.js": "exports.main = 1;", "@x.js": ""}, "handler.main", "invalid file name"),
        ({"handler.js": "exports.main = 1;", "--x.js": ""}, "handler.main", "invalid file name"),
        ({"handler.js": "require('/etc/os-release.json'); exports.main = 1;"}, None,
         "Could not resolve"),
    ],
)  # fmt: skip
def test_refused_sources(tmp_path, runtimes_dir, files, handler, message):
    with pytest.raises(BuildFailed, match=re.escape(message)):
        build(tmp_path, runtimes_dir, files, handler)


def test_node_builtins_stay_requires(tmp_path, runtimes_dir):
    files = {"handler.js": "const fs = require('fs');\nexports.main = () => typeof fs;\n"}
    result, _ = build(tmp_path, runtimes_dir, files)
    assert 'require("fs")' in result.bundle.read_text()


def test_typescript_and_other_extensions(tmp_path, runtimes_dir):
    files = {"api.ts": "export async function handle(e: { n: number }): Promise<number> {\n"
                       "  return e.n + 1;\n}\n"}  # fmt: skip
    result, _ = build(tmp_path, runtimes_dir, files, handler="api.handle")
    assert "e.n + 1" in result.bundle.read_text()


@pytest.mark.parametrize(
    "spec",
    ["file:../secrets", "link:/etc", "git+https://github.com/a/b.git", "github:a/b", "a/b",
     "https://example.com/x.tgz", "../x"],
)  # fmt: skip
def test_only_registry_dependencies(tmp_path, runtimes_dir, spec):
    files = {
        "handler.js": "exports.main = () => 1;",
        "package.json": json.dumps({"dependencies": {"x": spec}}),
    }
    with pytest.raises(BuildFailed, match="only versions and ranges of registry packages"):
        build(tmp_path, runtimes_dir, files)


_EVIL = "http://169.254.169.254/latest/x.tgz"


@pytest.mark.parametrize(
    "lock, message",
    [
        ({"lockfileVersion": 3, "packages": {"": {}, "node_modules/x": {
            "version": "1.0.0", "resolved": "https://evil.example/x.tgz"}}},
         "does not come from the npm registry"),
        ({"lockfileVersion": 3, "packages": {"node_modules/x": {
            "version": "1.0.0", "resolved": "git+ssh://git@internal/x.git"}}},
         "does not come from the npm registry"),
        # npm 11 still followed these: it fetched the URL from the server (seen on a
        # local listener), before the lockfile's legacy tree was checked.
        ({"lockfileVersion": 1, "dependencies": {"x": {"version": "1.0.0", "resolved": _EVIL}}},
         "lockfileVersion 2 or 3"),
        ({"lockfileVersion": 2, "packages": {"": {}}, "dependencies": {"x": {
            "version": "1.0.0", "dependencies": {"y": {"version": "1.0.0", "resolved": _EVIL}}}}},
         "x/dependencies/y does not come from the npm registry"),
        ({"lockfileVersion": 2, "packages": {"": {}},
          "dependencies": {"x": {"version": "github:a/b"}}},
         "does not come from the npm registry"),
    ],
    ids=["packages-url", "packages-git", "v1", "legacy-nested", "legacy-git-version"],
)  # fmt: skip
def test_lockfile_must_point_at_the_registry(tmp_path, runtimes_dir, lock, message):
    files = {
        "handler.js": "exports.main = () => 1;",
        "package.json": json.dumps({"dependencies": {"x": "^1.0.0"}}),
        "package-lock.json": json.dumps(lock),
    }
    with pytest.raises(BuildFailed, match=message):
        build(tmp_path, runtimes_dir, files)


@pytest.mark.timeout(300)
def test_npm_dependency_is_installed_and_bundled(tmp_path, runtimes_dir):
    files = {
        "handler.js": "const dayjs = require('dayjs');\n"
        "exports.main = () => dayjs('2024-01-31').add(1, 'month').format('YYYY-MM-DD');\n",
        "package.json": json.dumps({"name": "fn", "dependencies": {"dayjs": "^1.11.0"},
                                    "devDependencies": {"left-pad": "1.3.0"},
                                    "scripts": {"install": "touch /tmp/pwned"}}),
    }  # fmt: skip
    result, log = build(tmp_path, runtimes_dir, files)
    assert re.search(r"resolved dayjs@1\.11\.\d+", log)
    assert "left-pad" not in log
    text = result.bundle.read_text()
    assert "dayjs" in text
    assert any(s.startswith("node_modules/dayjs/") for s in source_map(text)["sources"])


def test_a_runtime_build_keeps_the_runtimes_other_checkouts_use(tmp_path):
    # Git worktrees share .cache/runtimes. A build used to remove every other
    # javascript-* runtime: building on a branch deleted main's until it was rebuilt.
    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("js_runtime_build", js.SOURCES / "build.py")
    runtime_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runtime_build)
    other = tmp_path / "other-checkout"
    git = ["git", "-C", str(repo)]
    subprocess.run(
        [*git, "worktree", "add", "-q", "--no-checkout", "--detach", str(other)], check=True
    )
    try:
        subprocess.run(
            ["git", "-C", str(other), "checkout", "-q", "HEAD", "--", "runtimes", "wit"], check=True
        )
        changed = other / "runtimes" / "javascript" / "src" / "runtime.js"
        changed.write_text(changed.read_text() + "// another branch's runtime\n")
        ours, theirs, nobodys = js.runtime_id(), js.runtime_id(other), "0123456789abcdef"
        assert theirs != ours
        root = tmp_path / "runtimes"
        for runtime_id in (ours, theirs, nobodys):
            (root / f"javascript-{runtime_id}").mkdir(parents=True)
        runtime_build.prune(root, keep=root / f"javascript-{ours}")
        assert sorted(p.name for p in root.iterdir()) == sorted(
            [f"javascript-{ours}", f"javascript-{theirs}"]
        )
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(other)], check=True)
