"""Bridges, veth pairs and network namespaces, through rtnetlink in threads.

Every link made here carries the daemon instance's tag as its interface alias
(``ip link`` shows it), so a daemon finds what it left after a crash without
ever touching another daemon's links. A namespace is a file bind-mounted under
the daemon's exec root, so it outlives any process and a restarted daemon
finds it again.

Work inside a container's namespace runs in a thread of its own that makes it
(``unshare``) or enters it (``setns``) and ends with the work; host-side work runs
in the default pool, whose threads never leave the host's namespace. Nothing
forks. A refusal of the kernel reaches the caller as a SystemFailure that says
what was being made.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ipaddress
import os
import socket
from pathlib import Path
from typing import Iterator, Sequence

import attrs
import structlog

from servin.errors import SystemFailure
from servin.mounts import is_mountpoint, make_shared, mount_now, unmount_now
from servin.net.ipam import Address, Network
from servin.net.rtnl import Link, Rtnl
from servin.ownthread import run_in_own_thread

log = structlog.get_logger("servin.net")

CLONE_NEWNET = 0x40000000
LOOPBACK_INDEX = 1  # the first link of every new namespace

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.unshare.argtypes = (ctypes.c_int,)


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


def _check(result: int, what: str) -> None:
    if result != 0:
        raise SystemFailure(f"{what}: {os.strerror(ctypes.get_errno())}")


@contextlib.contextmanager
def _failing_as(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise SystemFailure(f"{what}: {exc.strerror or exc}") from exc


def _enter(sandbox: Path) -> None:
    """This thread into the namespace bound at ``sandbox`` (for good: the thread ends)."""
    fd = os.open(sandbox, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"entering the network namespace {sandbox}")
    finally:
        os.close(fd)


class Links:
    """Netlink operations of one daemon instance."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def ensure_bridge(self, name: str, addresses: list[str], mtu: int) -> None:
        """A bridge ``name`` up, with these gateway addresses (CIDR), made if missing."""
        await asyncio.to_thread(self._ensure_bridge, name, addresses, mtu)

    def _ensure_bridge(self, name: str, addresses: list[str], mtu: int) -> None:
        with _failing_as(f"setting up the bridge {name}"), Rtnl() as rtnl:
            index = rtnl.link_index(name)
            if index is None:
                rtnl.add_bridge(name)
                index = rtnl.link_index(name)
                log.info("bridge_created", bridge=name)
            assert index is not None
            rtnl.set_link(index, alias=self.tag, mtu=mtu)
            present = set(rtnl.addresses(index))
            for text in addresses:
                interface = ipaddress.ip_interface(text)
                if interface not in present:
                    rtnl.add_address(index, interface)
            rtnl.set_link(index, up=True)

    async def remove_link(self, name: str) -> None:
        """Delete the link ``name`` (a veth's peer goes with it); none is no error."""
        if await asyncio.to_thread(_delete_link, name):
            log.info("link_removed", link=name)

    async def tagged_links(self) -> dict[str, str]:
        """Links of this instance: name -> kind (bridge, veth)."""
        found = await asyncio.to_thread(_links)
        return {link.name: link.kind for link in found if link.alias == self.tag}

    @staticmethod
    async def host_routes() -> list[Network]:
        """Destinations of the main routing table, the default route left out, as libnetwork
        checks a new subnet against them."""
        return await asyncio.to_thread(_host_routes)

    async def create_sandbox(self, path: Path, interfaces: Sequence[Interface] = ()) -> None:
        """A new network namespace bound at ``path``, its loopback up, with these interfaces,
        all made in one thread. On failure the caller removes the namespace
        (``remove_sandbox``) and the interfaces' ``host_ifname``."""
        await run_in_own_thread(self._create_sandbox, path, interfaces)

    def _create_sandbox(self, path: Path, interfaces: Sequence[Interface]) -> None:
        with _failing_as(f"making the network namespace {path}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            make_shared(path.parent)
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
            with Rtnl() as host:  # opened before the thread leaves the host's namespace
                _check(_libc.unshare(CLONE_NEWNET), "making a network namespace")
                # This thread's namespace: /proc/self would name the main thread's.
                mount_now("none", "/proc/thread-self/ns/net", path, "bind")
                with Rtnl() as inside:
                    inside.set_link(LOOPBACK_INDEX, up=True)
                    for interface in interfaces:
                        self._connect(host, inside, path, interface)

    async def add_interface(self, sandbox: Path, interface: Interface) -> None:
        """One more interface in an existing sandbox. On failure the caller removes
        ``host_ifname``."""
        await run_in_own_thread(self._add_interface, sandbox, interface)

    def _add_interface(self, sandbox: Path, interface: Interface) -> None:
        with _failing_as(f"connecting {sandbox} to {interface.bridge}"), \
                Rtnl() as host:  # opened before the thread leaves the host's namespace
            _enter(sandbox)
            with Rtnl() as inside:
                self._connect(host, inside, sandbox, interface)

    def _connect(self, host: Rtnl, inside: Rtnl, sandbox: Path, interface: Interface) -> None:
        """A veth pair: one end on the bridge, the other in the sandbox as ``ifname``, with
        its addresses and routes; ``host`` and ``inside`` are sockets in either namespace."""
        bridge = host.link_index(interface.bridge)
        if bridge is None:
            raise SystemFailure(f"bridge {interface.bridge} not found")
        fd = os.open(sandbox, os.O_RDONLY | os.O_CLOEXEC)
        try:
            host.add_veth(interface.host_ifname, peer=interface.ifname, peer_netns_fd=fd,
                          peer_mac=interface.mac, mtu=interface.mtu, master=bridge)
        finally:
            os.close(fd)
        index = host.link_index(interface.host_ifname)
        assert index is not None
        host.set_link(index, alias=self.tag)
        index = inside.link_index(interface.ifname)
        assert index is not None
        for address in interface.addresses:
            inside.add_address(index, address)
        inside.set_link(index, up=True)
        for gateway in interface.gateways:
            inside.replace_default_route(gateway, index)


def _delete_link(name: str) -> bool:
    with Rtnl() as rtnl:
        return rtnl.delete_link(name)


def _links() -> list[Link]:
    with Rtnl() as rtnl:
        return rtnl.links()


def _host_routes() -> list[Network]:
    with Rtnl() as rtnl:
        return rtnl.main_table_destinations()


def _remove_sandbox(path: Path) -> None:
    if sandbox_exists(path):
        unmount_now(path)
    path.unlink(missing_ok=True)


async def remove_sandbox(path: Path) -> None:
    """Unbind the namespace; the kernel frees it, and the veths in it, with its last user."""
    if os.path.lexists(path):
        await asyncio.to_thread(_remove_sandbox, path)


def _delete_links(names: Sequence[str]) -> None:
    with Rtnl() as rtnl:
        for name in names:
            rtnl.delete_link(name)


async def delete_links(names: Sequence[str]) -> None:
    """Delete these links (none is no error). Slow: each deletion waits for the kernel's
    RCU grace periods, tens of milliseconds."""
    if names:
        await asyncio.to_thread(_delete_links, names)


def sandbox_exists(path: Path) -> bool:
    """True when ``path`` is a bound namespace, not a stale empty file a crash left."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev  # nsfs is its own device
    except FileNotFoundError:
        return False


def _sockets_in(sandbox: Path, kinds: tuple[int, ...]) -> list[socket.socket]:
    _enter(sandbox)
    sockets = [socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC) for kind in kinds]
    for sock in sockets:
        sock.setblocking(False)
    return sockets


async def sockets_in(sandbox: Path, *kinds: int) -> list[socket.socket]:
    """Non-blocking IPv4 sockets of these kinds, opened in the sandbox's namespace."""
    return await run_in_own_thread(_sockets_in, sandbox, kinds)


def remove_sandbox_dir(directory: Path) -> None:
    """Once empty, the namespace directory goes, with the bind mount of itself that
    ``Links.create_sandbox`` (as iproute2) makes to share it."""
    if not directory.is_dir() or any(directory.iterdir()):
        return
    if is_mountpoint(directory):
        unmount_now(directory)
    directory.rmdir()
