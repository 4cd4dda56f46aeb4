"""The two engines under test, each with roots, sockets and a bridge of its own.

Both listen on a Unix socket (the docker CLI's way in) and on a 127.0.0.1 TCP
port (wrk speaks TCP only), pull docker.io names through the same local
registry as a mirror, and keep containers running across their own restarts
(live restore), so a restart measures restoring running containers.
"""

from __future__ import annotations

import abc
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from bench import hostnet
from tests.support.registry import Registry
from tests.support.servind import Servind, mount_points, ping

DOCKERD = "dockerd"
# Both off the subnets servind's tests use (172.31.x) and next to each other, so a
# user network allocated meanwhile from the default pools skips them together.
DOCKERD_BIP = "172.29.0.1/24"
SERVIND_BIP = "172.29.1.1/24"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0


class EngineFailed(Exception):
    """An engine did not start or stop as asked."""


def process_table() -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, argv) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        # The command name in parentheses may hold spaces: the fields follow the last ')'.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        table[int(entry.name)] = (parent, [arg for arg in argv if arg])
    return table


def descendants(table: dict[int, tuple[int, list[str]]], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def unmount_under(roots: list[Path]) -> list[str]:
    inside = [m for m in mount_points()
              if any(m == str(root) or m.startswith(f"{root}/") for root in roots)]
    for mount_point in sorted(inside, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount_point], capture_output=True, timeout=30)
    return inside


