"""`GET /api/v1/runtimes[/{name}]`: the runtime registry, for clients that cannot import it."""

from __future__ import annotations

import falcon

from ...services.runtimes import RuntimeCatalog


class RuntimesResource:
    def __init__(self, catalog: RuntimeCatalog) -> None:
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.catalog.list().model_dump_json().encode()


class RuntimeResource:
    def __init__(self, catalog: RuntimeCatalog) -> None:
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.catalog.get(name).model_dump_json().encode()
