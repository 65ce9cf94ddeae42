"""`python`: source on the shared Python runtime — stored and checked, never componentized.

A build (about a second) checks the files' paths, resolves `requirements` to
pure-Python wheels for the guest's CPython and bundles them, and names the
shared runtime component (built once per machine by
scripts/runtimes/python.sh) as the artifact. The build pipeline then asks the
sandbox to `check` the source with the guest's own compiler, so syntax errors
name the user's file and line (docs/decisions/0004-shared-python-runtime.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

from .._base import BuildFailed, BuildLog, BuildRequest, BuildResult
from . import python_runtime

_DEPS_LIMIT = 100 << 20  # unpacked bytes of a function's bundled requirements
_PIP_TIMEOUT_SEC = 300
# NOTE(build): only wheels tagged for any platform and no ABI are accepted, so
# pip runs no package code on the host (no sdist builds, no setup.py).
_PIP_TARGET = ["--only-binary=:all:", "--implementation", "py", "--abi", "none",
               "--platform", "any"]  # fmt: skip


class PythonBuilder:
    runtime = "python"

    def __init__(self, config: object = None, runtimes_dir: Path | None = None) -> None:
        self._runtimes_dir = runtimes_dir or python_runtime.RUNTIMES_DIR

    def build(self, request: BuildRequest, workdir: Path, log: BuildLog) -> BuildResult:
        runtime = python_runtime.installed(self._runtimes_dir)
        if runtime is None:
            raise BuildFailed(
                "the shared Python runtime is not installed on this server "
                "(scripts/runtimes/python.sh, run by `make install`, builds it)"
            )
        files = _checked_files(request.files)
        _refuse_a_lambda_handler(files, request.handler or "handler.main")
        log.write(f"runtime: {runtime.runtime_version}")
        log.write(f"source: {len(files)} file(s): {', '.join(sorted(files))}")
        bundle = workdir / "bundle.json"
        bundle.write_text(json.dumps(files, sort_keys=True, ensure_ascii=False))
        mounts = {python_runtime.STDLIB_MOUNT: runtime.stdlib}
        if any(not path.endswith(".py") for path in files):
            # PERF(build): only functions with data files pay for the mount (~0.2 ms
            # a call); .py files alone are served to `import` from the bundle.
            mounts[python_runtime.FILES_MOUNT] = _files_archive(files, workdir)
        if request.requirements:
            target = workdir / "deps"
            resolve_requirements(request.requirements, runtime.python_version, target, log)
            deps = workdir / "deps.tar"
            python_runtime.archive(target, deps)
            log.write(f"dependencies bundled: {deps.stat().st_size} bytes")
            mounts[python_runtime.DEPS_MOUNT] = deps
        return BuildResult(
            artifact=runtime.wasm,
            kind="runtime",
            runtime_version=runtime.runtime_version,
            bundle=bundle,
            mounts=mounts,
        )


def _checked_files(files: dict[str, str] | None) -> dict[str, str]:
    if not files:
        raise BuildFailed("a python function needs source: `code` or `files`")
    for path in files:
        parts = PurePosixPath(path).parts
        if not parts or path.startswith("/") or "\\" in path or ".." in parts or "." in parts:
            raise BuildFailed(f"file path {path!r} must be relative, with / between folders")
    if not any(path.endswith(".py") for path in files):
        raise BuildFailed("a python function needs at least one .py file")
    return files


def _refuse_a_lambda_handler(files: dict[str, str], handler: str) -> None:
    """A module written for AWS Lambda defines `lambda_handler`; deployed without a handler
    it failed the runtime's check with "defines no `main`" and no more. Said here, with
    the setting that serves it, when the module never even names the handler's function."""
    module, _, name = handler.rpartition(".")
    path = module.replace(".", "/") + ".py"
    text = files.get(path)
    if text is None or re.search(rf"\b{re.escape(name)}\b", text):
        return  # no such file (the runtime says so), or it may well define it
    for other in ("lambda_handler", "handler"):
        if other != name and re.search(rf"^(?:async\s+)?def\s+{other}\s*\(", text, re.M):
            wanted = f"{module}.{other}"
            raise BuildFailed(
                f"{path} defines no `{name}` (the handler is {handler!r}); it defines "
                f"`{other}` (AWS Lambda's name): set the function's handler to {wanted!r} "
                f'(`nimbus deploy --handler {wanted}`, or "handler" in the API)'
            )


