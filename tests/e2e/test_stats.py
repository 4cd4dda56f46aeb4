"""docker stats through the SDK and the CLI: real cgroup numbers, Docker's shape."""

from __future__ import annotations

import json

import pytest

from servin.timefmt import ZERO_TIME


@pytest.fixture
def busy(alpine, containers):
    """A running container that burns some CPU and holds some memory, with limits."""
    return containers.run(alpine, ["sh", "-c", "while :; do :; done & sleep 300"], detach=True,
                          mem_limit="64m", pids_limit=50)


def test_stats_one_object_with_previous_sample(busy):
    stats = busy.stats(stream=False)
    assert stats["id"] == busy.id and stats["name"] == "/" + busy.name
    assert stats["read"] != ZERO_TIME and stats["preread"] != ZERO_TIME
    cpu, precpu = stats["cpu_stats"], stats["precpu_stats"]
    assert cpu["cpu_usage"]["total_usage"] > precpu["cpu_usage"]["total_usage"] > 0
    assert cpu["system_cpu_usage"] > precpu["system_cpu_usage"] > 0
    assert cpu["online_cpus"] >= 1
    assert cpu["cpu_usage"]["usage_in_usermode"] > 0
    assert set(cpu["throttling_data"]) == {"periods", "throttled_periods", "throttled_time"}
    memory = stats["memory_stats"]
    assert memory["limit"] == 64 * 1024 * 1024
    assert 0 < memory["usage"] <= memory["limit"] and memory["max_usage"] >= memory["usage"]
    assert "total_inactive_file" in memory["stats"] or "inactive_file" in memory["stats"]
    assert stats["pids_stats"] == {"current": 2, "limit": 50}  # the loop and sleep
    assert set(stats["networks"]) == {"eth0"}
    assert set(stats["networks"]["eth0"]) == {"rx_bytes", "rx_packets", "rx_errors",
                                              "rx_dropped", "tx_bytes", "tx_packets",
                                              "tx_errors", "tx_dropped"}
    assert "io_service_bytes_recursive" in stats["blkio_stats"]


def test_stats_stream_chains_samples(docker_client, busy):
    stream = docker_client.api.stats(busy.id, stream=True, decode=True)
    first, second = next(stream), next(stream)
    stream.close()
    assert first["preread"] == ZERO_TIME and "system_cpu_usage" not in first["precpu_stats"]
    assert second["preread"] == first["read"]
    assert second["precpu_stats"] == first["cpu_stats"]


def test_one_shot_has_no_previous_sample(docker_client, busy):
    stats = docker_client.api.stats(busy.id, stream=False, one_shot=True)
    assert stats["preread"] == ZERO_TIME and stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0


def test_stopped_container_has_zeroed_stats(containers, alpine):
    stopped = containers.create(alpine, ["true"])
    stats = stopped.stats(stream=False)
    assert stats["read"] == ZERO_TIME and stats["memory_stats"] == {}
    assert stats["cpu_stats"]["cpu_usage"] == {"total_usage": 0, "usage_in_kernelmode": 0,
                                               "usage_in_usermode": 0}
    assert "networks" not in stats and stats["pids_stats"] == {}


def test_host_network_container_has_no_networks(containers, alpine):
    container = containers.run(alpine, ["sleep", "300"], detach=True, network_mode="host")
    assert "networks" not in container.stats(stream=False)


def test_cli_stats_no_stream(docker_cli, busy):
    result = docker_cli("stats", "--no-stream", "--format", "{{json .}}", busy.id)
    row = json.loads(result.stdout)
    assert row["ID"] == busy.id[:12] and row["Name"] == busy.name
    assert float(row["CPUPerc"].rstrip("%")) > 10.0  # the busy loop shows
    usage, limit = row["MemUsage"].split(" / ")
    assert limit == "64MiB" and usage.endswith(("KiB", "MiB"))
    assert row["PIDs"] == "2"
