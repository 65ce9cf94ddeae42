"""Worker invocation statistics: one object per worker and the folded total.

    stats/workers/<writer>.json   WorkerStats (written only by its worker, compare-and-swap)
    stats/total.json              FoldedStats (totals of workers folded into it)

The records' `totals` type is the caller's (gateway/telemetry/stats.py); the
store owns the keys and the conditional writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic

from . import errors
from ._base import Store
from .functions import STATS_TOTAL_KEY as _TOTAL_KEY
from .functions import stats_worker_key as _worker_key
from .records import FoldedStats, Totals, WorkerStats, parse_record

_WORKERS_PREFIX = _worker_key("")[: -len(".json")]


class StatsRepo(Generic[Totals]):
    def __init__(self, store: Store, totals: type[Totals]) -> None:
        self.store = store
        self.totals = totals
        self._worker_model = WorkerStats[totals]  # type: ignore[valid-type]
        self._total_model = FoldedStats[totals]  # type: ignore[valid-type]

    # -- one worker's object ---------------------------------------------------

    def put_worker(self, record: WorkerStats[Totals], etag: str | None) -> str:
        """Create the object (`etag` None) or replace the version read as `etag`:
        `Conflict` if it exists or moved meanwhile, `NotFound` if it went. The new etag."""
        return self.store.put(
            _worker_key(record.writer),
            record.model_dump_json().encode(),
            create=etag is None,
            if_match=etag,
        )

    def worker(self, writer: str) -> tuple[WorkerStats[Totals], str]:
        """The object of `writer` and its etag; `NotFound` if there is none."""
        blob = self.store.get(key := _worker_key(writer))
        return parse_record(self._worker_model, blob.data, key), blob.etag

    def workers(self) -> Iterator[tuple[WorkerStats[Totals], str]]:
        """Every worker object with its etag (objects deleted while listing are skipped)."""
        for key in list(self.store.list(_WORKERS_PREFIX)):
            try:
                blob = self.store.get(key)
            except errors.NotFound:
                continue
            yield parse_record(self._worker_model, blob.data, key), blob.etag

    def worker_exists(self, writer: str) -> bool:
        return self.store.exists(_worker_key(writer))

    def delete_worker(self, writer: str) -> None:
        self.store.delete(_worker_key(writer))

    # -- the folded total --------------------------------------------------------

    def total(self) -> tuple[FoldedStats[Totals], str | None]:
        """The total and its etag; an empty total and None if none was written yet."""
        try:
            blob = self.store.get(_TOTAL_KEY)
        except errors.NotFound:
            return self._total_model(totals=self.totals()), None
        return parse_record(self._total_model, blob.data, _TOTAL_KEY), blob.etag

    def put_total(self, record: FoldedStats[Totals], etag: str | None) -> str:
        """Create (`etag` None) or compare-and-swap the total; `Conflict` if it moved."""
        return self.store.put(
            _TOTAL_KEY, record.model_dump_json().encode(), create=etag is None, if_match=etag
        )
