"""docker exec through the SDK and the CLI (with a pseudo-terminal for -it)."""

from __future__ import annotations

import os
import pty
import select
import time

import docker.errors
import pytest

from tests.support.servind import DOCKER
from tests.support.waiting import wait_until


@pytest.fixture
def sleeper(alpine, containers):
    """A running container with a user of its own, for exec to go into."""
    container = containers.run(
        alpine, ["sh", "-c", "echo app:x:1234:1234::/tmp:/bin/sh >> /etc/passwd; sleep 300"],
        detach=True, environment={"FROM_CONTAINER": "yes"}, working_dir="/tmp")
    wait_until(lambda: container.exec_run(["id", "-u", "app"]).exit_code == 0)
    return container


def test_exec_run_output_exit_code_env_and_workdir(sleeper):
    result = sleeper.exec_run(["sh", "-c", "echo $FROM_CONTAINER $EXTRA; pwd; exit 3"],
                              environment={"EXTRA": "more"})
    assert result.exit_code == 3
    assert result.output == b"yes more\n/tmp\n"
    assert sleeper.exec_run(["pwd"], workdir="/etc").output == b"/etc\n"


def test_exec_streams_are_demultiplexed(sleeper):
    result = sleeper.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
    assert result.output == (b"out\n", b"err\n")
    assert sleeper.exec_run(["sh", "-c", "echo err >&2"], stderr=False).output == b""


def test_exec_as_another_user(sleeper):
    assert sleeper.exec_run(["id", "-u"], user="app").output == b"1234\n"
    assert sleeper.exec_run(["id", "-u"], user="99:99").output == b"99\n"


def test_exec_with_a_tty(sleeper):
    result = sleeper.exec_run(["sh", "-c", "tty; echo $TERM"], tty=True)
    assert result.output.startswith(b"/dev/pts/")
    assert result.output.endswith(b"xterm\r\n")


def test_exec_inspect(docker_client, sleeper):
    api = docker_client.api
    created = api.exec_create(sleeper.id, ["sh", "-c", "exit 2"], user="app",
                              privileged=True)
    info = api.exec_inspect(created["Id"])
    assert info["Running"] is False and info["ExitCode"] is None
    assert info["ContainerID"] == sleeper.id
    assert info["ProcessConfig"] == {"tty": False, "entrypoint": "sh",
                                     "arguments": ["-c", "exit 2"], "privileged": True,
                                     "user": "app"}
    assert created["Id"] in api.inspect_container(sleeper.id)["ExecIDs"]
    api.exec_start(created["Id"])
    info = api.exec_inspect(created["Id"])
    assert info["ExitCode"] == 2 and info["Running"] is False and info["Pid"] > 0
    with pytest.raises(docker.errors.APIError) as error:
        api.exec_start(created["Id"])
    assert error.value.status_code == 409
    assert "has already run" in error.value.explanation


def test_exec_missing_and_not_executable_commands(docker_client, sleeper):
    api = docker_client.api
    missing = api.exec_create(sleeper.id, ["nosuchcmd"])
    output = api.exec_start(missing["Id"])
    assert b'exec: "nosuchcmd": executable file not found in $PATH' in output
    assert api.exec_inspect(missing["Id"])["ExitCode"] == 127
    not_executable = api.exec_create(sleeper.id, ["/etc/passwd"])
    output = api.exec_start(not_executable["Id"])
    assert b"permission denied" in output
    assert api.exec_inspect(not_executable["Id"])["ExitCode"] == 126


