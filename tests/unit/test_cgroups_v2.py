"""cgroup facts and OOM counts against fixture trees shaped like /sys/fs/cgroup."""

from pathlib import Path

import pytest

from servin.oci.cgroups import detect_cgroup_facts, oom_kill_count, parse_cpuset
from servin.oci.spec import Resources


def unified(tmp_path: Path, controllers: str) -> Path:
    (tmp_path / "cgroup.controllers").write_text(controllers + "\n")
    (tmp_path / "cpuset.cpus.effective").write_text("0-3\n")
    (tmp_path / "cpuset.mems.effective").write_text("0\n")
    return tmp_path


def test_v2_facts_from_the_root_controllers(tmp_path):
    facts = detect_cgroup_facts(unified(tmp_path, "cpuset cpu io memory pids"))
    assert facts.version == 2
    assert facts.memory and facts.swap and facts.cpu_cfs and facts.pids and facts.blkio_weight
    assert not facts.swappiness and not facts.oom_kill_disable
    assert (facts.cpus, facts.mems, facts.num_cpus) == ("0-3", "0", 4)


def test_v2_without_controllers(tmp_path):
    facts = detect_cgroup_facts(unified(tmp_path, "pids"))
    assert not facts.memory and not facts.cpuset and not facts.cpu_shares and facts.pids


def test_v1_facts(tmp_path):
    for name in ("memory/memory.limit_in_bytes", "memory/memory.oom_control",
                 "cpu/cpu.shares", "cpuset/cpuset.cpus", "cpuset/cpuset.mems"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("0-1\n" if "cpuset" in name else "0\n")
    facts = detect_cgroup_facts(tmp_path)
    assert facts.version == 1 and facts.memory and not facts.swap and facts.oom_kill_disable
    assert facts.cpu_shares and not facts.cpu_cfs and not facts.pids and facts.cpus == "0-1"


def test_oom_kill_count_v2_and_v1(tmp_path):
    (tmp_path / "v2").mkdir()
    v2 = unified(tmp_path / "v2", "memory")
    (v2 / "servin" / "abc").mkdir(parents=True)
    (v2 / "servin" / "abc" / "memory.events").write_text(
        "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n")
    assert oom_kill_count("/servin/abc", v2) == 1
    assert oom_kill_count("/servin/gone", v2) == 0
    v1 = tmp_path / "v1" / "memory" / "servin" / "abc"
    v1.mkdir(parents=True)
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert oom_kill_count("/servin/abc", tmp_path / "v1") == 2


def test_v2_resources_drop_v1_only_knobs():
    resources = Resources(memory=64 << 20, memory_swap=128 << 20, memory_swappiness=10,
                          oom_kill_disable=True)
    assert resources.to_oci([], cgroup_v2=True)["memory"] == {"limit": 64 << 20,
                                                               "swap": 128 << 20}
    v1 = resources.to_oci([])["memory"]
    assert v1["swappiness"] == 10 and v1["disableOOMKiller"] is True
    assert "devices" not in resources.to_oci()  # the form runc update reads


def test_parse_cpuset():
    assert parse_cpuset("0-2,5") == {0, 1, 2, 5}
    assert parse_cpuset("") == set()
    for bad in ("a", "3-1", "1-", "1,,2"):
        with pytest.raises(ValueError):
            parse_cpuset(bad)
