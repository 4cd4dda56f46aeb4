"""What the kernel shows of links without a netlink library: sysfs, ethtool and getifaddrs.

A daemon start whose bridges are already as wanted reads them here and never loads
pyroute2 (~150 ms, ~9 MiB). /sys/class/net shows the links of the namespace sysfs
was mounted in, not necessarily the calling thread's: every name read there is
checked against the thread's own namespace (``if_nametoindex``), and where the two
disagree these functions answer None, "sysfs cannot say", and the caller asks netlink.
Blocking reads: call them in a worker thread.
"""

from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

import attrs

SYS_NET = Path("/sys/class/net")
IFF_UP = 0x1
SIOCETHTOOL = 0x8946
ETHTOOL_GDRVINFO = 0x3
DRVINFO_SIZE = 196  # struct ethtool_drvinfo
DRIVER_FIELD = slice(4, 36)  # char driver[32], after the u32 command
IFNAMSIZ = 16
IFREQ_SIZE = 40  # struct ifreq on 64-bit: the name, then a union of 24 bytes


@attrs.frozen
class LinkView:
    """One link as sysfs shows it."""

    name: str
    alias: str   # ifalias, "" when none
    mtu: int
    up: bool
    bridge: bool


class _Sockaddr(ctypes.Structure):
    _fields_ = [("family", ctypes.c_ushort)]


class _Ifaddrs(ctypes.Structure):
    pass


_Ifaddrs._fields_ = [("next", ctypes.POINTER(_Ifaddrs)), ("name", ctypes.c_char_p),
                     ("flags", ctypes.c_uint), ("addr", ctypes.POINTER(_Sockaddr)),
                     ("netmask", ctypes.POINTER(_Sockaddr)), ("ifu", ctypes.c_void_p),
                     ("data", ctypes.c_void_p)]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.getifaddrs.argtypes = (ctypes.POINTER(ctypes.POINTER(_Ifaddrs)),)
_libc.freeifaddrs.argtypes = (ctypes.POINTER(_Ifaddrs),)

# family -> (offset of the address in its sockaddr, its length)
_ADDRESS_AT = {socket.AF_INET: (4, 4), socket.AF_INET6: (8, 16)}


def prefix_length(netmask: bytes) -> int:
    """The prefix length of a contiguous netmask (255.255.255.0 -> 24)."""
    return bin(int.from_bytes(netmask, "big")).count("1")


def _read(name: str, attribute: str) -> str:
    return (SYS_NET / name / attribute).read_text().strip()


def _shown_here(name: str) -> bool:
    """True when sysfs's link ``name`` is the one of this thread's namespace."""
    try:
        return int(_read(name, "ifindex")) == socket.if_nametoindex(name)
    except OSError:  # gone, or only in one of the two namespaces
        return False


def link(name: str) -> LinkView | None:
    """The link ``name``; None when there is none or sysfs shows another namespace."""
    if not _shown_here(name):
        return None
    try:
        return LinkView(name=name, alias=_read(name, "ifalias"), mtu=int(_read(name, "mtu")),
                        up=bool(int(_read(name, "flags"), 16) & IFF_UP),
                        bridge=(SYS_NET / name / "bridge").is_dir())
    except FileNotFoundError:  # deleted meanwhile
        return None


def driver(name: str) -> str:
    """The link's driver as ethtool names it (bridge, veth, dummy); "" when it has none."""
    info = ctypes.create_string_buffer(struct.pack("I", ETHTOOL_GDRVINFO), DRVINFO_SIZE)
    # struct ifreq: the name, then (in its union) a pointer to the request.
    request = struct.pack(f"{IFNAMSIZ}sP", name.encode(), ctypes.addressof(info))
    request += bytes(IFREQ_SIZE - len(request))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            fcntl.ioctl(sock, SIOCETHTOOL, request)
        except OSError:  # EOPNOTSUPP: a link without driver information (lo)
            return ""
    return info.raw[DRIVER_FIELD].split(b"\0", 1)[0].decode()


def links_with_alias(alias: str) -> dict[str, str] | None:
    """Links of this namespace whose alias is ``alias``: name -> driver (which for
    bridges and veths is netlink's kind). None when sysfs shows another namespace."""
    found = {}
    for _, name in socket.if_nameindex():
        if not _shown_here(name):
            return None
        try:
            if _read(name, "ifalias") == alias:
                found[name] = driver(name)
        except FileNotFoundError:  # deleted meanwhile
            continue
    return found


def addresses(name: str) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    """The IPv4 and IPv6 addresses of link ``name`` in this thread's namespace, with their
    prefix length (libc's getifaddrs)."""
    head = ctypes.POINTER(_Ifaddrs)()
    if _libc.getifaddrs(ctypes.byref(head)) != 0:
        raise OSError(ctypes.get_errno(), "getifaddrs")
    found: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
    try:
        entry = head
        while entry:
            item = entry.contents
            if item.name.decode() == name and item.addr and item.netmask \
                    and item.addr.contents.family in _ADDRESS_AT:
                offset, size = _ADDRESS_AT[item.addr.contents.family]
                address = ctypes.string_at(ctypes.addressof(item.addr.contents) + offset, size)
                mask = ctypes.string_at(ctypes.addressof(item.netmask.contents) + offset, size)
                found.append(ipaddress.ip_interface((address, prefix_length(mask))))
            entry = item.next
    finally:
        _libc.freeifaddrs(head)
    return found
