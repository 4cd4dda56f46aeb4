"""The embedded DNS server of user-defined networks, at 127.0.0.11 in each sandbox.

As Docker's: containers resolve the names, aliases and network-scoped names of
the containers they share a network with; any other name is forwarded to the
host's resolvers. The listening sockets are opened inside the sandbox's
namespace (a socket keeps the namespace it was made in), so the server runs in
servind's own loop and forwards from the host's namespace, where even a
loopback resolver of the host is reachable. dnspython does the wire format.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from pathlib import Path
from typing import Protocol

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.reversename
import structlog

from servin.net.ipam import Address
from servin.net.links import sockets_in

log = structlog.get_logger("servin.net")

LISTEN_ADDRESS = "127.0.0.11"
TTL = 600  # what Docker's resolver answers with
UPSTREAM_TIMEOUT = 4.0
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

    async def start(self) -> None:
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
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if len(query.question) != 1:
            return _reply(query, dns.rcode.FORMERR).to_wire()
        question = query.question[0]
        local = self._local(query, question)
        if local is not None:
            return local.to_wire()
        return await self._forward(query, tcp)

    def _local(self, query: dns.message.Message, question) -> dns.message.Message | None:
        name = question.name.to_text(omit_final_dot=True).lower()
        if question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            addresses = self.names.lookup(name)
            if addresses is None:
                return None
            version = 4 if question.rdtype == dns.rdatatype.A else 6
            reply = _reply(query, dns.rcode.NOERROR)
            texts = [str(a) for a in addresses if a.version == version]
            if texts:
                reply.answer.append(dns.rrset.from_text_list(
                    question.name, TTL, dns.rdataclass.IN, question.rdtype, texts))
            return reply
        if question.rdtype == dns.rdatatype.PTR:
            try:
                address = ipaddress.ip_address(dns.reversename.to_address(question.name))
            except (dns.exception.DNSException, ValueError):
                return None
            target = self.names.reverse(address)
            if target is None:
                return None
            reply = _reply(query, dns.rcode.NOERROR)
            reply.answer.append(dns.rrset.from_text(question.name, TTL, dns.rdataclass.IN,
                                                    dns.rdatatype.PTR, target + "."))
            return reply
        return None

    async def _forward(self, query: dns.message.Message, tcp: bool) -> bytes:
        for host, port in self.upstreams:
            try:
                if tcp:
                    response = await dns.asyncquery.tcp(query, host, UPSTREAM_TIMEOUT, port)
                else:
                    response = await dns.asyncquery.udp(query, host, UPSTREAM_TIMEOUT, port,
                                                        raise_on_truncation=False)
                return response.to_wire()
            except (dns.exception.DNSException, OSError) as exc:
                log.debug("dns_upstream_failed", upstream=host, error=str(exc))
        return _reply(query, dns.rcode.SERVFAIL).to_wire()

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


def _reply(query: dns.message.Message, rcode: int) -> dns.message.Message:
    reply = dns.message.make_response(query, recursion_available=True)
    reply.set_rcode(rcode)
    return reply


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
