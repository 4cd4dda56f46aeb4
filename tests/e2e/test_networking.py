"""Networks through the docker SDK and CLI against a real servind.

Traffic goes only to loopback and into namespaces servind made.
"""

from __future__ import annotations

import json
import socket
import subprocess
import uuid

import docker
import docker.errors
import docker.types
import pytest

from servin.networks.manager import instance_id
from tests.support.servind import mount_points
from tests.support.waiting import wait_until


def unique_octet() -> int:
    return uuid.uuid4().int % 200 + 20


def ipam(subnet: str, **extra) -> docker.types.IPAMConfig:
    return docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet, **extra)])


def host_links(servind) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return [line.split(":")[1].strip() for line in out.splitlines()
            if f"alias servin:{instance_id(servind.data_root)}" in line]


def host_veths(servind) -> set[str]:
    return {name for name in host_links(servind) if name.startswith("veth")}


def test_a_start_that_fails_leaves_no_mount_veth_or_namespace(containers, alpine, servind):
    veths = host_veths(servind)
    container = containers.create(alpine, ["/no/such/binary"])  # on the default bridge
    with pytest.raises(docker.errors.APIError, match="no such file or directory"):
        container.start()
    assert not [m for m in mount_points() if container.id in m]
    assert not (servind.exec_root / "netns" / container.id[:12]).exists()
    # The veth is deleted in the background (the kernel takes tens of milliseconds).
    wait_until(lambda: not host_veths(servind) - veths, timeout=30, what="deletion of the veth")


def test_etc_files_are_made_again_at_each_start(containers, alpine, docker_client):
    container = containers.create(alpine, ["cat", "/etc/hosts", "/etc/hostname"],
                                  network_mode="none", hostname="fresh")
    info = docker_client.api.inspect_container(container.id)
    for key in ("HostsPath", "HostnamePath"):
        with open(info[key], "w") as f:
            f.write("torn")
    container.start()
    container.wait(timeout=60)
    out = container.logs().decode()
    assert "torn" not in out and "127.0.0.1\tlocalhost" in out and "fresh" in out


def test_builtin_networks_are_listed(docker_client, servind):
    by_name = {n.name: n.attrs for n in docker_client.networks.list()}
    assert {"bridge", "host", "none"} <= set(by_name)
    bridge = docker_client.api.inspect_network("bridge")
    assert bridge["Driver"] == "bridge" and bridge["Scope"] == "local"
    assert bridge["IPAM"]["Config"] == [{"Subnet": servind.bip.replace(".1/", ".0/"),
                                         "Gateway": servind.bip.split("/")[0]}]
    assert bridge["Options"]["com.docker.network.bridge.default_bridge"] == "true"
    assert by_name["none"]["Driver"] == "null" and by_name["host"]["Driver"] == "host"
    assert bridge["Options"]["com.docker.network.bridge.name"] in host_links(servind)


def test_create_inspect_and_remove_a_network(networks, docker_client, servind):
    third = unique_octet()
    network = networks.create(
        "e2e-net", driver="bridge", internal=True, attachable=True, labels={"team": "a"},
        options={"com.docker.network.bridge.enable_icc": "false",
                 "com.docker.network.driver.mtu": "1400"},
        ipam=ipam(f"10.218.{third}.0/24", gateway=f"10.218.{third}.254",
                  iprange=f"10.218.{third}.128/25", aux_addresses={"r": f"10.218.{third}.2"}))
    info = docker_client.api.inspect_network(network.id)
    assert info["Name"] == "e2e-net" and info["Id"] == network.id
    assert info["Internal"] is True and info["Attachable"] is True
    assert info["Labels"] == {"team": "a"}
    assert info["IPAM"] == {"Driver": "default", "Options": None, "Config": [{
        "Subnet": f"10.218.{third}.0/24", "Gateway": f"10.218.{third}.254",
        "IPRange": f"10.218.{third}.128/25", "AuxiliaryAddresses": {"r": f"10.218.{third}.2"}}]}
    assert info["Containers"] == {}
    assert f"br-{network.id[:12]}" in host_links(servind)
    assert docker_client.api.inspect_network("e2e-net")["Id"] == network.id
    assert docker_client.api.inspect_network(network.id[:10])["Id"] == network.id
    network.remove()
    assert f"br-{network.id[:12]}" not in host_links(servind)
    with pytest.raises(docker.errors.NotFound, match="network e2e-net not found"):
        docker_client.api.inspect_network("e2e-net")


