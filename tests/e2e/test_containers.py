"""Container lifecycle through the docker SDK for Python against a real servind."""

from __future__ import annotations

import os
import socket
import time

import docker.errors
import pytest

from servin.timefmt import parse_rfc3339_ns
from servin.http.framing import deframe


def test_run_echo_returns_its_output(containers, alpine):
    assert containers.run(alpine, ["echo", "hi"], remove=True) == b"hi\n"


def test_created_container_is_inspectable(containers, alpine, docker_client):
    container = containers.create(alpine, ["sh", "-c", "exit 3"], name="inspect-me",
                                  labels={"tier": "test"}, environment=["FOO=bar"],
                                  working_dir="/tmp", hostname="box")
    info = docker_client.api.inspect_container("inspect-me")
    assert info["Id"] == container.id
    assert info["Name"] == "/inspect-me"
    assert info["State"]["Status"] == "created"
    assert info["State"]["StartedAt"] == "0001-01-01T00:00:00Z"
    assert info["Path"] == "sh" and info["Args"] == ["-c", "exit 3"]
    assert info["Config"]["Labels"] == {"tier": "test"}
    assert "FOO=bar" in info["Config"]["Env"]
    assert any(e.startswith("PATH=") for e in info["Config"]["Env"])  # from the image
    assert info["Config"]["WorkingDir"] == "/tmp"
    assert info["Config"]["Hostname"] == "box"
    assert info["Image"].startswith("sha256:")
    assert info["HostConfig"]["NetworkMode"] == "default"
    assert info["GraphDriver"]["Name"] == "overlay2"
    assert os.path.isdir(info["GraphDriver"]["Data"]["UpperDir"])


def test_a_lone_surrogate_in_the_config_is_kept_and_shown(containers, alpine, docker_client):
    # The SDK sends it as the JSON escape \ud800, which a client may do; dockerd keeps it.
    container = containers.create(alpine, ["true"], environment=["ODD=\ud800"])
    assert "ODD=\ud800" in docker_client.api.inspect_container(container.id)["Config"]["Env"]
    assert container.id in {c["Id"] for c in docker_client.api.containers(all=True)}


def test_exit_code_and_times_are_recorded(containers, alpine, docker_client):
    container = containers.run(alpine, ["sh", "-c", "exit 3"], detach=True)
    assert container.wait()["StatusCode"] == 3
    info = docker_client.api.inspect_container(container.id)
    assert info["State"]["Status"] == "exited"
    assert info["State"]["ExitCode"] == 3
    assert info["State"]["Running"] is False and info["State"]["Pid"] == 0
    assert 0 < parse_rfc3339_ns(info["State"]["StartedAt"]) <= parse_rfc3339_ns(
        info["State"]["FinishedAt"])
    assert info["State"]["FinishedAt"].endswith("Z")


def test_container_sees_its_config(containers, alpine):
    out = containers.run(alpine, ["sh", "-c", "id -u; id -g; pwd; hostname; echo $FOO"],
                         user="daemon", working_dir="/tmp", hostname="inner",
                         environment={"FOO": "bar"}, remove=True)
    assert out.decode().split() == ["1", "1", "/tmp", "inner", "bar"]


def test_default_network_is_the_bridge(containers, alpine, docker_client, servind):
    container = containers.run(alpine, ["sh", "-c", "cat /proc/net/dev; sleep 30"], detach=True)
    time.sleep(0.5)
    interfaces = {line.split(":")[0].strip()
                  for line in container.logs().decode().splitlines()[2:]}
    assert interfaces == {"lo", "eth0"}
    settings = docker_client.api.inspect_container(container.id)["NetworkSettings"]
    bridge = settings["Networks"]["bridge"]
    gateway = servind.bip.split("/")[0]
    assert bridge["Gateway"] == gateway
    assert bridge["IPAddress"].rsplit(".", 1)[0] == gateway.rsplit(".", 1)[0]
    assert bridge["MacAddress"].startswith("02:42:")


