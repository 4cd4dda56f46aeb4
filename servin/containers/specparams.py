"""A container's record turned into the parameters of its OCI runtime spec."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Protocol, Sequence

from servin.containers.createconfig import (nano_cpus_quota, parse_device_rule,
                                            parse_security_opts, shared_container,
                                            tmpfs_options)
from servin.containers.environment import container_environment
from servin.containers.record import Container
from servin.containers.views import ContainerFiles
from servin.errors import Conflict, InvalidArgument
from servin.oci.capabilities import bounding_set, tweak_capabilities
from servin.oci.cgroups import is_cgroup_v2
from servin.oci.seccomp import default_profile, parse_profile, to_oci
from servin.oci.spec import (MASKED_PATHS, READONLY_PATHS, Device, MountSpec, NamespaceMode,
                             Resources, Rlimit, SpecParams, allow_rule, cgroups_path)
from servin.oci.users import ResolvedUser

CGROUP_PARENT = "servin"
# Debian's catatonit plays dockerd's docker-init: a tiny pid 1 that reaps and forwards signals.
INIT_BINARY = Path("/usr/bin/catatonit")
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"
APPARMOR_ENABLED = Path("/sys/module/apparmor/parameters/enabled")
# What a privileged container does not get from the host's /dev (runc's GetDevices).
_SKIPPED_DEV_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}

# Looks a container up by name or id (the manager's get), for ``container:<ref>`` modes.
class ContainerLookup(Protocol):
    """The other containers a container may share namespaces and /dev/shm with."""

    def get(self, ref: str) -> Container: ...

    def files(self, container_id: str) -> ContainerFiles: ...


def spec_params(container: Container, rootfs: Path, user: ResolvedUser, files: ContainerFiles,
                peers: ContainerLookup | None = None, *,
                network: NamespaceMode | None = None,
                etc_files: dict[str, Path] | None = None,
                volume_mounts: Sequence[MountSpec] = ()) -> SpecParams:
    """``network`` and ``etc_files`` are what the container's networks give it (a
    sandbox to join, another container's files); by default its own namespace."""
    config, hc = container.config, container.host_config
    if network is None:
        network = (NamespaceMode.host() if hc["NetworkMode"] == "host"
                   else NamespaceMode.private())
    privileged = bool(hc.get("Privileged"))
    # A container gets no capability servind lacks itself (runc would fail to grant it).
    bounding = bounding_set()
    caps = [c for c in tweak_capabilities(hc.get("CapAdd") or [], hc.get("CapDrop") or [],
                                          privileged=privileged) if c in bounding]
    security = parse_security_opts(hc.get("SecurityOpt"))
    ipc, ipc_mounts, shm = _ipc(hc.get("IpcMode") or "private", files, peers)
    args = [container.path, *container.args]
    mounts = [*ipc_mounts, *_tmpfs_mounts(hc.get("Tmpfs") or {}), *volume_mounts]
    if hc.get("Init"):
        args = [INIT_PATH_IN_CONTAINER, "--", *args]
        mounts.append(MountSpec.bind(INIT_BINARY, INIT_PATH_IN_CONTAINER, readonly=True))
    devices, device_rules = _devices(hc, privileged)
    cgroup_v2 = is_cgroup_v2()
    return SpecParams(
        rootfs=rootfs,
        args=args,
        cgroups_path=cgroups_path(hc.get("CgroupParent") or CGROUP_PARENT, container.id),
        env=container_environment(container, container.tty),
        cwd=config.get("WorkingDir") or "/",
        user=user,
        terminal=container.tty,
        hostname=config.get("Hostname") or "",
        domainname=config.get("Domainname") or "",
        network=network,
        pid=_pid(hc.get("PidMode") or "", peers),
        ipc=ipc,
        uts=(NamespaceMode.host() if network.is_host or hc.get("UTSMode") == "host"
             else NamespaceMode.private()),
        cgroupns=hc.get("CgroupnsMode") == "private",
        etc_files=files.etc_mounts() if etc_files is None else etc_files,
        mounts=mounts,
        readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
        privileged=privileged,
        capabilities=caps,
        no_new_privileges=security.no_new_privileges,
        apparmor_profile=_apparmor(security.apparmor),
        rlimits=[Rlimit(f"RLIMIT_{u['Name'].upper()}", _rlim(u["Soft"]), _rlim(u["Hard"]))
                 for u in hc.get("Ulimits") or []],
        oom_score_adj=hc.get("OomScoreAdj") or 0,
        shm_size=hc["ShmSize"],
        shm=shm,
        sysctls=dict(hc.get("Sysctls") or {}),
        resources=resources(hc),
        cgroup_v2=cgroup_v2,
        devices=devices,
        device_rules=device_rules,
        seccomp=None if privileged else _seccomp(security.seccomp, caps),
        # Records older than these fields have None: the defaults.
        masked_paths=list(MASKED_PATHS if hc.get("MaskedPaths") is None else hc["MaskedPaths"]),
        readonly_paths=list(READONLY_PATHS if hc.get("ReadonlyPaths") is None
                            else hc["ReadonlyPaths"]),
        annotations={"io.servin.container.name": container.name},
    )