def test_ipam_config_shows_the_gateway_as_dockerd_does(networks, containers, alpine,
                                                        docker_client):
    third = unique_octet()
    given = networks.create("e2e-subnet-only", ipam=ipam(f"10.219.{third}.0/24"))
    chosen = networks.create("e2e-pool-chosen")
    # A subnet given alone is shown alone; a pool the daemon chose comes with its gateway.
    assert docker_client.api.inspect_network(given.id)["IPAM"]["Config"] == [
        {"Subnet": f"10.219.{third}.0/24"}]
    assert set(docker_client.api.inspect_network(chosen.id)["IPAM"]["Config"][0]) == {
        "Subnet", "Gateway"}
    # The gateway is there all the same.
    box = containers.run(alpine, ["sleep", "30"], detach=True, network="e2e-subnet-only")
    box.reload()
    assert box.attrs["NetworkSettings"]["Networks"]["e2e-subnet-only"]["Gateway"] == \
        f"10.219.{third}.1"


def test_subnets_come_from_the_default_pools_without_overlap(networks, docker_client):
    first = networks.create("e2e-auto-1")
    second = networks.create("e2e-auto-2")
    subnets = [docker_client.api.inspect_network(n.id)["IPAM"]["Config"][0]["Subnet"]
               for n in (first, second)]
    assert subnets[0] != subnets[1]
    assert all(s.startswith(("172.", "192.168.")) for s in subnets)


def test_ipam_errors_are_clear_4xx(networks, docker_client):
    third = unique_octet()
    networks.create("e2e-first", ipam=ipam(f"10.219.{third}.0/24"))
    with pytest.raises(docker.errors.APIError) as overlap:
        networks.create("e2e-overlap", ipam=ipam(f"10.219.{third}.0/25"))
    assert overlap.value.status_code == 403
    assert "Pool overlaps with other one on this address space" in str(overlap.value)
    with pytest.raises(docker.errors.APIError) as bad:
        networks.create("e2e-bad", ipam=ipam("10.0.0.0/33"))
    assert bad.value.status_code == 400 and "invalid CIDR address: 10.0.0.0/33" in str(bad.value)
    with pytest.raises(docker.errors.APIError) as gateway:
        networks.create("e2e-bad", ipam=ipam(f"10.220.{third}.0/24", gateway="10.1.1.1"))
    assert gateway.value.status_code == 400
    with pytest.raises(docker.errors.APIError) as duplicate:
        networks.create("e2e-first", check_duplicate=True)
    assert duplicate.value.status_code == 409
    assert "network with name e2e-first already exists" in str(duplicate.value)
    with pytest.raises(docker.errors.NotFound, match='plugin "overlay" not found'):
        networks.create("e2e-overlay", driver="overlay")
    with pytest.raises(docker.errors.APIError) as builtin:
        docker_client.api.remove_network("bridge")
    assert builtin.value.status_code == 403
    assert "bridge is a pre-defined network and cannot be removed" in str(builtin.value)


def test_address_pool_exhaustion(make_servind, tmp_path):
    third = unique_octet()
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"default-address-pools": [
        {"base": f"10.221.{third}.0/24", "size": 25}]}))
    daemon = make_servind("--config-file", str(config))
    client = daemon.client()
    try:
        made = [client.networks.create(f"pool-{n}") for n in range(2)]
        subnets = sorted(client.api.inspect_network(n.id)["IPAM"]["Config"][0]["Subnet"]
                         for n in made)
        assert subnets == [f"10.221.{third}.0/25", f"10.221.{third}.128/25"]
        with pytest.raises(docker.errors.APIError) as exhausted:
            client.networks.create("pool-2")
        assert exhausted.value.status_code == 403
        assert ("could not find an available, non-overlapping IPv4 address pool among the "
                "defaults to assign to the network") in str(exhausted.value)
        assert sorted(client.networks.prune()["NetworksDeleted"]) == ["pool-0", "pool-1"]
    finally:
        client.close()


def test_list_filters(networks, docker_client):
    labelled = networks.create("e2e-filter-a", labels={"env": "ci"})
    networks.create("e2e-filter-b")

    def names(**filters) -> set[str]:
        return {n["Name"] for n in docker_client.api.networks(filters=filters)}

    assert names(name="e2e-filter") == {"e2e-filter-a", "e2e-filter-b"}
    assert names(id=labelled.id[:12]) == {"e2e-filter-a"}
    assert names(label="env=ci") == {"e2e-filter-a"}
    assert names(type="builtin") == {"bridge", "host", "none"}
    assert {"bridge", "host", "none"}.isdisjoint(names(type="custom"))
    assert names(driver="null") == {"none"}
    assert {"e2e-filter-a", "e2e-filter-b"} <= names(dangling="true")
    assert "bridge" not in names(dangling="true")
    with pytest.raises(docker.errors.APIError, match="invalid filter"):
        docker_client.api.networks(filters={"nosuch": "x"})


