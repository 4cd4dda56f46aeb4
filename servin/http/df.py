"""GET /system/df: disk usage of images, containers, volumes (no build cache is kept)."""

from __future__ import annotations

import attrs
from aiohttp import web

from servin.datausage import data_usage
from servin.http.context import engine_of
from servin.http.images import ImageSummary
from servin.http.responses import json_response
from servin.http.routing import Routes

routes = Routes()


@routes.get("/system/df")
async def system_df(request: web.Request) -> web.Response:
    engine = engine_of(request)
    usage = await data_usage(engine.images, engine.containers, engine.volumes)
    images = [attrs.asdict(attrs.evolve(ImageSummary.of(item.listed),
                                        SharedSize=item.shared_size,
                                        Containers=item.containers))
              for item in usage.images]
    return json_response({"LayersSize": usage.layers_size, "Images": images,
                              "Containers": usage.containers, "Volumes": usage.volumes,
                              "BuildCache": []})
