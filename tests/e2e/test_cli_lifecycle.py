"""The docker CLI's lifecycle commands: start, stop, restart, kill, pause, rename, update, prune."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.waiting import wait_until


@pytest.fixture
def cli(docker_cli, alpine, containers):
    """docker_cli with `alpine` pulled and the test's containers removed afterwards."""
    return docker_cli


def inspect(cli, name: str, template: str) -> str:
    return cli("inspect", "-f", template, name).stdout.strip()


def test_stop_start_restart(cli):
    cli("run", "-d", "--name", "lc-ssr", "alpine", "sh", "-c",
        "trap 'exit 0' TERM; echo up; while :; do sleep 0.1; done")
    time.sleep(0.3)
    assert cli("stop", "-t", "5", "lc-ssr").stdout.strip() == "lc-ssr"
    assert inspect(cli, "lc-ssr", "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    cli("start", "lc-ssr")
    assert inspect(cli, "lc-ssr", "{{.State.Running}}") == "true"
    first = inspect(cli, "lc-ssr", "{{.State.StartedAt}}")
    time.sleep(0.3)
    cli("restart", "-t", "5", "lc-ssr")
    assert inspect(cli, "lc-ssr", "{{.State.StartedAt}}") != first
    assert cli("logs", "lc-ssr").stdout == "up\nup\nup\n"


def test_kill_with_a_signal(cli):
    cli("run", "-d", "--name", "lc-kill", "alpine", "sh", "-c",
        "trap 'exit 12' HUP; while :; do sleep 0.1; done")
    time.sleep(0.3)
    cli("kill", "-s", "HUP", "lc-kill")
    assert cli("wait", "lc-kill").stdout.strip() == "12"
    result = cli("kill", "lc-kill", check=False)
    assert result.returncode != 0 and "is not running" in result.stderr


def test_pause_unpause_and_ps_status(cli):
    cli("run", "-d", "--name", "lc-pause", "alpine", "sleep", "60")
    cli("pause", "lc-pause")
    status = cli("ps", "--filter", "name=lc-pause", "--format", "{{.Status}}").stdout
    assert "(Paused)" in status
    cli("unpause", "lc-pause")
    assert inspect(cli, "lc-pause", "{{.State.Paused}}") == "false"


def test_rename_and_update(cli):
    cli("run", "-d", "--name", "lc-old", "alpine", "sleep", "60")
    cli("rename", "lc-old", "lc-new")
    assert inspect(cli, "lc-new", "{{.Name}}") == "/lc-new"
    cli("update", "--memory", "32m", "--memory-swap", "64m", "--restart", "on-failure:2",
        "lc-new")
    host_config = json.loads(inspect(cli, "lc-new", "{{json .HostConfig}}"))
    assert host_config["Memory"] == 32 * 1024 * 1024
    assert host_config["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}


def test_restart_policy_from_run(cli):
    cli("run", "-d", "--name", "lc-always", "--restart", "always", "alpine", "sh", "-c",
        "sleep 0.2")
    wait_until(lambda: int(inspect(cli, "lc-always", "{{.RestartCount}}")) >= 2,
               what="second restart")
    cli("stop", "lc-always")
    assert inspect(cli, "lc-always", "{{.State.Status}}") == "exited"


def test_container_prune(cli):
    cli("create", "--name", "lc-prune", "--label", "prune-me=1", "alpine", "true")
    out = cli("container", "prune", "-f", "--filter", "label=prune-me=1").stdout
    assert "Deleted Containers:" in out and "Total reclaimed space:" in out
    assert cli("inspect", "lc-prune", check=False).returncode != 0
