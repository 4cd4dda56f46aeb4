"""Volumes API: list, create, inspect, remove, prune."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from servin.errors import InvalidArgument
from servin.http.context import engine_of
from servin.http.params import json_body, query_bool, query_filters
from servin.http.responses import json_response
from servin.http.routing import Routes

routes = Routes()


def _strings(body: dict[str, Any], key: str) -> dict[str, str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"invalid {key}: expected an object of strings")
    return dict(value)


@routes.get("/volumes")
async def volume_list(request: web.Request) -> web.Response:
    volumes = engine_of(request).volumes
    listed = volumes.list(query_filters(request))
    if query_bool(request, "size"):
        views = [volumes.view(v, await volumes.usage(v.name)) for v in listed]
    else:
        views = [volumes.view(v) for v in listed]
    return json_response({"Volumes": views, "Warnings": None})


@routes.post("/volumes/create")
async def volume_create(request: web.Request) -> web.Response:
    body = await json_body(request)
    name = body.get("Name") or ""
    driver = body.get("Driver") or ""
    if not isinstance(name, str) or not isinstance(driver, str):
        raise InvalidArgument("invalid Name or Driver: expected a string")
    volumes = engine_of(request).volumes
    volume = await volumes.create(name, driver=driver or "local",
                                  driver_opts=_strings(body, "DriverOpts"),
                                  labels=_strings(body, "Labels"))
    return json_response(volumes.view(volume), status=201)


@routes.get("/volumes/{name}")
async def volume_inspect(request: web.Request) -> web.Response:
    volumes = engine_of(request).volumes
    return json_response(volumes.view(volumes.get(request.match_info["name"])))


@routes.delete("/volumes/{name}")
async def volume_delete(request: web.Request) -> web.Response:
    await engine_of(request).volumes.remove(request.match_info["name"],
                                            force=query_bool(request, "force"))
    return web.Response(status=204)


@routes.post("/volumes/prune")
async def volume_prune(request: web.Request) -> web.Response:
    deleted, reclaimed = await engine_of(request).volumes.prune(query_filters(request))
    return json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})
