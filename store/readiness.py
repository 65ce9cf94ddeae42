"""The object `/ready` reads back, so that ready means the store serves object reads.

    ready        a few bytes, written by the first check that finds none

A store can answer before it can read: a restarted SeaweedFS answers HeadBucket, HEAD,
listings and even writes seconds before its master knows where its volumes are, and
every object GET is a 500 meanwhile (issue: /ready said 200 while deploys and invokes
answered 503). Only reading an object back shows it.
"""

from __future__ import annotations

from . import errors
from ._base import Store

READY_KEY = "ready"
_BODY = b"nimbus: GET /ready reads this object back; it is written again if deleted\n"


def check_reads(store: Store) -> None:
    """Return if `store` reads `READY_KEY` back; else raise its error (`errors.Unavailable`
    when it does not answer). One request, within `StoreTimeouts.quick_sec`, while the
    object exists: on a store that never had it (new, or from before this check) it is
    written first.
    """
    try:
        store.get(READY_KEY, quick=True)
    except errors.NotFound:
        # NOTE(safety): ping first: it fails on a local store whose folder went away (an
        # unmounted volume), which a write would quietly make anew; on S3 it makes the
        # bucket of a new store.
        store.ping()
        store.put(READY_KEY, _BODY)
        store.get(READY_KEY, quick=True)  # written is not yet read back
