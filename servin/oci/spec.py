"""Build a container's OCI runtime spec (config.json) the way dockerd 20.10 does.

``build_spec`` is a pure function of ``SpecParams``: everything it depends on,
including facts about the host (cgroup version, the daemon's own open-file
limit), is a field, so the spec can be checked in unit tests.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import attrs

from servin.oci.capabilities import ALL_CAPABILITIES, DEFAULT_CAPABILITIES
from servin.oci.users import ResolvedUser

OCI_VERSION = "1.0.2"

MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
]

READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# Docker's containers get the open-file limit of a dockerd run by systemd (LimitNOFILE=infinity).
DOCKER_NOFILE = 1048576

DEFAULT_SHM_SIZE = 64 * 1024 * 1024


def _char_device(path: str, major: int, minor: int) -> dict[str, Any]:
    return {"path": path, "type": "c", "major": major, "minor": minor,
            "fileMode": 0o666, "uid": 0, "gid": 0}


DEFAULT_DEVICES = [
    _char_device("/dev/null", 1, 3),
    _char_device("/dev/zero", 1, 5),
    _char_device("/dev/full", 1, 7),
    _char_device("/dev/random", 1, 8),
    _char_device("/dev/urandom", 1, 9),
    _char_device("/dev/tty", 5, 0),
]


def _allow(kind: str, major: int | None, minor: int | None, access: str = "rwm") -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


# Docker's device cgroup rules: deny everything, then allow mknod of any device
# and use of the standard character devices, ptys and tun.
DEFAULT_DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    _allow("c", None, None, "m"),
    _allow("b", None, None, "m"),
    _allow("c", 1, 3),    # null
    _allow("c", 1, 5),    # zero
    _allow("c", 1, 7),    # full
    _allow("c", 1, 8),    # random
    _allow("c", 1, 9),    # urandom
    _allow("c", 5, 0),    # tty
    _allow("c", 5, 1),    # console
    _allow("c", 5, 2),    # ptmx
    _allow("c", 136, None),  # pts/*
    _allow("c", 10, 200),  # net/tun
]

# Since 20.10 Docker lets unprivileged processes bind low ports and ping
# inside a container's own network namespace.
NETNS_SYSCTLS = {
    "net.ipv4.ip_unprivileged_port_start": "0",
    "net.ipv4.ping_group_range": "0 2147483647",
}


@attrs.frozen
class NamespaceMode:
    """How a container gets one namespace: a new one, the host's, or one at a path."""

    kind: str = "private"  # "private" | "host" | "path"
    path: str | None = None

    @classmethod
    def private(cls) -> NamespaceMode:
        return cls("private")

    @classmethod
    def host(cls) -> NamespaceMode:
        return cls("host")

    @classmethod
    def join(cls, path: str) -> NamespaceMode:
        return cls("path", path)

    @property
    def is_host(self) -> bool:
        return self.kind == "host"


@attrs.frozen
class MountSpec:
    destination: str
    source: str
    type: str = "bind"
    options: list[str] = attrs.field(factory=list)

    @classmethod
    def bind(cls, source: Path | str, destination: str, *, readonly: bool = False,
             propagation: str = "rprivate") -> MountSpec:
        options = ["rbind", propagation] + (["ro"] if readonly else [])
        return cls(destination=destination, source=str(source), type="bind", options=options)

    @classmethod
    def tmpfs(cls, destination: str, options: list[str] | None = None) -> MountSpec:
        return cls(destination=destination, source="tmpfs", type="tmpfs",
                   options=["nosuid", "nodev", "noexec", *(options or [])])

    def to_oci(self) -> dict[str, Any]:
        return {"destination": self.destination, "type": self.type, "source": self.source,
                "options": list(self.options)}


@attrs.frozen
class Rlimit:
    type: str  # "RLIMIT_NOFILE", ...
    soft: int
    hard: int

    def to_oci(self) -> dict[str, Any]:
        return {"type": self.type, "soft": self.soft, "hard": self.hard}


@attrs.frozen
class Resources:
    """The cgroup limits of a container; None leaves the kernel's default."""

    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    blkio_weight: int | None = None

    def to_oci(self, device_rules: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"devices": device_rules}
        memory = _drop_none({"limit": self.memory, "swap": self.memory_swap,
                             "reservation": self.memory_reservation})
        cpu = _drop_none({"shares": self.cpu_shares, "quota": self.cpu_quota,
                          "period": self.cpu_period, "cpus": self.cpuset_cpus,
                          "mems": self.cpuset_mems})
        if memory:
            out["memory"] = memory
        if cpu:
            out["cpu"] = cpu
        if self.pids_limit is not None:
            out["pids"] = {"limit": self.pids_limit}
        if self.blkio_weight is not None:
            out["blockIO"] = {"weight": self.blkio_weight}
        return out


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _daemon_nofile_hard() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def cgroups_path(cgroup_parent: str, container_id: str) -> str:
    """The cgroupfs path of a container below ``cgroup_parent`` (e.g. ``/servin``)."""
    return f"/{cgroup_parent.strip('/')}/{container_id}"


