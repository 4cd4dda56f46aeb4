"""Usage readers against fixture trees shaped like /sys/fs/cgroup (v1 and v2) and /proc."""

from pathlib import Path

from servin.oci.cgroupstats import (NS_PER_TICK, BlkioEntry, read_cgroup_stats, read_net_dev,
                                    system_cpu_usage_ns)
from servin.stats.views import Sample, docker_stats

CGROUP = "/servin/abc"


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def v1_tree(root: Path) -> Path:
    write(root, {
        "cpuacct/servin/abc/cpuacct.usage": "5000000\n",
        "cpuacct/servin/abc/cpuacct.usage_percpu": "3000000 2000000 \n",
        "cpuacct/servin/abc/cpuacct.stat": "user 30\nsystem 20\n",
        "cpu/servin/abc/cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 777\n",
        "memory/servin/abc/memory.usage_in_bytes": "1048576\n",
        "memory/servin/abc/memory.max_usage_in_bytes": "2097152\n",
        "memory/servin/abc/memory.limit_in_bytes": "9223372036854771712\n",
        "memory/servin/abc/memory.failcnt": "0\n",
        "memory/servin/abc/memory.stat": "cache 4096\nrss 8192\ntotal_inactive_file 4096\n",
        "blkio/servin/abc/blkio.io_service_bytes_recursive": "Total 0\n",
        "blkio/servin/abc/blkio.throttle.io_service_bytes_recursive":
            "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\nTotal 4608\n",
        "blkio/servin/abc/blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 2\n"
                                                                  "Total 3\n",
        "pids/servin/abc/pids.current": "4\n",
        "pids/servin/abc/pids.max": "max\n",
    })
    return root


def v2_tree(root: Path) -> Path:
    write(root, {
        "cgroup.controllers": "cpu io memory pids\n",
        "servin/abc/cpu.stat": "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\n"
                               "nr_periods 10\nnr_throttled 1\nthrottled_usec 7\n",
        "servin/abc/memory.current": "1048576\n",
        "servin/abc/memory.max": "67108864\n",
        "servin/abc/memory.events": "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n",
        "servin/abc/memory.stat": "anon 8192\nfile 4096\ninactive_file 4096\n",
        "servin/abc/io.stat": "8:0 rbytes=4096 wbytes=512 rios=1 wios=2 dbytes=0 dios=0\n",
        "servin/abc/pids.current": "4\n",
        "servin/abc/pids.max": "100\n",
    })
    return root


def test_v1_reader(tmp_path):
    stats = read_cgroup_stats(CGROUP, v1_tree(tmp_path))
    assert stats.cpu.total_ns == 5_000_000 and stats.cpu.percpu_ns == [3_000_000, 2_000_000]
    assert (stats.cpu.user_ns, stats.cpu.kernel_ns) == (30 * NS_PER_TICK, 20 * NS_PER_TICK)
    assert (stats.cpu.periods, stats.cpu.throttled_periods, stats.cpu.throttled_ns) == (10, 2, 777)
    assert (stats.memory.usage, stats.memory.max_usage) == (1048576, 2097152)
    assert stats.memory.limit == 0  # the kernel's "no limit"
    assert stats.memory.stats == {"cache": 4096, "rss": 8192, "total_inactive_file": 4096}
    # blk-mq leaves the CFQ files empty: the throttle files count
    assert stats.io_service_bytes == [BlkioEntry(8, 0, "Read", 4096), BlkioEntry(8, 0, "Write", 512),
                                      BlkioEntry(8, 0, "Sync", 0)]
    assert len(stats.io_serviced) == 2
    assert (stats.pids_current, stats.pids_limit) == (4, 0)


def test_v2_reader(tmp_path):
    stats = read_cgroup_stats(CGROUP, v2_tree(tmp_path))
    assert (stats.cpu.total_ns, stats.cpu.user_ns, stats.cpu.kernel_ns) == (5_000_000,
                                                                           3_000_000, 2_000_000)
    assert stats.cpu.percpu_ns == [] and stats.cpu.throttled_ns == 7000
    assert (stats.memory.usage, stats.memory.limit, stats.memory.failcnt) == (1048576,
                                                                             64 << 20, 2)
    assert stats.memory.max_usage == 0 and stats.memory.stats["inactive_file"] == 4096
    assert stats.io_service_bytes == [BlkioEntry(8, 0, "read", 4096),
                                      BlkioEntry(8, 0, "write", 512)]
    assert stats.io_serviced == []
    assert (stats.pids_current, stats.pids_limit) == (4, 100)


def test_a_gone_cgroup_reads_as_zero(tmp_path):
    stats = read_cgroup_stats("/servin/gone", v2_tree(tmp_path))
    assert stats.cpu.total_ns == 0 and stats.memory.usage == 0 and stats.io_service_bytes == []


def test_net_dev_and_proc_stat(tmp_path):
    (tmp_path / "dev").write_text(
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets"
        " errs drop fifo colls carrier compressed\n"
        "    lo:     100       1    0    0    0     0          0         0      100       1"
        "    0    0    0     0       0          0\n"
        "  eth0:    2000      20    1    2    0     0          0         0     3000      30"
        "    3    4    0     0       0          0\n")
    networks = read_net_dev(tmp_path / "dev")
    assert list(networks) == ["eth0"]
    eth0 = networks["eth0"]
    assert (eth0.rx_bytes, eth0.rx_packets, eth0.rx_errors, eth0.rx_dropped) == (2000, 20, 1, 2)
    assert (eth0.tx_bytes, eth0.tx_packets, eth0.tx_errors, eth0.tx_dropped) == (3000, 30, 3, 4)
    (tmp_path / "stat").write_text("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 1 1 1 1 1 1 0 0 0\n")
    assert system_cpu_usage_ns(tmp_path / "stat") == 28 * NS_PER_TICK


def test_docker_shape_caps_the_limit_at_the_machines_memory(tmp_path):
    sample = Sample(read_ns=1, cgroup=read_cgroup_stats(CGROUP, v1_tree(tmp_path)),
                    networks={}, system_cpu_ns=10, online_cpus=2)
    out = docker_stats("web", "abc", sample, None, machine_memory=1 << 30)
    assert out["memory_stats"]["limit"] == 1 << 30
    assert out["cpu_stats"]["cpu_usage"]["percpu_usage"] == [3_000_000, 2_000_000]
    assert out["precpu_stats"] == {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                                                 "usage_in_usermode": 0},
                                   "throttling_data": {"periods": 0, "throttled_periods": 0,
                                                       "throttled_time": 0}}
    assert out["blkio_stats"]["io_service_bytes_recursive"][0] == {
        "major": 8, "minor": 0, "op": "Read", "value": 4096}
    assert out["blkio_stats"]["sectors_recursive"] is None
    assert out["pids_stats"] == {"current": 4} and "networks" not in out
    assert out["name"] == "/web"
