"""docker top: ps argument checks, ps output parsing, cgroup process lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from servin.containers.top import cgroup_pids, parse_ps_output, ps_arguments
from servin.errors import InvalidArgument, SystemFailure

PS_EF = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         100       1  0 10:01 ?        00:00:00 sleep 300
root         101     100  0 10:01 ?        00:00:00 sh -c echo a  b
"""


def test_default_and_split_arguments():
    assert ps_arguments("") == ["-ef"]
    assert ps_arguments("-o pid,comm") == ["-o", "pid,comm"]
    assert ps_arguments("aux") == ["aux"]
    assert ps_arguments("-o pid=PID") == ["-o", "pid=PID"]


@pytest.mark.parametrize("args, key", [("-o user=PID", "user"), ("-o pid,comm=PIDX", "pid,comm")])
def test_renaming_a_column_to_pid_is_refused(args, key):
    with pytest.raises(InvalidArgument, match=f'^specifying "{key}=PID'):
        ps_arguments(args)


def test_rows_of_the_container_are_kept_and_commands_joined():
    result = parse_ps_output(PS_EF, {100, 101})
    assert result["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert result["Processes"] == [
        ["root", "100", "1", "0", "10:01", "?", "00:00:00", "sleep 300"],
        ["root", "101", "100", "0", "10:01", "?", "00:00:00", "sh -c echo a b"],
    ]


def test_thread_rows_follow_their_process():
    output = ("  PID   LWP CMD\n"
              "    1     - init\n"
              "    -     1 -\n"
              "   50     - app\n"
              "    -    50 -\n"
              "    -    51 -\n")
    result = parse_ps_output(output, {50})
    assert result["Processes"] == [["50", "-", "app"], ["-", "50", "-"], ["-", "51", "-"]]


def test_output_without_a_pid_column_or_with_a_bad_pid():
    with pytest.raises(SystemFailure, match="Couldn't find PID field in ps output"):
        parse_ps_output("USER COMMAND\nroot init\n", {1})
    with pytest.raises(SystemFailure, match="Unexpected pid 'x'"):
        parse_ps_output("PID CMD\nx init\n", {1})


def _cgroup(directory: Path, pids: list[int]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cgroup.procs").write_text("".join(f"{pid}\n" for pid in pids))


def test_cgroup_pids_on_v1_read_one_hierarchy_recursively(tmp_path):
    _cgroup(tmp_path / "pids/servin/abc", [10, 11])
    _cgroup(tmp_path / "pids/servin/abc/child", [12])
    _cgroup(tmp_path / "memory/servin/abc", [10, 11])
    assert sorted(cgroup_pids("/servin/abc", tmp_path)) == [10, 11, 12]
    assert cgroup_pids("/servin/gone", tmp_path) == []


def test_cgroup_pids_on_v2(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    _cgroup(tmp_path / "servin/abc", [7])
    assert cgroup_pids("/servin/abc", tmp_path) == [7]
