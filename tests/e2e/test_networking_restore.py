"""Networking across kill -9 of servind: live-restored containers keep their connectivity."""

from __future__ import annotations

import socket
import time


def echo_through(port: int, attempts: int = 50) -> bytes:
    """What a TCP echo server behind 127.0.0.1:port answers (bounded retries while it starts)."""
    for _ in range(attempts):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(b"ping\n")
                answer = sock.recv(100)
                if answer:
                    return answer
        except OSError:
            pass
        time.sleep(0.1)
    return b""


def test_ports_and_names_survive_a_daemon_crash(make_servind, test_images):
    daemon = make_servind()
    client = daemon.client()
    client.images.pull("alpine", tag="latest")
    network = client.networks.create("lr-net", ipam={"Config": [{"Subnet": "10.225.7.0/24"}]})
    server = client.containers.run("alpine", ["nc", "-ll", "-p", "80", "-e", "cat"],
                                   detach=True, name="lr-db", network="lr-net",
                                   ports={"80/tcp": ("127.0.0.1", None)})
    server.reload()
    port = int(server.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
    assert echo_through(port) == b"ping\n"

    daemon.kill9()
    assert echo_through(port, attempts=3) == b""  # the userland proxy died with servind
    daemon.start()
    client = daemon.client()

    assert echo_through(port) == b"ping\n"  # the adopted container's port is back
    out = client.containers.run("alpine", ["sh", "-c", "ping -c1 -W2 lr-db >/dev/null && "
                                           "echo reached"], network="lr-net", remove=True)
    assert out == b"reached\n"  # and its name resolves on the network again
    assert client.api.inspect_container("lr-db")["NetworkSettings"]["Networks"]["lr-net"][
        "IPAddress"].startswith("10.225.7.")
    client.api.remove_container("lr-db", force=True)
    client.api.remove_network(network.id)


def test_a_restart_with_the_bridges_as_wanted_loads_no_netlink_library(make_servind,
                                                                        test_images):
    daemon = make_servind()
    client = daemon.client()
    client.images.pull("alpine", tag="latest")
    network = client.networks.create("nl-net", ipam={"Config": [{"Subnet": "10.225.9.0/24"}]})
    for name, on in (("nl-default", "bridge"), ("nl-user", "nl-net")):
        client.containers.run("alpine", ["sleep", "300"], detach=True, name=name, network=on)
    daemon.stop()  # live restore: the containers keep running
    before = daemon.log_path.stat().st_size
    daemon.start()
    client = daemon.client()

    assert {c.name for c in client.containers.list()} == {"nl-default", "nl-user"}
    restarted = daemon.log_path.read_bytes()[before:]
    assert b"engine_started" in restarted and b"netlink_library_loading" not in restarted
    # A new container needs links made: the library loads then.
    client.containers.run("alpine", ["true"], remove=True)
    assert b"netlink_library_loading" in daemon.log_path.read_bytes()[before:]
    client.api.remove_container("nl-default", force=True)
    client.api.remove_container("nl-user", force=True)
    client.api.remove_network(network.id)
