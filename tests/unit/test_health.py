"""Healthcheck logic: probes from Config, dockerd's status rules, Go's duration text."""

from servin.containers.health import (HEALTHY, STARTING, UNHEALTHY, Probe, apply_result,
                                      go_duration, probe_of)
from servin.containers.record import Health, HealthResult

S = 1_000_000_000


def result(exit_code: int, at: int = 100 * S) -> HealthResult:
    return HealthResult(start_ns=at, end_ns=at + 1, exit_code=exit_code, output="")


def test_probe_of_cmd_shell_none_and_defaults():
    assert probe_of({}) is None
    assert probe_of({"Healthcheck": {"Test": ["NONE"]}}) is None
    assert probe_of({"Healthcheck": {"Test": []}}) is None
    assert probe_of({"Healthcheck": {"Test": ["CMD", "true"]}}) == Probe(
        argv=["true"], interval_ns=30 * S, timeout_ns=30 * S, start_period_ns=0, retries=3)
    shell = probe_of({"Healthcheck": {"Test": ["CMD-SHELL", "exit 1"], "Interval": S,
                                      "Retries": 5}})
    assert shell.argv == ["/bin/sh", "-c", "exit 1"] and shell.interval_ns == S
    assert shell.retries == 5
    custom = probe_of({"Shell": ["/bin/ash", "-e", "-c"],
                       "Healthcheck": {"Test": ["CMD-SHELL", "true"]}})
    assert custom.argv == ["/bin/ash", "-e", "-c", "true"]


def test_failures_count_to_retries_then_a_success_heals():
    health, probe = Health(), Probe(argv=["x"], retries=2)
    assert not apply_result(health, result(1), probe, started_ns=0)
    assert health.status == STARTING and health.failing_streak == 1
    assert apply_result(health, result(1), probe, started_ns=0)
    assert health.status == UNHEALTHY and health.failing_streak == 2
    assert apply_result(health, result(0), probe, started_ns=0)
    assert health.status == HEALTHY and health.failing_streak == 0


def test_start_period_spares_a_container_that_never_was_healthy():
    probe = Probe(argv=["x"], retries=1, start_period_ns=60 * S)
    health = Health()
    apply_result(health, result(1, at=10 * S), probe, started_ns=0)
    assert health.status == STARTING and health.failing_streak == 0
    apply_result(health, result(1, at=61 * S), probe, started_ns=0)
    assert health.status == UNHEALTHY
    healthy = Health(status=HEALTHY)
    apply_result(healthy, result(1, at=10 * S), probe, started_ns=0)
    assert healthy.status == UNHEALTHY  # once healthy, the start period is over


def test_log_keeps_the_last_five():
    health = Health()
    for code in range(8):
        apply_result(health, result(code), Probe(argv=["x"], retries=100), started_ns=0)
    assert [r.exit_code for r in health.log] == [3, 4, 5, 6, 7]


def test_go_durations():
    assert go_duration(30 * S) == "30s"
    assert go_duration(90 * S) == "1m30s"
    assert go_duration(3600 * S) == "1h0m0s"
    assert go_duration(1_500_000_000) == "1.5s"
    assert go_duration(300_000_000) == "300ms"
    assert go_duration(1_500_000) == "1.5ms"
    assert go_duration(2500) == "2.5µs"
    assert go_duration(0) == "0s"
