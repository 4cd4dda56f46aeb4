"""The embedded DNS server of user-defined networks, at 127.0.0.11 in each sandbox.

As Docker's: containers resolve the names, aliases and network-scoped names of
the containers they share a network with; any other name is forwarded to the
host's resolvers. The listening sockets are opened inside the sandbox's
namespace (a socket keeps the namespace it was made in), so the server runs in
servind's own loop and forwards from the host's namespace, where even a
loopback resolver of the host is reachable. What it answers is dnsanswers' part.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from servin.net.ipam import Address
from servin.net.links import sockets_in

if TYPE_CHECKING:
    from servin.net.dnsanswers import Answers

LISTEN_ADDRESS = "127.0.0.11"
RESOLV_CONF = Path("/etc/resolv.conf")


class Names(Protocol):
    """What one sandbox's container may resolve."""

    def lookup(self, name: str) -> list[Address] | None:
        """Addresses of a container name or alias; None when no such name is known."""

    def reverse(self, address: Address) -> str | None:
        """The name of a container address, for PTR queries."""


def host_resolvers(resolv_conf: Path = RESOLV_CONF) -> list[tuple[str, int]]:
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            out.append((fields[1], 53))
    return out


class SandboxDns:
    """UDP and TCP listeners at 127.0.0.11:53 inside one sandbox."""

    def __init__(self, sandbox: Path, names: Names, upstreams: list[tuple[str, int]]) -> None:
        self.sandbox = sandbox
        self.names = names
        self.upstreams = upstreams
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._answers: Answers | None = None

    async def start(self) -> None:
        # Here, not at the top: dnspython (40 ms and 2.5 MiB of imports) then loads with
        # the first server, not at every daemon start.
        from servin.net.dnsanswers import Answers
        self._answers = Answers(self.names, self.upstreams)
        udp, tcp = await sockets_in(self.sandbox, socket.SOCK_DGRAM, socket.SOCK_STREAM)
        try:
            udp.bind((LISTEN_ADDRESS, 53))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((LISTEN_ADDRESS, 53))
            tcp.listen(64)
            loop = asyncio.get_running_loop()
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _UdpServer(self), sock=udp)
            self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp)
        except BaseException:
            udp.close()
            tcp.close()
            raise

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def answer(self, wire: bytes, tcp: bool) -> bytes | None:
        assert self._answers is not None, "the server is not started"
        return await self._answers.answer(wire, tcp)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                answer = await self.answer(await reader.readexactly(length), tcp=True)
                if answer is None:
                    break
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, server: SandboxDns) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr) -> None:
        self.server.spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr) -> None:
        answer = await self.server.answer(data, tcp=False)
        if answer is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(answer, addr)
