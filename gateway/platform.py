"""The services one gateway worker runs, wired together from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox import Sandbox, SandboxConfig
from store import Store, open_store
from store.functions import FunctionRepo
from store.invocations import InvocationRepo

from .asyncq import AsyncInvocations
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
    async_invocations: AsyncInvocations

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
        async_invocations = AsyncInvocations(
            InvocationRepo(store),
            invocations,
            concurrency=settings.async_concurrency,
            max_queue_depth=settings.async_max_queue_depth,
            lease_margin_sec=settings.async_lease_margin_sec,
            poll_sec=settings.async_poll_sec,
            max_attempts=settings.async_max_attempts,
            retry_base_sec=settings.async_retry_base_sec,
        )
        return cls(
            settings, store, repo, sandbox, builds, functions, invocations, webhooks,
            async_invocations,
        )  # fmt: skip

    def start(self) -> None:
        """Make the engine and start background work; call in the worker, after fork."""
        self.sandbox.start()
        self.builds.start()
        self.async_invocations.start()

    def stop(self) -> None:
        self.async_invocations.stop(timeout=self.settings.graceful_timeout_sec / 2)
        self.builds.stop()
        self.sandbox.close()
        self.store.close()