def test_none_and_host_network_modes(containers, alpine):
    none = containers.run(alpine, ["cat", "/proc/net/dev"], network_mode="none", remove=True)
    assert {l.split(":")[0].strip() for l in none.decode().splitlines()[2:]} == {"lo"}
    host = containers.run(alpine, ["hostname"], network_mode="host", remove=True)
    assert host.decode().strip() == socket.gethostname()


def test_logs_stdout_stderr_tail_and_timestamps(containers, alpine, docker_client):
    container = containers.run(alpine, ["sh", "-c", "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three"],
                               detach=True)
    container.wait()
    assert container.logs(stdout=True, stderr=False) == b"one\nthree\n"
    assert container.logs(stdout=False, stderr=True) == b"two\n"
    assert container.logs(tail=1) == b"three\n"
    stamped = container.logs(timestamps=True).decode().splitlines()
    assert len(stamped) == 3 and all(line.split(" ")[0].endswith("Z") for line in stamped)
    raw = docker_client.api.logs(container.id, stdout=True, stderr=True, stream=False)
    assert raw == b"one\ntwo\nthree\n"


def test_logs_follow_streams_until_exit(containers, alpine):
    container = containers.run(alpine, ["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done"],
                               detach=True)
    lines = list(container.logs(stream=True, follow=True))
    assert b"".join(lines) == b"1\n2\n3\n"


def test_logs_since_skips_older_lines(containers, alpine):
    container = containers.run(alpine, ["sh", "-c", "echo early; sleep 2; echo late"],
                               detach=True)
    container.wait()
    stamped = container.logs(timestamps=True).decode().splitlines()
    late = parse_rfc3339_ns(stamped[1].split(" ")[0]) / 1e9
    assert container.logs(since=late - 1) == b"late\n"
    assert container.logs(since=late - 60) == b"early\nlate\n"


def test_logs_need_a_stream(docker_client, containers, alpine):
    container = containers.create(alpine, ["true"])
    with pytest.raises(docker.errors.APIError) as err:
        docker_client.api.logs(container.id, stdout=False, stderr=False)
    assert err.value.status_code == 400
    assert "you must choose at least one stream" in err.value.explanation


def test_tty_output_is_raw(containers, alpine, docker_client):
    container = containers.run(alpine, ["sh", "-c", "tty; echo x"], tty=True, detach=True)
    container.wait()
    out = container.logs()
    assert out.startswith(b"/dev/pts/")
    assert out.endswith(b"x\r\n")


def test_attach_before_start_gets_all_output(containers, alpine, docker_client):
    container = containers.create(alpine, ["sh", "-c", "echo out; echo err >&2"])
    sock = docker_client.api.attach_socket(container.id, params={
        "stdout": 1, "stderr": 1, "stream": 1})
    container.start()
    data = b""
    raw = sock._sock
    raw.settimeout(10)
    while chunk := raw.recv(4096):
        data += chunk
    sock.close()
    frames, rest = deframe(data)
    assert sorted(frames) == [(1, b"out\n"), (2, b"err\n")]
    assert rest == b""


def test_stdin_through_attach(containers, alpine, docker_client):
    container = containers.create(alpine, ["cat"], stdin_open=True)
    sock = docker_client.api.attach_socket(container.id, params={
        "stdin": 1, "stdout": 1, "stream": 1})
    container.start()
    raw = sock._sock
    raw.sendall(b"ping\n")
    raw.settimeout(10)
    got = b""
    while b"ping\n" not in got:
        got += raw.recv(4096)
    sock.close()
    frames, _ = deframe(got)
    assert b"".join(data for _, data in frames) == b"ping\n"


