"""Docker's JSON shapes of networks and endpoints (inspect, list, NetworkSettings)."""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from servin.networks.record import EndpointRecord, NetworkRecord, SandboxRecord
from servin.timefmt import rfc3339_nano


def network(record: NetworkRecord, containers: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {
        "Name": record.name, "Id": record.id, "Created": rfc3339_nano(record.created_ns),
        "Scope": "local", "Driver": record.driver, "EnableIPv6": record.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": record.ipam_options or None,
                 "Config": [dict(c) for c in record.ipam_config]},
        "Internal": record.internal, "Attachable": record.attachable, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
        "Options": dict(record.options), "Labels": dict(record.labels),
    }


def network_container(sandbox: SandboxRecord, endpoint: EndpointRecord) -> dict[str, str]:
    return {"Name": sandbox.name, "EndpointID": endpoint.id, "MacAddress": endpoint.mac,
            "IPv4Address": endpoint.ipv4, "IPv6Address": endpoint.ipv6}


@functools.lru_cache(maxsize=4096)
def _split(cidr: str) -> tuple[str, int]:
    """Address and prefix length of ``a.b.c.d/n``; cached: every list and inspect asks."""
    if not cidr:
        return "", 0
    interface = ipaddress.ip_interface(cidr)
    return str(interface.ip), interface.network.prefixlen


def endpoint_settings(record: NetworkRecord, endpoint: EndpointRecord,
                      gateways: dict[int, str]) -> dict[str, Any]:
    ipv4, prefix4 = _split(endpoint.ipv4)
    ipv6, prefix6 = _split(endpoint.ipv6)
    return {
        "IPAMConfig": dict(endpoint.ipam_config) or None, "Links": list(endpoint.links) or None,
        "Aliases": list(endpoint.aliases) or None, "NetworkID": record.id,
        "EndpointID": endpoint.id, "Gateway": gateways.get(4, ""), "IPAddress": ipv4,
        "IPPrefixLen": prefix4, "IPv6Gateway": gateways.get(6, "") if ipv6 else "",
        "GlobalIPv6Address": ipv6, "GlobalIPv6PrefixLen": prefix6, "MacAddress": endpoint.mac,
        "DriverOpts": None,
    }


def network_settings(sandbox: SandboxRecord | None,
                     networks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """NetworkSettings of inspect; the top-level address fields are the default bridge's."""
    bridge = networks.get("bridge", {})
    return {
        "Bridge": "", "SandboxID": sandbox.container_id if sandbox else "", "HairpinMode": False,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": dict(sandbox.port_view) if sandbox else {},
        "SandboxKey": sandbox.path if sandbox else "",
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": bridge.get("EndpointID", ""), "Gateway": bridge.get("Gateway", ""),
        "GlobalIPv6Address": bridge.get("GlobalIPv6Address", ""),
        "GlobalIPv6PrefixLen": bridge.get("GlobalIPv6PrefixLen", 0),
        "IPAddress": bridge.get("IPAddress", ""), "IPPrefixLen": bridge.get("IPPrefixLen", 0),
        "IPv6Gateway": bridge.get("IPv6Gateway", ""), "MacAddress": bridge.get("MacAddress", ""),
        "Networks": networks,
    }
