"""The networks manager and its primitives against real namespaces, bridges and iptables.

Traffic stays on loopback and inside the namespaces these tests make.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import subprocess
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from servin.config import DaemonConfig
from servin.errors import Forbidden, InvalidArgument
from servin.events import EventBus
from servin.net.dns import SandboxDns
from servin.net.links import Links, remove_sandbox, remove_sandbox_dir, sockets_in
from servin.networks.manager import EndpointRequest, NetworkManager, NetworkSpec, PortRequest

TIMEOUT = 60
BUSYBOX = "/bin/busybox"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def in_sandbox(path: str | Path, *argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={path}", BUSYBOX, *argv, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    return process.returncode, out.decode()


def iptables_lines(instance: str) -> list[str]:
    saved = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return [line for line in saved.splitlines() if f"SERVIN-{instance}" in line]


def tagged_links(instance: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if f"alias servin:{instance}" in line]


@pytest.fixture
def daemon_config(tmp_path: Path) -> DaemonConfig:
    # A subnet of TEST-NET space nothing on the host routes; each test gets its own.
    third = uuid.uuid4().int % 200 + 20
    return DaemonConfig(data_root=tmp_path / "data", exec_root=tmp_path / "exec",
                        bip=f"10.213.{third}.1/24",
                        default_address_pools=[{"base": f"10.214.{third}.0/24", "size": 26}])


class Managers:
    """Network managers of one daemon instance; ``cleanup`` releases and closes them all."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.made: list[NetworkManager] = []

    def __call__(self) -> NetworkManager:
        manager = NetworkManager(self.config, EventBus())
        self.made.append(manager)
        return manager

    async def cleanup(self) -> None:
        for manager in self.made:
            for container_id in list(manager._sandboxes):
                await manager.release(container_id)
            await manager.close()


async def _with_cleanup(scenario, managers: Managers) -> None:
    try:
        await scenario
    finally:
        await managers.cleanup()


@pytest.fixture
def manager_factory(daemon_config):
    managers = Managers(daemon_config)
    yield managers
    if managers.made:
        instance = managers.made[0].instance
        assert not tagged_links(instance), "links left"
        assert not iptables_lines(instance), "iptables rules left"
        assert not (daemon_config.exec_root / "netns").exists(), "namespaces left"


def test_containers_on_a_user_network_reach_each_other_by_name(manager_factory):
    async def scenario():
        manager = manager_factory()
        await manager.load()
        network_id = await manager.create(NetworkSpec("appnet"))
        info = manager.inspect("appnet")
        subnet = ipaddress.ip_network(info["IPAM"]["Config"][0]["Subnet"])
        assert info["Id"] == network_id and subnet.prefixlen == 26
        paths = {}
        for name in ("web", "db"):
            cid = uuid.uuid4().hex * 2
            paths[name] = (cid, await manager.create_sandbox(
                cid, name=name, hostname=cid[:12],
                endpoints=[("appnet", EndpointRequest(aliases=(f"{name}-alias",)))]))
            settings = manager.settings(cid)["Networks"]["appnet"]
            assert ipaddress.ip_address(settings["IPAddress"]) in subnet
            assert settings["MacAddress"] == "02:42:" + ":".join(
                f"{b:02x}" for b in ipaddress.ip_address(settings["IPAddress"]).packed)
        web_id, web_path = paths["web"]
        db_ip = manager.settings(paths["db"][0])["Networks"]["appnet"]["IPAddress"]
        containers = manager.inspect(network_id)["Containers"]
        assert containers[paths["db"][0]]["IPv4Address"] == f"{db_ip}/26"
        with pytest.raises(Forbidden, match="has active endpoints"):
            await manager.remove("appnet")
        for name in ("db", "db-alias", "db.appnet"):
            _, out = await in_sandbox(web_path, "nslookup", name, "127.0.0.11")
            assert db_ip in out, out
        status, out = await in_sandbox(web_path, "ping", "-c", "1", "-W", "2", db_ip)
        assert status == 0, out
        _, out = await in_sandbox(web_path, "nslookup", "nosuch-container.invalid", "127.0.0.11")
        assert db_ip not in out
        await manager.release(web_id)
        assert not Path(web_path).exists()
        events = [(e.action, e.actor_id) for e in manager._events.history()]
        assert events[:2] == [("create", network_id), ("connect", network_id)]
        assert events[-1] == ("disconnect", network_id)

    run(_with_cleanup(scenario(), manager_factory))