def test_prune_removes_unused_networks_with_labels(networks, docker_client):
    networks.create("e2e-prune-keep")
    networks.create("e2e-prune-go", labels={"prune": "yes"})
    deleted = docker_client.api.prune_networks(filters={"label": "prune=yes"})["NetworksDeleted"]
    assert deleted == ["e2e-prune-go"]
    assert [n.name for n in networks.list(names=["e2e-prune-keep"])] == ["e2e-prune-keep"]


def test_cli_network_commands(docker_cli, networks):
    third = unique_octet()
    created = docker_cli("network", "create", "--subnet", f"10.222.{third}.0/24",
                         "--label", "via=cli", "e2e-cli").stdout.strip()
    assert len(created) == 64
    listed = docker_cli("network", "ls", "--filter", "label=via=cli", "--format",
                        "{{.Name}} {{.Driver}} {{.Scope}}").stdout.split("\n")
    assert listed[0] == "e2e-cli bridge local"
    subnet = docker_cli("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}",
                        "e2e-cli").stdout.strip()
    assert subnet == f"10.222.{third}.0/24"
    assert docker_cli("network", "rm", "e2e-cli").stdout.strip() == "e2e-cli"
    failed = docker_cli("network", "create", "--subnet", "300.1.0.0/16", "e2e-cli-bad",
                        check=False)
    assert failed.returncode != 0


def test_networks_survive_a_restart_and_a_kill(make_servind):
    daemon = make_servind()
    client = daemon.client()
    network = client.networks.create("kept")
    subnet = client.api.inspect_network(network.id)["IPAM"]["Config"][0]["Subnet"]
    client.close()
    daemon.restart()
    client = daemon.client()
    assert client.api.inspect_network("kept")["IPAM"]["Config"][0]["Subnet"] == subnet
    assert f"br-{network.id[:12]}" in host_links(daemon)
    client.close()
    daemon.kill9()
    daemon.start()
    client = daemon.client()
    assert client.api.inspect_network("kept")["Id"] == network.id
    client.networks.get("kept").remove()
    client.close()


def test_two_daemons_side_by_side_keep_apart(make_servind):
    first, second = make_servind(), make_servind()
    bridges = []
    for daemon in (first, second):
        client = daemon.client()
        bridges.append(client.api.inspect_network("bridge")["Options"][
            "com.docker.network.bridge.name"])
        client.close()
    assert bridges[0] != bridges[1]
    assert bridges[0] in host_links(first) and bridges[1] in host_links(second)
    first.stop()
    assert bridges[0] not in host_links(first) and bridges[1] in host_links(second)


# --- container networking: needs the containers manager's wiring ---

def test_containers_ping_each_other_by_name_and_alias(networks, containers, alpine):
    networks.create("e2e-ping")
    server = containers.run(alpine, ["sleep", "60"], name="e2e-ping-server", detach=True,
                            network="e2e-ping")
    networks.get("e2e-ping").disconnect(server)
    networks.get("e2e-ping").connect(server, aliases=["db"])
    for target in ("e2e-ping-server", "db", server.id[:12]):
        out = containers.run(alpine, ["ping", "-c", "1", "-W", "2", target], network="e2e-ping",
                             remove=True)
        assert b"1 packets received" in out


def test_published_tcp_and_udp_ports_reach_the_container_from_loopback(containers, udpecho):
    container = containers.run(
        udpecho, ["sh", "-c", "nc -ll -p 80 -e cat & udpecho 81 & wait"], detach=True,
        ports={"80/tcp": ("127.0.0.1", None), "81/udp": None})
    container.reload()
    ports = container.attrs["NetworkSettings"]["Ports"]
    tcp_port = int(ports["80/tcp"][0]["HostPort"])
    udp_port = int(ports["81/udp"][0]["HostPort"])
    assert ports["80/tcp"][0]["HostIp"] == "127.0.0.1"

    def tcp_echo() -> bytes:
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=5) as sock:
            sock.sendall(b"hello\n")
            return sock.recv(100)

    def udp_echo() -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1)
            sock.sendto(b"ping\n", ("127.0.0.1", udp_port))
            try:
                return sock.recv(100)
            except socket.timeout:
                return b""

    # The servers in the container may still be starting: the proxy then closes at once.
    assert wait_until(tcp_echo) == b"hello\n"
    assert wait_until(udp_echo) == b"ping\n"


def test_static_addresses_and_inspect_containers(networks, containers, alpine, docker_client):
    third = unique_octet()
    network = networks.create("e2e-static", ipam=ipam(f"10.223.{third}.0/24"))
    container = containers.create(alpine, ["sleep", "60"], name="e2e-static-c")
    network.connect(container, ipv4_address=f"10.223.{third}.50")
    container.start()
    info = docker_client.api.inspect_network(network.id)["Containers"][container.id]
    assert info["IPv4Address"] == f"10.223.{third}.50/24"
    assert info["MacAddress"] == f"02:42:0a:df:{third:02x}:32"


