"""A container's output and input streams: logs, attach (hijacked) and attach over WebSocket.

The attach pumping serves exec sessions too (servin/http/exec.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from typing import AsyncIterator, Awaitable, Callable

from aiohttp import WSMsgType, web

from servin.containers.detachkeys import EscapeScanner, parse_detach_keys
from servin.containers.manager import ContainerManager
from servin.containers.record import Container
from servin.errors import InvalidArgument
from servin.http.context import engine_of
from servin.http.framing import frame
from servin.http.hijack import MULTIPLEXED_STREAM, RAW_STREAM, HijackedResponse
from servin.http.logrender import LogRenderer, RenderedLog
from servin.http.params import query_bool
from servin.http.routing import Routes
from servin.oci.logfile import READ_CHUNK
from servin.oci.runtime import AttachSocket

routes = Routes()

STDIN_CHUNK = 32 * 1024
LOG_WRITE_BUFFER = 4 * READ_CHUNK

Send = Callable[[bytes], Awaitable[None]]


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


class OutputWriter:
    """Sends chosen streams of a container's output: framed, or raw (TTY, WebSocket)."""

    def __init__(self, send: Send, *, framed: bool, stdout: bool, stderr: bool) -> None:
        self._send = send
        self._framed = framed
        self._streams = {name for name, wanted in (("stdout", stdout), ("stderr", stderr))
                         if wanted}

    def log_renderer(self, *, timestamps: bool = False, since_ns: int | None = None,
                     until_ns: int | None = None,
                     details: dict[str, str] | None = None) -> LogRenderer:
        """Renders log blocks as this writer sends output (for the log reader's thread);
        ``details``: the log's attributes, shown before each line."""
        return LogRenderer(frozenset(name.encode() for name in self._streams),
                           framed=self._framed, timestamps=timestamps, since_ns=since_ns,
                           until_ns=until_ns,
                           details=None if details is None
                           else LogRenderer.details_prefix(details))

    async def log(self, blocks: AsyncIterator[RenderedLog]) -> None:
        """Rendered log blocks, a write each (per-line writes cost a syscall each)."""
        async with contextlib.aclosing(blocks):
            async for block in blocks:
                if block.data:
                    await self._send(block.data)
                if block.ended:
                    return

    async def write(self, stream: str, data: bytes) -> None:
        if stream in self._streams and data:
            await self._send(frame(stream, data) if self._framed else data)


@routes.get("/containers/{id}/logs")
async def logs(request: web.Request) -> web.StreamResponse:
    manager = engine_of(request).containers
    container = manager.get(request.match_info["id"])
    stdout, stderr = query_bool(request, "stdout"), query_bool(request, "stderr")
    if not (stdout or stderr):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    response = web.StreamResponse(
        headers={"Content-Type": RAW_STREAM if container.tty else MULTIPLEXED_STREAM})
    writer = OutputWriter(response.write, framed=not container.tty, stdout=stdout,
                          stderr=stderr)
    details = manager.log_attributes(container) if query_bool(request, "details") else None
    render = writer.log_renderer(timestamps=query_bool(request, "timestamps"),
                                 since_ns=_timestamp_ns(request, "since"),
                                 until_ns=_timestamp_ns(request, "until"), details=details)
    blocks = manager.logs(container, render, follow=query_bool(request, "follow"),
                          tail=_tail(request))
    await response.prepare(request)
    if request.transport is not None:
        # Room for a whole rendered block: the reader's thread then reads and renders
        # the next one while the client takes this one, instead of after.
        request.transport.set_write_buffer_limits(high=LOG_WRITE_BUFFER)
    await writer.log(blocks)
    await response.write_eof()
    return response


