"""Healthchecks through the docker CLI and the SDK: probes as execs, State.Health in inspect
and ps, the health filter, and probes resumed after a daemon restart."""

from __future__ import annotations

import time

from servin.timefmt import parse_rfc3339_ns

from tests.support.registry import build_image, push_image
from tests.support.waiting import wait_until

MS = 1_000_000


def health_of(client, container_id: str) -> dict | None:
    return client.api.inspect_container(container_id)["State"].get("Health")


def status_is(client, container_id: str, status: str):
    return lambda: (h := health_of(client, container_id)) and h["Status"] == status and h


def test_cli_health_cmd_becomes_healthy_and_is_filtered(docker_cli, docker_client, alpine,
                                                        containers):
    container_id = docker_cli("run", "-d", "--health-cmd", "echo ok; test -f /tmp/ready",
                              "--health-interval", "300ms", alpine, "sh", "-c",
                              "sleep 1; touch /tmp/ready; sleep 300").stdout.strip()
    assert health_of(docker_client, container_id)["Status"] == "starting"
    assert container_id[:12] in docker_cli("ps", "-q", "--filter", "health=starting").stdout
    health = wait_until(status_is(docker_client, container_id, "healthy"))
    assert health["FailingStreak"] == 0
    assert health["Log"][-1]["ExitCode"] == 0 and health["Log"][-1]["Output"] == "ok\n"
    assert len(health["Log"]) <= 5
    assert docker_cli("ps", "-q", "--no-trunc", "--filter", "health=healthy").stdout.split() == [
        container_id]
    assert container_id[:12] not in docker_cli("ps", "-q", "--filter", "health=none").stdout
    status = docker_cli("ps", "--filter", f"id={container_id}", "--format", "{{.Status}}")
    assert status.stdout.strip().endswith("(healthy)")


def test_failing_probe_makes_it_unhealthy_and_it_is_not_restarted(docker_client, alpine,
                                                                  containers):
    container = containers.run(alpine, ["sleep", "300"], detach=True,
                               restart_policy={"Name": "always"},
                               healthcheck={"test": ["CMD-SHELL", "echo bad >&2; exit 3"],
                                            "interval": 200 * MS, "retries": 2})
    health = wait_until(status_is(docker_client, container.id, "unhealthy"))
    assert health["FailingStreak"] >= 2
    assert health["Log"][-1]["ExitCode"] == 3 and health["Log"][-1]["Output"] == "bad\n"
    wait_until(lambda: len(health_of(docker_client, container.id)["Log"]) == 5)
    time.sleep(1)
    assert len(health_of(docker_client, container.id)["Log"]) == 5  # the last five only
    container.reload()
    assert container.status == "running" and container.attrs["RestartCount"] == 0
    assert [c.id for c in docker_client.containers.list(filters={"health": "unhealthy"})] == [
        container.id]
    container.stop(timeout=1)
    assert health_of(docker_client, container.id)["Status"] == "unhealthy"


def test_probe_timeout_and_start_period(docker_client, alpine, containers):
    container = containers.run(alpine, ["sleep", "300"], detach=True,
                               healthcheck={"test": ["CMD", "sleep", "5"],
                                            "interval": 200 * MS, "timeout": 300 * MS,
                                            "retries": 1, "start_period": 60_000 * MS})
    health = wait_until(lambda: (h := health_of(docker_client, container.id))["Log"] and h)
    assert health["Log"][0]["ExitCode"] == -1
    assert health["Log"][0]["Output"] == "Health check exceeded timeout (300ms)"
    # failures in the start period do not count while it never was healthy
    assert health["Status"] == "starting" and health["FailingStreak"] == 0
    ps = container.exec_run(["ps", "-o", "args"]).output.decode()
    assert "sleep 5" not in ps  # the timed-out probe was killed


def test_healthcheck_from_the_image_and_none(docker_client, registry, test_images, containers):
    image = build_image([test_images.busybox_layer], {
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 200 * MS}})
    push_image(registry.url, "library/healthy", "latest", image)
    docker_client.images.pull("healthy", tag="latest")
    container = containers.run("healthy", ["sleep", "300"], detach=True)
    wait_until(status_is(docker_client, container.id, "healthy"))
    disabled = containers.run("healthy", ["sleep", "300"], detach=True,
                              healthcheck={"test": ["NONE"]})
    assert health_of(docker_client, disabled.id) is None
    assert disabled.id in [c.id for c in docker_client.containers.list(filters={"health": "none"})]


def test_healthchecks_resume_after_a_daemon_restart(make_servind, test_images):
    daemon = make_servind()
    client = daemon.client()
    client.images.pull("alpine", tag="latest")
    container = client.containers.run("alpine", ["sleep", "300"], detach=True, healthcheck={
        "test": ["CMD-SHELL", "date +%s%N"], "interval": 200 * MS})
    wait_until(status_is(client, container.id, "healthy"))
    client.close()
    daemon.kill9()
    daemon.start()
    client = daemon.client()
    last = parse_rfc3339_ns(health_of(client, container.id)["Log"][-1]["End"])
    # A probe that ended after the restart: the monitor is running again.
    wait_until(lambda: (h := health_of(client, container.id))["Status"] == "healthy"
               and parse_rfc3339_ns(h["Log"][-1]["End"]) > last)
    container.remove(force=True)
    client.close()
