"""Where each compiled language's toolchain lives, and installing it when missing.

A toolchain is installed by its script, `scripts/toolchains/<language>.sh`
(the one place its versions are pinned), into `TOOLCHAINS_DIR/<name>-<version>/`.
`make install` runs every script up front; a build whose toolchain is missing
runs it lazily, with the script's progress in the build log, or fails with a
message saying how to install it.

Compilers with a global cache (zig's, Go's) get a *warm cache*: filled once
per toolchain and glue version by a build of a sample handler, kept under
`TOOLCHAINS_DIR/caches/`. zig's and cargo's are copied into each build's own
folder (zig opens its manifests read-write); Go builds read theirs in place,
mounted read-only, through a cache helper (compiler/runtimes/go.py).
NOTE(jail): builds never write a shared cache — a build sees only its own
folder writable — so one function's build cannot plant objects in another's.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import layout
from ._base import BuildConfig, BuildFailed, BuildLog

SCRIPTS_DIR = layout.SCRIPTS_DIR / "toolchains"
INSTALL_TIMEOUT_SEC = 1800
_STAMP = ".nimbus-installed"
_WARM_DONE = ".nimbus-warm"
_VERSION_RE = re.compile(r"^(?:[A-Z]+_)?VERSION=(\S+)\s*$", re.MULTILINE)
_homes: dict[tuple[str, str, Path], Path] = {}  # (script, its text, TOOLCHAINS_DIR) -> home


@dataclass(frozen=True)
class Toolchain:
    """One toolchain, as its install script describes it."""

    name: str  # "zig"
    language: str  # "c": scripts/toolchains/c.sh installs it
    scripts_dir: Path = SCRIPTS_DIR

    @property
    def script(self) -> Path:
        return self.scripts_dir / f"{self.language}.sh"

    @property
    def version(self) -> str:
        found = _VERSION_RE.search(self.script.read_text())
        if found is None:
            raise RuntimeError(f"{self.script} pins no VERSION=")
        return found.group(1)

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def fingerprint(self) -> str:
        """Changes whenever the installer (and so possibly the toolchain) changes."""
        digest = hashlib.sha256()
        for path in [*sorted(self.scripts_dir.glob("_*.sh")), self.script]:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return f"{self.label} ({digest.hexdigest()[:16]})"


class Toolchains:
    """The toolchains folder of one server (`TOOLCHAINS_DIR`)."""

    def __init__(self, config: BuildConfig) -> None:
        self.config = config
        self.root = config.toolchains_dir

    def _script_env(self) -> dict[str, str]:
        # NOTE(toolchains): installers are the platform's own trusted scripts, run
        # outside the jail; they inherit the server's environment (package index
        # and proxy settings for pip and apt), plus where to install and which pip.
        return {**os.environ, "TOOLCHAINS_DIR": str(self.root), "PYTHON": sys.executable}

    def home(self, toolchain: Toolchain) -> Path:
        """Where the toolchain is (or will be) installed."""
        # PERF(toolchains): asked twice a build; the answer depends only on the
        # script (its pinned version) and this folder, so bash runs once per pin.
        key = (str(toolchain.script), toolchain.script.read_text(), self.root)
        found = _homes.get(key)
        if found is None:
            out = subprocess.run(
                ["bash", str(toolchain.script), "--print-dir"],
                capture_output=True,
                text=True,
                env=self._script_env(),
                check=True,
            )
            found = _homes[key] = Path(out.stdout.strip()).resolve()  # the jail mounts real paths
        return found

    def ensure(self, toolchain: Toolchain, log: BuildLog) -> Path:
        """The installed toolchain's folder; installs it first when missing."""
        home = self.home(toolchain)
        if (home / _STAMP).exists():
            return home
        how = (
            f"install it on the server with `scripts/toolchains/{toolchain.script.name}` "
            f"(or `make install`, which installs every toolchain)"
        )
        if not self.config.install_toolchains:
            raise BuildFailed(
                f"the {toolchain.language} toolchain ({toolchain.label}) is not installed: {how}"
            )
        log.write(
            f"the {toolchain.language} toolchain ({toolchain.label}) is not installed yet: "
            f"installing it now, once for this server (about a minute)"
        )
        started = time.monotonic()
        lines = self._run_script(toolchain, log)
        if not (home / _STAMP).exists():
            last = next((line for line in reversed(lines) if line.strip()), "no output")
            raise BuildFailed(
                f"the {toolchain.language} toolchain ({toolchain.label}) is not installed and "
                f"installing it failed ({last.strip()}); {how}"
            )
        log.write(f"installed {toolchain.label} in {time.monotonic() - started:.1f}s")
        return home

    def _run_script(self, toolchain: Toolchain, log: BuildLog) -> list[str]:
        proc = subprocess.Popen(
            ["bash", str(toolchain.script)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self._script_env(),
            start_new_session=True,
        )
        lines: list[str] = []

        def read() -> None:
            for raw in proc.stdout:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                lines.append(line)
                log.write(f"  {line}")

        reader = threading.Thread(target=read, name="toolchain-install", daemon=True)
        reader.start()
        try:
            proc.wait(timeout=INSTALL_TIMEOUT_SEC)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait()
            lines.append(f"timed out after {INSTALL_TIMEOUT_SEC} s")
        reader.join(timeout=5)
        proc.stdout.close()
        return lines

    # -- warm caches -----------------------------------------------------------

    def warm_cache(
        self, toolchain: Toolchain, key: str, fill: Callable[[Path], None], log: BuildLog
    ) -> Path:
        """A compiler cache filled once by `fill(workdir)` (which leaves it in
        `workdir/cache`), keyed by the toolchain and `key` (glue and flags).
        Earlier caches of the toolchain stay (a build may be copying one)."""
        path = self.root / "caches" / toolchain.label.replace(" ", "-") / key
        if (path / _WARM_DONE).exists():
            return path
        with self._lock(f"{toolchain.name}-cache"):
            if (path / _WARM_DONE).exists():
                return path
            log.write(
                f"filling the {toolchain.label} compiler cache once for this server "
                f"(later builds start from it)"
            )
            started = time.monotonic()
            path.parent.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f".{key}.partial-", dir=path.parent))
            try:
                # PERF(toolchains): start from the newest earlier cache of this
                # toolchain (other flags or glue), so only what changed is compiled.
                earlier = sorted(
                    (p for p in path.parent.glob("*/" + _WARM_DONE)),
                    key=lambda p: p.stat().st_mtime,
                )
                if earlier:
                    log.write(f"starting from the cache {earlier[-1].parent.name}")
                    copy_tree(earlier[-1].parent, work / "cache")
                    (work / "cache" / _WARM_DONE).unlink()
                fill(work)
                (work / "cache" / _WARM_DONE).write_text(toolchain.fingerprint + "\n")
                if path.exists():  # an unfinished earlier attempt
                    shutil.rmtree(path)
                (work / "cache").rename(path)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            log.write(f"compiler cache ready in {time.monotonic() - started:.1f}s")
        return path

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{name}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def copy_tree(source: Path, dest: Path) -> None:
    """Copy a warm cache into a build's folder (cp -a: 3x faster than copytree)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--", str(source), str(dest)], check=True)
