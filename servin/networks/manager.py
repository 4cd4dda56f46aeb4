"""NetworkManager: networks, container sandboxes, published ports and embedded DNS.

It owns the built-in networks (``bridge`` from --bip, ``host``, ``none``) and
the user-defined bridge networks, one network namespace ("sandbox") per
container with an interface on each of its networks, the ports it publishes
(iptables DNAT plus the userland proxy), and the DNS server at 127.0.0.11 of
every sandbox on a user-defined network.

State on disk, under ``<data-root>/network/``: ``networks/<id>.json``,
``ipam.json`` (the networks' subnets) and ``sandboxes/<container>.json`` (a
container's endpoints with their addresses, which IPAM takes back at start). A
sandbox is saved before its container can use it, and ``restore`` collects
whatever a crash left half-made: namespaces, veths, bridges, rules and
addresses of containers that are gone.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import attrs
import structlog

from servin.config import DaemonConfig
from servin.errors import Conflict, Forbidden, InvalidArgument, NotFound, ServinError
from servin.events import EventBus
from servin.filters import Filters, bool_filter, check_keys, label_matches, labels_match
from servin.filters import timestamp_filter_ns
from servin.net import firewall, links
from servin.net.dns import RESOLV_CONF, SandboxDns, host_resolvers
from servin.net.ipam import NO_POOL_MESSAGE, Address, Ipam, PoolRequest
from servin.net.links import Interface, Links, docker_mac
from servin.net.proxy import Forward, PortProxy
from servin.networks import views
from servin.networks.ports import bindings
from servin.networks.record import (DEFAULT_MTU, OPTION_BRIDGE_NAME, OPTION_DEFAULT_BRIDGE,
                                    OPTION_HOST_BINDING, OPTION_ICC, OPTION_MASQUERADE,
                                    OPTION_MTU, PREDEFINED, EndpointRecord, NetworkRecord,
                                    PortMapping, SandboxRecord, load, save)
from servin.store import remove_stale_temps

log = structlog.get_logger("servin.networks")

DEFAULT_DATA_ROOT = Path("/var/lib/servin")
LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_FILTERS = ("until", "label", "label!")


def instance_id(data_root: Path) -> str:
    """A short, stable name of one daemon instance: its chains and links carry it."""
    return hashlib.sha256(str(data_root.absolute()).encode()).hexdigest()[:8]


def default_bridge_name(data_root: Path) -> str:
    return "servin0" if data_root.absolute() == DEFAULT_DATA_ROOT else f"servin-{instance_id(data_root)}"


@attrs.frozen
class NetworkSpec:
    """A validated NetworkCreate request."""

    name: str
    driver: str = "bridge"
    check_duplicate: bool = True
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    ipam_config: tuple[dict[str, Any], ...] = ()
    ipam_options: dict[str, str] = attrs.field(factory=dict)
    labels: dict[str, str] = attrs.field(factory=dict)
    options: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class PortRequest:
    """What a container publishes: PortBindings, ExposedPorts and PublishAllPorts."""

    bindings: dict[str, Any] | None = None
    exposed: dict[str, Any] | None = None
    publish_all: bool = False


@attrs.frozen
class EndpointRequest:
    """What a container asks of one network: EndpointsConfig's fields."""

    aliases: tuple[str, ...] = ()
    ipv4: str = ""
    ipv6: str = ""
    mac: str = ""
    links: tuple[str, ...] = ()   # "container:alias"


def _new_id() -> str:
    return secrets.token_hex(32)