def test_wait_conditions(containers, alpine, docker_client):
    api = docker_client.api
    container = containers.create(alpine, ["sh", "-c", "sleep 1; exit 7"])
    assert api.wait(container.id, condition="not-running")["StatusCode"] == 0  # created
    container.start()
    assert api.wait(container.id, condition="next-exit")["StatusCode"] == 7
    assert api.wait(container.id, condition="not-running")["StatusCode"] == 7
    with pytest.raises(docker.errors.APIError) as err:
        api.wait(container.id, condition="bogus")
    assert err.value.status_code == 400


def test_auto_remove_removes_after_exit(containers, alpine, docker_client):
    container = containers.run(alpine, ["true"], auto_remove=True, detach=True)
    result = docker_client.api.wait(container.id, condition="removed")
    assert result["StatusCode"] == 0
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_container(container.id)


def test_names_are_unique_and_generated(containers, alpine):
    first = containers.create(alpine, ["true"], name="unique-name")
    with pytest.raises(docker.errors.APIError) as err:
        containers.create(alpine, ["true"], name="unique-name")
    assert err.value.status_code == 409
    assert 'The container name "/unique-name" is already in use' in err.value.explanation
    generated = containers.create(alpine, ["true"])
    assert "_" in generated.name and generated.name != first.name


