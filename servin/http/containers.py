"""Container API routes: create, start, stop, wait, attach, logs, delete, list, inspect."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from servin.containers.record import Container
from servin.errors import InvalidArgument
from servin.http.context import engine_of
from servin.http.framing import frame
from servin.http.hijack import MULTIPLEXED_STREAM, RAW_STREAM, HijackedResponse
from servin.http.params import json_body, query_bool, query_int
from servin.http.routing import Routes
from servin.oci.logfile import LogEntry
from servin.oci.runtime import AttachSocket
from servin.timefmt import rfc3339_nano

routes = Routes()

STDIN_CHUNK = 32 * 1024


@routes.post("/containers/create")
async def create(request: web.Request) -> web.Response:
    body = await json_body(request, allow_empty=False)
    container = await engine_of(request).containers.create(body, request.query.get("name"))
    return web.json_response({"Id": container.id, "Warnings": []}, status=201)


@routes.get("/containers/json")
async def list_containers(request: web.Request) -> web.Response:
    containers = engine_of(request).containers.list(all=query_bool(request, "all"),
                                                    limit=query_int(request, "limit"))
    return web.json_response(containers)


@routes.get("/containers/{id}/json")
async def inspect(request: web.Request) -> web.Response:
    return web.json_response(engine_of(request).containers.inspect(request.match_info["id"]))


@routes.post("/containers/{id}/start")
async def start(request: web.Request) -> web.Response:
    await engine_of(request).containers.start(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/containers/{id}/stop")
async def stop(request: web.Request) -> web.Response:
    await engine_of(request).containers.stop(request.match_info["id"], query_int(request, "t"))
    return web.Response(status=204)


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
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidArgument(f"invalid condition: {condition!r}")
    exit_code = manager.waiter(container, condition)
    # dockerd sends the headers at once, so a client knows its wait is in place
    # before it starts the container.
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    try:
        code = await exit_code
    finally:
        exit_code.cancel()
    await response.write(json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n")
    await response.write_eof()
    return response


@routes.delete("/containers/{id}")
async def remove(request: web.Request) -> web.Response:
    await engine_of(request).containers.remove(request.match_info["id"],
                                               force=query_bool(request, "force"))
    return web.Response(status=204)


def _timestamp_ns(request: web.Request, name: str) -> int | None:
    """Docker's since/until: unix seconds with an optional fraction."""
    value = request.query.get(name)
    if not value or value == "0":
        return None
    try:
        seconds, _, fraction = value.partition(".")
        return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9] or 0)
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {value!r}") from None


def _tail(request: web.Request) -> int | None:
    value = request.query.get("tail", "all")
    if value in ("", "all"):
        return None
    try:
        tail = int(value)
    except ValueError:
        raise InvalidArgument(f"invalid value for tail: {value!r}") from None
    return tail if tail >= 0 else None


class _OutputWriter:
    """Writes container output to a client: framed without a TTY, raw with one."""

    def __init__(self, response: web.StreamResponse, container: Container, *,
                 stdout: bool, stderr: bool, timestamps: bool = False) -> None:
        self._response = response
        self._tty = container.tty
        self._streams = {name for name, wanted in (("stdout", stdout), ("stderr", stderr))
                         if wanted}
        self._timestamps = timestamps

    async def entry(self, entry: LogEntry) -> None:
        data = entry.data
        if self._timestamps:
            data = rfc3339_nano(entry.time_ns).encode() + b" " + data
        await self.write(entry.stream, data)

    async def write(self, stream: str, data: bytes) -> None:
        if stream not in self._streams or not data:
            return
        await self._response.write(data if self._tty else frame(stream, data))


@routes.get("/containers/{id}/logs")
async def logs(request: web.Request) -> web.StreamResponse:
    manager = engine_of(request).containers
    container = manager.get(request.match_info["id"])
    stdout, stderr = query_bool(request, "stdout"), query_bool(request, "stderr")
    if not (stdout or stderr):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    entries = manager.logs(container, follow=query_bool(request, "follow"),
                           since_ns=_timestamp_ns(request, "since"),
                           until_ns=_timestamp_ns(request, "until"), tail=_tail(request))
    response = web.StreamResponse(
        headers={"Content-Type": RAW_STREAM if container.tty else MULTIPLEXED_STREAM})
    await response.prepare(request)
    writer = _OutputWriter(response, container, stdout=stdout, stderr=stderr,
                           timestamps=query_bool(request, "timestamps"))
    async for entry in entries:
        await writer.entry(entry)
    await response.write_eof()
    return response


@routes.post("/containers/{id}/attach")
async def attach(request: web.Request) -> web.StreamResponse:
    manager = engine_of(request).containers
    container = manager.get(request.match_info["id"])
    writer_opts = {"stdout": query_bool(request, "stdout"), "stderr": query_bool(request, "stderr")}
    response = HijackedResponse(RAW_STREAM if container.tty else MULTIPLEXED_STREAM)
    await response.start(request)
    writer = _OutputWriter(response, container, **writer_opts)
    if query_bool(request, "logs"):
        async for entry in manager.logs(container, follow=False, since_ns=None, until_ns=None,
                                        tail=None):
            await writer.entry(entry)
    if query_bool(request, "stream"):
        socket = await manager.open_attach(container)
        if socket is not None:
            wants_stdin = query_bool(request, "stdin") and container.config.get("OpenStdin")
            await _pump(socket, response, writer, container, stdin=bool(wants_stdin))
    return response


async def _pump(socket: AttachSocket, response: HijackedResponse, writer: _OutputWriter,
                container: Container, *, stdin: bool) -> None:
    """Copy output to the client until the container's streams end; stdin the other way."""
    stdin_task = asyncio.create_task(_copy_stdin(response, socket, container)) if stdin else None
    try:
        while (chunk := await socket.read()) is not None:
            await writer.write(*chunk)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the client went away; the container goes on
    finally:
        if stdin_task is not None:
            stdin_task.cancel()
            await asyncio.gather(stdin_task, return_exceptions=True)
        socket.close()


async def _copy_stdin(response: HijackedResponse, socket: AttachSocket,
                      container: Container) -> None:
    while data := await response.stdin.read(STDIN_CHUNK):
        await socket.write(data)
    # The client closed its stdin: with StdinOnce the container's stdin closes too.
    if container.config.get("StdinOnce"):
        await socket.close_stdin()
