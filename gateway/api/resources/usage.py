"""`/metrics` (Prometheus text), `/api/v1/stats` and `/api/v1/quota`."""

from __future__ import annotations

import hmac

import falcon

from ...telemetry.metrics import Metrics
from ...telemetry.usage import QuotaService, StatsService
from ..middleware import public


@public
class MetricsResource:
    """Prometheus text; open by default (as most exporters are), or behind `METRICS_TOKEN`."""

    def __init__(self, metrics: Metrics, token: str | None = None) -> None:
        self.metrics = metrics
        self._token = token.encode() if token else None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._token is not None:
            scheme, _, given = (req.get_header("Authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), self._token):
                raise falcon.HTTPUnauthorized(
                    title="unauthorized",
                    description="missing or wrong metrics token (Authorization: Bearer <token>)",
                    challenges=['Bearer realm="nimbus-metrics"'],
                )
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
