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

from servin.oci.capabilities import DEFAULT_CAPABILITIES
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


def allow_rule(kind: str, major: int | None, minor: int | None,
               access: str = "rwm") -> dict[str, Any]:
    """A device cgroup rule allowing ``access`` to devices ``kind major:minor`` (None: any)."""
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
    allow_rule("c", None, None, "m"),
    allow_rule("b", None, None, "m"),
    allow_rule("c", 1, 3),    # null
    allow_rule("c", 1, 5),    # zero
    allow_rule("c", 1, 7),    # full
    allow_rule("c", 1, 8),    # random
    allow_rule("c", 1, 9),    # urandom
    allow_rule("c", 5, 0),    # tty
    allow_rule("c", 5, 1),    # console
    allow_rule("c", 5, 2),    # ptmx
    allow_rule("c", 136, None),  # pts/*
    allow_rule("c", 10, 200),  # net/tun
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
    """The cgroup limits of a container; None leaves the kernel's default.

    Fields are OCI's (cgroup v1 semantics: ``memory_swap`` is memory plus swap,
    -1 unlimited); runc maps them onto cgroup v2 files (swap.max = swap - limit,
    shares -> weight, reservation -> memory.low).
    """

    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    memory_swappiness: int | None = None
    oom_kill_disable: bool | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    blkio_weight: int | None = None

    def to_oci(self, device_rules: list[dict[str, Any]] | None = None, *,
               cgroup_v2: bool = False) -> dict[str, Any]:
        """``linux.resources``; without ``device_rules`` the form ``runc update`` reads."""
        out: dict[str, Any] = {} if device_rules is None else {"devices": device_rules}
        memory = _drop_none({"limit": self.memory, "swap": self.memory_swap,
                             "reservation": self.memory_reservation})
        if not cgroup_v2:  # v2 has neither knob; runc refuses them there
            memory.update(_drop_none({"swappiness": self.memory_swappiness,
                                      "disableOOMKiller": self.oom_kill_disable}))
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


@attrs.frozen
class Device:
    """A device node created in the container's /dev (``linux.devices``)."""

    path: str
    type: str  # "c" | "b" | "p"
    major: int
    minor: int
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0

    def to_oci(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.type, "major": self.major, "minor": self.minor,
                "fileMode": self.file_mode, "uid": self.uid, "gid": self.gid}


DEFAULT_DEVICES = [
    Device("/dev/null", "c", 1, 3),
    Device("/dev/zero", "c", 1, 5),
    Device("/dev/full", "c", 1, 7),
    Device("/dev/random", "c", 1, 8),
    Device("/dev/urandom", "c", 1, 9),
    Device("/dev/tty", "c", 5, 0),
]


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
    apparmor_profile: str = ""  # only where the host runs AppArmor
    rlimits: list[Rlimit] = attrs.field(factory=list)
    # The daemon's own hard RLIMIT_NOFILE: the default limit never exceeds it.
    daemon_nofile_hard: int = attrs.field(factory=_daemon_nofile_hard)
    oom_score_adj: int = 0
    shm_size: int = DEFAULT_SHM_SIZE
    # False for IpcMode "none": no /dev/shm at all.
    shm: bool = True
    sysctls: dict[str, str] = attrs.field(factory=dict)
    resources: Resources = attrs.field(factory=Resources)
    cgroup_v2: bool = False
    # Devices beyond Docker's standard ones (--device; every host device when privileged).
    devices: list[Device] = attrs.field(factory=list)
    # Device cgroup rules added after Docker's defaults (--device, --device-cgroup-rule).
    device_rules: list[dict[str, Any]] = attrs.field(factory=list)
    seccomp: dict[str, Any] | None = None  # linux.seccomp; None is unconfined
    masked_paths: list[str] = attrs.field(factory=lambda: list(MASKED_PATHS))
    readonly_paths: list[str] = attrs.field(factory=lambda: list(READONLY_PATHS))
    annotations: dict[str, str] = attrs.field(factory=dict)


def rootfs_propagation(mounts: list[MountSpec]) -> str | None:
    """As dockerd: a shared bind needs a shared root to propagate back to the host, a
    slave bind a slave one; otherwise runc's default (private) stays."""
    options = {option for mount in mounts for option in mount.options}
    if options & {"shared", "rshared"}:
        return "shared"
    if options & {"slave", "rslave"}:
        return "rslave"
    return None


def default_mounts(params: SpecParams) -> list[MountSpec]:
    """Docker's standard container mounts: /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys."""
    sys_ro = [] if params.privileged else ["ro"]
    mounts = [
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
    return mounts if params.shm else [m for m in mounts if m.destination != "/dev/shm"]


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
    if params.domainname and params.uts.kind == "private":
        # runc 1.1 has no spec field for it; dockerd sets it through this sysctl.
        sysctls["kernel.domainname"] = params.domainname
    sysctls.update(params.sysctls)
    return sysctls


def _devices(params: SpecParams) -> list[Device]:
    """Docker's standard devices, then the container's own; a path appears once."""
    own = {d.path for d in params.devices}
    return [d for d in DEFAULT_DEVICES if d.path not in own] + list(params.devices)


def build_spec(params: SpecParams) -> dict[str, Any]:
    """The complete OCI runtime spec (config.json) for ``params``."""
    capabilities = params.capabilities
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
    if params.apparmor_profile:
        process["apparmorProfile"] = params.apparmor_profile
    if params.terminal and params.console_size:
        height, width = params.console_size
        process["consoleSize"] = {"height": height, "width": width}

    if params.privileged:
        device_rules = [{"allow": True, "access": "rwm"}]
    else:
        device_rules = DEFAULT_DEVICE_RULES + params.device_rules
    linux: dict[str, Any] = {
        "namespaces": _namespaces(params),
        "devices": [d.to_oci() for d in _devices(params)],
        "resources": params.resources.to_oci(list(device_rules), cgroup_v2=params.cgroup_v2),
        "cgroupsPath": params.cgroups_path,
        "sysctl": _sysctls(params),
        "maskedPaths": [] if params.privileged else list(params.masked_paths),
        "readonlyPaths": [] if params.privileged else list(params.readonly_paths),
    }

    if params.seccomp is not None and not params.privileged:
        linux["seccomp"] = params.seccomp
    propagation = rootfs_propagation(params.mounts)
    if propagation:
        linux["rootfsPropagation"] = propagation

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
