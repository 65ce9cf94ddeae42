"""`native`: a Linux x86-64 executable (program form), run in a container, checked as uploaded.

The runtime image (scripts/runtime-image.sh) has Debian bookworm's glibc
2.36 and its loader, so a static binary always works and a dynamically
linked one works when it needs only glibc (and libgcc_s / libstdc++) no
newer than that. Anything else is refused here, at build time, rather than
failing on every invoke.

Hook for source builders (go, rust, c) given `"target": "native"`: compile
for x86_64-linux — statically, in the same build jail as WASM builds — then
call `check_native_executable(path, log)` and return
`BuildResult(kind="native", ...)`; the gateway runs it in a container.
"""

from __future__ import annotations

import re
import shutil
import struct
from pathlib import Path

from .._base import BuildFailed, BuildLog, BuildRequest, BuildResult
from .._limits import BINARY_LIMIT, MiB

# What the runtime image has (scripts/runtime-image.sh: Debian bookworm's libc6).
IMAGE_GLIBC = (2, 36)
IMAGE_LOADERS = ("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")

_ET_EXEC, _ET_DYN = 2, 3
_EM_X86_64 = 62
_PT_INTERP = 3
_GLIBC_VERSION = re.compile(rb"GLIBC_2\.(\d+)(?:\.\d+)?\x00")


def check_native_executable(path: Path, log: BuildLog | None = None) -> str:
    """Refuse anything but an x86-64 Linux ELF executable the runtime image can run.

    Returns a short description for `runtime_version` ("native x86-64, static").
    """
    size = path.stat().st_size
    if size > BINARY_LIMIT:
        raise BuildFailed(
            f"the binary is {size} bytes; native binaries may be at most {BINARY_LIMIT // MiB} MB"
        )
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF":
            raise BuildFailed("the upload is not an ELF executable (a Linux x86-64 binary)")
        if head[4] != 2 or head[5] != 1:
            raise BuildFailed("the binary must be 64-bit little-endian ELF (x86-64)")
        e_type, e_machine = struct.unpack_from("<HH", head, 16)
        if e_machine != _EM_X86_64:
            raise BuildFailed(f"the binary is for ELF machine {e_machine}, not x86-64 (62)")
        if e_type not in (_ET_EXEC, _ET_DYN):
            raise BuildFailed("the ELF file is not an executable (a relocatable object or core?)")
        (e_entry,) = struct.unpack_from("<Q", head, 24)
        (e_phoff,) = struct.unpack_from("<Q", head, 32)
        e_phentsize, e_phnum = struct.unpack_from("<HH", head, 54)
        if e_entry == 0 or e_phnum == 0 or e_phentsize < 56:
            raise BuildFailed("the ELF file has no entry point: a library, not an executable")
        f.seek(e_phoff)
        table = f.read(e_phentsize * e_phnum)
        if len(table) < e_phentsize * e_phnum:
            raise BuildFailed("the ELF program headers are cut short")
        interpreter = None
        for i in range(e_phnum):
            p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
                "<IIQQQQ", table, i * e_phentsize
            )
            if p_type == _PT_INTERP:
                f.seek(p_offset)
                interpreter = f.read(min(p_filesz, 4096)).rstrip(b"\0").decode(errors="replace")
        if interpreter is None:
            kind = "static"
        else:
            if interpreter not in IMAGE_LOADERS:
                raise BuildFailed(
                    f"the binary needs the program interpreter {interpreter}, which the "
                    "runtime image lacks (it has glibc "
                    f"{IMAGE_GLIBC[0]}.{IMAGE_GLIBC[1]}); link it statically"
                )
            f.seek(0)
            needed = max((int(m) for m in _GLIBC_VERSION.findall(f.read())), default=0)
            if needed > IMAGE_GLIBC[1]:
                raise BuildFailed(
                    f"the binary needs glibc 2.{needed}; the runtime image has "
                    f"{IMAGE_GLIBC[0]}.{IMAGE_GLIBC[1]}: link it statically or build it on "
                    "an older system"
                )
            kind = "dynamic, glibc"
    if log is not None:
        log.write(f"ELF x86-64 executable, {kind}, {size} bytes")
    return f"native x86-64, {kind}"


class NativeBuilder:
    runtime = "native"

    def build(self, request: BuildRequest, workdir: Path, log: BuildLog) -> BuildResult:
        if request.binary is None:
            raise BuildFailed("a native function needs an uploaded binary")
        described = check_native_executable(request.binary, log)
        artifact = workdir / "artifact.bin"
        shutil.copyfile(request.binary, artifact)
        return BuildResult(artifact=artifact, kind="native", runtime_version=described)
