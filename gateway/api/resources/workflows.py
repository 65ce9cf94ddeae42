"""`/api/v1/workflows…` and `/api/v1/executions…`: thin resources over `WorkflowService`."""

from __future__ import annotations

import falcon

from store.records import KeyScope

from ...schemas import ExecutionStop, WorkflowCreate, WorkflowUpdate
from ...services.workflows.service import INPUT_LIMIT, WorkflowService
from ..bodies import read_bytes, read_model, require_json
from .functions import _int_param, _send

_DEFINITION_LIMIT = 1024 * 1024  # a definition's JSON (Step Functions allows 1 MB)


class WorkflowsResource:
    def __init__(self, service: WorkflowService) -> None:
        self.service = service

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        workflow = self.service.create(read_model(req, WorkflowCreate, _DEFINITION_LIMIT))
        resp.location = f"/api/v1/workflows/{workflow.id}"
        _send(resp, workflow, 201)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        found = self.service.list(
            name=req.get_param("name"),
            limit=_int_param(req, "limit", 20),
            offset=_int_param(req, "offset", 0),
        )
        _send(resp, found)


class WorkflowResource:
    def __init__(self, service: WorkflowService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        _send(resp, self.service.get(ref))

    def on_put(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        _send(resp, self.service.update(ref, read_model(req, WorkflowUpdate, _DEFINITION_LIMIT)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        self.service.delete(ref)
        resp.status = 204


class WorkflowExecutionsResource:
    scopes = {"POST": (KeyScope.invoke, KeyScope.deploy)}  # starting one is calling it

    def __init__(self, service: WorkflowService) -> None:
        self.service = service

    def on_post(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        """The body is the execution's input, as an invoke's body is the event."""
        require_json(req)
        execution = self.service.start(
            ref, read_bytes(req, INPUT_LIMIT, what="an execution's input")
        )
        resp.location = f"/api/v1/executions/{execution.id}"
        _send(resp, execution, 202)

    def on_get(self, req: falcon.Request, resp: falcon.Response, ref: str) -> None:
        found = self.service.executions(
            ref,
            status=req.get_param("status"),
            limit=_int_param(req, "limit", 20),
            offset=_int_param(req, "offset", 0),
        )
        _send(resp, found)


class ExecutionResource:
    scopes = {"GET": (KeyScope.invoke, KeyScope.read)}  # the caller follows its own

    def __init__(self, service: WorkflowService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, execution_id: str) -> None:
        _send(resp, self.service.execution(execution_id))


class ExecutionHistoryResource:
    scopes = {"GET": (KeyScope.invoke, KeyScope.read)}

    def __init__(self, service: WorkflowService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, execution_id: str) -> None:
        _send(resp, self.service.history(execution_id))


class ExecutionStopResource:
    scopes = {"POST": (KeyScope.invoke, KeyScope.deploy)}

    def __init__(self, service: WorkflowService) -> None:
        self.service = service

    def on_post(self, req: falcon.Request, resp: falcon.Response, execution_id: str) -> None:
        body = read_model(req, ExecutionStop, 64 * 1024, optional=True)
        _send(resp, self.service.stop(execution_id, body.error, body.cause))