def test_exec_refused_unless_running(docker_client, containers, alpine):
    api = docker_client.api
    stopped = containers.create(alpine, ["sleep", "300"])
    with pytest.raises(docker.errors.APIError) as error:
        api.exec_create(stopped.id, ["true"])
    assert error.value.status_code == 409
    assert error.value.explanation == f"Container {stopped.id} is not running"
    stopped.start()
    stopped.pause()
    with pytest.raises(docker.errors.APIError) as error:
        api.exec_create(stopped.id, ["true"])
    assert error.value.status_code == 409
    assert "is paused, unpause the container before exec" in error.value.explanation
    stopped.unpause()
    with pytest.raises(docker.errors.APIError) as error:
        api.exec_create(stopped.id, [])
    assert error.value.status_code == 400
    with pytest.raises(docker.errors.NotFound):
        api.exec_inspect("nosuchexec")


def test_exec_records_go_with_their_container(servind, docker_client, sleeper):
    exec_id = docker_client.api.exec_create(sleeper.id, ["true"])["Id"]
    docker_client.api.exec_start(exec_id)
    execs_dir = servind.data_root / "containers" / sleeper.id / "execs"
    assert (execs_dir / f"{exec_id}.json").exists()
    assert not (servind.exec_root / "execs" / exec_id).exists()
    sleeper.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.exec_inspect(exec_id)
    assert not execs_dir.exists()


def test_cli_exec_flags(docker_cli, sleeper):
    result = docker_cli("exec", "-e", "A=1", "-w", "/etc", "-u", "app", sleeper.id,
                        "sh", "-c", "echo $A $(pwd) $(id -u)")
    assert result.stdout == "1 /etc 1234\n"
    result = docker_cli("exec", sleeper.id, "sh", "-c", "echo oops >&2; exit 42", check=False)
    assert result.returncode == 42 and result.stderr == "oops\n"
    result = docker_cli("exec", "-i", sleeper.id, "tr", "a-z", "A-Z", input="hello\n")
    assert result.stdout == "HELLO\n"
    result = docker_cli("exec", sleeper.id, "nosuchcmd", check=False)
    assert result.returncode == 127
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in result.stdout + result.stderr


def test_cli_exec_detached(docker_cli, sleeper):
    assert docker_cli("exec", "-d", sleeper.id, "sh", "-c", "sleep 1; touch /tmp/done").stdout == ""
    wait_until(lambda: sleeper.exec_run(["test", "-f", "/tmp/done"]).exit_code == 0)


def test_cli_exec_it_through_a_pseudo_terminal(servind, sleeper):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["DOCKER_HOST"] = servind.host
        os.environ.pop("DOCKER_CONTEXT", None)
        os.execv(str(DOCKER), [str(DOCKER), "exec", "-it", sleeper.id, "sh"])
    output = b""

    def read_until(marker: bytes, timeout: float = 15.0) -> None:
        nonlocal output
        deadline = time.monotonic() + timeout
        while marker not in output:
            assert time.monotonic() < deadline, f"no {marker!r} in {output!r}"
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    output += os.read(fd, 4096)
                except OSError:
                    break

    try:
        read_until(b"# ")
        os.write(fd, b"stty size; tty; echo $((6*7))\r")
        read_until(b"42")
        assert b"/dev/pts/" in output
        os.write(fd, b"exit 5\r")
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 5
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)


def test_exec_survives_a_daemon_restart(make_servind, test_images):
    daemon = make_servind()
    client = daemon.client()
    client.images.pull("alpine", tag="latest")
    container = client.containers.run("alpine", ["sleep", "300"], detach=True)
    exec_id = client.api.exec_create(container.id, ["sh", "-c", "sleep 3; exit 9"])["Id"]
    client.api.exec_start(exec_id, detach=True)
    assert client.api.exec_inspect(exec_id)["Running"] is True
    client.close()
    daemon.kill9()
    daemon.start()
    client = daemon.client()
    info = client.api.exec_inspect(exec_id)
    assert info["Running"] is True and info["ContainerID"] == container.id
    info = wait_until(lambda: (i := client.api.exec_inspect(exec_id))["ExitCode"] is not None
                      and i)
    assert info["ExitCode"] == 9 and info["Running"] is False
    container.remove(force=True)
    client.close()