def test_ipam_errors_and_removal(manager_factory, daemon_config):
    async def scenario():
        manager = manager_factory()
        await manager.load()
        third = daemon_config.bip.split(".")[2]
        await manager.create(NetworkSpec("one", ipam_config=({"Subnet": f"10.215.{third}.0/24"},)))
        with pytest.raises(Forbidden, match="Pool overlaps with other one on this address space"):
            await manager.create(NetworkSpec("two", ipam_config=(
                {"Subnet": f"10.215.{third}.128/25"},)))
        with pytest.raises(InvalidArgument, match="invalid CIDR address"):
            await manager.create(NetworkSpec("two", ipam_config=({"Subnet": "10.0.0.0/40"},)))
        for n in range(4):  # the /24 pool holds four /26
            try:
                await manager.create(NetworkSpec(f"auto{n}"))
            except Forbidden as exc:
                assert "could not find an available, non-overlapping IPv4" in str(exc)
                break
        else:
            with pytest.raises(Forbidden, match="non-overlapping IPv4 address pool"):
                await manager.create(NetworkSpec("auto-overflow"))
        deleted = await manager.prune({})
        assert "one" in deleted and manager.list({"type": ["custom"]}) == []
        with pytest.raises(Forbidden, match="pre-defined network"):
            await manager.remove("bridge")

    run(_with_cleanup(scenario(), manager_factory))


def test_published_port_through_proxy_and_restart_cleanup(manager_factory):
    async def scenario():
        manager = manager_factory()
        await manager.load()
        cid = uuid.uuid4().hex * 2
        path = await manager.create_sandbox(
            cid, name="srv", hostname="srv", endpoints=[("bridge", EndpointRequest())],
            ports=PortRequest({"7000/tcp": [{"HostPort": ""}]}, {"7001/udp": {}}))
        settings = manager.settings(cid)
        assert settings["Networks"]["bridge"]["Gateway"]
        # A TCP echo server inside the sandbox, on a socket made in its namespace.
        [listener] = await sockets_in(path, socket.SOCK_STREAM)
        listener.bind(("0.0.0.0", 7000))
        listener.listen()

        async def echo(reader, writer):
            writer.write(await reader.read(100))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, sock=listener)
        ports = settings["Ports"]
        host_port = int(ports["7000/tcp"][0]["HostPort"])
        assert ports["7001/udp"] is None and host_port > 0
        reader, writer = await asyncio.open_connection("127.0.0.1", host_port)
        writer.write(b"ping")
        await writer.drain()
        assert await reader.read(100) == b"ping"
        writer.close()
        assert any(f"--dport {host_port} -j DNAT" in line
                   for line in iptables_lines(manager.instance))
        server.close()

        # A daemon that finds the sandbox of a container that is gone removes it all.
        again = manager_factory()
        await manager.close()
        await again.load()
        await again.restore([])
        assert not path.exists()
        assert not any("DNAT" in line for line in iptables_lines(manager.instance))
        assert again._ipam.owners() == set()

    run(_with_cleanup(scenario(), manager_factory))


