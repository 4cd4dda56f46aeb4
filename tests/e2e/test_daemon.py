"""The servind process: start-up errors, side-by-side daemons, socket activation, shutdown."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess

import docker
import pytest

from tests.support.servind import SERVIND, SOCKET_ACTIVATE

pytestmark = pytest.mark.e2e


def run_servind(*args: str, tmp_path) -> subprocess.CompletedProcess:
    """Run servind expecting it to refuse to start; its roots are under tmp_path."""
    return subprocess.run([str(SERVIND), "--data-root", str(tmp_path / "data"),
                           "--exec-root", str(tmp_path / "exec"),
                           "--pidfile", str(tmp_path / "servind.pid"), *args],
                          capture_output=True, text=True, timeout=30)


def test_flag_and_file_conflict_stops_start_up(tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"hosts": [f"unix://{tmp_path}/file.sock"]}))
    result = run_servind("--config-file", str(config), "-H", f"unix://{tmp_path}/flag.sock",
                         tmp_path=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"unable to configure the Servin daemon with file {config}: the following directives "
        f"are specified both as a flag and in the configuration file: hosts: "
        f"(from flag: [unix://{tmp_path}/flag.sock], from file: [unix://{tmp_path}/file.sock])"]
    assert not (tmp_path / "flag.sock").exists() and not (tmp_path / "file.sock").exists()
    assert not (tmp_path / "servind.pid").exists()


def test_unknown_config_key_stops_start_up(tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"foo": 1, "log-level": "debug"}))
    result = run_servind("--config-file", str(config), tmp_path=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"unable to configure the Servin daemon with file {config}: the following directives "
        f"don't match any configuration option: foo")


@pytest.mark.parametrize("args, message", [
    (["-H", "http://127.0.0.1:1"], "invalid bind address format: http://127.0.0.1:1"),
    (["--bip", "300.1.1.1/24"], "invalid bip '300.1.1.1/24'"),
    (["--log-level", "loud"], "unable to parse logging level: loud"),
    (["--registry-mirror", "ftp://mirror"], 'invalid mirror: unsupported scheme "ftp"'),
    (["--config-file", "/nonexistent/daemon.json"], "no such file or directory"),
    (["-H", "fd://"], "no sockets found via socket activation"),
])
def test_invalid_values_stop_start_up(tmp_path, args, message):
    result = run_servind(*args, tmp_path=tmp_path)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_non_json_config_file_stops_start_up(tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text("{not json")
    result = run_servind("--config-file", str(config), tmp_path=tmp_path)
    assert result.returncode != 0
    assert "invalid JSON" in result.stderr


def test_config_file_values_are_used(make_servind, tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"labels": ["tier=test"], "live-restore": False}))
    daemon = make_servind("--config-file", str(config))
    info = daemon.client().info()
    assert info["Labels"] == ["tier=test"]
    assert info["LiveRestoreEnabled"] is False


def test_two_daemons_side_by_side(make_servind):
    first, second = make_servind(), make_servind()
    first_info, second_info = first.client().info(), second.client().info()
    assert first_info["DockerRootDir"] == str(first.data_root)
    assert second_info["DockerRootDir"] == str(second.data_root)
    assert first_info["ID"] != second_info["ID"]
    assert first.pidfile.read_text().strip() == str(first.pid)
    assert second.pidfile.read_text().strip() == str(second.pid)


def test_second_daemon_on_the_same_pidfile_is_refused(make_servind, tmp_path):
    daemon = make_servind()
    result = run_servind("-H", f"unix://{tmp_path}/other.sock", "--pidfile", str(daemon.pidfile),
                         tmp_path=tmp_path)
    assert result.returncode != 0
    assert f"pid file found, ensure servind is not running or delete {daemon.pidfile}" \
        in result.stderr
    assert daemon.ping()
    assert daemon.pidfile.read_text().strip() == str(daemon.pid)


def test_socket_of_a_live_daemon_is_not_taken(make_servind, tmp_path):
    daemon = make_servind()
    result = run_servind("-H", daemon.host, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "another daemon is listening on it" in result.stderr
    assert daemon.ping()


def test_socket_mode_and_sigterm_cleanup(make_servind):
    daemon = make_servind()
    assert stat.S_IMODE(daemon.socket_path.stat().st_mode) == 0o660
    assert daemon.stop() == 0
    assert not daemon.socket_path.exists()
    assert not daemon.pidfile.exists()
    assert "daemon_stopped" in daemon.log_path.read_text()


def test_kill9_leftovers_do_not_block_a_restart(make_servind):
    daemon = make_servind()
    engine_id = daemon.client().info()["ID"]
    daemon.kill9()
    assert daemon.socket_path.exists() and daemon.pidfile.exists()  # what a crash leaves
    daemon.start()
    assert daemon.pidfile.read_text().strip() == str(daemon.pid)
    assert daemon.client().info()["ID"] == engine_id  # same identity after the crash


def test_tcp_host_serves_the_api_with_a_warning(make_servind):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = make_servind("-H", f"tcp://127.0.0.1:{port}")
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{port}", version="1.41")
    assert client.ping() is True
    assert any(f"127.0.0.1:{port} without encryption" in w for w in client.info()["Warnings"])
    client.close()
    assert "tcp_without_tls" in daemon.log_path.read_text()


@pytest.mark.skipif(SOCKET_ACTIVATE is None, reason="systemd-socket-activate is not installed")
def test_socket_activation_through_fd(make_servind):
    daemon = make_servind(socket_activated=True)
    info = daemon.client().info()
    assert info["DockerRootDir"] == str(daemon.data_root)
    assert "hosts=['fd://']" in daemon.log_path.read_text()
    assert daemon.stop() == 0
    assert daemon.socket_path.exists()  # the socket belongs to the activator, as to systemd
    assert not daemon.pidfile.exists()


def test_systemd_is_notified_of_ready_and_stopping(tmp_path):
    notify_path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(30)
        daemon = subprocess.Popen(
            [str(SERVIND), "-H", f"unix://{tmp_path}/servind.sock",
             "--data-root", str(tmp_path / "data"), "--exec-root", str(tmp_path / "exec"),
             "--pidfile", str(tmp_path / "servind.pid")],
            env={**os.environ, "NOTIFY_SOCKET": str(notify_path)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert notify.recv(4096) == b"READY=1"
            assert (tmp_path / "servind.sock").exists()  # ready means the API is served
            daemon.terminate()
            assert notify.recv(4096) == b"STOPPING=1"
            assert daemon.wait(30) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
