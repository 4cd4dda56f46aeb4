"""Log drivers (json-file, local, none) and size rotation, through the docker SDK and CLI."""

from __future__ import annotations

import time
from pathlib import Path

import docker.errors
import pytest
from docker.types import LogConfig

from tests.support.waiting import wait_until


def log_files(daemon, container_id: str) -> list[Path]:
    directory = daemon.data_root / "containers" / container_id
    return sorted(p for p in directory.iterdir() if p.name.startswith("container.log"))


def numbers_in(output: bytes) -> list[int]:
    return [int(text) for text in output.decode().split()]


def test_rotation_bounds_the_files_and_logs_read_across_them(docker_cli, docker_client, servind,
                                                            containers, alpine):
    container_id = docker_cli("run", "-d", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
                              alpine, "sh", "-c", "seq 1 2000").stdout.strip()
    assert docker_client.api.wait(container_id)["StatusCode"] == 0
    files = log_files(servind, container_id)
    assert [p.name for p in files] == ["container.log", "container.log.1", "container.log.2"]
    assert all(p.stat().st_size < 20_000 for p in files)

    # What is kept is the end of the output, whole and in order, across the three files.
    kept = numbers_in(docker_cli("logs", container_id, text=False).stdout)
    assert kept == list(range(kept[0], 2001))
    assert 1 < kept[0] and len(kept) >= 30
    assert numbers_in(docker_cli("logs", "--tail", "5", container_id, text=False).stdout) == \
        list(range(1996, 2001))
    # A tail longer than the live file reaches into the rotated ones.
    live_lines = files[0].read_text().count("\n")
    tail = live_lines + 7
    assert numbers_in(docker_client.api.logs(container_id, tail=tail)) == \
        list(range(2001 - tail, 2001))

    info = docker_client.api.inspect_container(container_id)
    assert info["HostConfig"]["LogConfig"] == {"Type": "json-file",
                                               "Config": {"max-size": "1k", "max-file": "3"}}
    assert info["LogPath"] == str(files[0])


def test_follow_goes_on_across_rotations(docker_client, servind, containers, alpine):
    container = containers.run(
        alpine, ["sh", "-c", "sleep 1; i=1; while [ $i -le 300 ]; do echo $i; i=$((i+1)); "
                 "if [ $((i % 50)) -eq 0 ]; then sleep 0.2; fi; done"],
        detach=True, log_config=LogConfig(type="json-file",
                                          config={"max-size": "2k", "max-file": "10"}))
    got = b"".join(container.logs(stream=True, follow=True))
    assert numbers_in(got) == list(range(1, 301))
    assert len(log_files(servind, container.id)) > 3


def test_local_driver_defaults_and_no_log_path(docker_client, servind, containers, alpine):
    container = containers.run(alpine, ["sh", "-c", "echo hello; echo oops >&2"], detach=True,
                               log_config=LogConfig(type="local"))
    container.wait()
    assert container.logs() == b"hello\noops\n"
    assert container.logs(stderr=False) == b"hello\n"
    info = docker_client.api.inspect_container(container.id)
    assert info["HostConfig"]["LogConfig"] == {"Type": "local", "Config": {}}
    assert info["LogPath"] == ""  # dockerd keeps the local driver's files private


def test_default_driver_is_json_file(docker_client, containers, alpine):
    container = containers.create(alpine, ["true"])
    info = docker_client.api.inspect_container(container.id)
    assert info["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}


def test_none_driver_keeps_no_log_but_attach_works(docker_cli, docker_client, servind,
                                                  containers, alpine):
    result = docker_cli("run", "--rm", "--log-driver", "none", alpine, "echo", "attached")
    assert result.stdout == "attached\n"

    container = containers.run(alpine, ["echo", "unlogged"], detach=True,
                               log_config=LogConfig(type="none"))
    container.wait()
    assert log_files(servind, container.id) == []
    with pytest.raises(docker.errors.APIError) as info:
        container.logs()
    assert info.value.status_code == 501
    assert info.value.explanation == "configured logging driver does not support reading"
    failed = docker_cli("logs", container.id, check=False)
    assert failed.returncode != 0
    assert "configured logging driver does not support reading" in failed.stderr
    inspect = docker_client.api.inspect_container(container.id)
    assert inspect["HostConfig"]["LogConfig"]["Type"] == "none"
    assert inspect["LogPath"] == ""


@pytest.mark.parametrize("log_config, message", [
    ({"Type": "foo", "Config": {}}, "logger: no log driver named 'foo' is registered"),
    ({"Type": "json-file", "Config": {"bar": "1"}}, "unknown log opt 'bar' for json-file log driver"),
    ({"Type": "local", "Config": {"bar": "1"}}, "unknown log opt 'bar' for log driver local"),
    ({"Type": "json-file", "Config": {"max-size": "lots"}},
     "failed to initialize logging driver: invalid size: 'lots'"),
    ({"Type": "json-file", "Config": {"max-size": "1m", "max-file": "0"}},
     "failed to initialize logging driver: max-file cannot be less than 1"),
])
def test_bad_log_config_is_refused_at_create(docker_client, alpine, log_config, message):
    before = docker_client.api.containers(all=True)
    with pytest.raises(docker.errors.APIError) as info:
        docker_client.api.create_container(
            alpine, ["true"], host_config={"LogConfig": log_config})
    assert info.value.status_code == 400
    assert info.value.explanation == message
    assert docker_client.api.containers(all=True) == before


def test_cli_reports_bad_log_options(docker_cli, alpine):
    result = docker_cli("create", "--log-driver", "syslogd", alpine, "true", check=False)
    assert result.returncode != 0
    assert "logger: no log driver named 'syslogd' is registered" in result.stderr
    result = docker_cli("create", "--log-opt", "max-size=10q", alpine, "true", check=False)
    assert "failed to initialize logging driver: invalid size: '10q'" in result.stderr


def test_rotation_resumes_after_a_daemon_restart(make_servind, test_images):
    daemon = make_servind()
    client = daemon.client()
    client.images.pull("alpine", tag="latest")
    container = client.containers.run(
        "alpine", ["sh", "-c", "while true; do seq 1 20; sleep 0.1; done"], detach=True,
        log_config=LogConfig(type="local", config={"max-size": "4k", "max-file": "2",
                                                   "compress": "false"}))
    live = daemon.data_root / "containers" / container.id / "container.log"
    try:
        wait_until(lambda: len(log_files(daemon, container.id)) == 2)
        daemon.kill9()
        wait_until(lambda: live.stat().st_size > 10_000)  # nobody rotates while it is down
        daemon.start()
        client = daemon.client()
        # The adopted container's log is rotated again, and stays bounded.
        wait_until(lambda: live.stat().st_size < 10_000)
        time.sleep(2)
        assert len(log_files(daemon, container.id)) == 2
        assert live.stat().st_size < 10_000
        kept = numbers_in(client.api.logs(container.id, tail=40))
        assert len(kept) == 40 and all(1 <= n <= 20 for n in kept)
    finally:
        if daemon.running:
            daemon.client().api.remove_container(container.id, force=True)
