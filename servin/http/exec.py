"""Exec API routes: create, start (detached or attached over a hijacked connection),
resize, inspect."""

from __future__ import annotations

from aiohttp import web

from servin.containers.detachkeys import parse_detach_keys
from servin.errors import InvalidArgument, ServinError
from servin.http.container_streams import AttachEnd, OutputWriter, pump_attach, reader_chunks
from servin.http.context import engine_of
from servin.http.framing import frame
from servin.http.hijack import MULTIPLEXED_STREAM, RAW_STREAM, HijackedResponse
from servin.http.params import json_body, query_int
from servin.http.responses import json_response
from servin.http.routing import Routes

routes = Routes()


@routes.post("/containers/{id}/exec")
async def create(request: web.Request) -> web.Response:
    body = await json_body(request, allow_empty=False)
    record = await engine_of(request).containers.execs.create(request.match_info["id"], body)
    return json_response({"Id": record.id}, status=201)


@routes.post("/exec/{id}/start")
async def start(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    execs = engine_of(request).containers.execs
    exec_id = request.match_info["id"]
    if body.get("Detach"):
        await execs.start(exec_id, attach=False)
        return web.Response(status=200)
    # Refusals (unknown exec, already started, container not running) as HTTP errors.
    record, _ = execs.check_startable(exec_id)
    response = HijackedResponse(RAW_STREAM if record.tty else MULTIPLEXED_STREAM)
    await response.start(request)
    try:
        socket = await execs.start(exec_id, attach=True)
    except ServinError as exc:
        # As dockerd: the connection is already the exec's, so the error is its output.
        message = exc.message.encode() + b"\r\n"
        await response.write(message if record.tty else frame("stdout", message))
        return response
    assert socket is not None
    writer = OutputWriter(response.write, framed=not record.tty, stdout=record.open_stdout,
                          stderr=record.open_stderr)
    end = await pump_attach(socket, writer,
                            reader_chunks(response.stdin) if record.open_stdin else None,
                            detach_keys=parse_detach_keys(record.detach_keys),
                            close_stdin=True)
    if end is AttachEnd.DETACHED:
        execs.detached(exec_id)
    elif end is AttachEnd.OUTPUT_ENDED:
        # The client reads the exit code right after the stream ends: record it first.
        await execs.wait(exec_id)
    return response


@routes.post("/exec/{id}/resize")
async def resize(request: web.Request) -> web.Response:
    height, width = query_int(request, "h", 0), query_int(request, "w", 0)
    if height < 0 or width < 0 or height > 0xFFFF or width > 0xFFFF:
        raise InvalidArgument("invalid terminal size: height and width must be 0 to 65535")
    await engine_of(request).containers.execs.resize(request.match_info["id"], height, width)
    return web.Response(status=200)


@routes.get("/exec/{id}/json")
async def inspect(request: web.Request) -> web.Response:
    return json_response(engine_of(request).containers.execs.inspect(request.match_info["id"]))
