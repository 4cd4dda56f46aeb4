"""Docker's hijacked connections (attach, exec start).

The client asks for ``Connection: Upgrade`` / ``Upgrade: tcp``; the server answers
``101 UPGRADED`` and the socket then carries raw bytes both ways: the container's
output to the client, the client's stdin to the container. The docker CLI half-closes
its side when stdin ends and keeps reading output, so the connection must stay open
for writing after the client's EOF, which aiohttp's protocol would not do by itself.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


class _HalfCloseProtocol(asyncio.Protocol):
    """Stands in for aiohttp's protocol on a hijacked transport.

    Bytes and EOF from the client go to the stdin reader; the end of the client's
    sending side keeps the transport open for our output; everything else (flow
    control, connection loss) still reaches aiohttp's protocol.
    """

    def __init__(self, inner: asyncio.Protocol, stdin: asyncio.StreamReader) -> None:
        self._inner = inner
        self._stdin = stdin

    def data_received(self, data: bytes) -> None:
        self._stdin.feed_data(data)

    def eof_received(self) -> bool:
        self._stdin.feed_eof()
        return True

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stdin.feed_eof()
        self._inner.connection_lost(exc)


class HijackedResponse(web.StreamResponse):
    """A raw, unframed-by-HTTP byte stream on the request's connection."""

    def __init__(self, content_type: str = RAW_STREAM) -> None:
        super().__init__()
        self.content_type = content_type
        self.stdin = asyncio.StreamReader()
        # Raw bytes follow the headers: neither Content-Length nor chunked encoding.
        self._length_check = False

    async def start(self, request: web.Request) -> None:
        upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
        if upgrade:
            self.set_status(101, "UPGRADED")
            self.headers["Connection"] = "Upgrade"
            self.headers["Upgrade"] = "tcp"
        self.force_close()
        await self.prepare(request)
        transport = request.transport
        protocol = request.protocol
        if transport is None:
            raise ConnectionResetError("client went away")
        if upgrade:
            # Bytes the client sent right after its headers were kept by aiohttp's parser.
            tail = getattr(protocol, "_message_tail", b"")
            if tail:
                self.stdin.feed_data(tail)
            transport.set_protocol(_HalfCloseProtocol(protocol, self.stdin))
        else:
            self.stdin.feed_eof()

    async def send(self, data: bytes) -> None:
        await self.write(data)
