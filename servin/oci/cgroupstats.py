"""Resource usage of a container: its cgroup (v1 or v2), its network interfaces, the host's CPU time.

Small reads of kernel files, meant to run off the event loop in one batch per sample.
Files that are missing (a controller not mounted, a cgroup already gone) read as zero,
as dockerd reports what the kernel offers.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from servin.oci.cgroups import CGROUP_ROOT, is_cgroup_v2

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NS_PER_TICK = 1_000_000_000 // CLOCK_TICKS
# A v1 memory limit at or above this is "no limit" (the kernel's page-rounded LONG_MAX).
UNLIMITED = 1 << 62


@attrs.frozen
class CpuUsage:
    total_ns: int = 0
    percpu_ns: list[int] = attrs.field(factory=list)  # empty on v2
    kernel_ns: int = 0
    user_ns: int = 0
    periods: int = 0
    throttled_periods: int = 0
    throttled_ns: int = 0


@attrs.frozen
class MemoryUsage:
    usage: int = 0
    max_usage: int = 0  # 0 on v2, which does not track it
    limit: int = 0      # 0: no limit of its own
    failcnt: int = 0
    stats: dict[str, int] = attrs.field(factory=dict)  # memory.stat as the kernel names it


@attrs.frozen
class BlkioEntry:
    major: int
    minor: int
    op: str
    value: int


@attrs.frozen
class CgroupStats:
    cpu: CpuUsage = attrs.field(factory=CpuUsage)
    memory: MemoryUsage = attrs.field(factory=MemoryUsage)
    io_service_bytes: list[BlkioEntry] = attrs.field(factory=list)
    io_serviced: list[BlkioEntry] = attrs.field(factory=list)
    pids_current: int = 0
    pids_limit: int = 0  # 0: no limit


@attrs.frozen
class InterfaceStats:
    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _int(path: Path) -> int:
    text = _read(path).strip()
    return int(text) if text.isdigit() else 0


def _limit(path: Path) -> int:
    """A limit file: a number, or "max" (v2) / a huge number (v1) for none, read as 0."""
    value = _int(path)
    return value if value < UNLIMITED else 0


def _keyed(path: Path) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, cpuacct.stat)."""
    out = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def read_cgroup_stats(cgroups_path: str, root: Path = CGROUP_ROOT) -> CgroupStats:
    """Usage of the cgroup at ``cgroups_path`` (as in the OCI spec) under ``root``."""
    relative = cgroups_path.strip("/")
    if is_cgroup_v2(root):
        return _read_v2(root / relative)
    return _read_v1(root, relative)


def _blkio_v1(path: Path) -> list[BlkioEntry]:
    """``8:0 Read 4096`` lines; the closing ``Total`` line is not an entry."""
    entries = []
    for line in _read(path).splitlines():
        fields = line.split()
        if len(fields) == 3 and ":" in fields[0]:
            major, _, minor = fields[0].partition(":")
            entries.append(BlkioEntry(int(major), int(minor), fields[1], int(fields[2])))
    return entries


def _read_v1(root: Path, relative: str) -> CgroupStats:
    cpuacct, cpu = root / "cpuacct" / relative, root / "cpu" / relative
    memory, blkio = root / "memory" / relative, root / "blkio" / relative
    ticks = _keyed(cpuacct / "cpuacct.stat")
    throttling = _keyed(cpu / "cpu.stat")
    percpu = [int(v) for v in _read(cpuacct / "cpuacct.usage_percpu").split() if v.isdigit()]

    def blkio_stat(name: str) -> list[BlkioEntry]:
        # The CFQ scheduler's files stay empty under blk-mq; the throttle ones always count.
        return _blkio_v1(blkio / f"blkio.{name}") or _blkio_v1(blkio / f"blkio.throttle.{name}")

    return CgroupStats(
        cpu=CpuUsage(total_ns=_int(cpuacct / "cpuacct.usage"), percpu_ns=percpu,
                     kernel_ns=ticks.get("system", 0) * NS_PER_TICK,
                     user_ns=ticks.get("user", 0) * NS_PER_TICK,
                     periods=throttling.get("nr_periods", 0),
                     throttled_periods=throttling.get("nr_throttled", 0),
                     throttled_ns=throttling.get("throttled_time", 0)),
        memory=MemoryUsage(usage=_int(memory / "memory.usage_in_bytes"),
                           max_usage=_int(memory / "memory.max_usage_in_bytes"),
                           limit=_limit(memory / "memory.limit_in_bytes"),
                           failcnt=_int(memory / "memory.failcnt"),
                           stats=_keyed(memory / "memory.stat")),
        io_service_bytes=blkio_stat("io_service_bytes_recursive"),
        io_serviced=blkio_stat("io_serviced_recursive"),
        pids_current=_int(root / "pids" / relative / "pids.current"),
        pids_limit=_limit(root / "pids" / relative / "pids.max"))


def _io_v2(path: Path) -> list[BlkioEntry]:
    """io.stat: ``8:0 rbytes=1 wbytes=2 rios=3 ...``, as dockerd's read/write byte entries."""
    entries = []
    for line in _read(path).splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        values = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        for op, key in (("read", "rbytes"), ("write", "wbytes")):
            entries.append(BlkioEntry(int(major), int(minor), op, int(values.get(key, 0))))
    return entries


def _read_v2(path: Path) -> CgroupStats:
    cpu = _keyed(path / "cpu.stat")
    return CgroupStats(
        cpu=CpuUsage(total_ns=cpu.get("usage_usec", 0) * 1000,
                     kernel_ns=cpu.get("system_usec", 0) * 1000,
                     user_ns=cpu.get("user_usec", 0) * 1000,
                     periods=cpu.get("nr_periods", 0),
                     throttled_periods=cpu.get("nr_throttled", 0),
                     throttled_ns=cpu.get("throttled_usec", 0) * 1000),
        memory=MemoryUsage(usage=_int(path / "memory.current"),
                           limit=_limit(path / "memory.max"),
                           failcnt=_keyed(path / "memory.events").get("oom", 0),
                           stats=_keyed(path / "memory.stat")),
        io_service_bytes=_io_v2(path / "io.stat"),
        pids_current=_int(path / "pids.current"),
        pids_limit=_limit(path / "pids.max"))


def read_net_dev(path: Path) -> dict[str, InterfaceStats]:
    """Counters per interface from a /proc/<pid>/net/dev (the process's network
    namespace), loopback left out as dockerd reports only the container's endpoints."""
    out = {}
    for line in _read(path).splitlines()[2:]:
        name, _, counters = line.partition(":")
        name, values = name.strip(), [int(v) for v in counters.split()]
        if name == "lo" or len(values) < 16:
            continue
        out[name] = InterfaceStats(rx_bytes=values[0], rx_packets=values[1],
                                   rx_errors=values[2], rx_dropped=values[3],
                                   tx_bytes=values[8], tx_packets=values[9],
                                   tx_errors=values[10], tx_dropped=values[11])
    return out


def system_cpu_usage_ns(path: Path = Path("/proc/stat")) -> int:
    """The host's CPU time since boot, as dockerd counts it (the first seven fields)."""
    for line in _read(path).splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            return sum(int(v) for v in fields[1:8]) * NS_PER_TICK
    return 0


def machine_memory(path: Path = Path("/proc/meminfo")) -> int:
    for line in _read(path).splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0
