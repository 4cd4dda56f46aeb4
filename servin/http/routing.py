"""Route registration under Docker's optional ``/v{major}.{minor}`` prefix."""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

VERSION_PREFIX = r"/v{api_version:[0-9]+\.[0-9]+}"


class Routes:
    """Collects an API group's routes; each is served with and without the prefix."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, str, Handler]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        self._routes.append((method, path, handler))

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self._decorator("GET", path)

    def head(self, path: str) -> Callable[[Handler], Handler]:
        return self._decorator("HEAD", path)

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self._decorator("POST", path)

    def put(self, path: str) -> Callable[[Handler], Handler]:
        return self._decorator("PUT", path)

    def delete(self, path: str) -> Callable[[Handler], Handler]:
        return self._decorator("DELETE", path)

    def _decorator(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, path, handler)
            return handler
        return register

    def install(self, app: web.Application) -> None:
        for method, path, handler in self._routes:
            for route_path in (path, VERSION_PREFIX + path):
                if method == "GET":
                    # add_get would also answer HEAD; Docker routes HEAD explicitly.
                    app.router.add_get(route_path, handler, allow_head=False)
                else:
                    app.router.add_route(method, route_path, handler)
