"""Every route of the app, from its own route table, with path parameters filled in."""

from __future__ import annotations

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class Route(msgspec.Struct, frozen=True):
    method: str
    path: str  # with {name} placeholders
    parameters: tuple[str, ...]
    handler: HTTPRouteHandler

    @property
    def api(self) -> bool:
        return self.path == "/api" or self.path.startswith("/api/")

    def url(self, **values: str) -> str:
        return self.path.format(**{name: values.get(name, "x") for name in self.parameters})


def routes(app: Litestar) -> list[Route]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method in sorted(route.methods - {"OPTIONS"}):
            handler = route.route_handler_map[method][0]
            found.append(Route(method, route.path_format, tuple(route.path_parameters), handler))
    return found


def unsafe_routes(app: Litestar) -> list[Route]:
    return [route for route in routes(app) if route.method in UNSAFE_METHODS]