class _AttachRequest:
    """What an attach asks for, checked before the connection is taken over."""

    def __init__(self, request: web.Request) -> None:
        self.manager: ContainerManager = engine_of(request).containers
        self.container: Container = self.manager.get(request.match_info["id"])
        self.detach_keys = parse_detach_keys(request.query.get("detachKeys"))
        self.stdout = query_bool(request, "stdout")
        self.stderr = query_bool(request, "stderr")
        self.stdin = query_bool(request, "stdin") and bool(self.container.config.get("OpenStdin"))
        # Checked now: a log driver that keeps no log is refused before the hijack (501).
        self.replay = query_bool(request, "logs")
        if self.replay:
            self.manager.check_logs_readable(self.container)
        self.stream = query_bool(request, "stream")

    async def serve(self, writer: OutputWriter, stdin: AsyncIterator[bytes]) -> None:
        if self.replay:
            await writer.log(self.manager.logs(self.container, writer.log_renderer(),
                                               follow=False, tail=None))
        if not self.stream:
            return
        socket = await self.manager.open_attach(self.container)
        if socket is None:
            return
        # The client closing its stdin closes the container's only with StdinOnce.
        await pump_attach(socket, writer, stdin if self.stdin else None,
                          detach_keys=self.detach_keys,
                          close_stdin=bool(self.container.config.get("StdinOnce")))


class AttachEnd(enum.Enum):
    OUTPUT_ENDED = "output ended"  # the process closed its output (it has exited)
    DETACHED = "detached"          # the client typed the detach keys
    CLIENT_GONE = "client gone"


async def pump_attach(socket: AttachSocket, writer: OutputWriter,
                      stdin: AsyncIterator[bytes] | None, *, detach_keys: bytes,
                      close_stdin: bool) -> AttachEnd:
    """A process's output (from conmon's attach socket) to the client and, with ``stdin``,
    the client's input to the process, until one of them ends; closes ``socket``.

    ``close_stdin``: the end of the client's input closes the process's stdin.
    """
    detached = False

    async def copy_stdin(stdin: AsyncIterator[bytes]) -> None:
        nonlocal detached
        scanner = EscapeScanner(detach_keys)
        async for data in stdin:
            data, detached = scanner.feed(data)
            if data:
                await socket.write(data)
            if detached:
                # The client leaves; closing our end ends the output loop too.
                socket.close()
                return
        if close_stdin:
            await socket.close_stdin()

    stdin_task = asyncio.create_task(copy_stdin(stdin)) if stdin is not None else None
    end = AttachEnd.OUTPUT_ENDED
    try:
        while (chunk := await socket.read()) is not None:
            await writer.write(*chunk)
    except (ConnectionResetError, BrokenPipeError):
        end = AttachEnd.CLIENT_GONE  # the process goes on
    finally:
        if stdin_task is not None:
            stdin_task.cancel()
            await asyncio.gather(stdin_task, return_exceptions=True)
        socket.close()
    return AttachEnd.DETACHED if detached else end


async def reader_chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while data := await reader.read(STDIN_CHUNK):
        yield data


@routes.post("/containers/{id}/attach")
async def attach(request: web.Request) -> web.StreamResponse:
    wanted = _AttachRequest(request)
    tty = wanted.container.tty
    response = HijackedResponse(RAW_STREAM if tty else MULTIPLEXED_STREAM)
    await response.start(request)
    writer = OutputWriter(response.write, framed=not tty, stdout=wanted.stdout,
                          stderr=wanted.stderr)
    await wanted.serve(writer, reader_chunks(response.stdin))
    return response


@routes.get("/containers/{id}/attach/ws")
async def attach_websocket(request: web.Request) -> web.WebSocketResponse:
    wanted = _AttachRequest(request)
    ws = web.WebSocketResponse()
    await ws.prepare(request)

    async def messages() -> AsyncIterator[bytes]:
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                yield message.data
            elif message.type == WSMsgType.TEXT:
                yield message.data.encode()

    # A WebSocket carries the streams unframed, as dockerd sends them.
    writer = OutputWriter(ws.send_bytes, framed=False, stdout=wanted.stdout,
                          stderr=wanted.stderr)
    await wanted.serve(writer, messages())
    await ws.close()
    return ws
