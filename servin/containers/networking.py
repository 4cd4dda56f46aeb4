"""A container's networks: what create records, what start and exit do with them.

The glue between a container's record (NetworkMode, EndpointsConfig, ports) and the
networks manager that owns sandboxes, addresses, ports and DNS. NetworkMode
``default`` is the default bridge, called ``bridge``, as dockerd shows it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

from servin.containers.etcfiles import etc_file_options, write_etc_files
from servin.containers.record import Container
from servin.containers.views import ContainerFiles
from servin.errors import Conflict, Forbidden, InvalidArgument, NotFound
from servin.networks.manager import EndpointRequest, NetworkManager, PortRequest
from servin.oci.spec import NamespaceMode

DEFAULT_NETWORK = "bridge"


def network_name(mode: str) -> str:
    return DEFAULT_NETWORK if mode in ("default", "") else mode


def shared_container(mode: str) -> str | None:
    return mode.split(":", 1)[1] if mode.startswith("container:") else None


def _endpoint_request(settings: dict[str, Any], *, mac: str = "") -> EndpointRequest:
    ipam = settings.get("IPAMConfig") or {}
    links = []
    for link in settings.get("Links") or []:
        name, _, alias = link.partition(":")
        links.append(f"{name.lstrip('/')}:{alias or name.lstrip('/')}")
    return EndpointRequest(aliases=tuple(settings.get("Aliases") or ()),
                           ipv4=ipam.get("IPv4Address") or "", ipv6=ipam.get("IPv6Address") or "",
                           mac=mac, links=tuple(links))


class ContainerNetworking:
    """Network work for the containers manager, which holds the container's lock."""

    def __init__(self, networks: NetworkManager, lookup: Callable[[str], Container]) -> None:
        self._networks = networks
        self._lookup = lookup

    # --- create

    def endpoints_at_create(self, host_config: dict[str, Any],
                            networking_config: dict[str, Any] | None) -> dict[str, dict]:
        """EndpointsConfig as the record keeps it, by network name; checks the networks."""
        mode = host_config["NetworkMode"]
        # The docker CLI names the default network "default", as in NetworkMode.
        requested = {network_name(name): settings or {} for name, settings in
                     ((networking_config or {}).get("EndpointsConfig") or {}).items()}
        if mode in ("host", "none") or shared_container(mode):
            if shared_container(mode):
                self._lookup(shared_container(mode))  # 404 for an unknown container
                if host_config.get("PortBindings") or host_config.get("PublishAllPorts"):
                    raise InvalidArgument("conflicting options: port publishing and the "
                                          "container type network mode")
            if requested and mode != "none":
                raise InvalidArgument("conflicting options: host type networking can't be used "
                                      "with links. This would result in undefined behavior"
                                      if mode == "host" else
                                      "Container sharing network namespace with another "
                                      "container or host cannot be connected to any other "
                                      "network")
            return {mode: {}} if mode in ("host", "none") else {}
        if len(requested) > 1:
            raise InvalidArgument("Container cannot be connected to network endpoints: "
                                  + ", ".join(sorted(requested)))
        primary = self._networks.get(network_name(mode))
        settings = requested.get(primary.name) or requested.get(primary.id) or next(
            iter(requested.values()), {})
        if requested and primary.name not in requested and primary.id not in requested:
            # The one endpoint named must be the container's network (NetworkMode).
            other = next(iter(requested))
            self._networks.get(other)
            raise InvalidArgument(f"Container cannot be connected to network endpoints: "
                                  f"{primary.name}, {other}")
        # Legacy links: /etc/hosts lines on the default bridge, aliases on other networks.
        links = host_config.get("Links") or []
        if links:
            settings = {**settings, "Links": [*(settings.get("Links") or []), *links]}
        return {primary.name: {**settings, "NetworkID": primary.id}}

    # --- start and exit

    async def attach(self, container: Container, files: ContainerFiles,
                     files_of: Callable[[str], ContainerFiles]) -> tuple[NamespaceMode,
                                                                        dict[str, Path]]:
        """The network namespace the container joins, and the /etc files it binds."""
        mode = container.host_config["NetworkMode"]
        if mode == "host":
            await write_network_etc_files(self._networks, container, files)
            return NamespaceMode.host(), files.etc_mounts()
        donor_ref = shared_container(mode)
        if donor_ref:
            donor = self._lookup(donor_ref)
            if donor.state.status not in ("running", "paused") or not donor.state.pid:
                raise Conflict(f"cannot join network of a non running container: {donor.id}")
            key = self._networks.sandbox_key(donor.id)
            path = str(key) if key.exists() else f"/proc/{donor.state.pid}/ns/net"
            # As dockerd: the donor's name and /etc files go with its namespace.
            container.config["Hostname"] = donor.config["Hostname"]
            container.config["Domainname"] = donor.config.get("Domainname") or ""
            return NamespaceMode.join(path), files_of(donor.id).etc_mounts()
        if mode == "none":
            await write_network_etc_files(self._networks, container, files)
            return NamespaceMode.private(), files.etc_mounts()
        mac = container.config.get("MacAddress") or ""  # the first network's
        endpoints = [(settings.get("NetworkID") or name,
                      _endpoint_request(settings, mac=mac if n == 0 else ""))
                     for n, (name, settings) in enumerate(container.endpoints.items())]
        ports = PortRequest(container.host_config.get("PortBindings"),
                            container.config.get("ExposedPorts"),
                            bool(container.host_config.get("PublishAllPorts")))
        path = await self._networks.create_sandbox(container.id, name=container.name,
                                                   hostname=container.config["Hostname"],
                                                   endpoints=endpoints, ports=ports)
        try:
            await write_network_etc_files(self._networks, container, files)
        except BaseException:
            await self._networks.release(container.id)
            raise
        return NamespaceMode.join(str(path)), files.etc_mounts()

    async def detach(self, container: Container) -> None:
        await self._networks.release(container.id)

    # --- connect and disconnect by request

    async def connect(self, container: Container, files: ContainerFiles, network_ref: str,
                      settings: dict[str, Any]) -> None:
        record = self._networks.get(network_ref)
        mode = container.host_config["NetworkMode"]
        if mode == "none":
            raise InvalidArgument("container cannot be connected to multiple networks with one "
                                  "of the networks in private (none) mode")
        if mode == "host" or shared_container(mode):
            raise InvalidArgument("container sharing network namespace with another container "
                                  "or host cannot be connected to any other network")
        if record.name in container.endpoints:
            raise Forbidden(f"endpoint with name {container.name} already exists in network "
                            f"{record.name}")
        entry = {**settings, "NetworkID": record.id}
        if container.state.status in ("running", "paused"):
            await self._networks.connect(container.id, record.id, _endpoint_request(entry))
            await write_network_etc_files(self._networks, container, files)
        container.endpoints[record.name] = entry

    async def disconnect(self, container: Container, files: ContainerFiles, network_ref: str,
                         *, force: bool) -> None:
        try:
            record = self._networks.get(network_ref)
            name = record.name
        except NotFound:
            if not force:
                raise
            name = network_ref
        if name not in container.endpoints:
            if force:
                return
            raise Conflict(f"container {container.id} is not connected to network {name}")
        if container.state.status in ("running", "paused"):
            await self._networks.disconnect(container.id, name, force=force)
            await write_network_etc_files(self._networks, container, files)
        del container.endpoints[name]

    # --- views

    def settings(self, container: Container) -> dict[str, Any]:
        """NetworkSettings: the live ones of a running container, else from the record."""
        if container.state.status in ("running", "paused") and container.endpoints and \
                not self._no_sandbox(container):
            return self._networks.settings(container.id)
        networks = {}
        for name, settings in container.endpoints.items():
            networks[name] = {
                "IPAMConfig": settings.get("IPAMConfig"), "Links": settings.get("Links"),
                "Aliases": settings.get("Aliases"), "NetworkID": settings.get("NetworkID", ""),
                "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "MacAddress": "", "DriverOpts": None}
        running = container.state.status in ("running", "paused") and container.state.pid
        own_namespace = running and container.host_config["NetworkMode"] != "host"
        return {"Bridge": "", "SandboxID": container.id if own_namespace else "",
                "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
                "Ports": {},
                "SandboxKey": f"/proc/{container.state.pid}/ns/net" if own_namespace else "",
                "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
                "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
                "Networks": networks}

    @staticmethod
    def _no_sandbox(container: Container) -> bool:
        mode = container.host_config["NetworkMode"]
        return mode in ("host", "none") or shared_container(mode) is not None


async def write_network_etc_files(networks: NetworkManager, container: Container,
                                  files: ContainerFiles) -> None:
    """The /etc files, made again at each start as dockerd does: /etc/hosts with the
    container's addresses (and links), resolv.conf naming the embedded DNS server on
    user-defined networks; the host's with the host's network."""
    await asyncio.to_thread(
        write_etc_files, Path(files.hostname).parent, hostname=container.config["Hostname"],
        host_network=container.host_config["NetworkMode"] == "host",
        own_entries=networks.hosts_entries(container.id,
                                           container.config.get("Domainname") or ""),
        embedded_dns=networks.uses_embedded_dns(container.id),
        **etc_file_options(container.host_config))
