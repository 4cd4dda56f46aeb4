"""The few rtnetlink requests Servin makes, as packed bytes on a blocking socket.

Links, addresses and routes of bridges and veth pairs: made, changed, listed and
removed. Blocking on purpose: callers run it in threads (see ``links``), one socket
per thread, and a socket belongs to the network namespace its thread was in when
it opened it. Packing a few structs by hand costs a fraction of a general netlink
library's per-message work, which weighed on every container start.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from typing import Iterator

import attrs

NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26

IFF_UP = 0x1
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_F_NODAD = 0x02

RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_TABLE = 15
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RTN_UNICAST = 1

_HEADER = struct.Struct("=IHHII")      # nlmsghdr
_IFINFO = struct.Struct("=BxHiII")     # ifinfomsg
_IFADDR = struct.Struct("=BBBBI")      # ifaddrmsg
_RTMSG = struct.Struct("=BBBBBBBBI")   # rtmsg
_ATTR = struct.Struct("=HH")           # nlattr
_ERROR = struct.Struct("=i")


class NetlinkError(OSError):
    """The kernel refused a request; ``errno`` says why."""


def _align(length: int) -> int:
    return (length + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (_align(length) - length)


def _text(value: str) -> bytes:
    return value.encode() + b"\0"


def _u32(value: int) -> bytes:
    return struct.pack("=I", value)


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """Attributes from ``offset`` on, by type (the nested flag bit masked off)."""
    out = {}
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            break
        out[kind & 0x3FFF] = data[offset + _ATTR.size:offset + length]
        offset += _align(length)
    return out


def _string(value: bytes | None) -> str:
    return value.rstrip(b"\0").decode(errors="replace") if value is not None else ""


def _mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


@attrs.frozen
class Link:
    index: int
    name: str
    kind: str    # bridge, veth... "" when the kernel names none
    alias: str


class Rtnl:
    """One rtnetlink socket, in the namespace of the thread that opened it."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the exchange

    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self._seq += 1
        self._sock.send(_HEADER.pack(_HEADER.size + len(body), kind, flags, self._seq, 0) + body)
        return self._seq

    def _replies(self, seq: int) -> Iterator[tuple[int, bytes]]:
        """(type, payload) of each reply to ``seq`` until the ack or the dump's end."""
        while True:
            data = self._sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind, _, reply_seq, _ = _HEADER.unpack_from(data, offset)
                payload = data[offset + _HEADER.size:offset + length]
                offset += _align(length)
                if reply_seq != seq:
                    continue  # a late answer to an earlier request
                if kind == NLMSG_ERROR:
                    (code,) = _ERROR.unpack_from(payload)
                    if code:
                        raise NetlinkError(-code, os.strerror(-code))
                    return
                if kind == NLMSG_DONE:
                    return
                yield kind, payload

    def request(self, kind: int, body: bytes, flags: int = 0) -> None:
        """Send a request and wait for its ack; NetlinkError if the kernel refuses it."""
        for _ in self._replies(self._send(kind, NLM_F_REQUEST | NLM_F_ACK | flags, body)):
            pass

    def dump(self, kind: int, body: bytes) -> list[bytes]:
        return [payload for _, payload in self._replies(
            self._send(kind, NLM_F_REQUEST | NLM_F_DUMP, body))]

    # --- links

    def links(self) -> list[Link]:
        out = []
        for payload in self.dump(RTM_GETLINK, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
            index = _IFINFO.unpack_from(payload)[2]
            found = parse_attrs(payload, _IFINFO.size)
            info = parse_attrs(found.get(IFLA_LINKINFO, b""))
            out.append(Link(index, _string(found.get(IFLA_IFNAME)),
                            _string(info.get(IFLA_INFO_KIND)), _string(found.get(IFLA_IFALIAS))))
        return out

    def link_index(self, name: str) -> int | None:
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr(IFLA_IFNAME, _text(name))
        try:
            for _, payload in self._replies(self._send(RTM_GETLINK, NLM_F_REQUEST, body)):
                return _IFINFO.unpack_from(payload)[2]
        except NetlinkError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        return None

    def add_bridge(self, name: str) -> None:
        body = (_IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr(IFLA_IFNAME, _text(name))
                + attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, _text("bridge"))))
        self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_veth(self, name: str, *, peer: str, peer_netns_fd: int, peer_mac: str, mtu: int,
                 master: int) -> None:
        """A veth pair: ``name`` up on bridge ``master``, ``peer`` straight into the
        namespace of ``peer_netns_fd`` with its MAC address, down (the kernel refuses to
        bring up the end it makes first)."""
        peer_info = (_IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
                     + attr(IFLA_IFNAME, _text(peer)) + attr(IFLA_NET_NS_FD, _u32(peer_netns_fd))
                     + attr(IFLA_MTU, _u32(mtu)) + attr(IFLA_ADDRESS, _mac(peer_mac)))
        linkinfo = attr(IFLA_INFO_KIND, _text("veth")) + attr(
            IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info))
        body = (_IFINFO.pack(socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP)
                + attr(IFLA_IFNAME, _text(name)) + attr(IFLA_MTU, _u32(mtu))
                + attr(IFLA_MASTER, _u32(master)) + attr(IFLA_LINKINFO, linkinfo))
        self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)

    def set_link(self, index: int, *, up: bool | None = None, mtu: int | None = None,
                 alias: str | None = None) -> None:
        flags = IFF_UP if up else 0
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, IFF_UP if up is not None else 0)
        if mtu is not None:
            body += attr(IFLA_MTU, _u32(mtu))
        if alias is not None:
            body += attr(IFLA_IFALIAS, _text(alias))
        self.request(RTM_NEWLINK, body)

    def delete_link(self, name: str) -> bool:
        """False when there was no such link."""
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr(IFLA_IFNAME, _text(name))
        try:
            self.request(RTM_DELLINK, body)
        except NetlinkError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    # --- addresses and routes

    def addresses(self, index: int) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        out = []
        for payload in self.dump(RTM_GETADDR, _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
            family, prefixlen, _, _, owner = _IFADDR.unpack_from(payload)
            address = parse_attrs(payload, _IFADDR.size).get(IFA_ADDRESS)
            if owner == index and address is not None:
                out.append(ipaddress.ip_interface((ipaddress.ip_address(address), prefixlen)))
        return out

    def add_address(self, index: int,
                    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        flags = IFA_F_NODAD if address.version == 6 else 0  # usable at once: no DAD wait
        packed = address.ip.packed
        body = (_IFADDR.pack(family, address.network.prefixlen, flags, 0, index)
                + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed))
        self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def replace_default_route(self, gateway: ipaddress.IPv4Address | ipaddress.IPv6Address,
                              index: int) -> None:
        family = socket.AF_INET6 if gateway.version == 6 else socket.AF_INET
        body = (_RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, 0, RTN_UNICAST, 0)
                + attr(RTA_GATEWAY, gateway.packed) + attr(RTA_OIF, _u32(index)))
        self.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_REPLACE)

    def main_table_destinations(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Destinations of the main routing table's routes, the default routes left out."""
        out = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for payload in self.dump(RTM_GETROUTE, _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)):
                _, dst_len, _, _, table, _, _, _, _ = _RTMSG.unpack_from(payload)
                found = parse_attrs(payload, _RTMSG.size)
                if RTA_TABLE in found:
                    (table,) = struct.unpack("=I", found[RTA_TABLE])
                if table != RT_TABLE_MAIN or dst_len == 0 or RTA_DST not in found:
                    continue
                out.append(ipaddress.ip_network((ipaddress.ip_address(found[RTA_DST]), dst_len),
                                                strict=False))
        return out
