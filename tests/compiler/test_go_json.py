"""The Go glue's own JSON (compiler/glue/go/nimbus_json.go) against encoding/json.

A host build of the glue's JSON file beside go_json/corpus.go compares both,
byte for byte and value for value, on a corpus of edge cases plus seeded random
floats, strings and mutated documents; the corpus program prints every
difference. The glue drops encoding/json to shrink every Go module by ~1.6 MB.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from compiler import BuildConfig, BuildLog
from compiler._toolchains import Toolchains
from compiler.runtimes.go import GLUE_DIR, GLUE_JSON, GO

CORPUS = Path(__file__).parent / "go_json" / "corpus.go"


def test_glue_json_matches_encoding_json(tmp_path):
    config = BuildConfig()
    toolchains = Toolchains(config)
    log = BuildLog(tmp_path / "toolchain.log")
    try:
        home = toolchains.ensure(GO, log)
    finally:
        log.close()
    work = tmp_path / "corpus"
    work.mkdir()
    shutil.copyfile(GLUE_DIR / GLUE_JSON, work / GLUE_JSON)
    shutil.copyfile(CORPUS, work / "corpus.go")
    (work / "go.mod").write_text("module corpus\n\ngo 1.24\n")
    # A host build: its standard library stays compiled between runs.
    cache = toolchains.root / "caches" / f"go-{GO.version}-host"
    run = subprocess.run(
        [str(home / "go" / "bin" / "go"), "run", "."],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "GOCACHE": str(cache),
            "GOPATH": str(tmp_path / "gopath"),
            "GOFLAGS": "-mod=mod",
            "GOPROXY": "off",
            "GOTOOLCHAIN": "local",
            "GOTELEMETRY": "off",
            "CGO_ENABLED": "0",
        },
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "same as encoding/json" in run.stdout
