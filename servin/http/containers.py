"""Container API routes: create, start, stop, wait, attach, logs, delete, list, inspect."""

from __future__ import annotations

import structlog
from aiohttp import web

from servin.errors import InvalidArgument
from servin.http.context import engine_of
from servin.http.listcache import LIST_CACHE_KEY
from servin.http.params import json_body, query_bool, query_filters, query_int
from servin.http.responses import encode_json, json_response
from servin.http.routing import Routes

log = structlog.get_logger("servin.http")

routes = Routes()


@routes.post("/containers/create")
async def create(request: web.Request) -> web.Response:
    body = await json_body(request, allow_empty=False)
    container, warnings = await engine_of(request).containers.create(body,
                                                                     request.query.get("name"))
    return json_response({"Id": container.id, "Warnings": warnings}, status=201)


@routes.get("/containers/json")
async def list_containers(request: web.Request) -> web.Response:
    manager = engine_of(request).containers
    every, limit = query_bool(request, "all"), query_int(request, "limit")
    filters, size = query_filters(request), query_bool(request, "size")
    if not filters and not size:
        body = await request.app[LIST_CACHE_KEY].body(manager, all=every, limit=limit)
        return web.Response(body=body, content_type="application/json")
    containers = manager.list(all=every, limit=limit, filters=filters)
    return json_response([await manager.summary(c, size=size) for c in containers])


@routes.get("/containers/{id}/json")
async def inspect(request: web.Request) -> web.Response:
    return json_response(await engine_of(request).containers.inspect(
        request.match_info["id"], size=query_bool(request, "size")))


@routes.post("/containers/prune")
async def prune(request: web.Request) -> web.Response:
    deleted, reclaimed = await engine_of(request).containers.prune(query_filters(request))
    return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})


@routes.post("/containers/{id}/start")
async def start(request: web.Request) -> web.Response:
    await engine_of(request).containers.start(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/containers/{id}/stop")
async def stop(request: web.Request) -> web.Response:
    await engine_of(request).containers.stop(request.match_info["id"], query_int(request, "t"))
    return web.Response(status=204)


@routes.post("/containers/{id}/restart")
async def restart(request: web.Request) -> web.Response:
    await engine_of(request).containers.restart(request.match_info["id"], query_int(request, "t"))
    return web.Response(status=204)


@routes.post("/containers/{id}/pause")
async def pause(request: web.Request) -> web.Response:
    await engine_of(request).containers.pause(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/containers/{id}/unpause")
async def unpause(request: web.Request) -> web.Response:
    await engine_of(request).containers.unpause(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/containers/{id}/rename")
async def rename(request: web.Request) -> web.Response:
    await engine_of(request).containers.rename(request.match_info["id"],
                                               request.query.get("name", ""))
    return web.Response(status=204)


@routes.post("/containers/{id}/update")
async def update(request: web.Request) -> web.Response:
    body = await json_body(request)
    warnings = await engine_of(request).containers.update(request.match_info["id"], body)
    return json_response({"Warnings": warnings})


@routes.post("/containers/{id}/kill")
async def kill(request: web.Request) -> web.Response:
    await engine_of(request).containers.kill(request.match_info["id"],
                                             request.query.get("signal"))
    return web.Response(status=204)


@routes.post("/containers/{id}/resize")
async def resize(request: web.Request) -> web.Response:
    height, width = query_int(request, "h", 0), query_int(request, "w", 0)
    if height < 0 or width < 0 or height > 0xFFFF or width > 0xFFFF:
        raise InvalidArgument("invalid terminal size: height and width must be 0 to 65535")
    await engine_of(request).containers.resize(request.match_info["id"], height, width)
    return web.Response(status=200)


@routes.post("/containers/{id}/wait")
async def wait(request: web.Request) -> web.StreamResponse:
    manager = engine_of(request).containers
    container = manager.get(request.match_info["id"])
    exit_code = manager.waiter(container, request.query.get("condition") or "not-running")
    # dockerd sends the headers at once, so a client knows its wait is in place
    # before it starts the container.
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    try:
        code = await exit_code
    finally:
        exit_code.cancel()
    try:
        await response.write(encode_json({"StatusCode": code, "Error": None}))
        await response.write_eof()
    except ConnectionResetError:
        log.debug("wait_client_gone", id=container.short_id)  # nobody left to tell
    return response


@routes.delete("/containers/{id}")
async def remove(request: web.Request) -> web.Response:
    manager = engine_of(request).containers
    if query_bool(request, "link"):
        manager.remove_link(request.match_info["id"])
    else:
        await manager.remove(request.match_info["id"], force=query_bool(request, "force"),
                             volumes=query_bool(request, "v"))
    return web.Response(status=204)
