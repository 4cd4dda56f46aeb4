"""The userland proxy of published ports, inside servind's event loop.

NAT cannot serve traffic to 127.0.0.1 (nor a container reaching its own host
port back through the host, "hairpin"), so, as dockerd's docker-proxy, every
published port also has a listener on the host that relays to the container.
Holding the listening socket also reserves the host port.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import attrs
import structlog

from servin.errors import SystemFailure

log = structlog.get_logger("servin.net")

UDP_IDLE_SECONDS = 90.0  # docker-proxy's UDP connection tracking timeout
TCP_CHUNK = 64 * 1024


@attrs.frozen
class Forward:
    proto: str          # tcp or udp
    host_ip: str        # "" for every address
    host_port: int      # 0: the kernel picks an ephemeral port
    container_ip: str
    container_port: int


class PortProxy:
    """One listener relaying ``forward`` to the container."""

    def __init__(self, forward: Forward) -> None:
        self.forward = forward
        self._server: asyncio.AbstractServer | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task] = set()
        self.port = forward.host_port

    async def start(self) -> int:
        """Bind and serve; returns the host port (the kernel's pick when it was 0)."""
        f = self.forward
        sock = socket.socket(socket.AF_INET,
                             socket.SOCK_STREAM if f.proto == "tcp" else socket.SOCK_DGRAM)
        try:
            if f.proto == "tcp":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((f.host_ip or "0.0.0.0", f.host_port))
        except OSError:
            sock.close()
            raise SystemFailure(f"Bind for {f.host_ip or '0.0.0.0'}:{f.host_port} failed: "
                                f"port is already allocated") from None
        self.port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        if f.proto == "tcp":
            self._server = await asyncio.start_server(self._relay_tcp, sock=sock)
        else:
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpFront(self.forward, self._tasks), sock=sock)
        log.debug("proxy_started", proto=f.proto, port=self.port, to=f.container_ip)
        return self.port

    async def _relay_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.forward.container_ip, self.forward.container_port)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()
            self._tasks.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._udp is not None:
            self._udp.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(TCP_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # a half-close travels on, as docker-proxy does
    except (ConnectionError, OSError):
        writer.close()


class _UdpFront(asyncio.DatagramProtocol):
    """Host side: one upstream socket per client address, dropped after an idle spell."""

    def __init__(self, forward: Forward, tasks: set[asyncio.Task]) -> None:
        self.forward = forward
        self.tasks = tasks
        self.transport: asyncio.DatagramTransport | None = None
        self.clients: dict[Any, _UdpBack] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        back = self.clients.get(addr)
        if back is None:
            back = self.clients[addr] = _UdpBack(self, addr)
            task = asyncio.get_running_loop().create_task(self._open(back))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        back.send(data)

    async def _open(self, back: "_UdpBack") -> None:
        try:
            await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: back, remote_addr=(self.forward.container_ip, self.forward.container_port))
        except OSError as exc:
            log.debug("proxy_udp_unreachable", error=str(exc))
            self.clients.pop(back.client, None)

    def connection_lost(self, exc: Exception | None) -> None:
        for back in list(self.clients.values()):
            if back.transport is not None:
                back.transport.close()


class _UdpBack(asyncio.DatagramProtocol):
    def __init__(self, front: _UdpFront, client: Any) -> None:
        self.front = front
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._pending: list[bytes] = []  # datagrams that came while the socket was opening

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        for data in self._pending:
            self.transport.sendto(data)
        self._pending.clear()
        self._touch()

    def send(self, data: bytes) -> None:
        if self.transport is None:
            self._pending.append(data)
            return
        self.transport.sendto(data)
        self._touch()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.front.transport is not None:
            self.front.transport.sendto(data, self.client)
        self._touch()

    def error_received(self, exc: Exception) -> None:
        log.debug("proxy_udp_error", error=str(exc))

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        assert self.transport is not None
        self._idle = asyncio.get_running_loop().call_later(UDP_IDLE_SECONDS, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self.front.clients.get(self.client) is self:
            del self.front.clients[self.client]