def _files_archive(files: dict[str, str], workdir: Path) -> Path:
    """The function's files as a tar, mounted read-only where the handler's `__file__`
    points, so it can open its data files (`data.json` beside `handler.py`)."""
    folder = workdir / "files"
    try:
        for path, text in files.items():
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    except OSError as exc:  # e.g. "a" and "a/b.py": a file where a folder must be
        raise BuildFailed(f"the files cannot be laid out as folders: {exc}") from None
    archive = workdir / "files.tar"
    python_runtime.archive(folder, archive)
    return archive


def requirement_problem(text: str) -> str | None:
    """Why `text` cannot be a Python function's requirement (PEP 508, a package of the
    index, not a URL), or None: the API refuses it at once, the build checks it again."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        return f"requirement {text!r} is not PEP 508: {exc}"
    if req.url:
        return f"requirement {text!r}: only packages from the index, not URLs"
    return None


def _checked_requirements(requirements: list[str]) -> list[str]:
    from packaging.requirements import Requirement

    for text in requirements:
        if problem := requirement_problem(text):
            raise BuildFailed(problem)
    return [str(Requirement(text)) for text in requirements]


# What pip says when it cannot reach an index (it then reports "from versions: none").
_UNREACHABLE = (
    "connection broken by", "NewConnectionError", "ConnectTimeoutError", "Could not fetch URL",
    "Temporary failure in name resolution", "Name or service not known",
)  # fmt: skip


def _pip_env() -> dict[str, str]:
    """pip's own configuration (index, proxy) and nothing else of the server's."""
    keep = {"PATH", "HOME", "LANG", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"}
    return {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}


def resolve_requirements(
    requirements: list[str], python_version: str, target: Path, log: BuildLog
) -> list[tuple[str, str]]:
    """pip-install pure-Python wheels for the guest's CPython into `target`;
    returns and logs the resolved (name, version) pairs."""
    wanted = _checked_requirements(requirements)
    major_minor = ".".join(python_version.split(".")[:2])
    report = target.parent / "pip-report.json"
    log.write(f"resolving {len(wanted)} requirement(s) for CPython {major_minor}: {wanted}")
    command = [
        sys.executable, "-m", "pip", "install", "--target", str(target), *_PIP_TARGET,
        "--python-version", major_minor, "--no-compile", "--disable-pip-version-check",
        "--no-input", "--progress-bar", "off", "--report", str(report), *wanted,
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command,
            env=_pip_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_PIP_TIMEOUT_SEC,
        )
    except subprocess.TimeoutExpired:
        raise BuildFailed(f"resolving requirements took over {_PIP_TIMEOUT_SEC} s") from None
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        lines = [line for line in output.splitlines() if line.startswith("ERROR")] or [output]
        log.write(output[-4000:])
        if any(sign in output for sign in _UNREACHABLE):
            raise BuildFailed(
                "the package index could not be reached from this server, so the "
                "requirements could not be resolved (an offline server resolves them from "
                "a wheelhouse: set PIP_FIND_LINKS=/path/to/wheels and PIP_NO_INDEX=1 in its "
                "environment): " + " ".join(lines)[:1000]
            )
        raise BuildFailed(
            "requirements could not be resolved to pure-Python wheels for CPython "
            f"{major_minor} (packages with compiled code cannot run in WebAssembly): "
            + " ".join(lines)[:1000]
        )
    resolved = [
        (item["metadata"]["name"], item["metadata"]["version"])
        for item in json.loads(report.read_text()).get("install", [])
    ]
    for name, version in resolved:
        log.write(f"  resolved {name}=={version}")
    for leftover in ("bin", "__pycache__"):
        shutil.rmtree(target / leftover, ignore_errors=True)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    if size > _DEPS_LIMIT:
        raise BuildFailed(f"the requirements take {size >> 20} MB; the limit is 100 MB")
    return resolved
