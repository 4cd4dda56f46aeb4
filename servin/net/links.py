"""Bridges, veth pairs and network namespaces, through pyroute2's netlink.

Every link made here carries the daemon instance's tag as its interface alias
(``ip link`` shows it), so a daemon finds what it left after a crash without
ever touching another daemon's links. A namespace is a file bind-mounted under
the daemon's exec root, so it outlives any process and a restarted daemon
finds it again.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import os
from pathlib import Path

import attrs
import structlog
from pyroute2 import AsyncIPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from servin.mounts import is_mountpoint
from servin.net.ipam import Address, Network

log = structlog.get_logger("servin.net")

MAIN_ROUTING_TABLE = 254
ENOENT = 2
ENODEV = 19


def docker_mac(ipv4: ipaddress.IPv4Address) -> str:
    """Docker's MAC for an address: 02:42 and the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{byte:02x}" for byte in ipv4.packed)


@attrs.frozen
class Interface:
    """One container interface: its addresses (with prefix) and the routes it brings."""

    ifname: str           # inside the namespace: eth0, eth1...
    host_ifname: str      # the veth peer left on the bridge
    bridge: str
    mac: str
    mtu: int
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]
    gateways: list[Address]  # default routes; empty when another interface holds them


class Links:
    """Netlink operations of one daemon instance."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def ensure_bridge(self, name: str, addresses: list[str], mtu: int) -> None:
        """A bridge ``name`` up, with these gateway addresses (CIDR), made if missing."""
        async with AsyncIPRoute() as ipr:
            found = await ipr.link_lookup(ifname=name)
            if not found:
                await ipr.link("add", ifname=name, kind="bridge")
                found = await ipr.link_lookup(ifname=name)
                log.info("bridge_created", bridge=name)
            index = found[0]
            await ipr.link("set", index=index, ifalias=self.tag, mtu=mtu)
            present = {(a.get("address"), a["prefixlen"])
                       async for a in await ipr.addr("dump", index=index)}
            for text in addresses:
                interface = ipaddress.ip_interface(text)
                key = (str(interface.ip), interface.network.prefixlen)
                if key not in present:
                    await ipr.addr("add", index=index, address=key[0], prefixlen=key[1],
                                   **({"flags": 0x02} if interface.version == 6 else {}))
            await ipr.link("set", index=index, state="up")

    async def remove_link(self, name: str) -> None:
        async with AsyncIPRoute() as ipr:
            found = await ipr.link_lookup(ifname=name)
            if found:
                await _ignore_gone(ipr.link("del", index=found[0]))
                log.info("link_removed", link=name)

    async def tagged_links(self) -> dict[str, str]:
        """Links of this instance: name -> kind (bridge, veth)."""
        out = {}
        async with AsyncIPRoute() as ipr:
            async for link in await ipr.link("dump"):
                if link.get("ifalias") == self.tag:
                    info = link.get("IFLA_LINKINFO")
                    out[link.get("ifname")] = info.get("IFLA_INFO_KIND") if info else ""
        return out

    @staticmethod
    async def host_routes() -> list[Network]:
        """Destinations of the main routing table, the default route left out, as libnetwork
        checks a new subnet against them."""
        routes: list[Network] = []
        async with AsyncIPRoute() as ipr:
            for family in (2, 10):
                async for route in await ipr.route("dump", family=family):
                    if route.get("table") == MAIN_ROUTING_TABLE and route["dst_len"] > 0:
                        routes.append(ipaddress.ip_network(
                            f"{route.get('dst')}/{route['dst_len']}", strict=False))
        return routes

    async def add_interface(self, sandbox: Path, interface: Interface) -> None:
        """A veth pair: one end on the bridge, the other in the sandbox as ``ifname``."""
        async with AsyncIPRoute() as ipr:
            bridge = (await ipr.link_lookup(ifname=interface.bridge))[0]
            fd = os.open(sandbox, os.O_RDONLY)
            try:
                await ipr.link("add", ifname=interface.host_ifname, kind="veth",
                               peer={"ifname": interface.ifname, "net_ns_fd": fd})
            finally:
                os.close(fd)
            host = (await ipr.link_lookup(ifname=interface.host_ifname))[0]
            await ipr.link("set", index=host, master=bridge, mtu=interface.mtu, ifalias=self.tag,
                           state="up")
        async with AsyncIPRoute(netns=str(sandbox)) as ipr:
            index = (await ipr.link_lookup(ifname=interface.ifname))[0]
            await ipr.link("set", index=index, address=interface.mac, mtu=interface.mtu)
            for address in interface.addresses:
                await ipr.addr("add", index=index, address=str(address.ip),
                               prefixlen=address.network.prefixlen,
                               **({"flags": 0x02} if address.version == 6 else {}))  # no DAD
            await ipr.link("set", index=index, state="up")
            for gateway in interface.gateways:
                await ipr.route("replace", dst="default", gateway=str(gateway), oif=index,
                                family=10 if gateway.version == 6 else 2)

    @staticmethod
    async def remove_interface(sandbox: Path, ifname: str) -> None:
        """Delete the sandbox's ``ifname``; its veth peer on the bridge goes with it."""
        async with AsyncIPRoute(netns=str(sandbox)) as ipr:
            found = await ipr.link_lookup(ifname=ifname)
            if found:
                await _ignore_gone(ipr.link("del", index=found[0]))


async def _ignore_gone(request) -> None:
    try:
        await request
    except NetlinkError as exc:
        if exc.code not in (ENOENT, ENODEV):
            raise


async def create_sandbox(path: Path) -> None:
    """A new network namespace bound at ``path``, with its loopback up."""
    await asyncio.to_thread(netns.create, str(path))
    async with AsyncIPRoute(netns=str(path)) as ipr:
        await ipr.link("set", index=1, state="up")


async def remove_sandbox(path: Path) -> None:
    """Unbind the namespace; the kernel frees it, and the veths in it, with its last user."""
    if os.path.lexists(path):
        await asyncio.to_thread(netns.remove, str(path))


def sandbox_exists(path: Path) -> bool:
    """True when ``path`` is a bound namespace, not a stale empty file a crash left."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev  # nsfs is its own device
    except FileNotFoundError:
        return False


MNT_DETACH = 2


def remove_sandbox_dir(directory: Path) -> None:
    """Once empty, the namespace directory goes, with the bind mount of itself that
    pyroute2 (as iproute2) makes to share it."""
    if not directory.is_dir() or any(directory.iterdir()):
        return
    if is_mountpoint(directory):
        ctypes.CDLL(None, use_errno=True).umount2(str(directory).encode(), MNT_DETACH)
    directory.rmdir()
