"""Exec configuration as dockerd derives it: environment, process spec, start exit codes."""

from servin.containers.environment import container_environment, replace_or_append
from servin.containers.record import Container
from servin.exec.manager import exec_environment, start_exit_code
from servin.oci.exec import ExecProcess, exec_process_spec
from servin.oci.users import ResolvedUser


def container(env: list[str]) -> Container:
    return Container(id="c" * 64, name="web", created_ns=0, image_id="sha256:x",
                     config={"Env": env, "Hostname": "box"}, host_config={}, path="sh", args=[])


def test_environment_defaults_container_then_exec():
    env = exec_environment(container(["PATH=/opt/bin", "A=1", "B=2"]), True, ["B=3", "A"])
    assert env == ["PATH=/opt/bin", "HOSTNAME=box", "TERM=xterm", "B=3"]
    assert exec_environment(container([]), False, [])[0].startswith("PATH=/usr/local/sbin")


def test_process_spec_from_the_containers():
    base = {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["sleep"], "env": [],
            "cwd": "/", "capabilities": {"bounding": ["CAP_KILL"]}, "noNewPrivileges": True,
            "consoleSize": {"height": 1, "width": 1}, "rlimits": [{"type": "RLIMIT_NOFILE"}]}
    spec = exec_process_spec(base, ExecProcess(["ls", "-l"], ["A=1"], cwd="/tmp",
                                               user=ResolvedUser(uid=5, gid=6,
                                                                 additional_gids=[7]),
                                               terminal=True))
    assert spec["args"] == ["ls", "-l"] and spec["env"] == ["A=1"] and spec["cwd"] == "/tmp"
    assert spec["user"] == {"uid": 5, "gid": 6, "additionalGids": [7]} and spec["terminal"]
    assert spec["noNewPrivileges"] and spec["rlimits"] == base["rlimits"]
    assert "consoleSize" not in spec and spec["capabilities"] == {"bounding": ["CAP_KILL"]}
    kept = exec_process_spec(base, ExecProcess(["id"], [], privileged=True))
    assert kept["user"] == base["user"]
    assert "CAP_KILL" in kept["capabilities"]["bounding"]
    assert kept["capabilities"]["effective"] == kept["capabilities"]["bounding"]


def test_start_exit_codes():
    assert start_exit_code("nope", 'exec: "nope": executable file not found in $PATH') == 127
    assert start_exit_code("/x", "exec /x: no such file or directory") == 127
    assert start_exit_code("/etc/passwd", "exec /etc/passwd: permission denied") == 126
    assert start_exit_code("sh", "unable to find user bob") == 126


def test_a_bare_name_unsets_its_variable_in_place_as_dockerd():
    # `docker run -e FOO` with FOO unset on the client sends the bare name.
    assert replace_or_append(["PATH=/bin", "HOSTNAME=box"], ["FOO", "HOSTNAME", "A=1"]) == \
        ["PATH=/bin", "A=1"]
    assert replace_or_append(["PATH=/bin"], ["PATH=/opt", "B=2", "PATH=/usr"]) == \
        ["PATH=/usr", "B=2"]
    assert container_environment(container(["FOO", "A=1"]), tty=False)[1:] == [
        "HOSTNAME=box", "A=1"]