def resources(hc: dict[str, Any]) -> Resources:
    """The cgroup limits of a (validated) HostConfig, as dockerd puts them in the spec."""
    memory = hc.get("Memory") or 0
    quota, period = hc.get("CpuQuota") or 0, hc.get("CpuPeriod") or 0
    if hc.get("NanoCpus"):
        quota, period = nano_cpus_quota(hc["NanoCpus"])
    return Resources(
        memory=memory or None,
        memory_swap=(hc.get("MemorySwap") or None) if memory else None,
        memory_reservation=hc.get("MemoryReservation") or None,
        memory_swappiness=hc.get("MemorySwappiness"),
        oom_kill_disable=True if hc.get("OomKillDisable") else None,
        cpu_shares=hc.get("CpuShares") or None,
        cpu_quota=quota or None,
        cpu_period=period or None,
        cpuset_cpus=hc.get("CpusetCpus") or None,
        cpuset_mems=hc.get("CpusetMems") or None,
        pids_limit=hc.get("PidsLimit") or None,
        blkio_weight=hc.get("BlkioWeight") or None,
    )


def _rlim(value: int) -> int:
    return 2**64 - 1 if value == -1 else value  # RLIM_INFINITY


def _running(peers: ContainerLookup | None, ref: str, what: str) -> Container:
    if peers is None:
        raise InvalidArgument(f"cannot join the {what} namespace of container {ref}")
    other = peers.get(ref)
    if other.state.status not in ("running", "paused") or not other.state.pid:
        raise Conflict(f"cannot join {what} of a non running container: {other.id}")
    return other


def _pid(mode: str, peers: ContainerLookup | None) -> NamespaceMode:
    if mode == "host":
        return NamespaceMode.host()
    ref = shared_container(mode)
    if ref:
        other = _running(peers, ref, "PID")
        return NamespaceMode.join(f"/proc/{other.state.pid}/ns/pid")
    return NamespaceMode.private()


def _ipc(mode: str, files: ContainerFiles, peers: ContainerLookup | None
         ) -> tuple[NamespaceMode, list[MountSpec], bool]:
    """The IPC namespace, the /dev/shm bound with it, and whether a private one is made.

    A shareable container's /dev/shm is a tmpfs the engine mounts on the host (at
    ``files.shm``), so that containers joining its IPC namespace can bind it too.
    """
    if mode == "host":
        return NamespaceMode.host(), [MountSpec.bind("/dev/shm", "/dev/shm")], False
    if mode == "none":
        return NamespaceMode.private(), [], False
    if mode == "shareable":
        return NamespaceMode.private(), [MountSpec.bind(files.shm, "/dev/shm")], False
    ref = shared_container(mode)
    if ref:
        other = _running(peers, ref, "IPC")
        other_mode = other.host_config.get("IpcMode")
        if other_mode not in ("shareable", "host"):
            raise Conflict("non-shareable IPC (hint: use IpcMode:shareable for the donor "
                           "container)")
        shm = "/dev/shm" if other_mode == "host" else peers.files(other.id).shm
        return (NamespaceMode.join(f"/proc/{other.state.pid}/ns/ipc"),
                [MountSpec.bind(shm, "/dev/shm")], False)
    return NamespaceMode.private(), [], True


def _tmpfs_mounts(tmpfs: dict[str, str]) -> list[MountSpec]:
    return [MountSpec(destination, "tmpfs", "tmpfs", tmpfs_options(options))
            for destination, options in tmpfs.items()]


def _apparmor(profile: str) -> str:
    """AppArmor profiles apply only where the host runs AppArmor; elsewhere they are ignored."""
    try:
        enabled = APPARMOR_ENABLED.read_text().strip() == "Y"
    except OSError:
        enabled = False
    return profile if enabled and profile not in ("", "unconfined") else ""


def _seccomp(option: str, caps: list[str]) -> dict[str, Any] | None:
    if option == "unconfined":
        return None
    profile = default_profile() if option in ("", "builtin") else parse_profile(option)
    return to_oci(profile, caps)


def _device_node(host_path: str, container_path: str) -> Device | None:
    try:
        st = os.stat(host_path)
    except OSError as e:
        raise InvalidArgument(f'error gathering device information while adding custom device '
                              f'"{host_path}": {e.strerror.lower()}') from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return Device(container_path, kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                  file_mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)


def _nodes_under(host_path: str, container_path: str,
                 skip: set[str] = frozenset()) -> list[Device]:
    """The device at ``host_path``, or every device below it when it is a directory."""
    if not os.path.isdir(host_path):
        node = _device_node(host_path, container_path)
        if node is None:
            raise InvalidArgument(f'error gathering device information while adding custom '
                                  f'device "{host_path}": not a device node')
        return [node]
    found = []
    for root, dirs, names in os.walk(host_path):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        for name in sorted(names):
            if name in skip or os.path.islink(os.path.join(root, name)):
                continue
            source = os.path.join(root, name)
            node = _device_node(source, os.path.join(container_path,
                                                     os.path.relpath(source, host_path)))
            if node is not None:
                found.append(node)
    return found


def _devices(hc: dict[str, Any], privileged: bool) -> tuple[list[Device], list[dict[str, Any]]]:
    """--device nodes with the cgroup rules that allow them, then --device-cgroup-rule's."""
    devices: list[Device] = []
    rules: list[dict[str, Any]] = []
    if privileged:
        devices += _nodes_under("/dev", "/dev", _SKIPPED_DEV_DIRS | {"console"})
    for entry in hc.get("Devices") or []:
        for node in _nodes_under(entry["PathOnHost"], entry["PathInContainer"]):
            devices.append(node)
            rules.append(allow_rule(node.type, node.major, node.minor,
                                    entry["CgroupPermissions"]))
    for text in hc.get("DeviceCgroupRules") or []:
        kind, major, minor, access = parse_device_rule(text)
        rules.append(allow_rule(kind, major, minor, access))
    return devices, rules