class NetworkManager:
    def __init__(self, config: DaemonConfig, events: EventBus, *,
                 resolv_conf: Path = RESOLV_CONF) -> None:
        self._root = config.data_root / "network"
        self._sandbox_dir = config.exec_root / "netns"
        self._events = events
        self._bip = config.bip
        self._resolv_conf = resolv_conf
        self.instance = instance_id(config.data_root)
        self.bridge_name = default_bridge_name(config.data_root)
        self._ipam = Ipam(config.default_address_pools or None)
        self._links = Links(f"servin:{self.instance}")
        self._firewall = firewall.Firewall(self.instance)
        self._networks: dict[str, NetworkRecord] = {}
        self._sandboxes: dict[str, SandboxRecord] = {}
        self._dns: dict[str, SandboxDns] = {}
        self._proxies: dict[str, list[PortProxy]] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    # --- persistence ---

    def _network_path(self, network_id: str) -> Path:
        return self._root / "networks" / f"{network_id}.json"

    def _sandbox_path(self, container_id: str) -> Path:
        return self._root / "sandboxes" / f"{container_id}.json"

    async def _save_network(self, record: NetworkRecord) -> None:
        await asyncio.to_thread(save, self._network_path(record.id), record)

    async def _save_sandbox(self, record: SandboxRecord) -> None:
        await asyncio.to_thread(save, self._sandbox_path(record.container_id), record)

    async def _save_ipam(self) -> None:
        await asyncio.to_thread(save, self._root / "ipam.json", self._ipam.to_json())

    def _read_state(self) -> None:
        for sub in ("networks", "sandboxes"):
            (self._root / sub).mkdir(parents=True, exist_ok=True)
            remove_stale_temps(self._root / sub)
        remove_stale_temps(self._root)
        if (self._root / "ipam.json").exists():
            self._ipam.load_json(load(self._root / "ipam.json", dict))
        for path in (self._root / "networks").glob("*.json"):
            record = load(path, NetworkRecord)
            self._networks[record.id] = record
        for path in (self._root / "sandboxes").glob("*.json"):
            record = load(path, SandboxRecord)
            self._sandboxes[record.container_id] = record
            for endpoint in record.endpoints:
                self._ipam.claim(endpoint.network_id, endpoint.id, endpoint.addresses())

    # --- start-up and shutdown ---

    async def load(self) -> None:
        """Read the state, make the built-in networks and every bridge, enable forwarding."""
        await asyncio.to_thread(self._read_state)
        await firewall.enable_forwarding()
        await self._ensure_predefined()
        for record in self._networks.values():
            if record.is_bridge:
                await self._links.ensure_bridge(record.bridge_name, self._gateways(record),
                                                record.mtu)
        await self._apply_firewall()
        log.info("networks_loaded", networks=len(self._networks), instance=self.instance)

    async def _ensure_predefined(self) -> None:
        by_name = {r.name: r for r in self._networks.values()}
        for name, driver in (("host", "host"), ("none", "null")):
            if name not in by_name:
                record = NetworkRecord(_new_id(), name, driver, time.time_ns())
                self._networks[record.id] = record
                await self._save_network(record)
        bridge = by_name.get("bridge")
        wanted = PoolRequest.parse({"Subnet": self._bip, "Gateway": self._bip.split("/")[0]}
                                   if self._bip else {})
        if bridge is not None and self._bip and [c.get("Subnet") for c in bridge.ipam_config] \
                != [str(wanted.subnet)]:
            # --bip changed: the default bridge is made again on the new subnet.
            await self._links.remove_link(bridge.bridge_name)
            self._ipam.remove_network(bridge.id)
            bridge.ipam_config = self._add_pools(bridge, [wanted], 4, await Links.host_routes())
            await self._save_ipam()
            await self._save_network(bridge)
        if bridge is None:
            bridge = NetworkRecord(_new_id(), "bridge", "bridge", time.time_ns(), options={
                OPTION_DEFAULT_BRIDGE: "true", OPTION_ICC: "true", OPTION_MASQUERADE: "true",
                OPTION_HOST_BINDING: "0.0.0.0", OPTION_BRIDGE_NAME: self.bridge_name,
                OPTION_MTU: str(DEFAULT_MTU)})
            bridge.ipam_config = self._add_pools(bridge, [wanted], 4, await Links.host_routes())
            self._networks[bridge.id] = bridge
            await self._save_ipam()
            await self._save_network(bridge)

    def _add_pools(self, record: NetworkRecord, requests: list[PoolRequest], version: int,
                   routes: list) -> list[dict[str, Any]]:
        shown = []
        for pool, request in zip(self._ipam.add_pools(record.id, requests, version=version,
                                                      host_routes=routes), requests or [None]):
            entry: dict[str, Any] = {"Subnet": str(pool.subnet)}
            # As dockerd shows it: the gateway when asked for or when the whole pool was
            # the daemon's choice; a subnet given alone stays alone.
            if request is None or request.subnet is None or request.gateway is not None:
                entry["Gateway"] = str(pool.gateway)
            if request is not None and request.ip_range is not None:
                entry["IPRange"] = str(request.ip_range)
            if pool.aux_addresses:
                entry["AuxiliaryAddresses"] = {k: str(v) for k, v in pool.aux_addresses.items()}
            shown.append(entry)
        return shown

    async def restore(self, live_container_ids: Iterable[str]) -> None:
        """At start: keep the sandboxes of live containers (with their DNS and proxies),
        remove everything else this instance left: namespaces, veths, bridges, rules,
        addresses."""
        live = set(live_container_ids)
        async with self._lock:
            for record in list(self._sandboxes.values()):
                if record.container_id in live and links.sandbox_exists(Path(record.path)):
                    await self._start_services(record)
                else:
                    await self._drop_sandbox(record)
            await self._settle()
            veths = {ep.host_ifname for sb in self._sandboxes.values() for ep in sb.endpoints}
            bridges = {r.bridge_name for r in self._networks.values() if r.is_bridge}
            for name, kind in (await self._links.tagged_links()).items():
                if name not in (veths if kind == "veth" else bridges):
                    await self._links.remove_link(name)
            paths = {sb.path for sb in self._sandboxes.values()}
            if self._sandbox_dir.is_dir():
                for entry in self._sandbox_dir.iterdir():
                    if str(entry) not in paths:
                        await links.remove_sandbox(entry)
            await self._apply_firewall()

    async def _start_services(self, sandbox: SandboxRecord) -> None:
        if self._uses_embedded_dns(sandbox) and sandbox.container_id not in self._dns:
            dns = SandboxDns(Path(sandbox.path), _SandboxNames(self, sandbox.container_id),
                             host_resolvers(self._resolv_conf))
            await dns.start()
            self._dns[sandbox.container_id] = dns
        if sandbox.ports and sandbox.container_id not in self._proxies:
            proxies = []
            try:
                for port in sandbox.ports:
                    proxy = PortProxy(Forward(port.proto, port.host_ip, port.host_port,
                                              port.container_ip, port.container_port))
                    await proxy.start()
                    proxies.append(proxy)
            finally:
                self._proxies[sandbox.container_id] = proxies

    async def close(self) -> None:
        """At shutdown: stop the in-process services; when no sandbox is left, take down
        the bridges, rules and the namespace directory too (the next start makes them)."""
        async with self._lock:
            for container_id in list(self._sandboxes):
                await self._stop_services(container_id)
            await self._settle()
            if self._sandboxes:
                return  # live containers keep their connectivity
            for record in self._networks.values():
                if record.is_bridge:
                    await self._links.remove_link(record.bridge_name)
            await self._firewall.remove()
            await asyncio.to_thread(links.remove_sandbox_dir, self._sandbox_dir)

    async def _stop_services(self, container_id: str) -> None:
        dns = self._dns.pop(container_id, None)
        if dns is not None:
            await dns.close()
        for proxy in self._proxies.pop(container_id, []):
            await proxy.close()

    # --- networks ---

    def get(self, ref: str) -> NetworkRecord:
        if ref in self._networks:
            return self._networks[ref]
        for record in self._networks.values():
            if record.name == ref:
                return record
        matches = [r for r in self._networks.values() if ref and r.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NotFound(f"network {ref} is ambiguous ({len(matches)} matches found based "
                           f"on ID prefix)")
        raise NotFound(f"network {ref} not found")

    def _endpoints_of(self, network_id: str) -> list[tuple[SandboxRecord, EndpointRecord]]:
        return [(sb, ep) for sb in self._sandboxes.values() for ep in sb.endpoints
                if ep.network_id == network_id]

    def inspect(self, ref: str) -> dict[str, Any]:
        record = self.get(ref)
        containers = {sb.container_id: views.network_container(sb, ep)
                      for sb, ep in self._endpoints_of(record.id)}
        return views.network(record, containers)

    def list(self, filters: Filters) -> list[dict[str, Any]]:
        check_keys(filters, LIST_FILTERS)
        for value in filters.get("type", []):
            if value not in ("custom", "builtin"):
                raise InvalidArgument(f"invalid filter: 'type'='{value}'")
        dangling = bool_filter(filters, "dangling")
        out = []
        for record in sorted(self._networks.values(), key=lambda r: r.created_ns):
            if not self._matches(record, filters, dangling):
                continue
            out.append(views.network(record, {}))
        return out

    def _matches(self, record: NetworkRecord, filters: Filters, dangling: bool | None) -> bool:
        def any_match(key: str, value: str) -> bool:
            wanted = filters.get(key)
            return not wanted or any(_search(term, value) for term in wanted)
        if not (any_match("name", record.name) and any_match("id", record.id)):
            return False
        if filters.get("driver") and record.driver not in filters["driver"]:
            return False
        if filters.get("scope") and "local" not in filters["scope"]:
            return False
        if filters.get("type") and ("builtin" if record.predefined else "custom") \
                not in filters["type"]:
            return False
        if not all(label_matches(record.labels, w) for w in filters.get("label", [])):
            return False
        if dangling is not None:
            unused = not record.predefined and not self._endpoints_of(record.id)
            if unused != dangling:
                return False
        return True

    async def create(self, spec: NetworkSpec) -> str:
        async with self._lock:
            return await self._create(spec)

    async def _create(self, spec: NetworkSpec) -> str:
        if spec.driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{spec.driver}" network is allowed')
        if spec.driver != "bridge":
            raise NotFound(f'plugin "{spec.driver}" not found')
        exists = any(r.name == spec.name for r in self._networks.values())
        if exists and (spec.check_duplicate or spec.name in PREDEFINED):
            if spec.name in PREDEFINED and not spec.check_duplicate:
                raise Forbidden(f"operation is not permitted on predefined {spec.name} network ")
            raise Conflict(f"network with name {spec.name} already exists")
        record = NetworkRecord(_new_id(), spec.name, "bridge", time.time_ns(),
                               internal=spec.internal, attachable=spec.attachable,
                               enable_ipv6=spec.enable_ipv6, labels=dict(spec.labels),
                               options=dict(spec.options), ipam_options=dict(spec.ipam_options))
        if any(r.is_bridge and r.bridge_name == record.bridge_name for r in self._networks.values()):
            raise Conflict(f"bridge name {record.bridge_name} is in use by another network")
        if len(record.bridge_name) > 15:
            raise InvalidArgument(f"bridge name {record.bridge_name} is longer than 15 characters")
        requests = [PoolRequest.parse(c) for c in spec.ipam_config]
        v4 = [r for r in requests if r.subnet is None or r.subnet.version == 4]
        v6 = [r for r in requests if r.subnet is not None and r.subnet.version == 6]
        if spec.enable_ipv6 and not v6:
            raise Forbidden(NO_POOL_MESSAGE.format(version=6))
        routes = await Links.host_routes()
        try:
            record.ipam_config = self._add_pools(record, v4, 4, routes)
            if spec.enable_ipv6:
                record.ipam_config += self._add_pools(record, v6, 6, routes)
            self._networks[record.id] = record
            await self._save_ipam()
            await self._save_network(record)
            await self._links.ensure_bridge(record.bridge_name, self._gateways(record), record.mtu)
            await self._apply_firewall()
        except BaseException:
            await self._forget_network(record)
            raise
        self._events.publish("network", "create", record.id, name=record.name, type=record.driver)
        log.info("network_created", id=record.id, name=record.name,
                 subnets=[c["Subnet"] for c in record.ipam_config])
        return record.id

    def _gateways(self, record: NetworkRecord) -> list[str]:
        return [f"{pool.gateway}/{pool.subnet.prefixlen}"
                for pool in self._ipam.network_pools(record.id)]

    async def _forget_network(self, record: NetworkRecord) -> None:
        self._networks.pop(record.id, None)
        self._ipam.remove_network(record.id)
        await self._save_ipam()
        await asyncio.to_thread(self._network_path(record.id).unlink, missing_ok=True)
        await self._links.remove_link(record.bridge_name)
        await self._apply_firewall()

    async def remove(self, ref: str) -> None:
        async with self._lock:
            record = self.get(ref)
            if record.predefined:
                raise Forbidden(f"{record.name} is a pre-defined network and cannot be removed")
            if self._endpoints_of(record.id):
                raise Forbidden(f"error while removing network: network {record.name} id "
                                f"{record.id} has active endpoints")
            await self._forget_network(record)
        self._events.publish("network", "destroy", record.id, name=record.name, type=record.driver)

    async def prune(self, filters: Filters) -> list[str]:
        check_keys(filters, PRUNE_FILTERS)
        until = [timestamp_filter_ns(value) for value in filters.get("until", [])]
        deleted = []
        for record in list(self._networks.values()):
            if record.predefined or self._endpoints_of(record.id):
                continue
            if any(record.created_ns >= moment for moment in until):
                continue
            if not labels_match(record.labels, filters):
                continue
            try:
                await self.remove(record.id)
            except (Forbidden, NotFound):
                continue  # connected or removed meanwhile
            deleted.append(record.name)
        self._events.publish("network", "prune", "")
        return deleted

    async def _apply_firewall(self) -> None:
        bridges = []
        for record in self._networks.values():
            if record.is_bridge:
                subnets = tuple(str(p.subnet) for p in self._ipam.network_pools(record.id, 4))
                bridges.append(firewall.BridgeRules(record.bridge_name, subnets, record.internal,
                                                    record.icc, record.masquerade))
        ports = [firewall.PortRule(p.bridge, p.proto, p.host_ip, p.host_port, p.container_ip,
                                   p.container_port)
                 for sb in self._sandboxes.values() for p in sb.ports]
        await self._firewall.apply(bridges, ports)

    # --- sandboxes: the container-facing interface ---

    def sandbox_key(self, container_id: str) -> Path:
        return self._sandbox_dir / container_id[:12]

    async def create_sandbox(self, container_id: str, *, name: str, hostname: str,
                             endpoints: Sequence[tuple[str, EndpointRequest]] = (),
                             ports: PortRequest = PortRequest()) -> Path:
        """The container's network namespace (loopback up), bound under the exec root, with
        an interface on each network of ``endpoints`` and the ports published.

        The record is saved once, when all is made, before the container runs: a crash
        before that leaves a namespace and veths that ``restore`` collects, and addresses
        no saved record holds, which no container uses either. The namespace and the veths
        are made off the lock, so that containers starting together make theirs at once.
        """
        path = self.sandbox_key(container_id)
        async with self._lock:
            if container_id in self._sandboxes:
                raise Conflict(f"the network sandbox of container {container_id} exists already")
            sandbox = SandboxRecord(container_id, str(path), name, hostname)
            self._sandboxes[container_id] = sandbox
        try:
            async with self._lock:
                interfaces = [self._add_endpoint(sandbox, self.get(ref), request)[1]
                              for ref, request in endpoints]
            await self._links.create_sandbox(path, interfaces)
            async with self._lock:
                await self._start_services(sandbox)
                await self._publish(sandbox, ports)
                await self._save_sandbox(sandbox)
        except BaseException:
            async with self._lock:
                await self._release_locked(sandbox, events=False)
            raise
        for endpoint in sandbox.endpoints:
            self._connected(sandbox, endpoint)
        return path

    def _sandbox(self, container_id: str) -> SandboxRecord:
        try:
            return self._sandboxes[container_id]
        except KeyError:
            raise Conflict(f"container {container_id} has no network sandbox: "
                           f"it is not running") from None

    async def connect(self, container_id: str, network_ref: str,
                      request: EndpointRequest = EndpointRequest()) -> dict[str, Any]:
        """An interface on the network in the sandbox of a running container; returns its
        EndpointSettings (NetworkSettings.Networks[name])."""
        async with self._lock:
            sandbox = self._sandbox(container_id)
            record = self.get(network_ref)
            endpoint, interface = self._add_endpoint(sandbox, record, request)
            try:
                # Saved before the container can use the address: no one else gets it.
                await self._save_sandbox(sandbox)
                await self._links.add_interface(Path(sandbox.path), interface)
                await self._start_services(sandbox)
            except BaseException:
                await self._drop_endpoint(sandbox, endpoint)
                raise
        self._connected(sandbox, endpoint)
        return views.endpoint_settings(record, endpoint, self._gateway_texts(record))

    def _add_endpoint(self, sandbox: SandboxRecord, record: NetworkRecord,
                      request: EndpointRequest) -> tuple[EndpointRecord, Interface]:
        """A new endpoint in the sandbox's record, with its addresses (in memory)."""
        self._check_connect(sandbox, record, request)
        endpoint = EndpointRecord(_new_id(), record.id, _free_ifname(sandbox), "",
                                  "", aliases=list(request.aliases),
                                  links=list(request.links),
                                  ipam_config={k: v for k, v in (("IPv4Address", request.ipv4),
                                                                 ("IPv6Address", request.ipv6))
                                               if v})
        endpoint.host_ifname = "veth" + endpoint.id[:7]
        if not record.default_bridge:
            endpoint.aliases.append(sandbox.container_id[:12])
        try:
            interface = self._allocate(sandbox, record, endpoint, request)
        except BaseException:
            self._ipam.release_owner(endpoint.id)  # an IPv4 address, when IPv6 had none
            raise
        sandbox.endpoints.append(endpoint)
        return endpoint, interface

    def _connected(self, sandbox: SandboxRecord, endpoint: EndpointRecord) -> None:
        record = self._networks[endpoint.network_id]
        self._events.publish("network", "connect", record.id, container=sandbox.container_id,
                             name=record.name, type=record.driver)
        log.debug("endpoint_connected", container=sandbox.container_id[:12], network=record.name,
                  ipv4=endpoint.ipv4)

    def _check_connect(self, sandbox: SandboxRecord, record: NetworkRecord,
                       request: EndpointRequest) -> None:
        if not record.is_bridge:
            raise Forbidden(f"container cannot be disconnected from host network or connected "
                            f"to {record.name} network")
        if sandbox.endpoint(record.id) is not None:
            raise Forbidden(f"endpoint with name {sandbox.name} already exists in network "
                            f"{record.name}")
        if record.default_bridge:
            if request.ipv4 or request.ipv6:
                raise InvalidArgument("user specified IP address is supported on user defined "
                                      "networks only")
            if request.aliases:
                raise InvalidArgument("network-scoped alias is supported only for containers "
                                      "in user defined networks")

    def _allocate(self, sandbox: SandboxRecord, record: NetworkRecord, endpoint: EndpointRecord,
                  request: EndpointRequest) -> Interface:
        addresses = []
        for version, asked in ((4, request.ipv4), (6, request.ipv6)):
            if version == 6 and not record.enable_ipv6:
                continue
            static = ipaddress.ip_address(asked) if asked else None
            address, pool = self._ipam.allocate(record.id, endpoint.id, version, record.name,
                                                 static)
            interface = ipaddress.ip_interface(f"{address}/{pool.subnet.prefixlen}")
            addresses.append(interface)
            if version == 4:
                endpoint.ipv4 = str(interface)
            else:
                endpoint.ipv6 = str(interface)
        ipv4 = next((a.ip for a in addresses if a.version == 4), None)
        endpoint.mac = request.mac or (docker_mac(ipv4) if ipv4 else _random_mac())
        has_gateway = any(not self._networks[ep.network_id].internal
                          for ep in sandbox.endpoints if ep.network_id in self._networks)
        gateways = ([] if record.internal or has_gateway
                    else [pool.gateway for pool in self._ipam.network_pools(record.id)])
        return Interface(endpoint.ifname, endpoint.host_ifname, record.bridge_name, endpoint.mac,
                         record.mtu, addresses, gateways)

    def _gateway_texts(self, record: NetworkRecord) -> dict[int, str]:
        return {pool.version: str(pool.gateway) for pool in self._ipam.network_pools(record.id)}

    async def _drop_endpoint(self, sandbox: SandboxRecord, endpoint: EndpointRecord) -> None:
        """The endpoint of a running container gone: its veth, then its place in the saved
        record, then (the container no longer using it) its addresses."""
        await self._links.remove_link(endpoint.host_ifname)
        if endpoint in sandbox.endpoints:
            sandbox.endpoints.remove(endpoint)
        await self._save_sandbox(sandbox)
        self._ipam.release_owner(endpoint.id)

    async def disconnect(self, container_id: str, network_ref: str, *, force: bool = False) -> None:
        async with self._lock:
            record = self.get(network_ref)
            sandbox = self._sandboxes.get(container_id)
            endpoint = sandbox.endpoint(record.id) if sandbox else None
            if sandbox is None or endpoint is None:
                if force:
                    return
                raise Forbidden(f"container {container_id} is not connected to network "
                                f"{record.name}")
            await self._unpublish_endpoint(sandbox, endpoint)
            await self._drop_endpoint(sandbox, endpoint)
            if not self._uses_embedded_dns(sandbox):
                dns = self._dns.pop(container_id, None)
                if dns is not None:
                    await dns.close()
        self._events.publish("network", "disconnect", record.id, container=container_id,
                             name=record.name, type=record.driver)

    async def _unpublish_endpoint(self, sandbox: SandboxRecord, endpoint: EndpointRecord) -> None:
        mine = [p for p in sandbox.ports if p.container_ip == endpoint.ipv4.split("/")[0]]
        if not mine:
            return
        for proxy in self._proxies.pop(sandbox.container_id, []):
            await proxy.close()
        sandbox.ports = [p for p in sandbox.ports if p not in mine]
        await self._save_sandbox(sandbox)
        await self._start_services(sandbox)
        await self._apply_firewall()

    async def _publish(self, sandbox: SandboxRecord, ports: PortRequest) -> None:
        """Publish the ports on the container's first reachable bridge network (the record
        gets them; the caller saves it)."""
        wanted, keys = bindings(ports.bindings, ports.exposed, ports.publish_all)
        target = next(((ep, self._networks[ep.network_id]) for ep in sandbox.endpoints
                       if not self._networks[ep.network_id].internal and ep.ipv4), None)
        view: dict[str, list[dict[str, str]] | None] = {key: None for key in keys}
        if target is None:
            sandbox.port_view = view if sandbox.endpoints else {}
            return
        endpoint, record = target
        container_ip = endpoint.ipv4.split("/")[0]
        proxies = self._proxies.setdefault(sandbox.container_id, [])
        for binding in wanted:
            host_ip = binding.host_ip or record.host_binding
            if host_ip == "0.0.0.0":
                host_ip = ""
            proxy = await _bind_first(binding.proto, host_ip, binding.host_ports,
                                      container_ip, binding.container_port)
            proxies.append(proxy)
            sandbox.ports.append(PortMapping(binding.proto, binding.container_port, host_ip,
                                             proxy.port, container_ip, record.bridge_name))
            view[binding.key] = (view[binding.key] or []) + [
                {"HostIp": host_ip or "0.0.0.0", "HostPort": str(proxy.port)}]
        sandbox.port_view = view
        if wanted:  # no DNAT rule changes without a published port
            await self._apply_firewall()

    async def _retire(self, endpoints: list[EndpointRecord]) -> None:
        """Delete the veths of a dropped sandbox, then free their addresses. Deleting a
        link waits for the kernel (~20 ms): no container's exit waits for it. It is done
        even though the namespace is gone, as a container that joined the namespace
        keeps it, and its interfaces, alive."""
        try:
            await links.delete_links([endpoint.host_ifname for endpoint in endpoints])
        except Exception as exc:  # the namespace's end takes them down anyway
            log.warning("veth_removal_failed", error=str(exc))
        for endpoint in endpoints:
            self._ipam.release_owner(endpoint.id)

    async def _settle(self) -> None:
        """Wait until the veths being deleted are gone."""
        while self._retiring:
            await asyncio.wait(set(self._retiring))

    async def release(self, container_id: str) -> None:
        """Everything of the container's sandbox gone: endpoints, addresses, ports, DNS,
        the namespace. A container without a sandbox is no error."""
        async with self._lock:
            record = self._sandboxes.get(container_id)
            if record is not None:
                await self._release_locked(record)

    async def _release_locked(self, sandbox: SandboxRecord, *, events: bool = True) -> None:
        await self._drop_sandbox(sandbox, events=events)
        if sandbox.ports:
            await self._apply_firewall()

    async def _drop_sandbox(self, sandbox: SandboxRecord, *, events: bool = True) -> None:
        """The namespace, then the record; the veths after, in the background, and their
        addresses with them. A crash on the way leaves the record or tagged veths, which
        restore() removes before any address is given out again."""
        await self._stop_services(sandbox.container_id)
        await links.remove_sandbox(Path(sandbox.path))
        await asyncio.to_thread(self._sandbox_path(sandbox.container_id).unlink, missing_ok=True)
        self._sandboxes.pop(sandbox.container_id, None)
        if sandbox.endpoints:
            task = asyncio.create_task(self._retire(list(sandbox.endpoints)))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        for endpoint in sandbox.endpoints:
            network = self._networks.get(endpoint.network_id)
            if events and network is not None:
                self._events.publish("network", "disconnect", network.id,
                                     container=sandbox.container_id, name=network.name,
                                     type=network.driver)

    # --- what the containers manager shows and writes ---

    def settings(self, container_id: str) -> dict[str, Any]:
        """NetworkSettings of a container with a sandbox (a running one)."""
        sandbox = self._sandboxes.get(container_id)
        networks = {}
        for endpoint in sandbox.endpoints if sandbox else []:
            record = self._networks.get(endpoint.network_id)
            if record is not None:
                networks[record.name] = views.endpoint_settings(record, endpoint,
                                                                self._gateway_texts(record))
        return views.network_settings(sandbox, networks)

    def _uses_embedded_dns(self, sandbox: SandboxRecord) -> bool:
        return any(not self._networks[ep.network_id].default_bridge
                   for ep in sandbox.endpoints if ep.network_id in self._networks)

    def uses_embedded_dns(self, container_id: str) -> bool:
        """True when the container's resolv.conf should name 127.0.0.11."""
        sandbox = self._sandboxes.get(container_id)
        return sandbox is not None and self._uses_embedded_dns(sandbox)

    def hosts_entries(self, container_id: str, domainname: str = "") -> list[tuple[str, str]]:
        """The /etc/hosts lines Docker adds: legacy links on the default bridge, then the
        container's own addresses with its hostname (``host.domain host`` with a
        domain name)."""
        sandbox = self._sandboxes.get(container_id)
        if sandbox is None:
            return []
        entries = []
        for endpoint in sandbox.endpoints:
            record = self._networks.get(endpoint.network_id)
            if record is None or not record.default_bridge:
                continue
            for link in endpoint.links:
                target, _, alias = link.partition(":")
                for other, other_ep in self._endpoints_of(record.id):
                    if target in (other.name, other.container_id) and other_ep.ipv4:
                        names = " ".join(dict.fromkeys(
                            [alias or other.name, other.hostname, other.name]))
                        entries.append((other_ep.ipv4.split("/")[0], names))
        own = (f"{sandbox.hostname}.{domainname} {sandbox.hostname}" if domainname
               else sandbox.hostname)
        for endpoint in sandbox.endpoints:
            for address in endpoint.addresses():
                entries.append((str(address), own))
        return entries

    def names_on_shared_networks(self, container_id: str, name: str) -> list[Address] | None:
        """What the embedded DNS answers for ``name`` asked from ``container_id``."""
        sandbox = self._sandboxes.get(container_id)
        if sandbox is None:
            return None
        name = name.lower()
        found: list[Address] = []
        matched = False
        for endpoint in sandbox.endpoints:
            record = self._networks.get(endpoint.network_id)
            if record is None or record.default_bridge:
                continue
            linked = {alias.lower(): target for target, _, alias in
                      (link.partition(":") for link in endpoint.links)}
            for other, other_ep in self._endpoints_of(record.id):
                names = {other.name, other.container_id[:12], f"{other.name}.{record.name}",
                         *other_ep.aliases, *[a for a, t in linked.items()
                                              if t in (other.name, other.container_id)]}
                if name in {n.lower() for n in names}:
                    matched = True
                    found += [a for a in other_ep.addresses() if a not in found]
        return found if matched else None

    def name_of_address(self, container_id: str, address: Address) -> str | None:
        sandbox = self._sandboxes.get(container_id)
        for endpoint in sandbox.endpoints if sandbox else []:
            record = self._networks.get(endpoint.network_id)
            if record is None or record.default_bridge:
                continue
            for other, other_ep in self._endpoints_of(record.id):
                if address in other_ep.addresses():
                    return f"{other.name}.{record.name}"
        return None


class _SandboxNames:
    """The names one container resolves through its embedded DNS."""

    def __init__(self, manager: NetworkManager, container_id: str) -> None:
        self._manager = manager
        self._container_id = container_id

    def lookup(self, name: str) -> list[Address] | None:
        return self._manager.names_on_shared_networks(self._container_id, name)

    def reverse(self, address: Address) -> str | None:
        return self._manager.name_of_address(self._container_id, address)


def _free_ifname(sandbox: SandboxRecord) -> str:
    used = {ep.ifname for ep in sandbox.endpoints}
    return next(f"eth{n}" for n in range(len(used) + 1) if f"eth{n}" not in used)


def _random_mac() -> str:
    return "02:42:" + ":".join(f"{b:02x}" for b in os.urandom(4))


def _search(term: str, value: str) -> bool:
    # dockerd's name and id filters are regular expressions searched in the value.
    try:
        return re.search(term, value) is not None
    except re.error:
        return term in value


async def _bind_first(proto: str, host_ip: str, ports: range, container_ip: str,
                      container_port: int) -> PortProxy:
    last: ServinError | None = None
    for port in ports:
        proxy = PortProxy(Forward(proto, host_ip, port, container_ip, container_port))
        try:
            await proxy.start()
            return proxy
        except ServinError as exc:
            last = exc
    assert last is not None
    raise last
