"""The aiohttp application: middlewares and every API group's routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from servin.http import (container_files, container_streams, containers, df, exec, headers,
                         images, networks, stats, system, volumes)
from servin.http.context import ENGINE_KEY
from servin.http.listcache import LIST_CACHE_KEY, ContainerListCache
from servin.http.middlewares import api_version_middleware, error_middleware

if TYPE_CHECKING:
    from servin.engine import Engine

# Image pushes and build contexts stream their bodies; JSON bodies are capped in params.
CLIENT_MAX_SIZE = 1024 ** 4


def make_app(engine: "Engine") -> web.Application:
    app = web.Application(middlewares=[error_middleware, api_version_middleware],
                          client_max_size=CLIENT_MAX_SIZE)
    app[ENGINE_KEY] = engine
    app[LIST_CACHE_KEY] = ContainerListCache()
    headers.install(app)
    for group in (system.routes, images.routes, containers.routes, container_streams.routes,
                  container_files.routes, networks.routes, volumes.routes, df.routes,
                  exec.routes, stats.routes):
        group.install(app)
    return app
