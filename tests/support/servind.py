"""Real servind processes for end-to-end tests (a pytest plugin).

Each `Servind` runs `.venv/bin/servind` with its own data root, exec root,
unix socket, PID file and bridge address, so several can run side by side.
Its teardown kills whatever containers and conmon processes of that instance
remain, unmounts what is still mounted under its roots, deletes the roots, and
reports everything the daemon itself should have cleaned up as a leak.

Fixtures: `servind` (one daemon for the session), `docker_client` and
`docker_cli` (clients of that daemon), and `make_servind` (a factory for
tests that need daemons of their own).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import docker
import pytest

from servin.net.firewall import Firewall
from servin.networks.manager import instance_id

SERVIND = Path(sys.executable).parent / "servind"
DOCKER = Path("/usr/local/bin/docker")
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
API_VERSION = "1.41"

# Every daemon gets its own default bridge subnet (traffic stays inside the namespaces
# the tests make). Test runs of other sessions on the same host start elsewhere in the
# range, so that their bridges do not collide with ours.
_bridge_subnets = itertools.count(os.getpid() * 7)


def next_bip() -> str:
    return f"172.31.{next(_bridge_subnets) % 256}.1/24"


def ping(socket_path: Path) -> bool:
    """One GET /_ping on an engine's socket; False while nothing answers yet."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            # Long enough for a socket-activated daemon to start on the first connection.
            sock.settimeout(10)
            sock.connect(str(socket_path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: engine\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
    except OSError:
        return False
    return answer.startswith(b"HTTP/1.") and answer[9:12] == b"200"


class ServindFailed(Exception):
    """The daemon did not come up, or did not go down, as asked."""


class Servind:
    """One servind process and everything it owns on disk."""

    def __init__(self, roots: Path, log_path: Path, *, bip: str | None = None,
                 registry=None, extra_args: Sequence[str] = (),
                 socket_activated: bool = False) -> None:
        self.roots = roots
        self.data_root = roots / "data"
        self.exec_root = roots / "exec"
        self.socket_path = roots / "servind.sock"
        self.pidfile = roots / "servind.pid"
        self.log_path = log_path
        self.bip = bip or next_bip()
        self.registry = registry
        self.extra_args = list(extra_args)
        self.socket_activated = socket_activated
        self.process: subprocess.Popen | None = None
        self.killed = False  # the last stop was kill -9: what it left is not a leak

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        argv = [str(SERVIND), "-H", "fd://" if self.socket_activated else self.host,
                "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.pidfile), "--bip", self.bip, "--log-level", "debug"]
        if self.registry is not None:
            argv += ["--registry-mirror", self.registry.url,
                     "--insecure-registry", self.registry.address]
        argv += self.extra_args
        if self.socket_activated:
            # systemd's own tool binds the socket, then execs servind with LISTEN_FDS=1
            # and LISTEN_PID set to its own pid, which servind then has.
            return [SOCKET_ACTIVATE, "--listen", str(self.socket_path), *argv]
        return argv

    def start(self, timeout: float = START_TIMEOUT) -> "Servind":
        assert not self.running, "servind is already running"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        self.killed = False
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None:
                raise ServindFailed(f"servind exited with {self.process.returncode} while "
                                    f"starting:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill9()
                raise ServindFailed(f"servind did not answer /_ping in {timeout}s:\n"
                                    f"{self.log_tail()}")
            time.sleep(0.05)
        return self

    def ping(self) -> bool:
        return ping(self.socket_path)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, and wait for the exit; returns the exit status."""
        assert self.process is not None
        if self.running:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise ServindFailed(f"servind ignored SIGTERM for {timeout}s:\n{self.log_tail()}")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.killed = True

    def restart(self) -> "Servind":
        self.stop()
        return self.start()

    def client(self, timeout: int = 120) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, version=API_VERSION, timeout=timeout)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def teardown(self) -> list[str]:
        """Stop the daemon, clean up after it, delete its roots; return what it leaked."""
        leaks = []
        if self.running:
            status = self.stop()
            if status != 0:
                leaks.append(f"servind exited with status {status} on SIGTERM")
        graceful = not self.killed
        found = (self._delete_containers() + self._kill_conmons() + self._unmount()
                 + self._remove_network_leftovers())
        if graceful:
            leaks += found
            if self.pidfile.exists():
                leaks.append(f"PID file left: {self.pidfile}")
            if not self.socket_activated and self.socket_path.exists():
                leaks.append(f"socket left: {self.socket_path}")
        shutil.rmtree(self.roots, ignore_errors=True)
        return leaks

    def _delete_containers(self) -> list[str]:
        runc_root = self.exec_root / "runc"
        ids = sorted(p.name for p in runc_root.iterdir()) if runc_root.is_dir() else []
        for container_id in ids:
            subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", container_id],
                           capture_output=True, timeout=30)
        return [f"runc container left: {container_id}" for container_id in ids]

    def _kill_conmons(self) -> list[str]:
        left = []
        for pid, argv in _processes():
            if os.path.basename(argv[0]) == "conmon" and any(
                    str(self.exec_root) in arg or str(self.data_root) in arg for arg in argv):
                left.append(f"conmon left: pid {pid}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return left

    def _unmount(self) -> list[str]:
        inside = [m for m in mount_points()
                  if any(m == str(root) or m.startswith(f"{root}/")
                         for root in (self.data_root, self.exec_root))]
        for mount_point in sorted(inside, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount_point], capture_output=True, timeout=30)
        return [f"mount left: {m}" for m in inside]

    def _remove_network_leftovers(self) -> list[str]:
        """Links and iptables rules of this instance (its tag and its chains' names)."""
        instance = instance_id(self.data_root)
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                               timeout=30).stdout.splitlines()
        left = [line.split(":")[1].strip().split("@")[0] for line in links
                if f"alias servin:{instance}" in line]
        for name in left:
            subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=30)
        saved = subprocess.run(["iptables-save"], capture_output=True, text=True,
                               timeout=30).stdout.splitlines()
        rules = [line for line in saved if f"SERVIN-{instance}" in line]
        if rules:
            asyncio.run(Firewall(instance).remove())
        return [f"link left: {name}" for name in left] + [f"iptables left: {r}" for r in rules]


def _processes() -> Iterator[tuple[int, list[str]]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if argv and argv[0]:
                yield int(entry.name), argv


def mount_points() -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4].encode().decode("unicode_escape") for line in lines]


class ServindFactory:
    """Makes daemons with fresh roots; tears all of them down at the end of the test."""

    def __init__(self, logs_dir: Path, registry) -> None:
        self.logs_dir = logs_dir
        self.registry = registry
        self.made: list[Servind] = []

    def __call__(self, *extra_args: str, start: bool = True, socket_activated: bool = False,
                 bip: str | None = None) -> Servind:
        roots = Path(tempfile.mkdtemp(prefix="servind-"))
        daemon = Servind(roots, self.logs_dir / f"servind-{len(self.made)}.log", bip=bip,
                         registry=self.registry, extra_args=extra_args,
                         socket_activated=socket_activated)
        self.made.append(daemon)
        return daemon.start() if start else daemon

    def teardown(self) -> None:
        reports = []
        for daemon in self.made:
            leaks = daemon.teardown()
            if leaks:
                reports.append(f"{daemon.command()}\n  " + "\n  ".join(leaks)
                               + f"\n--- log tail ---\n{daemon.log_tail()}")
        assert not reports, "servind left things behind:\n" + "\n".join(reports)


@pytest.fixture(scope="session")
def servind(tmp_path_factory, registry) -> Iterator[Servind]:
    """The daemon shared by the session's end-to-end tests."""
    factory = ServindFactory(tmp_path_factory.mktemp("servind-logs"), registry)
    yield factory()
    factory.teardown()


@pytest.fixture
def make_servind(tmp_path, registry) -> Iterator[Callable[..., Servind]]:
    """Start daemons of the test's own: ``make_servind("--live-restore=false")``."""
    factory = ServindFactory(tmp_path, registry)
    yield factory
    factory.teardown()


@pytest.fixture(scope="session")
def docker_client(servind: Servind) -> Iterator[docker.DockerClient]:
    client = servind.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def docker_cli(servind: Servind, tmp_path_factory) -> Callable[..., subprocess.CompletedProcess]:
    """Run the docker CLI against the session's daemon, with a config dir of its own."""
    if not DOCKER.exists():
        pytest.skip(f"the docker CLI is not installed at {DOCKER}")
    env = {**os.environ, "DOCKER_HOST": servind.host,
           "DOCKER_CONFIG": str(tmp_path_factory.mktemp("docker-config"))}
    for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"):
        env.pop(name, None)

    def run(*args: str, input: str | bytes | None = None, check: bool = True,
            timeout: float = 60, text: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(DOCKER), *args], input=input, capture_output=True,
                                text=text, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stderr}")
        return result

    return run
