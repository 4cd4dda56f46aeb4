import ipaddress
import json

import pytest

from servin.errors import Forbidden, InvalidArgument, Unavailable
from servin.net.ipam import DEFAULT_ADDRESS_POOLS, Ipam, PoolRequest

net = ipaddress.ip_network
addr = ipaddress.ip_address


def test_default_pools_are_dockerds():
    ipam = Ipam()
    first = ipam.add_pools("n1", [], version=4)[0]
    assert (str(first.subnet), str(first.gateway)) == ("172.17.0.0/16", "172.17.0.1")
    assert ipam.default_pools == DEFAULT_ADDRESS_POOLS
    subnets = [str(ipam.add_pools(f"n{i}", [], version=4)[0].subnet) for i in range(2, 17)]
    assert subnets[-1] == "192.168.0.0/20"


def test_subnets_skip_host_routes_and_other_networks():
    ipam = Ipam()
    ipam.add_pools("a", [PoolRequest.parse({"Subnet": "172.17.5.0/24"})], version=4)
    pool = ipam.add_pools("b", [], version=4, host_routes=[net("172.18.0.0/24")])[0]
    assert str(pool.subnet) == "172.19.0.0/16"


def test_overlapping_subnet_is_refused_with_dockerds_message():
    ipam = Ipam()
    ipam.add_pools("a", [PoolRequest.parse({"Subnet": "10.10.0.0/16"})], version=4)
    with pytest.raises(Forbidden, match="Pool overlaps with other one on this address space"):
        ipam.add_pools("b", [PoolRequest.parse({"Subnet": "10.10.3.0/24"})], version=4)
    assert ipam.network_pools("b") == []


def test_pool_exhaustion():
    ipam = Ipam([{"base": "10.20.0.0/23", "size": 24}])
    ipam.add_pools("a", [], version=4)
    ipam.add_pools("b", [], version=4)
    with pytest.raises(Forbidden, match="could not find an available, non-overlapping IPv4"):
        ipam.add_pools("c", [], version=4)


def test_bad_config_is_rejected():
    with pytest.raises(InvalidArgument, match="invalid CIDR address: 10.0.0.0/33"):
        PoolRequest.parse({"Subnet": "10.0.0.0/33"})
    with pytest.raises(InvalidArgument, match="no matching subnet for gateway 10.1.0.1"):
        PoolRequest.parse({"Subnet": "10.0.0.0/24", "Gateway": "10.1.0.1"})
    with pytest.raises(InvalidArgument, match="ip-range"):
        PoolRequest.parse({"Subnet": "10.0.0.0/24", "IPRange": "10.0.1.0/28"})


def test_addresses_skip_gateway_aux_and_are_never_handed_out_twice():
    ipam = Ipam()
    request = PoolRequest.parse({"Subnet": "10.30.0.0/29", "Gateway": "10.30.0.2",
                                 "AuxiliaryAddresses": {"router": "10.30.0.1"}})
    ipam.add_pools("n", [request], version=4)
    got = [str(ipam.allocate("n", f"ep{i}", 4, "net")[0]) for i in range(4)]
    assert got == ["10.30.0.3", "10.30.0.4", "10.30.0.5", "10.30.0.6"]
    with pytest.raises(Unavailable, match="no available IPv4 addresses on this network's "
                                          r"address pools: net \(n\)"):
        ipam.allocate("n", "ep9", 4, "net")
    assert ipam.release_owner("ep1") == ["10.30.0.4"]
    assert str(ipam.allocate("n", "ep5", 4, "net")[0]) == "10.30.0.4"


def test_ip_range_and_static_addresses():
    ipam = Ipam()
    request = PoolRequest.parse({"Subnet": "10.40.0.0/24", "IPRange": "10.40.0.128/25"})
    ipam.add_pools("n", [request], version=4)
    assert str(ipam.allocate("n", "a", 4, "net")[0]) == "10.40.0.128"
    assert str(ipam.allocate("n", "b", 4, "net", addr("10.40.0.9"))[0]) == "10.40.0.9"
    with pytest.raises(Forbidden, match="Address already in use"):
        ipam.allocate("n", "c", 4, "net", addr("10.40.0.9"))
    with pytest.raises(Forbidden, match="Address already in use"):
        ipam.allocate("n", "c", 4, "net", addr("10.40.0.1"))
    with pytest.raises(InvalidArgument, match="does not belong to any of this network's subnets"):
        ipam.allocate("n", "c", 4, "net", addr("10.41.0.9"))


def test_ipv6_pool():
    ipam = Ipam()
    ipam.add_pools("n", [PoolRequest.parse({"Subnet": "fd00:1::/64"})], version=6)
    assert str(ipam.network_pools("n", 6)[0].gateway) == "fd00:1::1"
    assert str(ipam.allocate("n", "a", 6, "net")[0]) == "fd00:1::2"


def test_pools_round_trip_through_json_and_addresses_are_claimed_back():
    ipam = Ipam()
    ipam.add_pools("n", [PoolRequest.parse({"Subnet": "10.50.0.0/24"})], version=4)
    held, _ = ipam.allocate("n", "a", 4, "net")
    again = Ipam()
    again.load_json(json.loads(json.dumps(ipam.to_json())))
    assert again.owners() == set()  # the records hold the addresses, not the pools' JSON
    again.claim("n", "a", [held, ipaddress.ip_address("10.60.0.9")])  # the 2nd is no pool's
    assert str(again.allocate("n", "b", 4, "net")[0]) == "10.50.0.3"
    assert again.owners() == {"a", "b"}
    again.remove_network("n")
    assert again.pools == {}


def test_an_allocated_map_of_earlier_versions_is_ignored():
    ipam = Ipam()
    ipam.add_pools("n", [PoolRequest.parse({"Subnet": "10.50.0.0/24"})], version=4)
    saved = ipam.to_json()
    saved["pools"][0]["allocated"] = {"10.50.0.2": "gone"}
    again = Ipam()
    again.load_json(saved)
    assert str(again.allocate("n", "b", 4, "net")[0]) == "10.50.0.2"
