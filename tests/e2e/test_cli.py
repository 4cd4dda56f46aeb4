"""The docker CLI's everyday container commands against a real servind."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.registry import push_image


@pytest.fixture
def cli(docker_cli, alpine, containers):
    """docker_cli with `alpine` pulled and the test's containers removed afterwards."""
    return docker_cli


def test_run_rm_echo(cli, docker_client):
    before = len(docker_client.containers.list(all=True))
    result = cli("run", "--rm", "alpine", "echo", "hi")
    assert result.stdout == "hi\n"
    assert len(docker_client.containers.list(all=True)) == before  # --rm removed it


def test_run_exit_code_is_the_containers(cli):
    result = cli("run", "--rm", "alpine", "sh", "-c", "echo bad >&2; exit 5", check=False)
    assert result.returncode == 5
    assert result.stderr == "bad\n"


def test_run_pulls_a_missing_image(docker_cli, containers, registry, test_images):
    # A repository of its own: no other test can have pulled it into this servind.
    push_image(registry.url, "library/cli-pull", "latest", test_images.images["busybox"])
    result = docker_cli("run", "--rm", "cli-pull", "echo", "pulled")
    assert "Unable to find image 'cli-pull:latest' locally" in result.stderr
    assert result.stdout == "pulled\n"


def test_run_with_stdin(cli):
    result = cli("run", "--rm", "-i", "alpine", "sh", "-c", "tr a-z A-Z", input="hello\n")
    assert result.stdout == "HELLO\n"


def test_run_unknown_command_exits_127(cli):
    result = cli("run", "--rm", "alpine", "/nonexistent", check=False)
    assert result.returncode == 127
    assert "no such file or directory" in result.stderr.lower()


def test_detached_lifecycle(cli):
    cid = cli("run", "-d", "--name", "cli-life", "alpine",
              "sh", "-c", "echo started; sleep 1; echo done; exit 3").stdout.strip()
    assert len(cid) == 64
    ps = cli("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Image}}").stdout
    assert f"{cid} cli-life alpine" in ps.splitlines()
    assert cli("wait", "cli-life").stdout.strip() == "3"
    assert cli("logs", "cli-life").stdout == "started\ndone\n"
    inspected = json.loads(cli("inspect", "cli-life").stdout)
    assert inspected[0]["Id"] == cid
    assert inspected[0]["State"]["ExitCode"] == 3
    assert cli("inspect", "-f", "{{.State.Status}}", "cli-life").stdout.strip() == "exited"
    status = cli("ps", "-a", "--filter", "name=cli-life", "--format", "{{.Status}}").stdout
    assert status.startswith("Exited (3)")
    assert cli("rm", "-f", "cli-life").stdout.strip() == "cli-life"
    missing = cli("inspect", "cli-life", check=False)
    assert missing.returncode == 1
    assert "No such object: cli-life" in missing.stderr or "No such container" in missing.stderr


def test_ps_shows_running_only_without_a(cli):
    cli("run", "-d", "--name", "cli-running", "alpine", "sleep", "30")
    cli("create", "--name", "cli-created", "alpine", "true")
    names = cli("ps", "--format", "{{.Names}}").stdout.split()
    assert "cli-running" in names and "cli-created" not in names
    all_names = cli("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert {"cli-running", "cli-created"} <= set(all_names)
    assert cli("rm", "-f", "cli-running", "cli-created").returncode == 0


def test_logs_follow(cli):
    cli("run", "-d", "--name", "cli-follow", "alpine",
        "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done")
    assert cli("logs", "-f", "cli-follow").stdout == "line1\nline2\nline3\n"


def test_logs_details_show_the_attributes_the_log_options_pick(cli):
    cli("run", "--name", "cli-details", "--label", "app=web", "--label", "team=a b",
        "-e", "STAGE=prod", "--log-opt", "labels=app,team", "--log-opt", "env=STAGE",
        "alpine", "echo", "hi")
    assert cli("logs", "--details", "cli-details").stdout == "STAGE=prod,app=web,team=a+b hi\n"
    cli("run", "--name", "cli-no-details", "alpine", "echo", "hi")
    assert cli("logs", "--details", "cli-no-details").stdout == " hi\n"  # as dockerd


def test_an_env_name_without_a_value_unsets_it(cli):
    # The CLI sends the bare name of a variable it has no value for: the container runs
    # without it (runc refuses a bare name in the spec).
    assert "SERVIN_TEST_UNSET" not in os.environ
    out = cli("run", "--rm", "-e", "SERVIN_TEST_UNSET", "alpine",
              "/bin/sh", "-c", 'echo "${SERVIN_TEST_UNSET-unset}"').stdout
    assert out == "unset\n"


def test_rm_running_without_force_fails(cli):
    cli("run", "-d", "--name", "cli-busy", "alpine", "sleep", "30")
    result = cli("rm", "cli-busy", check=False)
    assert result.returncode != 0
    assert "You cannot remove a running container" in result.stderr
