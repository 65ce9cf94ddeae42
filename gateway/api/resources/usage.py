"""`/metrics` (Prometheus text), `/api/v1/stats`, `…/functions/{id}/stats`, `/api/v1/quota`."""

from __future__ import annotations

import hmac

import falcon

from ...telemetry.metrics import Metrics
from ...telemetry.usage import QuotaService, StatsService
from ...telemetry.window_stats import WindowStatsService
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


def _window_params(req: falcon.Request) -> dict:
    return {name: req.get_param(name) for name in ("since", "until", "step")}


class StatsResource:
    """Cumulative totals; with `since`, `until` or `step`, the platform's windowed stats."""

    def __init__(self, service: StatsService, windows: WindowStatsService) -> None:
        self.service = service
        self.windows = windows

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = _window_params(req)
        resp.content_type = falcon.MEDIA_JSON
        if any(value is not None for value in params.values()):
            resp.data = self.windows.platform_stats(**params).model_dump_json().encode()
            return
        resp.data = self.service.stats().model_dump_json().encode()


class FunctionStatsResource:
    def __init__(self, windows: WindowStatsService) -> None:
        self.windows = windows

    def on_get(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        version = req.get_param_as_int("version", min_value=1)
        view = self.windows.function_stats(ref, version=version, **_window_params(req))
        resp.content_type = falcon.MEDIA_JSON
        resp.data = view.model_dump_json().encode()


class QuotaResource:
    def __init__(self, service: QuotaService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.service.quota().model_dump_json().encode()
