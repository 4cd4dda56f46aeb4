"""The engine's records of networks and container sandboxes, persisted as JSON."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import attrs
import cattrs

from servin.store import atomic_write_json, read_json

PREDEFINED = ("bridge", "host", "none")

OPTION_BRIDGE_NAME = "com.docker.network.bridge.name"
OPTION_DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"
OPTION_ICC = "com.docker.network.bridge.enable_icc"
OPTION_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
OPTION_HOST_BINDING = "com.docker.network.bridge.host_binding_ipv4"
OPTION_MTU = "com.docker.network.driver.mtu"
DEFAULT_MTU = 1500


@attrs.define
class NetworkRecord:
    id: str
    name: str
    driver: str               # bridge, host, null
    created_ns: int
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    labels: dict[str, str] = attrs.Factory(dict)
    options: dict[str, str] = attrs.Factory(dict)
    ipam_config: list[dict[str, Any]] = attrs.Factory(list)  # as inspect shows it
    ipam_options: dict[str, str] = attrs.Factory(dict)

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED

    @property
    def is_bridge(self) -> bool:
        return self.driver == "bridge"

    @property
    def default_bridge(self) -> bool:
        return self.options.get(OPTION_DEFAULT_BRIDGE) == "true"

    @property
    def bridge_name(self) -> str:
        return self.options.get(OPTION_BRIDGE_NAME) or f"br-{self.id[:12]}"

    @property
    def mtu(self) -> int:
        return int(self.options.get(OPTION_MTU) or DEFAULT_MTU)

    def _flag(self, option: str) -> bool:
        return self.options.get(option, "true").lower() not in ("false", "0")

    @property
    def icc(self) -> bool:
        return self._flag(OPTION_ICC)

    @property
    def masquerade(self) -> bool:
        return self._flag(OPTION_MASQUERADE)

    @property
    def host_binding(self) -> str:
        return self.options.get(OPTION_HOST_BINDING) or "0.0.0.0"


@attrs.define
class EndpointRecord:
    id: str
    network_id: str
    ifname: str                 # in the sandbox: eth0, eth1...
    host_ifname: str            # its veth peer on the bridge
    mac: str
    ipv4: str = ""              # CIDR, as inspect's IPv4Address
    ipv6: str = ""
    aliases: list[str] = attrs.Factory(list)
    links: list[str] = attrs.Factory(list)     # "container:alias", legacy links
    ipam_config: dict[str, str] = attrs.Factory(dict)  # the static addresses asked for

    def addresses(self) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_interface(text).ip for text in (self.ipv4, self.ipv6) if text]


@attrs.define
class PortMapping:
    proto: str
    container_port: int
    host_ip: str
    host_port: int
    container_ip: str
    bridge: str


@attrs.define
class SandboxRecord:
    container_id: str
    path: str                   # the namespace file
    name: str = ""              # the container's name, for DNS and links
    hostname: str = ""
    endpoints: list[EndpointRecord] = attrs.Factory(list)
    ports: list[PortMapping] = attrs.Factory(list)
    # Ports Docker shows: "80/tcp" -> bindings, or None when only exposed
    port_view: dict[str, list[dict[str, str]] | None] = attrs.Factory(dict)

    def endpoint(self, network_id: str) -> EndpointRecord | None:
        return next((ep for ep in self.endpoints if ep.network_id == network_id), None)


_converter = cattrs.Converter()


def save(path: Path, record: Any) -> None:
    atomic_write_json(path, _converter.unstructure(record))


def load(path: Path, cls: type) -> Any:
    return _converter.structure(read_json(path), cls)