class Engine(abc.ABC):
    """What the rows need of an engine: start, stop, a client environment, its processes."""

    name: str

    def __init__(self, workdir: Path, tcp_port: int) -> None:
        self.workdir = workdir
        self.tcp_port = tcp_port
        self.log_path = workdir / f"{self.name}.log"
        self.cli_config = workdir / f"{self.name}-cli"
        self.cli_config.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None

    @property
    @abc.abstractmethod
    def socket_path(self) -> Path:
        """The daemon's Unix socket."""

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def tcp_url(self) -> str:
        return f"http://127.0.0.1:{self.tcp_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def env(self) -> dict[str, str]:
        """The docker CLI's environment for this engine, with a config dir of its own."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
                            "DOCKER_API_VERSION")}
        return {**env, "DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.cli_config)}

    @abc.abstractmethod
    def command(self) -> list[str]:
        """The daemon's argv."""

    def prepare(self) -> None:
        """What the host needs before the first start."""

    def start(self) -> float:
        """Start the daemon; returns the seconds until /_ping answered."""
        assert not self.running, f"{self.name} is already running"
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            # A session of its own: a Ctrl-C reaches the benchmark, which then stops
            # the daemons in order, after removing their containers.
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.adopt(self.process)
        while not ping(self.socket_path):
            if self.process.poll() is not None:
                raise EngineFailed(f"{self.name} exited with {self.process.returncode} "
                                   f"while starting:\n{self.log_tail()}")
            if time.monotonic() - started > START_TIMEOUT:
                self.process.kill()
                self.process.wait()
                raise EngineFailed(f"{self.name} did not answer /_ping in {START_TIMEOUT}s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.005)
        return time.monotonic() - started

    def adopt(self, process: subprocess.Popen) -> None:
        """Hook for wrappers that track the process themselves."""

    def stop(self) -> None:
        assert self.process is not None
        if self.running:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise EngineFailed(f"{self.name} ignored SIGTERM for {STOP_TIMEOUT}s:\n"
                               f"{self.log_tail()}")

    @abc.abstractmethod
    def memory_pids(self) -> tuple[list[int], list[int]]:
        """The daemon's processes, and the monitors it keeps per container."""

    @abc.abstractmethod
    def teardown(self) -> list[str]:
        """Stop the daemon and remove all it made; returns what it left behind itself."""

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class ServindEngine(Engine):
    name = "servind"

    def __init__(self, workdir: Path, tcp_port: int, registry: Registry, bip: str) -> None:
        super().__init__(workdir, tcp_port)
        self.daemon = Servind(workdir / "servind-roots", self.log_path, bip=bip,
                              registry=registry,
                              extra_args=["--log-level", "info",
                                          "-H", f"tcp://127.0.0.1:{tcp_port}"])
        self.daemon.roots.mkdir()

    @property
    def socket_path(self) -> Path:
        return self.daemon.socket_path

    def command(self) -> list[str]:
        return self.daemon.command()

    def adopt(self, process: subprocess.Popen) -> None:
        self.daemon.process = process

    def memory_pids(self) -> tuple[list[int], list[int]]:
        assert self.process is not None
        table = process_table()
        roots = (str(self.daemon.data_root), str(self.daemon.exec_root))
        conmons = [pid for pid, (_, argv) in table.items()
                   if argv and os.path.basename(argv[0]) == "conmon"
                   and any(root in arg for arg in argv for root in roots)]
        return [self.process.pid, *descendants(table, self.process.pid)], conmons

    def teardown(self) -> list[str]:
        return self.daemon.teardown()


class DockerdEngine(Engine):
    name = "dockerd"
    bridge = "benchdocker0"
    # Host paths dockerd and its containerd create whatever roots they are given.
    host_paths = (Path("/etc/docker/key.json"), Path("/run/docker"), Path("/run/containerd"))

    def __init__(self, workdir: Path, tcp_port: int, registry: Registry, bip: str,
                 iptables: bool) -> None:
        super().__init__(workdir, tcp_port)
        self.roots = workdir / "dockerd-roots"
        self.data_root = self.roots / "data"
        self.exec_root = self.roots / "exec"
        self.config_file = self.roots / "daemon.json"
        self.bip = bip
        self.iptables = iptables
        self.registry = registry
        self.made_paths = [path for path in self.host_paths if not path.exists()]
        self.firewall_before: hostnet.Snapshot | None = None
        self.bridge_made = False

    def prepare(self) -> None:
        if hostnet.link_exists(self.bridge):
            raise EngineFailed(f"a link named {self.bridge} exists already: is another "
                               f"benchmark running? (`ip link del {self.bridge}` if not)")
        self.roots.mkdir()
        self.config_file.write_text(json.dumps({"registry-mirrors": [self.registry.url],
                                                "insecure-registries": [self.registry.address]}))
        self.firewall_before = hostnet.iptables_snapshot()
        hostnet.add_bridge(self.bridge, self.bip)
        self.bridge_made = True

    @property
    def socket_path(self) -> Path:
        return self.roots / "docker.sock"

    @property
    def containerd_socket(self) -> Path:
        return self.exec_root / "containerd" / "containerd.sock"

    def command(self) -> list[str]:
        # --bridge: a bridge of the benchmark's own, so no docker0 is made or taken over;
        # --ip-forward=false: the host's forwarding sysctl and FORWARD policy stay as they are.
        argv = [DOCKERD, "--config-file", str(self.config_file),
                "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.roots / "docker.pid"),
                "-H", self.host, "-H", f"tcp://127.0.0.1:{self.tcp_port}",
                "--bridge", self.bridge, "--live-restore", "--ip-forward=false"]
        if not self.iptables:
            argv.append("--iptables=false")
        return argv

    def _shims(self, table: dict[int, tuple[int, list[str]]]) -> list[int]:
        return [pid for pid, (_, argv) in table.items()
                if argv and "containerd-shim" in os.path.basename(argv[0])
                and str(self.containerd_socket) in argv]

    def memory_pids(self) -> tuple[list[int], list[int]]:
        """dockerd and its containerd; containerd's shims, one per container."""
        assert self.process is not None
        table = process_table()
        return [self.process.pid, *descendants(table, self.process.pid)], self._shims(table)

    def teardown(self) -> list[str]:
        leaks = []
        if self.running:
            self.stop()
        table = process_table()
        strays = [pid for pid, (_, argv) in table.items()
                  if any(str(self.roots) in arg for arg in argv)]
        for pid in strays:
            leaks.append(f"process left: {pid} {' '.join(table[pid][1])[:120]}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # With live restore, dockerd leaves its data root's private mount for the next start.
        unmount_under([self.roots])
        shutil.rmtree(self.roots, ignore_errors=True)
        if self.firewall_before is not None:
            hostnet.remove_added_rules(self.firewall_before, ("DOCKER", self.bridge))
        if self.bridge_made:
            hostnet.delete_link(self.bridge)
        for path in self.made_paths:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return leaks


def other_dockerd_running() -> bool:
    return any(argv and os.path.basename(argv[0]) == DOCKERD
               for _, argv in process_table().values())
