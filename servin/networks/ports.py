"""PortBindings and ExposedPorts as Docker spells them, read into bindings to make."""

from __future__ import annotations

from typing import Any

import attrs

from servin.errors import InvalidArgument


@attrs.frozen
class PortBinding:
    proto: str
    container_port: int
    host_ip: str          # "" for the network's host_binding_ipv4
    host_ports: range     # the ports to try in order; range(0, 1) for an ephemeral one

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


def parse_port_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp") or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"invalid port specification: \"{key}\"")
    return int(port), proto


def _host_ports(text: str) -> range:
    if not text:
        return range(0, 1)
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise InvalidArgument(f"invalid hostPort: {text}") from None
    if not 0 <= first <= last < 65536:
        raise InvalidArgument(f"invalid hostPort: {text}")
    return range(first, last + 1)


def bindings(port_bindings: dict[str, Any] | None, exposed_ports: dict[str, Any] | None,
             publish_all: bool) -> tuple[list[PortBinding], list[str]]:
    """The bindings to make, and every port key the container shows (exposed or bound)."""
    out: list[PortBinding] = []
    keys: list[str] = []
    for key, entries in (port_bindings or {}).items():
        port, proto = parse_port_key(key)
        keys.append(f"{port}/{proto}")
        for entry in entries or [{}]:
            out.append(PortBinding(proto, port, (entry or {}).get("HostIp") or "",
                                   _host_ports((entry or {}).get("HostPort") or "")))
    for key in exposed_ports or {}:
        port, proto = parse_port_key(key)
        if f"{port}/{proto}" in keys:
            continue
        keys.append(f"{port}/{proto}")
        if publish_all:
            out.append(PortBinding(proto, port, "", range(0, 1)))
    return out, keys
