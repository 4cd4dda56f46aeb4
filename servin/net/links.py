"""Bridges, veth pairs and network namespaces, through pyroute2's IPRoute in threads.

Every link made here carries the daemon instance's tag as its interface alias
(``ip link`` shows it), so a daemon finds what it left after a crash without
ever touching another daemon's links. A namespace is a file bind-mounted under
the daemon's exec root, so it outlives any process and a restarted daemon
finds it again.

Work inside a container's namespace runs in a thread of its own that makes it
(``unshare``) or enters it (``setns``) and ends with the work; host-side work runs
in the default pool, whose threads never leave the host's namespace. pyroute2's
synchronous IPRoute, made without ``netns=``, opens its socket in the namespace of
the thread that makes it, so nothing forks. A refusal of the kernel reaches the
caller as a SystemFailure that says what was being made. What sysfs and libc can
read (servin.net.sysfs) is read there: a start whose bridges need no change never
loads pyroute2.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import attrs
import structlog

from servin.errors import SystemFailure
from servin.mounts import is_mountpoint, make_shared, mount_now, unmount_now
from servin.net import sysfs
from servin.net.ipam import Address, Network
from servin.ownthread import run_in_own_thread

if TYPE_CHECKING:
    from pyroute2.iproute.linux import IPRoute

log = structlog.get_logger("servin.net")

CLONE_NEWNET = 0x40000000
LOOPBACK_INDEX = 1  # the first link of every new namespace
MAIN_ROUTING_TABLE = 254
IFA_F_NODAD = 0x02

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


def _loading_pyroute2() -> None:
    """Called before each import of pyroute2. It loads at the first netlink request, in a
    worker thread: the package takes ~150 ms and ~9 MiB, which importing the daemon, and
    a start whose links need no change, need not pay; tests check the latter by this log."""
    if "pyroute2" not in sys.modules:
        log.debug("netlink_library_loading")


def _iproute() -> IPRoute:
    """A netlink socket in this thread's namespace."""
    _loading_pyroute2()
    from pyroute2.iproute.linux import IPRoute
    return IPRoute()


