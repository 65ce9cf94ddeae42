"""The services one gateway worker runs, wired together from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from store import Store, open_store
from store.functions import FunctionRepo

from .builds import BuildQueue
from .functions import FunctionService
from .settings import Settings


@dataclass
class Platform:
    settings: Settings
    store: Store
    repo: FunctionRepo
    builds: BuildQueue
    functions: FunctionService

    @classmethod
    def open(cls, settings: Settings) -> Platform:
        store = open_store(
            settings.nimbus_store,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.aws_region,
        )
        repo = FunctionRepo(store)
        builds = BuildQueue(
            repo,
            workdir=settings.data_dir / "work" / "builds",
            concurrency=settings.build_concurrency,
            lease_sec=settings.build_lease_sec,
            poll_sec=settings.build_poll_sec,
            max_attempts=settings.build_max_attempts,
        )
        functions = FunctionService(repo, settings, on_enqueue=builds.wake)
        return cls(settings, store, repo, builds, functions)

    def start(self) -> None:
        """Start background work (build loop); call in the worker, after fork."""
        self.builds.start()

    def stop(self) -> None:
        self.builds.stop()
        self.store.close()
