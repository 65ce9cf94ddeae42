"""Code-size limits, defined once: they follow from a runtime's kind (source or binary).

The builders check a built or uploaded binary against them; the gateway
re-exports them with the event limits (gateway/limits.py)."""

from __future__ import annotations

MiB = 1024 * 1024

SOURCE_LIMIT = 512 * 1024  # decoded source of one version (code or files)
BINARY_LIMIT = 50 * MiB  # an uploaded or built wasm or native artifact
