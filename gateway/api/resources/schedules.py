"""`/api/v1/functions/{ref}/schedules[/{schedule_id}]` and `/api/v1/schedules`: thin
resources over `ScheduleService`."""

from __future__ import annotations

import falcon

from ...schemas import ScheduleCreate, ScheduleUpdate
from ...services.schedules import EVENT_LIMIT, OwnerKind, ScheduleService
from ..bodies import read_model
from .functions import _int_param, _send

_BODY_LIMIT = EVENT_LIMIT + 64 * 1024  # the event and the other fields


class AllSchedulesResource:
    """Every function's and workflow's schedules, a page at a time."""

    def __init__(self, service: ScheduleService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        found = self.service.list_all(
            name=req.get_param("name"),
            enabled=req.get_param_as_bool("enabled"),  # spelled as ?wait= is: True, 1, off…
            limit=_int_param(req, "limit", 20),
            offset=_int_param(req, "offset", 0),
        )
        _send(resp, found)


class SchedulesResource:
    """A function's schedules, or (`kind="workflow"`) a workflow's."""

    def __init__(self, service: ScheduleService, kind: OwnerKind = "function") -> None:
        self.service = service
        self.kind = kind

    def on_get(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        _send(resp, self.service.list(ref, self.kind))

    def on_post(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        body = read_model(req, ScheduleCreate, _BODY_LIMIT)
        view = self.service.create(ref, body, self.kind)
        resp.location = f"{req.path}/{view.id}"
        _send(resp, view, status=201)


class ScheduleResource:
    def __init__(self, service: ScheduleService, kind: OwnerKind = "function") -> None:
        self.service = service
        self.kind = kind

    def on_get(self, req, resp, ref: str, schedule_id: str) -> None:
        _send(resp, self.service.get(ref, schedule_id, self.kind))

    def on_put(self, req, resp, ref: str, schedule_id: str) -> None:
        body = read_model(req, ScheduleUpdate, _BODY_LIMIT)
        _send(resp, self.service.update(ref, schedule_id, body, self.kind))

    on_patch = on_put

    def on_delete(self, req, resp, ref: str, schedule_id: str) -> None:
        self.service.delete(ref, schedule_id, self.kind)
        resp.status = 204
