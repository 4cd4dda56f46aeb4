"""Container stats route: one JSON object per second, or one object."""

from __future__ import annotations

import contextlib

from aiohttp import web

from servin.errors import InvalidArgument
from servin.http.context import engine_of
from servin.http.params import query_bool
from servin.http.responses import encode_json
from servin.http.routing import Routes

routes = Routes()


@routes.get("/containers/{id}/stats")
async def stats(request: web.Request) -> web.StreamResponse:
    manager = engine_of(request).containers
    container = manager.get(request.match_info["id"])
    stream = query_bool(request, "stream", True)
    one_shot = query_bool(request, "one-shot")
    if stream and one_shot:
        raise InvalidArgument("cannot have stream=true and one-shot=true")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    async with contextlib.aclosing(manager.stats.stats(container, stream=stream,
                                                       one_shot=one_shot)) as objects:
        async for item in objects:
            await response.write(encode_json(item))
    await response.write_eof()
    return response
