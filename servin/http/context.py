"""Where handlers find the engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from servin.engine import Engine

ENGINE_KEY: web.AppKey["Engine"] = web.AppKey("servin.engine")


def engine_of(request: web.Request) -> "Engine":
    return request.app[ENGINE_KEY]
