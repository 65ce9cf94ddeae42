"""The python builder: what it accepts, what it bundles, what it refuses (no sandbox here;
the runtime's own `check` is tested in tests/sandbox/test_python_runtime.py)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from compiler import BuildFailed, BuildLog, BuildRequest, builder_for, layout
from compiler.runtimes import python_runtime as rt
from compiler.runtimes.python import PythonBuilder, resolve_requirements


def request(files=None, requirements=()) -> BuildRequest:
    return BuildRequest(
        function_id="fn_test",
        version=1,
        runtime="python",
        handler="handler.main",
        form=None,
        target=None,
        files=files if files is not None else {"handler.py": "def main(event):\n    return 1\n"},
        requirements=list(requirements),
    )


@pytest.fixture
def fake_runtimes(tmp_path: Path) -> Path:
    """A runtimes folder holding a 'built' runtime (files are placeholders)."""
    folder = rt.runtime_folder(tmp_path)
    folder.mkdir()
    (folder / "runtime.wasm").write_bytes(b"\0asm\x0d\0\x01\0")
    (folder / "stdlib.tar").write_bytes(b"")
    rt.write_manifest(folder, "3.14.0", {"wasm_sha256": "ab" * 32})
    return tmp_path


@pytest.fixture
def log(tmp_path: Path):
    build_log = BuildLog(tmp_path / "build.log")
    yield build_log
    build_log.close()


def test_registered():
    assert isinstance(builder_for("python"), PythonBuilder)


def test_bundle_and_stdlib_mount(fake_runtimes, tmp_path, log):
    files = {"handler.py": "import util\ndef main(e):\n    pass\n", "pkg/util.py": "X = 1\n"}
    out = tmp_path / "out"
    out.mkdir()
    result = PythonBuilder(runtimes_dir=fake_runtimes).build(request(files), out, log)
    assert result.kind == "runtime"
    assert result.runtime_version == (
        f"CPython 3.14.0 (componentize-py {rt.componentize_py_version()}, "
        f"nimbus-runtime {rt.runner_revision()})"
    )
    assert result.artifact == rt.runtime_folder(fake_runtimes) / "runtime.wasm"
    assert json.loads(result.bundle.read_text()) == files
    assert result.mounts == {"/python": rt.runtime_folder(fake_runtimes) / "stdlib.tar"}
    assert "runtime: CPython 3.14.0" in log.text()


def test_data_files_are_mounted_with_the_modules(fake_runtimes, tmp_path, log):
    files = {"handler.py": "def main(e):\n    pass\n", "pkg/data.json": "{}"}
    result = PythonBuilder(runtimes_dir=fake_runtimes).build(request(files), tmp_path, log)
    assert set(result.mounts) == {"/python", "/function"}
    with tarfile.open(result.mounts["/function"]) as tar:
        assert sorted(tar.getnames()) == ["handler.py", "pkg", "pkg/data.json"]
        assert tar.extractfile("pkg/data.json").read() == b"{}"


def test_files_that_cannot_be_folders_fail_the_build(fake_runtimes, tmp_path, log):
    files = {"handler.py": "def main(e):\n    pass\n", "conf": "x", "conf/a.json": "{}"}
    with pytest.raises(BuildFailed, match="cannot be laid out"):
        PythonBuilder(runtimes_dir=fake_runtimes).build(request(files), tmp_path, log)


def test_runtime_not_installed(tmp_path, log):
    with pytest.raises(BuildFailed, match=r"runtimes/python\.sh"):
        PythonBuilder(runtimes_dir=tmp_path / "none").build(request(), tmp_path, log)


@pytest.mark.parametrize(
    "files",
    [{}, {"../evil.py": "x"}, {"/abs.py": "x"}, {"a\\b.py": "x"}, {"data.json": "{}"}],
    ids=["empty", "dotdot", "absolute", "backslash", "no-py"],
)
def test_bad_file_layouts(fake_runtimes, tmp_path, log, files):
    with pytest.raises(BuildFailed):
        PythonBuilder(runtimes_dir=fake_runtimes).build(request(files), tmp_path, log)


@pytest.mark.parametrize(
    "requirement",
    ["--index-url=https://example.invalid", "-r /etc/passwd", "pkg @ file:///etc/passwd", "a b"],
)
def test_requirements_that_are_not_plain_packages(fake_runtimes, tmp_path, log, requirement):
    with pytest.raises(BuildFailed, match="requirement"):
        PythonBuilder(runtimes_dir=fake_runtimes).build(
            request(requirements=[requirement]), tmp_path, log
        )


def test_requirements_resolve_to_pure_python_wheels(tmp_path, log):
    """Real pip against the package registry: versions in the log, a tar to mount."""
    target = tmp_path / "deps"
    resolved = resolve_requirements(["tabulate>=0.9"], "3.14.0", target, log)
    names = {name.lower() for name, _ in resolved}
    assert "tabulate" in names
    assert (target / "tabulate").is_dir()
    assert not (target / "bin").exists()
    version = dict((n.lower(), v) for n, v in resolved)["tabulate"]
    assert f"resolved tabulate=={version}" in log.text()
    rt.archive(target, tmp_path / "deps.tar")
    with tarfile.open(tmp_path / "deps.tar") as tar:
        assert any(name.startswith("tabulate/") for name in tar.getnames())


def test_packages_with_compiled_code_are_refused(tmp_path, log):
    with pytest.raises(BuildFailed, match="pure-Python"):
        resolve_requirements(["orjson"], "3.14.0", tmp_path / "deps", log)


def _build_script():
    """scripts/runtimes/python_runtime.py, which python.sh runs, as a module."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "runtimes" / "python_runtime.py"
    spec = importlib.util.spec_from_file_location("python_runtime_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                   check=True, capture_output=True)  # fmt: skip


def test_a_build_keeps_the_runtimes_other_checkouts_expect(tmp_path):
    """Worktrees share .cache/runtimes: building one checkout's runtime removed every other
    `python-*` folder, so main's tests and servers found their runtime gone. Only runtimes
    no checkout expects go now, with the seeds only they used."""
    build = _build_script()
    repo, other = tmp_path / "repo", tmp_path / "other"
    sources = [rt.RUNNER, rt.PYC_COMPILER, rt.WIT_DIR / "handler.wit"]
    for source in sources:
        target = repo / source.relative_to(layout.SOURCE_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "runtime sources")
    _git(repo, "worktree", "add", "-q", "--detach", str(other))
    runner = other / rt.RUNNER.relative_to(layout.SOURCE_ROOT)
    runner.write_text(runner.read_text() + "\n# another checkout's change\n")
    mine, theirs = rt.runtime_id(repo), rt.runtime_id(other)
    assert mine == rt.runtime_id() and theirs != mine

    runtimes = tmp_path / "runtimes"
    seeds = runtimes / rt.SEED_CACHE_DIR.name / "mounts"
    shas = {mine: "a1", theirs: "b2", "0123456789abcdef": "c3"}  # its wasm's sha
    for runtime_id, wasm_sha in shas.items():
        folder = runtimes / f"python-{runtime_id}"
        folder.mkdir(parents=True)
        manifest = {"wasm_sha256": wasm_sha, "stdlib_sha256": "d4"}  # one stdlib for all
        (folder / "manifest.json").write_text(json.dumps(manifest))
        for sha in (wasm_sha, "d4"):
            (seeds / sha).mkdir(parents=True, exist_ok=True)

    build.prune(runtimes / f"python-{mine}", repo)
    assert sorted(p.name for p in runtimes.glob("python-*")) == sorted(
        [f"python-{mine}", f"python-{theirs}"]
    )
    assert sorted(p.name for p in seeds.iterdir()) == ["a1", "b2", "d4"]