def test_host_none_and_container_network_modes(containers, alpine):
    out = containers.run(alpine, ["ip", "-o", "link"], network_mode="none", remove=True)
    assert b"eth0" not in out
    box = containers.run(alpine, ["sleep", "60"], detach=True)
    out = containers.run(alpine, ["hostname", "-i"], network_mode=f"container:{box.id}",
                         remove=True)
    box.reload()
    assert out.decode().strip() == box.attrs["NetworkSettings"]["IPAddress"]


def test_cli_run_on_the_default_and_a_user_network(docker_cli, networks, containers, alpine):
    # The CLI names the default network "default" in EndpointsConfig.
    assert docker_cli("run", "--rm", "alpine", "sh", "-c", "ip -o -4 addr show eth0 | wc -l"
                      ).stdout.strip() == "1"
    third = unique_octet()
    docker_cli("network", "create", "--subnet", f"10.224.{third}.0/24", "e2e-cli-net")
    try:
        docker_cli("run", "-d", "--name", "e2e-cli-db", "--network", "e2e-cli-net",
                   "--network-alias", "database", "alpine", "sleep", "60")
        out = docker_cli("run", "--rm", "--network", "e2e-cli-net", "alpine",
                         "sh", "-c", "ping -c1 -W2 database >/dev/null && echo reached").stdout
        assert out.strip() == "reached"
    finally:
        docker_cli("rm", "-f", "e2e-cli-db", check=False)
        docker_cli("network", "rm", "e2e-cli-net", check=False)


def test_legacy_links_on_the_default_bridge(docker_cli, containers, alpine):
    docker_cli("run", "-d", "--name", "e2e-linked-db", "alpine", "sleep", "60")
    hosts = docker_cli("run", "--rm", "--link", "e2e-linked-db:db", "alpine",
                       "sh", "-c", "cat /etc/hosts; ping -c1 -W2 db >/dev/null && echo reached"
                       ).stdout
    assert "reached" in hosts
    assert any(line.split()[1:2] == ["db"] or "db" in line.split()[1:]
               for line in hosts.splitlines() if line and not line.startswith("#"))
    # no name resolution on the default bridge without a link, as under dockerd
    result = docker_cli("run", "--rm", "alpine", "ping", "-c1", "-W1", "e2e-linked-db",
                        check=False)
    assert result.returncode != 0


def test_etc_hosts_lists_added_hosts_then_links_then_the_container_itself(docker_cli,
                                                                          containers, alpine):
    docker_cli("run", "-d", "--name", "e2e-hosts-db", "alpine", "sleep", "60")
    lines = docker_cli("run", "--rm", "--add-host", "foo:10.1.2.3", "--link",
                       "e2e-hosts-db:db", "--hostname", "h1", "--domainname", "ex.org",
                       "alpine", "cat", "/etc/hosts").stdout.splitlines()
    # As dockerd writes it: after the base entries, --add-host, then links, then the
    # container's own address with its fully qualified name first.
    assert lines[6] == "10.1.2.3\tfoo"
    assert lines[7].split("\t")[1].split()[0] == "db"
    assert lines[8].split("\t")[1] == "h1.ex.org h1" and len(lines) == 9


def test_connect_and_disconnect_a_running_container(networks, containers, alpine,
                                                    docker_client):
    third = unique_octet()
    network = networks.create("e2e-live", ipam=ipam(f"10.226.{third}.0/24"))
    box = containers.run(alpine, ["sleep", "60"], detach=True)

    def interfaces() -> set[str]:
        pid = docker_client.api.inspect_container(box.id)["State"]["Pid"]
        return {line.split(":")[0].strip()
                for line in open(f"/proc/{pid}/net/dev").read().splitlines()[2:]}

    assert interfaces() == {"lo", "eth0"}
    network.connect(box, aliases=["late"])
    assert interfaces() == {"lo", "eth0", "eth1"}
    settings = docker_client.api.inspect_container(box.id)["NetworkSettings"]["Networks"]
    assert settings["e2e-live"]["IPAddress"].startswith(f"10.226.{third}.")
    assert "late" in settings["e2e-live"]["Aliases"]
    with pytest.raises(docker.errors.APIError) as err:
        network.connect(box)
    assert err.value.status_code == 403 and "already exists in network" in err.value.explanation
    network.disconnect(box)
    assert interfaces() == {"lo", "eth0"}
    assert "e2e-live" not in docker_client.api.inspect_container(box.id)[
        "NetworkSettings"]["Networks"]
    lonely = containers.run(alpine, ["sleep", "60"], detach=True, network_mode="none")
    with pytest.raises(docker.errors.APIError) as err:
        network.connect(lonely)
    assert err.value.status_code == 400
