"""The `native` builder: only Linux x86-64 executables the runtime image can run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from compiler import BuildFailed, BuildLog, BuildRequest
from compiler.runtimes.native import NativeBuilder
from tests import native
from tests.e2e.wasm import hello_module

BIN_CACHE = native.REPO / ".cache" / "native-tests"


def build(tmp_path: Path, data: bytes | Path):
    upload = tmp_path / "upload.bin"
    if isinstance(data, Path):
        upload.write_bytes(data.read_bytes())
    else:
        upload.write_bytes(data)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    request = BuildRequest("fn_x", 1, "native", None, None, None, binary=upload)
    log = BuildLog(tmp_path / "build.log")
    try:
        return NativeBuilder().build(request, out, log), log.text()
    finally:
        log.close()


def test_static_executable(tmp_path):
    binary = native.build("echo", BIN_CACHE)
    result, log = build(tmp_path, binary)
    assert result.kind == "native"
    assert result.runtime_version == "native x86-64, static"
    assert result.artifact.read_bytes() == binary.read_bytes()
    assert "ELF x86-64 executable, static" in log


def test_dynamic_glibc_executable(tmp_path):
    result, _ = build(tmp_path, native.build("dynamic_echo", BIN_CACHE, static=False))
    assert result.runtime_version == "native x86-64, dynamic, glibc"


def test_musl_loader_is_refused(tmp_path):
    data = native.build("dynamic_echo", BIN_CACHE, static=False).read_bytes()
    loader = b"/lib64/ld-linux-x86-64.so.2"
    musl = b"/lib/ld-musl-x86_64.so.1"
    data = data.replace(loader, musl + b"\0" * (len(loader) - len(musl)), 1)
    with pytest.raises(BuildFailed, match=r"ld-musl-x86_64\.so\.1, which the runtime image lacks"):
        build(tmp_path, data)


def test_newer_glibc_is_refused(tmp_path):
    data = native.build("dynamic_echo", BIN_CACHE, static=False).read_bytes()
    with pytest.raises(BuildFailed, match=r"needs glibc 2\.99; the runtime image has 2\.36"):
        build(tmp_path, data + b"GLIBC_2.99\0")


def elf_header(*, bits: int = 2, machine: int = 62, e_type: int = 2) -> bytes:
    head = bytearray(64)
    head[:4] = b"\x7fELF"
    head[4], head[5] = bits, 1
    head[16:18] = e_type.to_bytes(2, "little")
    head[18:20] = machine.to_bytes(2, "little")
    return bytes(head)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"#!/bin/sh\necho hi\n" + b"\0" * 64, "not an ELF executable"),
        (hello_module() + b"\0" * 64, "not an ELF executable"),
        (elf_header(bits=1), "64-bit little-endian"),
        (elf_header(machine=183), "machine 183, not x86-64"),
        (elf_header(e_type=1), "not an executable"),
        (elf_header(), "no entry point"),
    ],
)
def test_not_an_x86_64_executable(tmp_path, data, message):
    with pytest.raises(BuildFailed, match=message):
        build(tmp_path, data)


def test_object_file_and_shared_library_are_refused(tmp_path):
    src = tmp_path / "lib.c"
    src.write_text("int f(void) { return 1; }\n")
    obj, lib = tmp_path / "lib.o", tmp_path / "lib.so"
    subprocess.run(["gcc", "-c", "-o", obj, src], check=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", lib, src], check=True)
    with pytest.raises(BuildFailed, match="not an executable"):
        build(tmp_path, obj)
    with pytest.raises(BuildFailed, match="no entry point"):
        build(tmp_path, lib)


def test_over_50_mb_is_refused(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(native.build("echo", BIN_CACHE).read_bytes())
    with open(big, "r+b") as f:
        f.truncate(50 * 1024 * 1024 + 1)
    with pytest.raises(BuildFailed, match="at most 50 MB"):
        build(tmp_path, big)
