"""Whether the store keeps the promises workers coordinate by: conditional writes."""

from __future__ import annotations

import logging

from store import Store, errors, open_store, probe_conditional_writes

from .settings import Settings

log = logging.getLogger("nimbus")

STORE_REFUSAL = (
    "the store ignores conditional writes (a second If-None-Match: * PUT of one key, or an "
    "If-Match PUT with a stale etag, was accepted): leases and one firing per schedule tick "
    "cannot be kept on it. Use a store that enforces them (MinIO, SeaweedFS, Garage, Ceph "
    "RGW, AWS S3), or set STORE_WITHOUT_CONDITIONAL_WRITES=degrade to run without schedules"
)


def store_to_probe(settings: Settings) -> Store | None:
    """The store `nimbus serve` probes before it starts: an S3 one, unless the settings
    say to degrade. The local store enforces conditional writes (tests/store/test_leases.py)."""
    if settings.uses_local_store or settings.store_without_conditional_writes == "degrade":
        return None
    return open_store(
        settings.nimbus_store,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.aws_region,
        timeouts=settings.store_timeouts,
    )


def store_refused(store: Store) -> bool:
    """True if the store answers and ignores conditional writes. One that does not answer
    yet is not refused here: each worker's schedule ticker probes it once it answers."""
    try:
        return not probe_conditional_writes(store)
    except errors.NimbusError as exc:
        log.warning("the store does not answer yet (%s); its conditional writes are "
                    "checked once it does", exc.message)  # fmt: skip
        return False