@contextlib.contextmanager
def _failing_as(what: str) -> Iterator[None]:
    _loading_pyroute2()
    from pyroute2.netlink.exceptions import NetlinkError
    try:
        yield
    except NetlinkError as exc:
        raise SystemFailure(f"{what}: {os.strerror(exc.code)}") from exc
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
        if self._bridge_as_wanted(name, addresses, mtu):
            return
        with _failing_as(f"setting up the bridge {name}"), _iproute() as ipr:
            index = _index(ipr, name)
            if index is None:
                ipr.link("add", ifname=name, kind="bridge")
                index = _index(ipr, name)
                log.info("bridge_created", bridge=name)
            assert index is not None
            ipr.link("set", index=index, ifalias=self.tag, mtu=mtu)
            present = set(_addresses(ipr, index))
            for text in addresses:
                interface = ipaddress.ip_interface(text)
                if interface not in present:
                    _add_address(ipr, index, interface)
            ipr.link("set", index=index, state="up")

    def _bridge_as_wanted(self, name: str, addresses: list[str], mtu: int) -> bool:
        """True when sysfs shows the bridge up, tagged, with this MTU and these addresses."""
        shown = sysfs.link(name)
        return (shown is not None and shown.bridge and shown.up and shown.alias == self.tag
                and shown.mtu == mtu
                and {ipaddress.ip_interface(text) for text in addresses}
                <= set(sysfs.addresses(name)))

    async def remove_link(self, name: str) -> None:
        """Delete the link ``name`` (a veth's peer goes with it); none is no error."""
        if await asyncio.to_thread(_delete_links, [name]):
            log.info("link_removed", link=name)

    async def tagged_links(self) -> dict[str, str]:
        """Links of this instance: name -> kind (bridge, veth)."""
        return await asyncio.to_thread(_tagged_links, self.tag)

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
            with _iproute() as host:  # opened before the thread leaves the host's namespace
                _check(_libc.unshare(CLONE_NEWNET), "making a network namespace")
                # This thread's namespace: /proc/self would name the main thread's.
                mount_now("none", "/proc/thread-self/ns/net", path, "bind")
                with _iproute() as inside:
                    inside.link("set", index=LOOPBACK_INDEX, state="up")
                    for interface in interfaces:
                        self._connect(host, inside, path, interface)

    async def add_interface(self, sandbox: Path, interface: Interface) -> None:
        """One more interface in an existing sandbox. On failure the caller removes
        ``host_ifname``."""
        await run_in_own_thread(self._add_interface, sandbox, interface)

    def _add_interface(self, sandbox: Path, interface: Interface) -> None:
        with _failing_as(f"connecting {sandbox} to {interface.bridge}"), \
                _iproute() as host:  # opened before the thread leaves the host's namespace
            _enter(sandbox)
            with _iproute() as inside:
                self._connect(host, inside, sandbox, interface)

    def _connect(self, host: IPRoute, inside: IPRoute, sandbox: Path,
                 interface: Interface) -> None:
        """A veth pair: one end on the bridge, the other in the sandbox as ``ifname``, with
        its addresses and routes; ``host`` and ``inside`` are sockets in either namespace."""
        bridge = _index(host, interface.bridge)
        if bridge is None:
            raise SystemFailure(f"bridge {interface.bridge} not found")
        fd = os.open(sandbox, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # The host end up on the bridge, the peer straight into the sandbox with its
            # MAC, in one request; the kernel refuses to bring up the end it makes first.
            host.link("add", ifname=interface.host_ifname, kind="veth", mtu=interface.mtu,
                      master=bridge, state="up",
                      peer={"ifname": interface.ifname, "net_ns_fd": fd,
                            "mtu": interface.mtu, "address": interface.mac})
        finally:
            os.close(fd)
        host.link("set", ifname=interface.host_ifname, ifalias=self.tag)
        index = _index(inside, interface.ifname)
        assert index is not None
        for address in interface.addresses:
            _add_address(inside, index, address)
        inside.link("set", index=index, state="up")
        for gateway in interface.gateways:
            inside.route("replace", dst="default", gateway=str(gateway), oif=index,
                         family=socket.AF_INET6 if gateway.version == 6 else socket.AF_INET)


def _index(ipr: IPRoute, name: str) -> int | None:
    """The index of the link ``name``; None when there is none."""
    from pyroute2.netlink.exceptions import NetlinkError
    try:
        return ipr.link("get", ifname=name)[0]["index"]
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise


def _addresses(ipr: IPRoute, index: int) -> list[ipaddress.IPv4Interface
                                                 | ipaddress.IPv6Interface]:
    return [ipaddress.ip_interface(f"{msg.get('address')}/{msg['prefixlen']}")
            for msg in ipr.addr("dump", index=index)]


def _add_address(ipr: IPRoute, index: int,
                 address: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
    # An IPv6 address is usable at once: no duplicate address detection to wait for.
    ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen,
             flags=IFA_F_NODAD if address.version == 6 else 0)


def _tagged_links(tag: str) -> dict[str, str]:
    shown = sysfs.links_with_alias(tag)
    if shown is not None:
        return shown
    found = {}
    with _iproute() as ipr:
        for link in ipr.link("dump"):
            if link.get("ifalias") == tag:
                info = link.get("IFLA_LINKINFO")
                found[link.get("ifname")] = (info.get("IFLA_INFO_KIND") if info else None) or ""
    return found


def _host_routes() -> list[Network]:
    routes: list[Network] = []
    with _iproute() as ipr:
        for family in (socket.AF_INET, socket.AF_INET6):
            for route in ipr.route("dump", family=family):
                if route.get("table") == MAIN_ROUTING_TABLE and route["dst_len"] > 0:
                    routes.append(ipaddress.ip_network(f"{route.get('dst')}/{route['dst_len']}",
                                                       strict=False))
    return routes


def _remove_sandbox(path: Path) -> None:
    if sandbox_exists(path):
        unmount_now(path)
    path.unlink(missing_ok=True)


async def remove_sandbox(path: Path) -> None:
    """Unbind the namespace; the kernel frees it, and the veths in it, with its last user."""
    if os.path.lexists(path):
        await asyncio.to_thread(_remove_sandbox, path)


def _delete_links(names: Sequence[str]) -> int:
    """How many of these links there were to delete."""
    _loading_pyroute2()
    from pyroute2.netlink.exceptions import NetlinkError
    deleted = 0
    with _iproute() as ipr:
        for name in names:
            try:
                ipr.link("del", ifname=name)
            except NetlinkError as exc:
                if exc.code not in (errno.ENODEV, errno.ENOENT):
                    raise
            else:
                deleted += 1
    return deleted


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
