"""The services one gateway worker runs, wired together from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox import Sandbox, SandboxConfig
from store import Store, open_store
from store.functions import FunctionRepo

from .builds import BuildQueue
from .deployments import DeploymentCache
from .functions import FunctionService
from .invoke import InvokeService
from .recorder import InvocationRecorder
from .settings import Settings
from .webhooks import WebhookDirectory


@dataclass
class Platform:
    settings: Settings
    store: Store
    repo: FunctionRepo
    sandbox: Sandbox
    builds: BuildQueue
    functions: FunctionService
    invocations: InvokeService
    webhooks: WebhookDirectory

    @classmethod
    def open(cls, settings: Settings) -> Platform:
        store = open_store(
            settings.nimbus_store,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.aws_region,
        )
        repo = FunctionRepo(store)
        # NOTE: the Sandbox makes its wasmtime Engine on first use, in the worker.
        sandbox = Sandbox(
            store,
            SandboxConfig(
                cache_dir=settings.data_dir / "cache" / "precompiled",
                max_concurrent=settings.max_concurrent,
                queue_size=settings.invoke_queue_size,
                queue_timeout_sec=settings.invoke_queue_timeout_sec,
            ),
        )
        builds = BuildQueue(
            repo,
            workdir=settings.data_dir / "work" / "builds",
            concurrency=settings.build_concurrency,
            lease_sec=settings.build_lease_sec,
            poll_sec=settings.build_poll_sec,
            max_attempts=settings.build_max_attempts,
            precompile=sandbox.precompile,
        )
        functions = FunctionService(repo, settings, on_enqueue=builds.wake)
        cache = DeploymentCache(repo, max_age=settings.cache_max_age_sec)
        recorder = InvocationRecorder()
        invocations = InvokeService(cache, sandbox, recorder)
        webhooks = WebhookDirectory(repo, cache)
        return cls(settings, store, repo, sandbox, builds, functions, invocations, webhooks)

    def start(self) -> None:
        """Make the engine and start background work; call in the worker, after fork."""
        self.sandbox.start()
        self.builds.start()

    def stop(self) -> None:
        self.builds.stop()
        self.sandbox.close()
        self.store.close()
