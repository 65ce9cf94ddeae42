"""Toolchains: lazy installs with progress in the build log, clear failures, warm caches."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from compiler import BuildConfig, BuildFailed, BuildLog
from compiler._toolchains import SCRIPTS_DIR, Toolchain, Toolchains

INSTALLER = """#!/usr/bin/env bash
set -euo pipefail
VERSION=1.2.3
DEST=$TOOLCHAINS_DIR/fake-$VERSION
if [[ ${1:-} == --print-dir ]]; then echo "$DEST"; exit 0; fi
echo "==> downloading fake $VERSION"
echo "==> unpacking"
[[ -f $TOOLCHAINS_DIR/fail ]] && { echo "error: the registry is not reachable" >&2; exit 1; }
mkdir -p "$DEST"
echo installs >> "$TOOLCHAINS_DIR/count"
touch "$DEST/.nimbus-installed"
"""


@pytest.fixture
def fake(tmp_path) -> Toolchain:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "fake.sh").write_text(INSTALLER)
    return Toolchain(name="fake", language="fake", scripts_dir=scripts)


@pytest.fixture
def log(tmp_path):
    log = BuildLog(tmp_path / "build.log")
    yield log
    log.close()


def test_missing_toolchain_is_installed_once_with_progress_in_the_log(tmp_path, fake, log):
    toolchains = Toolchains(BuildConfig(toolchains_dir=tmp_path / "tc"))
    home = toolchains.ensure(fake, log)
    assert home == tmp_path / "tc" / "fake-1.2.3" and home.is_dir()
    text = log.text()
    assert "the fake toolchain (fake 1.2.3) is not installed yet: installing it now" in text
    assert "==> downloading fake 1.2.3" in text and "installed fake 1.2.3 in" in text
    assert toolchains.ensure(fake, log) == home
    assert (tmp_path / "tc" / "count").read_text() == "installs\n"


def test_a_failed_install_says_how_to_install(tmp_path, fake, log):
    (tmp_path / "tc").mkdir()
    (tmp_path / "tc" / "fail").touch()
    toolchains = Toolchains(BuildConfig(toolchains_dir=tmp_path / "tc"))
    with pytest.raises(BuildFailed) as failed:
        toolchains.ensure(fake, log)
    message = failed.value.message
    assert "installing it failed (error: the registry is not reachable)" in message
    assert "scripts/toolchains/fake.sh" in message and "make install" in message


def test_with_installs_off_a_missing_toolchain_fails_at_once(tmp_path, fake, log):
    config = BuildConfig(toolchains_dir=tmp_path / "tc", install_toolchains=False)
    with pytest.raises(BuildFailed, match=r"fake 1\.2\.3\) is not installed: install it"):
        Toolchains(config).ensure(fake, log)
    assert not (tmp_path / "tc" / "count").exists()


def test_version_and_fingerprint_come_from_the_installer(fake):
    assert fake.version == "1.2.3" and fake.label == "fake 1.2.3"
    before = fake.fingerprint
    fake.script.write_text(fake.script.read_text() + "# a new revision\n")
    assert fake.fingerprint != before and fake.fingerprint.startswith("fake 1.2.3 (")


def test_warm_cache_is_filled_once_even_by_concurrent_builds(tmp_path, fake, log):
    toolchains = Toolchains(BuildConfig(toolchains_dir=tmp_path / "tc"))
    fills = []

    def fill(work: Path) -> None:
        fills.append(work)
        (work / "cache").mkdir()
        (work / "cache" / "object.o").write_text("compiled")

    paths = []
    threads = [
        threading.Thread(target=lambda: paths.append(toolchains.warm_cache(fake, "k1", fill, log)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fills) == 1 and len(set(paths)) == 1
    assert (paths[0] / "object.o").read_text() == "compiled"
    assert not fills[0].exists()  # the staging folder is gone

    def refill(work: Path) -> None:  # a new key starts from the previous cache
        assert (work / "cache" / "object.o").exists()
        (work / "cache" / "new.o").write_text("more")

    newer = toolchains.warm_cache(fake, "k2", refill, log)
    assert sorted(p.name for p in newer.iterdir() if not p.name.startswith(".")) == [
        "new.o",
        "object.o",
    ]


def test_the_real_installers_know_their_folders(tmp_path):
    for language, name in (("c", "zig"), ("go", "go")):
        out = subprocess.run(
            ["bash", str(SCRIPTS_DIR / f"{language}.sh"), "--print-dir"],
            env={"TOOLCHAINS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        version = Toolchain(name=name, language=language).version
        assert out.stdout.strip() == str(tmp_path / f"{name}-{version}")
