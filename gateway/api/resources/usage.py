"""`/metrics` (Prometheus text), `/api/v1/stats` and `/api/v1/quota`."""

from __future__ import annotations

import falcon

from ...telemetry.metrics import Metrics
from ...telemetry.usage import QuotaService, StatsService
from ..middleware import public


@public
class MetricsResource:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data, resp.content_type = self.metrics.render()


class StatsResource:
    def __init__(self, service: StatsService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.service.stats().model_dump_json().encode()


class QuotaResource:
    def __init__(self, service: QuotaService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.service.quota().model_dump_json().encode()
