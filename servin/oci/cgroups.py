"""Host cgroup facts (what can be limited, OOM kill counts) and removal of emptied parents."""

from __future__ import annotations

import errno
import functools
import os
from pathlib import Path

import attrs
import structlog

log = structlog.get_logger("servin.oci")

CGROUP_ROOT = Path("/sys/fs/cgroup")


def is_cgroup_v2(root: Path = CGROUP_ROOT) -> bool:
    """True on a unified (v2-only) hierarchy, where Docker gives containers a cgroup namespace."""
    return (root / "cgroup.controllers").exists()


def remove_cgroup(path: str, root: Path = CGROUP_ROOT) -> None:
    """rmdir the cgroup ``path`` (e.g. ``/servin``) in every hierarchy, if it is empty.

    runc deletes a container's own cgroup but leaves the parent it created.
    """
    relative = path.strip("/")
    candidates = [root / relative] if is_cgroup_v2(root) else [h / relative for h in root.iterdir()]
    for candidate in candidates:
        try:
            os.rmdir(candidate)
        except FileNotFoundError:
            continue
        except OSError as e:
            if e.errno == errno.EBUSY:  # live containers still use it
                log.debug("cgroup_in_use", path=str(candidate))
                continue
            log.warning("cgroup_remove_failed", path=str(candidate), error=str(e))


@attrs.frozen
class CgroupFacts:
    """What the host's cgroups can limit, as dockerd's sysinfo finds out (cgroupfs driver)."""

    version: int = 1
    memory: bool = True
    swap: bool = True
    memory_reservation: bool = True
    swappiness: bool = True
    oom_kill_disable: bool = True
    cpu_shares: bool = True
    cpu_cfs: bool = True
    cpuset: bool = True
    cpus: str = "0"
    mems: str = "0"
    pids: bool = True
    blkio_weight: bool = True
    kernel_memory: bool = False
    kernel_memory_tcp: bool = False

    @property
    def num_cpus(self) -> int:
        return len(parse_cpuset(self.cpus))


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def detect_cgroup_facts(root: Path = CGROUP_ROOT) -> CgroupFacts:
    """The limits this host supports, read from the cgroup hierarchy mounted at ``root``."""
    if is_cgroup_v2(root):
        controllers = set(_read(root / "cgroup.controllers").split())
        memory = "memory" in controllers
        cpuset = "cpuset" in controllers
        # v2 has no swappiness, no OOM-killer switch and no kernel memory limit.
        return CgroupFacts(
            version=2, memory=memory, swap=memory, memory_reservation=memory,
            swappiness=False, oom_kill_disable=False,
            cpu_shares="cpu" in controllers, cpu_cfs="cpu" in controllers, cpuset=cpuset,
            cpus=_read(root / "cpuset.cpus.effective") if cpuset else "",
            mems=_read(root / "cpuset.mems.effective") if cpuset else "",
            pids="pids" in controllers, blkio_weight="io" in controllers)
    memory, cpu, cpuset = root / "memory", root / "cpu", root / "cpuset"
    return CgroupFacts(
        version=1,
        memory=(memory / "memory.limit_in_bytes").exists(),
        swap=(memory / "memory.memsw.limit_in_bytes").exists(),
        memory_reservation=(memory / "memory.soft_limit_in_bytes").exists(),
        swappiness=(memory / "memory.swappiness").exists(),
        oom_kill_disable=(memory / "memory.oom_control").exists(),
        cpu_shares=(cpu / "cpu.shares").exists(),
        cpu_cfs=(cpu / "cpu.cfs_quota_us").exists(),
        cpuset=(cpuset / "cpuset.cpus").exists(),
        cpus=_read(cpuset / "cpuset.cpus"),
        mems=_read(cpuset / "cpuset.mems"),
        pids=(root / "pids").is_dir(),
        blkio_weight=(root / "blkio" / "blkio.weight").exists(),
        kernel_memory=(memory / "memory.kmem.limit_in_bytes").exists(),
        kernel_memory_tcp=(memory / "memory.kmem.tcp.limit_in_bytes").exists())


@functools.cache
def host_cgroup_facts() -> CgroupFacts:
    return detect_cgroup_facts()


def parse_cpuset(text: str) -> set[int]:
    """``0-2,5`` -> {0, 1, 2, 5}; ValueError for anything else (as the kernel's list format)."""
    cpus: set[int] = set()
    if not text.strip():
        return cpus
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"invalid format: {text}")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ValueError(f"invalid format: {text}")
        cpus.update(range(first, last + 1))
    return cpus


def oom_kill_count(cgroups_path: str, root: Path = CGROUP_ROOT) -> int:
    """How many processes the kernel's OOM killer killed in the cgroup (0 once it is gone)."""
    relative = cgroups_path.strip("/")
    if is_cgroup_v2(root):
        path, key = root / relative / "memory.events", "oom_kill"
    else:
        path, key = root / "memory" / relative / "memory.oom_control", "oom_kill"
    for line in _read(path).splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0
