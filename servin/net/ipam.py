"""Address management of bridge networks, as libnetwork's default IPAM driver does it.

Pure logic: the pools (every network's subnets) serialise to JSON with
``to_json``/``load_json``, which the networks manager persists when networks come
and go. The addresses handed out are not in it: each belongs to an endpoint whose
sandbox record the manager saves before a container uses the address, and
``claim`` takes them back from those records at start, so no address is handed out
twice across restarts and crashes. Subnets are chosen from the daemon's
``default-address-pools`` and never overlap another network or a host route.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Iterator

import attrs

from servin.errors import Forbidden, InvalidArgument, Unavailable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# dockerd 20.10's local-scope defaults: fifteen /16 from 172.17 to 172.31, then
# 192.168.0.0/16 cut into /20.
DEFAULT_ADDRESS_POOLS = ([{"base": f"172.{n}.0.0/16", "size": 16} for n in range(17, 32)]
                         + [{"base": "192.168.0.0/16", "size": 20}])

OVERLAP_MESSAGE = "Pool overlaps with other one on this address space"
NO_POOL_MESSAGE = ("could not find an available, non-overlapping IPv{version} address pool "
                   "among the defaults to assign to the network")


def parse_network(text: str, what: str = "CIDR address") -> Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {text}") from None


def parse_address(text: str) -> Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IP address: {text}") from None


@attrs.frozen
class PoolRequest:
    """One IPAM Config entry of a network create request, validated."""

    subnet: Network | None = None
    ip_range: Network | None = None
    gateway: Address | None = None
    aux_addresses: dict[str, Address] = attrs.field(factory=dict)

    @classmethod
    def parse(cls, config: dict[str, Any]) -> "PoolRequest":
        subnet = parse_network(config["Subnet"]) if config.get("Subnet") else None
        ip_range = parse_network(config["IPRange"]) if config.get("IPRange") else None
        gateway = parse_address(config["Gateway"]) if config.get("Gateway") else None
        aux = {name: parse_address(text)
               for name, text in (config.get("AuxiliaryAddresses") or {}).items()}
        if subnet is None:
            if ip_range or gateway or aux:
                raise InvalidArgument("ip-range, gateway and aux-address need a subnet")
            return cls()
        if ip_range is not None and not (ip_range.version == subnet.version
                                         and ip_range.subnet_of(subnet)):  # type: ignore[arg-type]
            raise InvalidArgument(f"invalid ip-range {ip_range}: it must be within subnet {subnet}")
        for name, address in [("gateway", gateway), *aux.items()]:
            if address is not None and address not in subnet:
                raise InvalidArgument(f"no matching subnet for {name} {address}")
        return cls(subnet, ip_range, gateway, aux)


@attrs.define
class Pool:
    """A subnet of one network, with the addresses it has handed out."""

    network_id: str
    subnet: Network
    ip_range: Network
    gateway: Address
    aux_addresses: dict[str, Address]
    allocated: dict[str, str]  # address -> owner (an endpoint id)

    @property
    def version(self) -> int:
        return self.subnet.version

    def reserved(self) -> set[Address]:
        taken = {self.gateway, *self.aux_addresses.values()}
        if self.version == 4 and self.subnet.prefixlen < 31:
            taken |= {self.subnet.network_address, self.subnet.broadcast_address}
        elif self.version == 6:
            taken.add(self.subnet.network_address)
        return taken

    def candidates(self) -> Iterator[Address]:
        taken = self.reserved()
        for address in _hosts(self.ip_range):
            if address not in taken and str(address) not in self.allocated:
                yield address

    def to_json(self) -> dict[str, Any]:
        return {"network_id": self.network_id, "subnet": str(self.subnet),
                "ip_range": str(self.ip_range), "gateway": str(self.gateway),
                "aux_addresses": {k: str(v) for k, v in self.aux_addresses.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Pool":
        # An "allocated" map that earlier versions saved is left out: claim() rebuilds it.
        return cls(data["network_id"], ipaddress.ip_network(data["subnet"]),
                   ipaddress.ip_network(data["ip_range"]), ipaddress.ip_address(data["gateway"]),
                   {k: ipaddress.ip_address(v) for k, v in data["aux_addresses"].items()}, {})


def _hosts(network: Network) -> Iterator[Address]:
    # Iterating with an index keeps a /64 from being walked as a list.
    first = int(network.network_address)
    for offset in range(network.num_addresses):
        yield ipaddress.ip_address(first + offset)


def candidate_subnets(pools: Iterable[dict[str, Any]], version: int) -> Iterator[Network]:
    for pool in pools:
        base = ipaddress.ip_network(pool["base"])
        if base.version == version:
            yield from base.subnets(new_prefix=pool["size"])


class Ipam:
    """Every pool of every network of one daemon, and the addresses they handed out."""

    def __init__(self, default_pools: list[dict[str, Any]] | None = None) -> None:
        self.default_pools = default_pools or DEFAULT_ADDRESS_POOLS
        self.pools: dict[str, Pool] = {}  # subnet text -> pool

    def to_json(self) -> dict[str, Any]:
        return {"pools": [pool.to_json() for pool in self.pools.values()]}

    def load_json(self, data: dict[str, Any]) -> None:
        self.pools = {}
        for item in data.get("pools", []):
            pool = Pool.from_json(item)
            self.pools[str(pool.subnet)] = pool

    def network_pools(self, network_id: str, version: int | None = None) -> list[Pool]:
        return [pool for pool in self.pools.values() if pool.network_id == network_id
                and (version is None or pool.version == version)]

    def add_pools(self, network_id: str, requests: list[PoolRequest], *, version: int,
                  host_routes: Iterable[Network] = ()) -> list[Pool]:
        """The network's pools of one IP version: the subnets asked for, or one chosen
        from the default pools when none is. Nothing is kept if any request fails."""
        routes = list(host_routes)
        made: list[Pool] = []
        try:
            for request in requests or [PoolRequest()]:
                subnet = request.subnet or self._free_subnet(version, routes)
                if any(_overlaps(subnet, pool.subnet) for pool in self.pools.values()):
                    raise Forbidden(OVERLAP_MESSAGE)
                hosts = _hosts(subnet)
                next(hosts)  # the network address
                gateway = request.gateway or next(hosts)
                pool = Pool(network_id, subnet, request.ip_range or subnet, gateway,
                            dict(request.aux_addresses), {})
                self.pools[str(subnet)] = pool
                made.append(pool)
        except BaseException:
            for pool in made:
                del self.pools[str(pool.subnet)]
            raise
        return made

    def _free_subnet(self, version: int, routes: list[Network]) -> Network:
        taken = [pool.subnet for pool in self.pools.values()] + routes
        for subnet in candidate_subnets(self.default_pools, version):
            if not any(_overlaps(subnet, other) for other in taken):
                return subnet
        raise Forbidden(NO_POOL_MESSAGE.format(version=version))

    def remove_network(self, network_id: str) -> None:
        for key in [key for key, pool in self.pools.items() if pool.network_id == network_id]:
            del self.pools[key]

    def allocate(self, network_id: str, owner: str, version: int, network_name: str,
                 address: Address | None = None) -> tuple[Address, Pool]:
        """An address for ``owner``: the one asked for, or the first free one."""
        pools = self.network_pools(network_id, version)
        if address is not None:
            pool = next((p for p in pools if address in p.subnet), None)
            if pool is None:
                raise InvalidArgument(f"Invalid address {address}: It does not belong to any of "
                                      f"this network's subnets")
            if address in pool.reserved() or str(address) in pool.allocated:
                raise Forbidden("Address already in use")
            pool.allocated[str(address)] = owner
            return address, pool
        for pool in pools:
            for candidate in pool.candidates():
                pool.allocated[str(candidate)] = owner
                return candidate, pool
        raise Unavailable(f"no available IPv{version} addresses on this network's address "
                          f"pools: {network_name} ({network_id})")

    def claim(self, network_id: str, owner: str, addresses: Iterable[Address]) -> None:
        """Mark addresses a saved endpoint holds as ``owner``'s (at start, from the records);
        one outside the network's pools (its subnet changed) is let go."""
        for address in addresses:
            pool = next((p for p in self.network_pools(network_id, address.version)
                         if address in p.subnet), None)
            if pool is not None:
                pool.allocated[str(address)] = owner

    def release_owner(self, owner: str) -> list[str]:
        """Free every address ``owner`` holds; returns them."""
        freed = []
        for pool in self.pools.values():
            for address in [a for a, o in pool.allocated.items() if o == owner]:
                del pool.allocated[address]
                freed.append(address)
        return freed

    def owners(self) -> set[str]:
        return {owner for pool in self.pools.values() for owner in pool.allocated.values()}


def _overlaps(a: Network, b: Network) -> bool:
    return a.version == b.version and a.overlaps(b)  # type: ignore[arg-type]
