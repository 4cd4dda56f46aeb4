"""Docker's stats JSON (GET /containers/{id}/stats) from samples of a container's usage."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import attrs

from servin.oci.cgroupstats import (BlkioEntry, CgroupStats, InterfaceStats, read_cgroup_stats,
                                    read_net_dev, system_cpu_usage_ns)
from servin.timefmt import rfc3339_nano

BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
              "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
              "io_time_recursive", "sectors_recursive")


@attrs.frozen
class Sample:
    """One reading of a running container's usage."""

    read_ns: int
    cgroup: CgroupStats
    networks: dict[str, InterfaceStats] | None  # None: no network namespace of its own
    system_cpu_ns: int
    online_cpus: int


def read_sample(cgroups_path: str, pid: int, *, with_networks: bool) -> Sample:
    """Read everything a sample holds (blocking: small kernel files)."""
    networks = read_net_dev(Path(f"/proc/{pid}/net/dev")) if with_networks else None
    return Sample(read_ns=time.time_ns(), cgroup=read_cgroup_stats(cgroups_path),
                  networks=networks, system_cpu_ns=system_cpu_usage_ns(),
                  online_cpus=os.sysconf("SC_NPROCESSORS_ONLN"))


def _cpu(sample: Sample | None) -> dict[str, Any]:
    cpu = sample.cgroup.cpu if sample else None
    usage: dict[str, Any] = {"total_usage": cpu.total_ns if cpu else 0}
    if cpu and cpu.percpu_ns:
        usage["percpu_usage"] = list(cpu.percpu_ns)
    usage["usage_in_kernelmode"] = cpu.kernel_ns if cpu else 0
    usage["usage_in_usermode"] = cpu.user_ns if cpu else 0
    out: dict[str, Any] = {"cpu_usage": usage}
    if sample:
        out["system_cpu_usage"] = sample.system_cpu_ns
        out["online_cpus"] = sample.online_cpus
    out["throttling_data"] = {"periods": cpu.periods if cpu else 0,
                              "throttled_periods": cpu.throttled_periods if cpu else 0,
                              "throttled_time": cpu.throttled_ns if cpu else 0}
    return out


def _blkio(entries: list[BlkioEntry]) -> list[dict[str, Any]] | None:
    return [{"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}
            for e in entries] or None


def _nonzero(values: dict[str, Any]) -> dict[str, Any]:
    """Go's omitempty."""
    return {key: value for key, value in values.items() if value}


def docker_stats(name: str, container_id: str, sample: Sample | None, pre: Sample | None,
                 machine_memory: int) -> dict[str, Any]:
    """One stats object; ``sample`` None (a container that does not run) gives dockerd's
    zeroed object, ``pre`` the previous sample of the stream (precpu_stats, preread)."""
    cgroup = sample.cgroup if sample else CgroupStats()
    memory = cgroup.memory
    limit = memory.limit if memory.limit and memory.limit < machine_memory else machine_memory
    out: dict[str, Any] = {
        "read": rfc3339_nano(sample.read_ns if sample else 0),
        "preread": rfc3339_nano(pre.read_ns if pre else 0),
        "pids_stats": _nonzero({"current": cgroup.pids_current, "limit": cgroup.pids_limit}),
        "blkio_stats": {key: None for key in BLKIO_KEYS},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(sample),
        "precpu_stats": _cpu(pre),
        "memory_stats": _nonzero({"usage": memory.usage, "max_usage": memory.max_usage,
                                  "stats": dict(memory.stats), "failcnt": memory.failcnt,
                                  "limit": limit if sample else 0}),
        "name": "/" + name,
        "id": container_id,
    }
    out["blkio_stats"].update(io_service_bytes_recursive=_blkio(cgroup.io_service_bytes),
                              io_serviced_recursive=_blkio(cgroup.io_serviced))
    if sample and sample.networks:
        out["networks"] = {name: attrs.asdict(counters)
                           for name, counters in sorted(sample.networks.items())}
    return out
