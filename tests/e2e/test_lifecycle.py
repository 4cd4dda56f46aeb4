"""Lifecycle operations: restart policies, pause, restart, rename, list filters, attach."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp

import docker.errors
import pytest

from servin.http.framing import deframe
from tests.support.waiting import wait_until


def state(client, container_id):
    return client.api.inspect_container(container_id)["State"]


def test_on_failure_restarts_up_to_the_limit(containers, alpine, docker_client):
    container = containers.run(alpine, ["sh", "-c", "exit 3"], detach=True,
                               restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    assert wait_until(lambda: docker_client.api.inspect_container(container.id)["RestartCount"] == 2
                      and state(docker_client, container.id)["Status"] == "exited")
    time.sleep(1)  # no third restart comes
    info = docker_client.api.inspect_container(container.id)
    assert info["RestartCount"] == 2 and info["State"]["ExitCode"] == 3
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}


def test_on_failure_leaves_a_clean_exit_alone(containers, alpine, docker_client):
    container = containers.run(alpine, ["true"], detach=True,
                               restart_policy={"Name": "on-failure"})
    container.wait()
    time.sleep(0.5)
    assert docker_client.api.inspect_container(container.id)["RestartCount"] == 0


def test_always_restarts_until_stopped(containers, alpine, docker_client):
    container = containers.run(alpine, ["sh", "-c", "sleep 0.2"], detach=True,
                               restart_policy={"Name": "always"})
    assert wait_until(
        lambda: docker_client.api.inspect_container(container.id)["RestartCount"] >= 2)
    container.stop(timeout=1)
    assert state(docker_client, container.id)["Status"] == "exited"
    count = docker_client.api.inspect_container(container.id)["RestartCount"]
    time.sleep(1)
    assert docker_client.api.inspect_container(container.id)["RestartCount"] == count
    assert state(docker_client, container.id)["Status"] == "exited"


def test_bad_restart_policy_is_400(containers, alpine):
    with pytest.raises(docker.errors.APIError) as err:
        containers.create(alpine, ["true"], restart_policy={"Name": "sometimes"})
    assert err.value.status_code == 400
    assert "invalid restart policy 'sometimes'" in err.value.explanation


def test_pause_and_unpause(containers, alpine, docker_client):
    container = containers.run(alpine, ["sh", "-c", "while :; do echo tick; sleep 0.1; done"],
                               detach=True)
    container.pause()
    assert state(docker_client, container.id)["Paused"] is True
    assert state(docker_client, container.id)["Status"] == "paused"
    ps = docker_client.api.containers(filters={"status": "paused"})
    assert [c["Id"] for c in ps] == [container.id]
    assert ps[0]["Status"].endswith("(Paused)")
    frozen = len(container.logs())
    time.sleep(0.5)
    assert len(container.logs()) == frozen  # frozen: no output
    with pytest.raises(docker.errors.APIError) as err:
        container.pause()
    assert err.value.status_code == 409 and "is already paused" in err.value.explanation
    container.unpause()
    assert wait_until(lambda: len(container.logs()) > frozen)
    with pytest.raises(docker.errors.APIError) as err:
        container.unpause()
    assert err.value.status_code == 409 and "is not paused" in err.value.explanation


def test_stop_of_a_paused_container(containers, alpine, docker_client):
    container = containers.run(alpine, ["sleep", "60"], detach=True)
    container.pause()
    container.stop(timeout=1)
    assert state(docker_client, container.id)["Status"] == "exited"


def test_restart_runs_the_command_again(containers, alpine, docker_client):
    container = containers.run(alpine, ["sh", "-c", "echo run; sleep 60"], detach=True)
    first = state(docker_client, container.id)["StartedAt"]
    container.restart(timeout=1)
    after = state(docker_client, container.id)
    assert after["Running"] and after["StartedAt"] != first
    assert wait_until(lambda: container.logs() == b"run\nrun\n")


def test_rename(containers, alpine, docker_client):
    container = containers.create(alpine, ["true"], name="before-rename")
    containers.create(alpine, ["true"], name="taken-name")
    container.rename("after-rename")
    assert docker_client.api.inspect_container(container.id)["Name"] == "/after-rename"
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_container("before-rename")
    with pytest.raises(docker.errors.APIError) as err:
        container.rename("taken-name")
    assert err.value.status_code == 409
    with pytest.raises(docker.errors.APIError) as err:
        container.rename("bad name")
    assert err.value.status_code == 400
    # the old name is free again
    assert containers.create(alpine, ["true"], name="before-rename").name == "before-rename"


def test_list_filters(containers, alpine, docker_client):
    api = docker_client.api
    first = containers.create(alpine, ["true"], name="flt-first", labels={"team": "a"})
    done = containers.run(alpine, ["sh", "-c", "exit 4"], name="flt-done", detach=True,
                          labels={"team": "b"})
    done.wait()
    up = containers.run(alpine, ["sleep", "60"], name="flt-up", detach=True,
                        labels={"team": "a", "tier": "web"})
    ours = {first.id, done.id, up.id}

    def ids(**kwargs):
        return [c["Id"] for c in api.containers(**kwargs) if c["Id"] in ours]

    assert ids(all=True, filters={"label": "team=a"}) == [up.id, first.id]
    assert ids(all=True, filters={"label": ["team=a", "tier"]}) == [up.id]
    assert ids(filters={"status": "exited"}) == [done.id]  # a status filter implies all
    assert ids(filters={"status": "created"}) == [first.id]
    assert ids(all=True, filters={"exited": 4}) == [done.id]
    assert ids(all=True, filters={"exited": 0}) == []
    assert ids(all=True, filters={"name": "flt-d"}) == [done.id]
    assert ids(all=True, filters={"id": up.id[:10]}) == [up.id]
    assert ids(all=True, filters={"before": "flt-up"}) == [done.id, first.id]
    assert ids(all=True, filters={"since": "flt-first"}) == [up.id, done.id]
    assert set(ids(all=True, filters={"ancestor": alpine})) == ours
    assert ids(all=True, filters={"ancestor": "nosuch:image"}) == []
    assert set(ids(all=True, filters={"network": "bridge"})) == ours
    assert ids(all=True, filters={"is-task": "true"}) == []
    for bad in ({"status": "sleeping"}, {"colour": "red"}, {"exited": "x"}):
        with pytest.raises(docker.errors.APIError) as err:
            api.containers(all=True, filters=bad)
        assert err.value.status_code == 400


def test_cli_ps_filters(docker_cli, containers, alpine):
    docker_cli("run", "-d", "--name", "cli-flt", "--label", "x=1", "alpine", "sleep", "60")
    out = docker_cli("ps", "--filter", "label=x=1", "--format", "{{.Names}}").stdout.split()
    assert out == ["cli-flt"]


def _hijack(daemon, container_id, query):
    """A raw attach connection, as the docker CLI makes it."""
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(daemon.socket_path))
    sock.sendall(f"POST /v1.41/containers/{container_id}/attach?{query} HTTP/1.1\r\n"
                 "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return sock


def test_detach_keys_end_the_attach_not_the_container(containers, alpine, docker_client,
                                                      servind):
    container = containers.run(alpine, ["cat"], detach=True, stdin_open=True)
    sock = _hijack(servind, container.id,
                   "stream=1&stdin=1&stdout=1&detachKeys=ctrl-x,x")
    sock.sendall(b"abc\n")
    sock.settimeout(10)
    got = b""
    while b"abc\n" not in b"".join(d for _, d in deframe(got)[0]):
        got += sock.recv(4096)
    sock.sendall(b"\x18x")
    assert sock.recv(4096) == b""  # the server ended the attach
    sock.close()
    assert state(docker_client, container.id)["Running"] is True


def test_bad_detach_keys_are_400(containers, alpine, docker_client):
    container = containers.run(alpine, ["cat"], detach=True, stdin_open=True)
    response = docker_client.api._post(
        docker_client.api._url("/containers/{0}/attach", container.id),
        params={"stream": 1, "detachKeys": "ctrl-1"})
    assert response.status_code == 400
    assert "Invalid detach keys" in response.json()["message"]


def test_attach_over_websocket(containers, alpine, servind):
    container = containers.create(alpine, ["sh", "-c", "read line; echo got $line"],
                                  stdin_open=True)

    async def talk() -> bytes:
        connector = aiohttp.UnixConnector(path=str(servind.socket_path))
        async with aiohttp.ClientSession(connector=connector) as session:
            url = (f"http://docker/v1.41/containers/{container.id}/attach/ws"
                   "?stdin=1&stdout=1&stream=1")
            async with session.ws_connect(url) as ws:
                await asyncio.to_thread(container.start)
                await ws.send_bytes(b"hello\n")
                received = b""
                async for message in ws:
                    received += message.data if isinstance(message.data, bytes) else b""
                return received

    assert asyncio.run(asyncio.wait_for(talk(), 20)) == b"got hello\n"


def test_daemon_restart_brings_back_always_containers(make_servind, test_images):
    daemon = make_servind("--live-restore=false")
    client = daemon.client()
    client.images.pull("alpine", tag="latest")
    always = client.containers.run("alpine", ["sleep", "300"], detach=True,
                                   restart_policy={"Name": "always"})
    unless = client.containers.run("alpine", ["sleep", "300"], detach=True,
                                   restart_policy={"Name": "unless-stopped"})
    unless.stop(timeout=1)
    plain = client.containers.run("alpine", ["sleep", "300"], detach=True)
    daemon.stop()  # without live restore the containers are stopped
    daemon.start()
    client = daemon.client()
    assert state(client, always.id)["Status"] == "running"
    assert state(client, unless.id)["Status"] == "exited"  # stopped by hand stays down
    assert state(client, plain.id)["Status"] == "exited"
    for container_id in (always.id, unless.id, plain.id):
        client.api.remove_container(container_id, force=True)


def test_prune_removes_stopped_containers_by_label_and_age(containers, alpine, docker_client):
    api = docker_client.api
    keep_running = containers.run(alpine, ["sleep", "60"], detach=True, labels={"p": "1"})
    old = containers.run(alpine, ["sh", "-c", "head -c 5000 /dev/zero > /junk"], detach=True,
                         labels={"p": "1"})
    old.wait()
    other = containers.create(alpine, ["true"], labels={"p": "2"})
    assert api.prune_containers(filters={"until": "1h"})["ContainersDeleted"] is None
    result = api.prune_containers(filters={"label": "p=1"})
    assert result["ContainersDeleted"] == [old.id]
    assert result["SpaceReclaimed"] >= 5000
    remaining = {c["Id"] for c in api.containers(all=True)}
    assert {keep_running.id, other.id} <= remaining and old.id not in remaining
    with pytest.raises(docker.errors.APIError) as err:
        api.prune_containers(filters={"colour": "red"})
    assert err.value.status_code == 400


def test_sizes_in_inspect_and_list(containers, alpine, docker_client):
    container = containers.run(alpine, ["sh", "-c", "head -c 12345 /dev/zero > /blob"],
                               detach=True)
    container.wait()
    info = docker_client.api.inspect_container(container.id)
    assert "SizeRw" not in info
    sized = docker_client.api._result(docker_client.api._get(
        docker_client.api._url("/containers/{0}/json", container.id), params={"size": 1}), True)
    assert sized["SizeRw"] >= 12345
    assert sized["SizeRootFs"] > sized["SizeRw"]
    listed = [c for c in docker_client.api.containers(all=True, size=True)
              if c["Id"] == container.id][0]
    assert listed["SizeRw"] == sized["SizeRw"]


def test_delete_link_never_removes_the_container(containers, alpine, docker_client):
    container = containers.create(alpine, ["true"], name="linked-name")
    with pytest.raises(docker.errors.APIError) as err:
        docker_client.api.remove_container("linked-name", link=True)
    assert err.value.status_code == 409
    assert docker_client.api.inspect_container(container.id)["Id"] == container.id


def test_update_applies_limits_live_and_restart_policy(containers, alpine, docker_client):
    container = containers.run(alpine, ["sleep", "60"], detach=True)
    result = docker_client.api.update_container(container.id, mem_limit="64m",
                                                memswap_limit="128m", cpu_shares=512,
                                                restart_policy={"Name": "on-failure",
                                                                "MaximumRetryCount": 3})
    assert result["Warnings"] == []
    info = docker_client.api.inspect_container(container.id)
    assert info["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert info["HostConfig"]["CpuShares"] == 512
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    pid = info["State"]["Pid"]
    cgroup = [line.split(":", 2)[2] for line in open(f"/proc/{pid}/cgroup").read().splitlines()
              if line.split(":")[1] == "memory"][0]
    limit = open(f"/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes").read()
    assert int(limit) == 64 * 1024 * 1024


def test_update_refuses_bad_values(containers, alpine, docker_client):
    container = containers.create(alpine, ["true"], auto_remove=True)
    with pytest.raises(docker.errors.APIError) as err:
        docker_client.api.update_container(container.id, mem_limit="1k")
    assert err.value.status_code == 400 and "Minimum memory limit" in err.value.explanation
    with pytest.raises(docker.errors.APIError) as err:
        docker_client.api.update_container(container.id, restart_policy={"Name": "always"})
    assert err.value.status_code == 400 and "AutoRemove" in err.value.explanation
