"""Running untrusted WebAssembly: one wasmtime engine per worker, hard limits per call.

Public surface:

- `Sandbox(store, config)` — `kind_of`, `precompile`, `prepare`, `invoke`, `check`,
  `start` (make the engine now, e.g. after gunicorn's fork), `close`, `stats`.
- `SandboxConfig`, `Deployment`, `Mount` — what the gateway passes in; `NativeConfig`
  (in `SandboxConfig.native`) for native binaries run in Docker containers.
- `InvokeResult`, `FunctionFailure` — what it gets back.
- `RESULT_LIMIT_BYTES`, `LOG_LIMIT_BYTES` — the output caps.
- `engine_tag()` — the folder name this engine's precompiled artifacts are filed
  under (wasmtime version, engine settings, CPU features): a cache folder made by
  another wasmtime has none under it.

Everything else is private: `_engine` (the Engine and its epoch ticker),
`_artifact` and `_cache` (precompiled artifacts: store, disk, memory), `_verified`
(which local files were already hashed, so fresh workers skip re-hashing),
`_wasi` and `_module` (WASI commands; handler glue's result channel on fd 3),
`_component` and `_logs` (handler components), `_limits` and `_threads`
(admission and guarded threads),
`_runtime_world` (shared language runtimes given the user's source, read-only
mounts), `_outcome` (how a run ended), `_docker*` (native binaries: warm containers
with an agent inside, `agent/agent.c`).
"""

from __future__ import annotations

from ._docker_config import NativeConfig
from ._engine import engine_tag
from ._sandbox import Sandbox
from ._types import (
    LOG_LIMIT_BYTES,
    RESULT_LIMIT_BYTES,
    Deployment,
    FunctionFailure,
    InvokeResult,
    Mount,
    SandboxConfig,
)

__all__ = [
    "LOG_LIMIT_BYTES",
    "RESULT_LIMIT_BYTES",
    "Deployment",
    "FunctionFailure",
    "InvokeResult",
    "Mount",
    "NativeConfig",
    "Sandbox",
    "SandboxConfig",
    "engine_tag",
]
