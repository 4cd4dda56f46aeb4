"""Container routes on files and processes: archive (docker cp), export, changes, top."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
from pathlib import Path
from typing import Any, AsyncIterator, BinaryIO, Callable

from aiohttp import web

from servin.containers.archive import STAT_HEADER, ContainerFS, PathStat, copy_owner
from servin.containers.changes import container_changes
from servin.containers.record import Container
from servin.containers.top import container_top, ps_arguments
from servin.errors import Conflict, InvalidArgument
from servin.http.context import engine_of
from servin.http.params import query_bool
from servin.http.responses import json_response
from servin.http.routing import Routes

routes = Routes()

TAR_TYPE = "application/x-tar"
STREAM_BUFFER = 256 * 1024
GZIP_LEVEL = 6  # Go's default compression level, which dockerd uses


class _LoopWriter(io.RawIOBase):
    """A file for a worker thread whose writes go to an HTTP response on the event loop."""

    def __init__(self, response: web.StreamResponse, loop: asyncio.AbstractEventLoop) -> None:
        self._response = response
        self._loop = loop

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        asyncio.run_coroutine_threadsafe(self._response.write(chunk), self._loop).result()
        return len(chunk)


class _LoopReader(io.RawIOBase):
    """A file for a worker thread that reads a request's body from the event loop."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        self._content = request.content
        self._loop = loop
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            chunk = asyncio.run_coroutine_threadsafe(self._content.readany(), self._loop).result()
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


async def _in_thread(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Blocking work off the loop; a cancelled request still lets it finish with the files."""
    work = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.gather(work, return_exceptions=True)
        raise


def _accepts_gzip(request: web.Request) -> bool:
    for offer in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = offer.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


async def _stream_tar(request: web.Request, response: web.StreamResponse,
                      produce: Callable[[BinaryIO], None], *, compress: bool = False) -> None:
    """Stream the tar that ``produce`` writes in a worker thread, gzipped if asked."""
    if compress:
        response.headers["Content-Encoding"] = "gzip"
    await response.prepare(request)
    loop = asyncio.get_running_loop()

    def run() -> None:
        raw = _LoopWriter(response, loop)
        with io.BufferedWriter(raw, STREAM_BUFFER) as buffered:
            if compress:
                with gzip.GzipFile(fileobj=buffered, mode="wb", compresslevel=GZIP_LEVEL) as out:
                    produce(out)  # type: ignore[arg-type]
            else:
                produce(buffered)

    await _in_thread(run)
    await response.write_eof()


def _archive_path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise InvalidArgument("bad parameter: pathcannot be empty")  # dockerd's wording
    return path


async def _container_fs(request: web.Request, container: Container, root: Path) -> ContainerFS:
    files = engine_of(request).containers.files(container.id)
    # Locating the mounted files reads the rootfs (symlinks): off the loop.
    return await _in_thread(ContainerFS, root, request.match_info["id"], files.etc_mounts())


@contextlib.asynccontextmanager
async def _stat_in_container(request: web.Request
                             ) -> AsyncIterator[tuple[Container, ContainerFS, str, PathStat]]:
    """The container, its filesystem (mounted for the block), the asked path and its stat."""
    path = _archive_path(request)
    manager = engine_of(request).containers
    container = manager.get(request.match_info["id"])
    async with manager.rootfs(container) as root:
        fs = await _container_fs(request, container, root)
        yield container, fs, path, await _in_thread(fs.stat, path)


@routes.head("/containers/{id}/archive")
async def stat_path(request: web.Request) -> web.Response:
    async with _stat_in_container(request) as (_, _, _, stat):
        return web.Response(headers={STAT_HEADER: stat.header_value()})


@routes.get("/containers/{id}/archive")
async def get_archive(request: web.Request) -> web.StreamResponse:
    async with _stat_in_container(request) as (container, fs, path, stat):
        engine_of(request).containers.publish(container, "archive-path")
        response = web.StreamResponse(headers={STAT_HEADER: stat.header_value(),
                                               "Content-Type": TAR_TYPE})
        await _stream_tar(request, response, lambda out: fs.write_tar(path, out),
                          compress=_accepts_gzip(request))
    return response


@routes.put("/containers/{id}/archive")
async def put_archive(request: web.Request) -> web.Response:
    path = _archive_path(request)
    manager = engine_of(request).containers
    container = manager.get(request.match_info["id"])
    loop = asyncio.get_running_loop()
    async with manager.rootfs(container) as root:
        fs = await _container_fs(request, container, root)

        def extract() -> None:
            owner = (copy_owner(root, container.config.get("User") or "")
                     if query_bool(request, "copyUIDGID") else None)
            with io.BufferedReader(_LoopReader(request, loop), STREAM_BUFFER) as body:
                fs.extract(path, body,
                           no_overwrite_dir_non_dir=query_bool(request, "noOverwriteDirNonDir"),
                           owner=owner,
                           readonly_rootfs=bool(container.host_config.get("ReadonlyRootfs")))

        await _in_thread(extract)
    manager.publish(container, "extract-to-dir")
    return web.Response(status=200)


@routes.get("/containers/{id}/export")
async def export(request: web.Request) -> web.StreamResponse:
    manager = engine_of(request).containers
    container = manager.get(request.match_info["id"])
    if container.state.status in ("dead", "removing"):
        state = "Dead" if container.state.status == "dead" else "being removed"
        raise Conflict(f"You cannot export container {container.id} which is {state}")
    async with manager.rootfs(container) as root:
        # Export shows the root filesystem alone, without the engine's mounted files.
        fs = ContainerFS(root, request.match_info["id"])
        manager.publish(container, "export")
        response = web.StreamResponse(headers={"Content-Type": TAR_TYPE})
        await _stream_tar(request, response, fs.export)
    return response


@routes.get("/containers/{id}/changes")
async def changes(request: web.Request) -> web.Response:
    engine = engine_of(request)
    container = engine.containers.get(request.match_info["id"])
    found = await container_changes(engine.images.layers, container)
    # dockerd encodes no changes as null.
    return json_response([change.to_json() for change in found] if found else None)


@routes.get("/containers/{id}/top")
async def top(request: web.Request) -> web.Response:
    args = ps_arguments(request.query.get("ps_args", ""))
    manager = engine_of(request).containers
    container = manager.get(request.match_info["id"])
    processes = await container_top(container, args)
    manager.publish(container, "top")
    return json_response(processes)
