"""System endpoints (ping, version, info) of a real servind, through the SDK, raw HTTP and the CLI."""

from __future__ import annotations

import json
import os
import platform
import socket

import pytest

from servin import __version__

pytestmark = pytest.mark.e2e


def raw_request(servind, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.0 request on the daemon's socket: status, headers (lower-case), body."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(servind.socket_path))
        sock.sendall(f"{method} {path} HTTP/1.0\r\nHost: servind\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def test_ping_get_answers_ok_with_dockerd_headers(servind, docker_client):
    assert docker_client.ping() is True
    status, headers, body = raw_request(servind, "GET", "/_ping")
    assert (status, body) == (200, b"OK")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["api-version"] == "1.41"
    assert headers["ostype"] == "linux"
    assert headers["docker-experimental"] == "false"
    assert headers["cache-control"] == "no-cache, no-store, must-revalidate"
    assert headers["pragma"] == "no-cache"
    assert headers["builder-version"] == "1"
    assert headers["server"] == f"Servin/{__version__} (linux)"


def test_ping_head_has_headers_and_no_body(servind):
    status, headers, body = raw_request(servind, "HEAD", "/v1.41/_ping")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == "0"
    assert headers["api-version"] == "1.41"
    assert headers["cache-control"] == "no-cache, no-store, must-revalidate"


def test_every_response_carries_server_headers(servind):
    for path in ("/version", "/v1.41/info", "/nowhere", "/v1.99/version"):
        _, headers, _ = raw_request(servind, "GET", path)
        assert headers["api-version"] == "1.41", path
        assert headers["server"].startswith("Servin/"), path


def test_version_shape_and_values(docker_client):
    version = docker_client.version()
    assert version["Version"] == __version__
    assert version["ApiVersion"] == "1.41" and version["MinAPIVersion"] == "1.12"
    assert version["Os"] == "linux"
    assert version["Arch"] == {"x86_64": "amd64", "aarch64": "arm64"}.get(
        platform.machine(), platform.machine())
    assert version["KernelVersion"] == os.uname().release
    assert version["GoVersion"] == f"python{platform.python_version()}"
    assert version["Platform"]["Name"]
    components = {c["Name"]: c for c in version["Components"]}
    engine = components["Engine"]
    assert engine["Version"] == __version__
    assert engine["Details"]["ApiVersion"] == "1.41"
    assert engine["Details"]["KernelVersion"] == os.uname().release
    assert components["runc"]["Version"].startswith("1.")
    assert components["conmon"]["Version"].startswith("2.")


def _meminfo_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def test_info_reports_the_host(docker_client, servind):
    info = docker_client.info()
    assert info["NCPU"] == os.cpu_count()
    assert info["MemTotal"] == _meminfo_total()
    assert info["KernelVersion"] == os.uname().release
    assert info["Architecture"] == platform.machine()
    assert info["Name"] == socket.gethostname()
    assert info["DockerRootDir"] == str(servind.data_root)
    assert info["OSType"] == "linux"
    with open("/etc/os-release") as f:
        assert f'PRETTY_NAME="{info["OperatingSystem"]}"' in f.read()
    cgroup_v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    assert info["CgroupVersion"] == ("2" if cgroup_v2 else "1")
    assert info["CgroupDriver"] == "cgroupfs"
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert info["IPv4Forwarding"] == (f.read().strip() == "1")
    if not cgroup_v2:
        assert info["MemoryLimit"] == os.path.exists("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        assert info["SwapLimit"] == os.path.exists(
            "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
    assert info["Driver"] == "overlay2"
    status = dict(info["DriverStatus"])
    assert status["Supports d_type"] == "true"
    assert status["Backing Filesystem"]
    assert info["LoggingDriver"] == "json-file"
    # The drivers that keep a log, as dockerd lists its own.
    assert info["Plugins"]["Log"] == ["json-file", "local"]
    assert info["Debug"] is True  # the fixture runs with --log-level debug
    assert info["NFd"] > 0 and info["NGoroutines"] > 0
    assert info["SystemTime"].endswith("Z")
    assert info["ServerVersion"] == __version__
    assert info["DefaultRuntime"] == "runc"
    assert os.path.isabs(info["Runtimes"]["runc"]["path"])
    assert info["RuncCommit"]["ID"]
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert "name=seccomp,profile=default" in info["SecurityOptions"]


def test_info_counts_and_identity(docker_client, servind):
    info = docker_client.info()
    assert info["Containers"] == (info["ContainersRunning"] + info["ContainersPaused"]
                                  + info["ContainersStopped"])
    assert info["Images"] == len(docker_client.images.list(all=True))
    engine_id = (servind.data_root / "engine-id").read_text().strip()
    assert info["ID"] == engine_id
    assert docker_client.info()["ID"] == engine_id  # stable


def test_info_registry_config_from_flags(docker_client, registry):
    config = docker_client.info()["RegistryConfig"]
    assert "127.0.0.0/8" in config["InsecureRegistryCIDRs"]
    assert config["Mirrors"] == [f"{registry.url}/"]
    assert config["IndexConfigs"]["docker.io"]["Mirrors"] == [f"{registry.url}/"]
    assert config["IndexConfigs"][registry.address]["Secure"] is False


def test_api_version_prefix_errors(servind):
    status, _, body = raw_request(servind, "GET", "/v1.99/version")
    assert status == 400
    assert json.loads(body)["message"] == ("client version 1.99 is too new. "
                                           "Maximum supported API version is 1.41")
    status, _, body = raw_request(servind, "GET", "/v1.0/version")
    assert status == 400
    assert "client version 1.0 is too old" in json.loads(body)["message"]
    status, _, body = raw_request(servind, "GET", "/v1.24/version")
    assert status == 200 and json.loads(body)["ApiVersion"] == "1.41"


def test_unknown_route_is_404_page_not_found(servind):
    status, headers, body = raw_request(servind, "GET", "/v1.41/no/such/route")
    assert status == 404
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["message"] == "page not found"


def test_cli_version(docker_cli):
    out = docker_cli("version", "--format", "{{json .Server}}").stdout
    server = json.loads(out)
    assert server["Version"] == __version__
    assert server["ApiVersion"] == "1.41"
    assert {c["Name"] for c in server["Components"]} >= {"Engine", "runc", "conmon"}
    client_api = docker_cli("version", "--format", "{{.Client.APIVersion}}").stdout.strip()
    assert client_api == "1.41"  # the CLI negotiated down to the daemon's version


def test_cli_info(docker_cli, servind):
    out = docker_cli("info").stdout
    assert f"Docker Root Dir: {servind.data_root}" in out
    assert "Storage Driver: overlay2" in out
    assert f"CPUs: {os.cpu_count()}" in out
    assert f"Server Version: {__version__}" in out
    assert docker_cli("info", "--format", "{{.NCPU}}").stdout.strip() == str(os.cpu_count())
