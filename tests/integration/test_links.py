"""Bridges, veths and namespaces through servin.net.links (pyroute2), on the real kernel.

Everything is made under names of this test's own and removed afterwards; traffic
stays inside the namespaces made here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from servin.errors import SystemFailure
from servin.net import sysfs
from servin.net.links import (Interface, Links, _delete_links, _index, _iproute, delete_links,
                              remove_sandbox, remove_sandbox_dir, sandbox_exists, sockets_in)

BUSYBOX = "/bin/busybox"


def in_sandbox(path: Path, *argv: str) -> str:
    return subprocess.run(["nsenter", f"--net={path}", BUSYBOX, *argv], capture_output=True,
                          text=True, check=True).stdout


def host_link(name: str) -> str:
    return subprocess.run(["ip", "-d", "-o", "link", "show", name], capture_output=True,
                          text=True).stdout


class Names:
    def __init__(self, tmp_path: Path) -> None:
        token = uuid.uuid4().hex[:6]
        self.bridge = f"svtb{token}"
        self.veth = f"svtv{token}"
        self.tag = f"servin:test-{token}"
        self.third = uuid.uuid4().int % 200 + 20
        self.sandbox = tmp_path / "netns" / "box"


@pytest.fixture
def names(tmp_path):
    made = Names(tmp_path)
    yield made
    asyncio.run(delete_links([made.veth, made.bridge]))
    asyncio.run(remove_sandbox(made.sandbox))
    remove_sandbox_dir(made.sandbox.parent)


def test_a_sandbox_with_interfaces_is_made_in_threads_without_forking(names, monkeypatch):
    def no_fork():
        raise AssertionError("forked")

    monkeypatch.setattr(os, "fork", no_fork)
    links = Links(names.tag)
    gateway = f"10.226.{names.third}.1"
    first = Interface("eth0", names.veth, names.bridge, "02:42:0a:e2:00:05", 1400,
                      [ipaddress.ip_interface(f"10.226.{names.third}.5/24")],
                      [ipaddress.ip_address(gateway)])
    # One more, as `docker network connect` adds to a running container.
    second = Interface("eth1", names.veth + "x", names.bridge, "02:42:0a:e2:00:07", 1400,
                       [ipaddress.ip_interface(f"10.226.{names.third}.7/24")], [])
    own_namespace = os.readlink("/proc/thread-self/ns/net")

    async def scenario():
        await links.ensure_bridge(names.bridge, [f"{gateway}/24"], 1400)
        await links.create_sandbox(names.sandbox, [first])
        await links.add_interface(names.sandbox, second)
        return await links.tagged_links()

    try:
        tagged = asyncio.run(scenario())
        assert os.readlink("/proc/thread-self/ns/net") == own_namespace
        assert sandbox_exists(names.sandbox)
        assert tagged == {names.bridge: "bridge", names.veth: "veth", second.host_ifname: "veth"}
        veth = host_link(names.veth)
        assert f"master {names.bridge}" in veth and "state UP" in veth and "mtu 1400" in veth
        inside = in_sandbox(names.sandbox, "ip", "-o", "addr")
        assert f"10.226.{names.third}.5/24" in inside and "127.0.0.1/8" in inside
        assert f"10.226.{names.third}.7/24" in inside
        links_inside = in_sandbox(names.sandbox, "ip", "-o", "link")
        assert "02:42:0a:e2:00:05" in links_inside and "mtu 1400" in links_inside
        assert all("UP" in line for line in links_inside.splitlines())  # lo, eth0, eth1
        assert f"default via {gateway} dev eth0" in in_sandbox(names.sandbox, "ip", "route")
        in_sandbox(names.sandbox, "ping", "-c", "1", "-W", "5", gateway)  # fails unless answered
    finally:
        asyncio.run(delete_links([second.host_ifname]))


def test_sockets_are_opened_in_the_sandbox(names):
    async def scenario():
        await Links(names.tag).create_sandbox(names.sandbox)
        return await sockets_in(names.sandbox, socket.SOCK_DGRAM)

    [sock] = asyncio.run(scenario())
    with sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        listening = in_sandbox(names.sandbox, "netstat", "-lun")
    assert f"127.0.0.1:{port}" in listening
    host = subprocess.run(["ss", "-lun"], capture_output=True, text=True).stdout
    assert f"127.0.0.1:{port} " not in host


def test_removal_of_veths_and_the_sandbox(names):
    links = Links(names.tag)
    interface = Interface("eth0", names.veth, names.bridge, "02:42:0a:e2:00:06", 1500,
                          [ipaddress.ip_interface(f"10.226.{names.third}.6/24")], [])

    async def scenario():
        await links.ensure_bridge(names.bridge, [f"10.226.{names.third}.1/24"], 1500)
        await links.create_sandbox(names.sandbox, [interface])
        await delete_links([names.veth, "svt-nosuch"])
        await remove_sandbox(names.sandbox)
        return await links.tagged_links()

    assert asyncio.run(scenario()) == {names.bridge: "bridge"}
    assert not os.path.lexists(names.sandbox)


def test_host_routes_include_a_bridge_subnet(names):
    async def scenario():
        await Links(names.tag).ensure_bridge(names.bridge, [f"10.226.{names.third}.1/24"], 1500)
        return await Links.host_routes()

    assert ipaddress.ip_network(f"10.226.{names.third}.0/24") in asyncio.run(scenario())


def test_a_bridge_ensured_again_keeps_its_addresses_and_absent_links_are_no_error(names):
    links = Links(names.tag)
    addresses = [f"10.226.{names.third}.1/24", f"fd00:5e:{names.third:x}::1/64"]

    async def scenario():
        for _ in range(2):  # as at every daemon start: what is there already stays
            await links.ensure_bridge(names.bridge, addresses, 1500)

    asyncio.run(scenario())
    shown = subprocess.run(["ip", "-o", "addr", "show", "dev", names.bridge],
                           capture_output=True, text=True, check=True).stdout
    assert [line.split()[3] for line in shown.splitlines()
            if "scope global" in line] == addresses  # each once
    with _iproute() as ipr:
        assert _index(ipr, "svt-nosuch") is None
        assert _index(ipr, names.bridge) is not None
    assert _delete_links(["svt-nosuch", names.bridge]) == 1
    assert _delete_links([names.bridge]) == 0
    assert host_link(names.bridge) == ""


def test_a_refusal_of_the_kernel_is_an_engine_error_saying_what(names):
    links = Links(names.tag)
    clash = Interface("eth0", names.bridge, names.bridge, "02:42:0a:e2:00:08", 1500, [], [])

    async def scenario():
        await links.ensure_bridge(names.bridge, [f"10.226.{names.third}.1/24"], 1500)
        await links.create_sandbox(names.sandbox, [clash])  # its veth named as the bridge

    with pytest.raises(SystemFailure, match=f"making the network namespace {names.sandbox}: "
                                            "File exists"):
        asyncio.run(scenario())


def test_sysfs_shows_the_bridge_and_the_tagged_links(names):
    links = Links(names.tag)
    addresses = [f"10.226.{names.third}.1/24", f"fd00:5e:{names.third:x}::1/64"]
    interface = Interface("eth0", names.veth, names.bridge, "02:42:0a:e2:00:09", 1400, [], [])

    async def scenario():
        await links.ensure_bridge(names.bridge, addresses, 1400)
        await links.create_sandbox(names.sandbox, [interface])

    asyncio.run(scenario())
    assert sysfs.link(names.bridge) == sysfs.LinkView(name=names.bridge, alias=names.tag,
                                                      mtu=1400, up=True, bridge=True)
    assert sysfs.link(names.veth).bridge is False
    assert sysfs.link("svt-nosuch") is None
    assert {ipaddress.ip_interface(a) for a in addresses} <= set(sysfs.addresses(names.bridge))
    assert sysfs.links_with_alias(names.tag) == {names.bridge: "bridge", names.veth: "veth"}


def test_a_bridge_as_wanted_is_checked_without_loading_pyroute2(names):
    links = Links(names.tag)
    addresses = [f"10.226.{names.third}.1/24", f"fd00:5e:{names.third:x}::1/64"]
    asyncio.run(links.ensure_bridge(names.bridge, addresses, 1400))
    # As a daemon restart does it, in a process that has not loaded pyroute2 yet.
    code = ("import asyncio, sys; from servin.net.links import Links; "
            f"links = Links({names.tag!r}); "
            f"asyncio.run(links.ensure_bridge({names.bridge!r}, {addresses!r}, 1400)); "
            "print(sorted(asyncio.run(links.tagged_links())), 'pyroute2' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split("\n")[0] == f"[{names.bridge!r}] False"


def test_a_bridge_that_changed_is_set_as_wanted_again(names):
    links = Links(names.tag)
    addresses = [f"10.226.{names.third}.1/24", f"fd00:5e:{names.third:x}::1/64"]
    asyncio.run(links.ensure_bridge(names.bridge, addresses, 1400))
    for change in (["link", "set", names.bridge, "down"],
                   ["link", "set", names.bridge, "mtu", "1300"],
                   ["link", "set", names.bridge, "alias", "someone-else"],
                   ["addr", "del", addresses[1], "dev", names.bridge]):
        subprocess.run(["ip", *change], check=True)
        asyncio.run(links.ensure_bridge(names.bridge, addresses, 1400))
        assert sysfs.link(names.bridge) == sysfs.LinkView(
            name=names.bridge, alias=names.tag, mtu=1400, up=True, bridge=True), change
        assert {ipaddress.ip_interface(a) for a in addresses} <= set(
            sysfs.addresses(names.bridge)), change