def test_dns_forwards_unknown_names_to_the_host_resolvers(tmp_path):
    async def scenario():
        sandbox = tmp_path / "netns" / "ns"
        await Links("servin:test-dns").create_sandbox(sandbox)
        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        upstream.bind(("127.0.0.77", 0))
        upstream.setblocking(False)
        loop = asyncio.get_running_loop()

        class Fake(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                query = dns.message.from_wire(data)
                reply = dns.message.make_response(query)
                reply.answer.append(dns.rrset.from_text(query.question[0].name, 30, "IN", "A",
                                                        "10.9.9.9"))
                self.transport.sendto(reply.to_wire(), addr)

        fake, _ = await loop.create_datagram_endpoint(Fake, sock=upstream)

        class NoNames:
            def lookup(self, name):
                return [ipaddress.ip_address("10.1.1.1")] if name == "local" else None

            def reverse(self, address):
                return None

        server = SandboxDns(sandbox, NoNames(), [upstream.getsockname()])
        await server.start()
        try:
            [client] = await sockets_in(sandbox, socket.SOCK_DGRAM)
            for name, expected in (("local", "10.1.1.1"), ("elsewhere.example", "10.9.9.9")):
                query = dns.message.make_query(name, "A")
                await loop.sock_sendto(client, query.to_wire(), ("127.0.0.11", 53))
                data = await asyncio.wait_for(loop.sock_recv(client, 4096), 5)
                answer = dns.message.from_wire(data)
                assert answer.rcode() == dns.rcode.NOERROR
                assert answer.answer[0][0].address == expected
            client.close()
        finally:
            await server.close()
            fake.close()
            await remove_sandbox(sandbox)
            remove_sandbox_dir(sandbox.parent)

    run(scenario())


def test_addresses_of_saved_sandboxes_survive_a_crash(manager_factory, daemon_config):
    async def scenario():
        manager = manager_factory()
        await manager.load()
        await manager.create(NetworkSpec("keep"))
        held = uuid.uuid4().hex * 2
        await manager.create_sandbox(held, name="held", hostname="held",
                                     endpoints=[("keep", EndpointRequest())])
        address = manager.settings(held)["Networks"]["keep"]["IPAddress"]
        saved = json.loads((daemon_config.data_root / "network" / "ipam.json").read_text())
        assert all("allocated" not in pool for pool in saved["pools"])

        # As after kill -9: a new manager reads the state while the container still runs.
        await manager.close()
        manager._sandboxes.clear()  # the second manager's now
        again = manager_factory()
        await again.load()
        await again.restore([held])
        other = uuid.uuid4().hex * 2
        await again.create_sandbox(other, name="other", hostname="other",
                                   endpoints=[("keep", EndpointRequest())])
        assert again.settings(other)["Networks"]["keep"]["IPAddress"] != address

    run(_with_cleanup(scenario(), manager_factory))


def test_a_sandbox_that_cannot_be_made_leaves_nothing(manager_factory, daemon_config):
    async def scenario():
        manager = manager_factory()
        await manager.load()
        await manager.create(NetworkSpec("one"))
        subnet = manager.inspect("one")["IPAM"]["Config"][0]["Subnet"]
        taken = str(ipaddress.ip_network(subnet)[10])
        owner = uuid.uuid4().hex * 2
        await manager.create_sandbox(owner, name="owner", hostname="owner",
                                     endpoints=[("one", EndpointRequest(ipv4=taken))])
        await manager.create(NetworkSpec("two"))
        cid = uuid.uuid4().hex * 2
        with pytest.raises(Forbidden, match="Address already in use"):
            # Its first endpoint is made, its second one asks for an address in use.
            await manager.create_sandbox(cid, name="late", hostname="late", endpoints=[
                ("two", EndpointRequest()), ("one", EndpointRequest(ipv4=taken))])
        assert not manager.sandbox_key(cid).exists()
        assert not (daemon_config.data_root / "network" / "sandboxes" / f"{cid}.json").exists()
        assert [e.action for e in manager._events.history()].count("connect") == 1
        await manager._settle()  # the veth made for "two" is deleted in the background
        again = uuid.uuid4().hex * 2
        await manager.create_sandbox(again, name="again", hostname="again",
                                     endpoints=[("two", EndpointRequest())])
        # The first address of "two" was handed back.
        first = str(ipaddress.ip_network(manager.inspect("two")["IPAM"]["Config"][0]["Subnet"])[2])
        assert manager.settings(again)["Networks"]["two"]["IPAddress"] == first

    run(_with_cleanup(scenario(), manager_factory))
