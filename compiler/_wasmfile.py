"""Small edits of a built WebAssembly module's sections."""

from __future__ import annotations

from pathlib import Path

_HEADER = b"\0asm\x01\0\0\0"


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 35:
            raise ValueError("truncated or oversized LEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def strip_debug_sections(path: Path) -> tuple[int, int]:
    """Drop DWARF (`.debug_*` custom sections), keep everything else — the
    `name` section too, so traps name functions. Returns (size before, after).

    NOTE(compiler): zig links wasi-libc's DWARF into every module (~850 KB for
    a hello world); `-s` or `--strip-debug` would drop the name section too.
    """
    data = path.read_bytes()
    if not data.startswith(_HEADER):
        raise ValueError("not a WebAssembly module")
    kept = [data[:8]]
    pos = 8
    while pos < len(data):
        start = pos
        section_id = data[pos]
        size, body = _leb128(data, pos + 1)
        end = body + size
        if end > len(data):
            raise ValueError("section runs past the end of the module")
        drop = False
        if section_id == 0:
            name_len, name_at = _leb128(data, body)
            drop = data[name_at : name_at + name_len].startswith(b".debug_")
        if not drop:
            kept.append(data[start:end])
        pos = end
    out = b"".join(kept)
    if len(out) != len(data):
        path.write_bytes(out)
    return len(data), len(out)