def test_bad_input_is_4xx(docker_client, containers, alpine):
    api = docker_client.api
    with pytest.raises(docker.errors.ImageNotFound) as err:
        containers.create("nosuchimage:1.0", ["true"])
    assert "No such image: nosuchimage:1.0" in err.value.explanation
    with pytest.raises(docker.errors.APIError) as err:
        containers.create(alpine, ["true"], name="bad name!")
    assert err.value.status_code == 400 and "Invalid container name" in err.value.explanation
    response = api._post(api._url("/containers/create"), data=b"{not json",
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("invalid JSON")
    with pytest.raises(docker.errors.NotFound) as err:
        api.inspect_container("doesnotexist")
    assert err.value.explanation == "No such container: doesnotexist"


def test_failed_exec_is_127_with_dockers_message(containers, alpine, docker_client):
    container = containers.create(alpine, ["/no/such/binary"])
    with pytest.raises(docker.errors.APIError) as err:
        container.start()
    assert "no such file or directory" in err.value.explanation.lower()
    info = docker_client.api.inspect_container(container.id)
    assert info["State"]["ExitCode"] == 127
    assert info["State"]["Error"]


def test_list_all_limit_and_shape(containers, alpine, docker_client):
    stopped = containers.create(alpine, ["true"], name="list-stopped", labels={"k": "v"})
    running = containers.run(alpine, ["sleep", "30"], name="list-running", detach=True)
    running_ids = [c["Id"] for c in docker_client.api.containers()]
    assert running.id in running_ids and stopped.id not in running_ids
    every = docker_client.api.containers(all=True)
    entry = next(c for c in every if c["Id"] == stopped.id)
    assert entry["Names"] == ["/list-stopped"]
    assert entry["State"] == "created" and entry["Status"] == "Created"
    assert entry["Labels"] == {"k": "v"} and entry["Image"] == alpine
    assert entry["Command"] == "true"
    up = next(c for c in every if c["Id"] == running.id)
    assert up["State"] == "running" and up["Status"].startswith("Up ")
    assert [c["Id"] for c in docker_client.api.containers(all=True, limit=1)] == [running.id]


def test_list_follows_every_change_after_a_listing(containers, networks, alpine, docker_client):
    """Each change shows in the next list, though the entry was listed (and kept) before."""
    def entry() -> dict:
        return next(c for c in docker_client.api.containers(all=True) if c["Id"] == box.id)

    box = containers.create(alpine, ["sleep", "30"], name="list-follow")
    assert entry()["State"] == "created"
    box.start()
    listed = entry()
    assert listed["State"] == "running" and "bridge" in listed["NetworkSettings"]["Networks"]
    assert listed["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    box.rename("list-followed")
    assert entry()["Names"] == ["/list-followed"]
    box.pause()
    assert (entry()["State"], entry()["Status"].endswith("(Paused)")) == ("paused", True)
    box.unpause()
    network = networks.create("list-follow-net")
    network.connect(box)
    assert set(entry()["NetworkSettings"]["Networks"]) == {"bridge", "list-follow-net"}
    network.disconnect(box)
    assert set(entry()["NetworkSettings"]["Networks"]) == {"bridge"}
    box.kill()
    box.wait()
    stopped = entry()
    assert stopped["State"] == "exited" and stopped["Status"].startswith("Exited (137)")
    assert stopped["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""


def test_listed_status_moves_on_with_the_clock(containers, alpine, docker_client):
    box = containers.run(alpine, ["sleep", "30"], detach=True)

    def status() -> str:
        return next(c["Status"] for c in docker_client.api.containers() if c["Id"] == box.id)

    first = status()
    time.sleep(1.2)  # past the next whole second of the container's uptime
    assert status() != first


def test_a_wait_whose_client_left_ends_quietly(containers, alpine, docker_client, servind):
    box = containers.run(alpine, ["sleep", "30"], detach=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(servind.socket_path))
        sock.sendall(f"POST /v1.41/containers/{box.id}/wait HTTP/1.1\r\nHost: engine\r\n"
                     "Content-Length: 0\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")  # the wait is in place
    log_size = servind.log_path.stat().st_size
    box.kill()
    assert box.wait()["StatusCode"] == 137
    assert docker_client.ping()
    with open(servind.log_path, "rb") as log:
        log.seek(log_size)
        assert b"Traceback" not in log.read()


def test_remove_running_needs_force(containers, alpine, docker_client):
    container = containers.run(alpine, ["sleep", "60"], detach=True)
    with pytest.raises(docker.errors.APIError) as err:
        container.remove()
    assert err.value.status_code == 409
    assert "Stop the container before attempting removal or force remove" in err.value.explanation
    container.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        container.reload()


def test_start_twice_is_not_modified(containers, alpine, docker_client):
    container = containers.run(alpine, ["sleep", "30"], detach=True)
    response = docker_client.api._post(docker_client.api._url("/containers/{0}/start", container.id))
    assert response.status_code == 304


def test_stop_sends_the_stop_signal_then_kills(containers, alpine):
    trapping = containers.run(alpine, ["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done"],
                              detach=True)
    time.sleep(0.5)  # let the shell install its trap
    trapping.stop(timeout=10)
    trapping.reload()
    assert trapping.attrs["State"]["Status"] == "exited"
    assert trapping.attrs["State"]["ExitCode"] == 42
    # pid 1 ignores SIGTERM without a handler: after the timeout comes SIGKILL
    deaf = containers.run(alpine, ["sleep", "60"], detach=True)
    deaf.stop(timeout=1)
    deaf.reload()
    assert deaf.attrs["State"]["ExitCode"] == 137


def test_kill_with_a_named_signal_and_conflict_when_stopped(containers, alpine):
    container = containers.run(alpine, ["sh", "-c", "trap 'exit 9' USR1; while :; do sleep 0.1; done"],
                               detach=True)
    time.sleep(0.5)
    container.kill(signal="USR1")
    assert container.wait()["StatusCode"] == 9
    with pytest.raises(docker.errors.APIError) as err:
        container.kill()
    assert err.value.status_code == 409 and "is not running" in err.value.explanation
    with pytest.raises(docker.errors.APIError) as err:
        containers.run(alpine, ["sleep", "30"], detach=True).kill(signal="SIGNOPE")
    assert err.value.status_code == 400 and "Invalid signal: SIGNOPE" in err.value.explanation


def test_resize_changes_the_tty_size(containers, alpine, docker_client):
    container = containers.run(alpine, ["sh", "-c", "sleep 1; stty size"], tty=True, detach=True)
    docker_client.api.resize(container.id, height=33, width=101)
    container.wait()
    assert container.logs().strip() == b"33 101"
