"""The last unfiltered container list, encoded, for the clients that poll it.

Dashboards and `docker ps` loops ask for the same list over and over. While no
container was added, changed or removed (the manager's generation) and every
Status text still reads the same ("Up 3 seconds" moves on with the clock), the
body encoded for the previous request is the answer. Filtered lists are built
afresh: some filters depend on more than the containers (ancestor on image tags).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
from aiohttp import web

from servin.containers.record import Container
from servin.containers.views import status_text
from servin.http.responses import encode_json

if TYPE_CHECKING:
    from servin.containers.manager import ContainerManager


@attrs.frozen
class _Listing:
    key: tuple[int, bool, int | None]  # generation, all, limit
    containers: list[Container]
    statuses: list[str]
    body: bytes


class ContainerListCache:
    def __init__(self) -> None:
        self._last: _Listing | None = None

    async def body(self, manager: "ContainerManager", *, all: bool, limit: int | None) -> bytes:
        key = (manager.generation, all, limit)
        last = self._last
        if last is not None and last.key == key and \
                [status_text(c) for c in last.containers] == last.statuses:
            return last.body
        containers = manager.list(all=all, limit=limit)
        entries = [await manager.summary(c) for c in containers]
        body = encode_json(entries)
        if manager.generation == key[0]:  # nothing changed while the entries were made
            self._last = _Listing(key, containers, [entry["Status"] for entry in entries], body)
        return body


LIST_CACHE_KEY: web.AppKey[ContainerListCache] = web.AppKey("servin.container_list_cache",
                                                            ContainerListCache)
