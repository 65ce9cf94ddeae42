"""The runtime registry as the API publishes it (`GET /api/v1/runtimes`)."""

from __future__ import annotations

from compiler import RUNTIMES, Runtime
from store import errors

from ..limits import code_size_limit, memory_floor
from ..schemas import RuntimeList, RuntimeView
from ..settings import Settings


class RuntimeCatalog:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def view(self, runtime: Runtime) -> RuntimeView:
        return RuntimeView(
            name=runtime.name,
            aliases=list(runtime.aliases),
            kind=runtime.kind,
            extension=runtime.extension or None,
            extensions=list(runtime.extensions),
            project_files=list(runtime.project_files),
            default_handler=runtime.default_handler,
            forms=list(runtime.forms),
            program_marker=runtime.program_marker,
            memory_floor_mb=memory_floor(runtime, self.settings),
            native_allowed=runtime.native_allowed,
            reuse_allowed=runtime.reuse_allowed,
            code_size_limit=code_size_limit(runtime),
            description=runtime.description,
        )

    @staticmethod
    def names() -> tuple[str, ...]:
        return RUNTIMES.names()

    def list(self) -> RuntimeList:
        return RuntimeList(runtimes=[self.view(runtime) for runtime in RUNTIMES])

    def get(self, name: str) -> RuntimeView:
        """A runtime by name or alias."""
        runtime = RUNTIMES.get(name)
        if runtime is None:
            raise errors.NotFound(f"no runtime {name!r}; known: {', '.join(RUNTIMES.names())}")
        return self.view(runtime)