@attrs.define
class SpecParams:
    rootfs: Path
    args: list[str]
    cgroups_path: str
    env: list[str] = attrs.field(factory=list)
    cwd: str = "/"
    user: ResolvedUser = attrs.field(factory=ResolvedUser)
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)
    hostname: str = ""
    domainname: str = ""
    network: NamespaceMode = attrs.field(factory=NamespaceMode.private)
    pid: NamespaceMode = attrs.field(factory=NamespaceMode.private)
    ipc: NamespaceMode = attrs.field(factory=NamespaceMode.private)
    uts: NamespaceMode = attrs.field(factory=NamespaceMode.private)
    # A private cgroup namespace; Docker only uses one on cgroup v2 hosts.
    cgroupns: bool = False
    etc_files: dict[str, Path] = attrs.field(factory=dict)  # "/etc/hostname" -> host file
    mounts: list[MountSpec] = attrs.field(factory=list)
    readonly_rootfs: bool = False
    privileged: bool = False
    capabilities: list[str] = attrs.field(factory=lambda: list(DEFAULT_CAPABILITIES))
    no_new_privileges: bool = False
    rlimits: list[Rlimit] = attrs.field(factory=list)
    # The daemon's own hard RLIMIT_NOFILE: the default limit never exceeds it.
    daemon_nofile_hard: int = attrs.field(factory=_daemon_nofile_hard)
    oom_score_adj: int = 0
    shm_size: int = DEFAULT_SHM_SIZE
    sysctls: dict[str, str] = attrs.field(factory=dict)
    resources: Resources = attrs.field(factory=Resources)
    masked_paths: list[str] = attrs.field(factory=lambda: list(MASKED_PATHS))
    readonly_paths: list[str] = attrs.field(factory=lambda: list(READONLY_PATHS))
    annotations: dict[str, str] = attrs.field(factory=dict)


def default_mounts(params: SpecParams) -> list[MountSpec]:
    """Docker's standard container mounts: /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys."""
    sys_ro = [] if params.privileged else ["ro"]
    return [
        MountSpec("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        MountSpec("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        MountSpec("/dev/pts", "devpts", "devpts",
                  ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        MountSpec("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", *sys_ro]),
        MountSpec("/sys/fs/cgroup", "cgroup", "cgroup", [*sys_ro, "nosuid", "noexec", "nodev"]),
        MountSpec("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        MountSpec("/dev/shm", "shm", "tmpfs",
                  ["nosuid", "noexec", "nodev", "mode=1777", f"size={params.shm_size}"]),
    ]


def _depth(destination: str) -> int:
    return len([p for p in destination.split("/") if p])


def all_mounts(params: SpecParams) -> list[MountSpec]:
    """Default mounts, then the /etc files and the caller's mounts, parents before children.

    A caller's mount replaces a default mount at the same destination, as in Docker.
    """
    own = [MountSpec.bind(src, dest) for dest, src in params.etc_files.items()] + list(params.mounts)
    taken = {m.destination.rstrip("/") or "/" for m in own}
    defaults = [m for m in default_mounts(params) if m.destination not in taken]
    # Python's sort is stable, so mounts of equal depth keep the caller's order.
    return defaults + sorted(own, key=lambda m: _depth(m.destination))


def _namespaces(params: SpecParams) -> list[dict[str, str]]:
    namespaces: list[dict[str, str]] = [{"type": "mount"}]
    for kind, mode in (("network", params.network), ("pid", params.pid),
                       ("ipc", params.ipc), ("uts", params.uts)):
        if mode.kind == "private":
            namespaces.append({"type": kind})
        elif mode.kind == "path":
            namespaces.append({"type": kind, "path": mode.path or ""})
    if params.cgroupns:
        namespaces.append({"type": "cgroup"})
    return namespaces


def _rlimits(params: SpecParams) -> list[dict[str, Any]]:
    limits = list(params.rlimits)
    if not any(r.type == "RLIMIT_NOFILE" for r in limits):
        nofile = min(DOCKER_NOFILE, params.daemon_nofile_hard)
        limits.append(Rlimit("RLIMIT_NOFILE", nofile, nofile))
    return [r.to_oci() for r in limits]


def _sysctls(params: SpecParams) -> dict[str, str]:
    sysctls = dict(NETNS_SYSCTLS) if not params.network.is_host else {}
    sysctls.update(params.sysctls)
    return sysctls


def build_spec(params: SpecParams) -> dict[str, Any]:
    """The complete OCI runtime spec (config.json) for ``params``."""
    capabilities = ALL_CAPABILITIES if params.privileged else params.capabilities
    process: dict[str, Any] = {
        "terminal": params.terminal,
        "user": {"uid": params.user.uid, "gid": params.user.gid,
                 "additionalGids": list(params.user.additional_gids)},
        "args": list(params.args),
        "env": list(params.env),
        "cwd": params.cwd or "/",
        "capabilities": {
            "bounding": list(capabilities),
            "effective": list(capabilities),
            "permitted": list(capabilities),
            "inheritable": [],
        },
        "rlimits": _rlimits(params),
        "noNewPrivileges": params.no_new_privileges,
        "oomScoreAdj": params.oom_score_adj,
    }
    if params.terminal and params.console_size:
        height, width = params.console_size
        process["consoleSize"] = {"height": height, "width": width}

    device_rules = [{"allow": True, "access": "rwm"}] if params.privileged else DEFAULT_DEVICE_RULES
    linux: dict[str, Any] = {
        "namespaces": _namespaces(params),
        "devices": list(DEFAULT_DEVICES),
        "resources": params.resources.to_oci(list(device_rules)),
        "cgroupsPath": params.cgroups_path,
        "sysctl": _sysctls(params),
        "maskedPaths": [] if params.privileged else list(params.masked_paths),
        "readonlyPaths": [] if params.privileged else list(params.readonly_paths),
    }

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(params.rootfs), "readonly": params.readonly_rootfs},
        "mounts": [m.to_oci() for m in all_mounts(params)],
        "linux": linux,
    }
    # A hostname needs a UTS namespace of the container's own.
    if params.uts.kind == "private":
        spec["hostname"] = params.hostname
        if params.domainname:
            spec["domainname"] = params.domainname
    if params.annotations:
        spec["annotations"] = dict(params.annotations)
    return spec
