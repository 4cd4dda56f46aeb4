"""HostConfig through the docker SDK and CLI: limits, security, namespaces, devices, files."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import docker.errors
import docker.types
import pytest

from servin.oci.cgroups import detect_cgroup_facts, remove_cgroup

FACTS = detect_cgroup_facts()
pytestmark = pytest.mark.skipif(FACTS.version != 1, reason="cgroup paths below are cgroup v1's")


def run(containers, alpine, command, **kwargs) -> str:
    return containers.run(alpine, command, remove=True, **kwargs).decode()


def test_memory_limit_through_the_cli(docker_cli, alpine):
    result = docker_cli("run", "--rm", "--memory", "64m", alpine,
                        "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert result.stdout == f"{64 * 1024 * 1024}\n"


def test_memory_settings_and_defaults_in_inspect(containers, alpine, docker_client):
    container = containers.create(alpine, ["true"], mem_limit="32m", mem_reservation="16m")
    host_config = docker_client.api.inspect_container(container.id)["HostConfig"]
    assert host_config["Memory"] == 32 << 20
    assert host_config["MemorySwap"] == 64 << 20  # Docker's default: twice the memory
    assert host_config["MemoryReservation"] == 16 << 20
    container.start()
    assert container.wait()["StatusCode"] == 0


def test_cpu_and_pids_limits_reach_the_cgroups(containers, alpine):
    out = run(containers, alpine, ["sh", "-c",
                                   "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                                   "/sys/fs/cgroup/cpu/cpu.cfs_period_us "
                                   "/sys/fs/cgroup/cpu/cpu.shares "
                                   "/sys/fs/cgroup/cpuset/cpuset.cpus "
                                   "/sys/fs/cgroup/pids/pids.max"],
              nano_cpus=500_000_000, cpu_shares=512, cpuset_cpus="0", pids_limit=50)
    assert out.split() == ["50000", "100000", "512", "0", "50"]


def test_cpu_period_and_quota(containers, alpine):
    out = run(containers, alpine, ["cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                                   "/sys/fs/cgroup/cpu/cpu.cfs_period_us"],
              cpu_period=50_000, cpu_quota=25_000)
    assert out.split() == ["25000", "50000"]


CPUS = os.cpu_count()


@pytest.mark.parametrize("kwargs, message", [
    ({"mem_limit": "4m"}, "Minimum memory limit allowed is 6MB"),
    ({"mem_limit": "64m", "memswap_limit": "32m"},
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"memswap_limit": "64m"},
     "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({"mem_limit": "64m", "mem_reservation": "128m"},
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    ({"nano_cpus": 500_000_000, "cpu_period": 100_000},
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"nano_cpus": 500_000_000, "cpu_quota": 50_000},
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"nano_cpus": (CPUS + 1) * 10**9},
     f"Range of CPUs is from 0.01 to {CPUS}.00, as there are only {CPUS} CPUs available"),
    ({"nano_cpus": -1},
     f"Range of CPUs is from 0.01 to {CPUS}.00, as there are only {CPUS} CPUs available"),
    ({"cpu_period": 10}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than "
                         "1s (i.e. 1000000)"),
    ({"cpuset_cpus": "5"},
     f"Requested CPUs are not available - requested 5, available: {FACTS.cpus}"),
    ({"cpuset_cpus": "zero"}, "Invalid value zero for cpuset cpus"),
    ({"oom_score_adj": 2000}, "Invalid value 2000, range for oom score adj is [-1000, 1000]"),
    ({"security_opt": ["bogus"]}, 'invalid --security-opt 1: "bogus"'),
    ({"security_opt": ["bogus=1"]}, 'invalid --security-opt 2: "bogus=1"'),
    ({"security_opt": ["seccomp={not json"]}, "Decoding seccomp profile failed"),
    ({"sysctls": {"vm.swappiness": "10"}},
     'sysctl "vm.swappiness" is not in a separate kernel namespace'),
    ({"sysctls": {"net.ipv4.ip_forward": "1"}, "network_mode": "host"},
     'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'),
    ({"device_cgroup_rules": ["x 1:3 r"]}, "invalid device cgroup rule format: 'x 1:3 r'"),
    ({"devices": ["/dev/does-not-exist:/dev/x"]},
     'error gathering device information while adding custom device "/dev/does-not-exist"'),
    ({"tmpfs": {"relative": ""}}, "invalid mount path: 'relative' mount path must be absolute"),
    ({"tmpfs": {"/run": "size=1m,bogus"}}, "Invalid tmpfs option 'bogus'"),
    ({"ulimits": [docker.types.Ulimit(name="nofile", soft=2048, hard=1024)]},
     "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"),
    ({"ulimits": [docker.types.Ulimit(name="bogus", soft=1, hard=1)]},
     "invalid ulimit type: bogus"),
    ({"cap_add": ["NOPE"]}, 'unknown capability: "CAP_NOPE"'),
    ({"ipc_mode": "bogus"}, "invalid IPC mode: bogus"),
    ({"pid_mode": "bogus"}, "invalid PID mode: bogus"),
    ({"extra_hosts": {"db": "not-an-ip"}}, 'invalid IP address in add-host: "not-an-ip"'),
    ({"dns": ["resolver"]}, "resolver is not an ip address"),
    ({"stop_signal": "SIGBOGUS"}, "Invalid signal: SIGBOGUS"),
])
def test_bad_host_config_is_a_400(containers, alpine, kwargs, message):
    with pytest.raises(docker.errors.APIError) as caught:
        containers.create(alpine, ["true"], **kwargs)
    assert caught.value.status_code == 400
    assert message in caught.value.explanation


def test_bad_input_through_the_cli(docker_cli, alpine):
    result = docker_cli("run", "--rm", "--memory", "4m", alpine, "true", check=False)
    assert result.returncode == 125
    assert "Minimum memory limit allowed is 6MB" in result.stderr


def test_capabilities_add_and_drop(docker_cli, containers, alpine):
    result = docker_cli("run", "--rm", "--cap-drop", "chown", alpine, "chown", "1", "/tmp",
                        check=False)
    assert result.returncode != 0 and "Operation not permitted" in result.stderr
    status = run(containers, alpine, ["grep", "CapEff", "/proc/self/status"], cap_drop=["ALL"])
    assert status.split()[1] == "0000000000000000"
    added = run(containers, alpine, ["grep", "CapEff", "/proc/self/status"],
                cap_add=["NET_ADMIN"])
    assert int(added.split()[1], 16) & (1 << 12)  # CAP_NET_ADMIN


def test_read_only_rootfs_with_a_tmpfs(docker_cli, alpine):
    result = docker_cli("run", "--rm", "--read-only", alpine, "touch", "/x", check=False)
    assert result.returncode != 0 and "Read-only file system" in result.stderr
    result = docker_cli("run", "--rm", "--read-only", "--tmpfs", "/run:rw,size=1m", alpine,
                        "sh", "-c", "touch /run/x && grep ' /run ' /proc/mounts")
    fields = result.stdout.split()
    assert fields[2] == "tmpfs"
    options = fields[3].split(",")
    assert {"rw", "nosuid", "nodev", "noexec", "size=1024k"} <= set(options)


def test_tmpfs_options_may_allow_exec(containers, alpine):
    out = run(containers, alpine, ["grep", " /scratch ", "/proc/mounts"],
              tmpfs={"/scratch": "exec,mode=700"})
    options = out.split()[3].split(",")
    assert "noexec" not in options and "nosuid" in options and "mode=700" in options


def test_init_is_pid_one(docker_cli, alpine):
    result = docker_cli("run", "--rm", "--init", alpine, "sh", "-c",
                        "tr '\\0' ' ' < /proc/1/cmdline; echo; cat /proc/1/comm")
    cmdline, comm = result.stdout.splitlines()
    assert cmdline.split() == ["/sbin/docker-init", "--", "sh", "-c",
                               *cmdline.split()[4:]]
    assert comm == "docker-init"


def test_stop_with_init_exits_143_and_kill_137(containers, alpine):
    stopped = containers.run(alpine, ["sleep", "100"], detach=True, init=True)
    stopped.stop(timeout=10)
    assert stopped.wait()["StatusCode"] == 143
    killed = containers.run(alpine, ["sleep", "100"], detach=True)
    killed.kill()
    assert killed.wait()["StatusCode"] == 137


def test_host_pid_and_uts_namespaces(docker_cli, alpine):
    result = docker_cli("run", "--rm", "--pid", "host", alpine, "readlink", "/proc/self/ns/pid")
    assert result.stdout.strip() == os.readlink("/proc/self/ns/pid")
    result = docker_cli("run", "--rm", "--uts", "host", alpine, "hostname")
    assert result.stdout.strip() == socket.gethostname()


def test_ipc_shared_with_a_shareable_container(docker_cli, containers, alpine, docker_client):
    donor = containers.run(alpine, ["sh", "-c", "echo shared > /dev/shm/note; sleep 100"],
                           detach=True, ipc_mode="shareable", name="ipc-donor")
    donor.reload()
    donor_ns = os.readlink(f"/proc/{donor.attrs['State']['Pid']}/ns/ipc")
    result = docker_cli("run", "--rm", "--ipc", "container:ipc-donor", alpine,
                        "sh", "-c", "readlink /proc/self/ns/ipc; cat /dev/shm/note")
    joiner_ns, note = result.stdout.split()
    assert joiner_ns == donor_ns != os.readlink("/proc/self/ns/ipc")
    assert note == "shared"  # /dev/shm is the donor's too
    donor.kill()  # the host tmpfs goes with the run
    donor.wait()
    assert f"/containers/{donor.id}/mounts/shm" not in open("/proc/self/mountinfo").read()


def test_ipc_of_a_private_or_stopped_container_is_refused(containers, alpine):
    private = containers.run(alpine, ["sleep", "100"], detach=True)
    joiner = containers.create(alpine, ["true"], ipc_mode=f"container:{private.id}")
    with pytest.raises(docker.errors.APIError) as caught:
        joiner.start()
    assert "non-shareable IPC" in caught.value.explanation
    stopped = containers.create(alpine, ["true"], ipc_mode="shareable")
    joiner = containers.create(alpine, ["true"], ipc_mode=f"container:{stopped.id}")
    with pytest.raises(docker.errors.APIError) as caught:
        joiner.start()
    assert caught.value.status_code == 409
    assert f"cannot join IPC of a non running container: {stopped.id}" in caught.value.explanation


def test_pid_namespace_of_another_container(containers, alpine):
    first = containers.run(alpine, ["sleep", "100"], detach=True)
    first.reload()
    out = run(containers, alpine, ["readlink", "/proc/self/ns/pid"],
              pid_mode=f"container:{first.id}")
    assert out.strip() == os.readlink(f"/proc/{first.attrs['State']['Pid']}/ns/pid")


def test_ipc_none_has_no_dev_shm(containers, alpine):
    out = run(containers, alpine, ["sh", "-c", "grep -c ' /dev/shm ' /proc/mounts || true"],
              ipc_mode="none")
    assert out.strip() == "0"


def test_ulimits(docker_cli, containers, alpine):
    result = docker_cli("run", "--rm", "--ulimit", "nofile=1024:2048", alpine,
                        "sh", "-c", "ulimit -n; ulimit -Hn")
    assert result.stdout.split() == ["1024", "2048"]
    out = run(containers, alpine, ["sh", "-c", "ulimit -u; ulimit -Hu"],
              ulimits=[docker.types.Ulimit(name="nproc", soft=300, hard=400)])
    assert out.split() == ["300", "400"]


def test_sysctls(docker_cli, alpine):
    result = docker_cli("run", "--rm", "--sysctl", "net.ipv4.ip_forward=1",
                        "--sysctl", "kernel.shmmni=1000", alpine,
                        "cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmni")
    assert result.stdout.split() == ["1", "1000"]


def test_devices_and_device_cgroup_rules(docker_cli, alpine):
    result = docker_cli("run", "--rm", "--device", "/dev/null:/dev/mynull",
                        "--device-cgroup-rule", "c 42:* rmw", alpine, "sh", "-c",
                        "echo hi > /dev/mynull && stat -c '%F %t %T' /dev/mynull && "
                        "cat /sys/fs/cgroup/devices/devices.list")
    lines = result.stdout.splitlines()
    assert lines[0] == "character special file 1 3"
    assert "c 42:* rwm" in lines[1:]


def test_privileged_gets_host_devices_and_every_capability(containers, alpine):
    host_devices = sorted(p.name for p in Path("/dev").iterdir()
                          if p.is_char_device() and not p.is_symlink() and p.name != "console")
    out = run(containers, alpine, ["sh", "-c", "ls /dev; grep -E 'CapEff|Seccomp:' "
                                               "/proc/self/status"], privileged=True)
    assert set(host_devices) <= set(out.split())
    status = dict(line.split(":\t") for line in out.splitlines() if ":\t" in line)
    assert status["Seccomp"] == "0"
    # Every capability servind itself may hand on (its bounding set).
    bounding = next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("CapBnd:"))
    assert int(status["CapEff"], 16) == int(bounding, 16)


def test_seccomp_default_profile_and_unconfined(docker_cli, alpine, tmp_path):
    confined = docker_cli("run", "--rm", alpine, "sh", "-c",
                          "grep Seccomp: /proc/self/status; unshare -U true", check=False)
    assert "Seccomp:\t2" in confined.stdout
    assert confined.returncode != 0 and "Operation not permitted" in confined.stderr
    unconfined = docker_cli("run", "--rm", "--security-opt", "seccomp=unconfined", alpine,
                            "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true")
    assert "Seccomp:\t0" in unconfined.stdout
    with_admin = docker_cli("run", "--rm", "--cap-add", "SYS_ADMIN", alpine,
                            "unshare", "-U", "true")
    assert with_admin.returncode == 0


def test_system_paths_are_masked_unless_unconfined(docker_cli, docker_client, containers, alpine):
    shown = "grep -c -E ' /proc/(keys|timer_list|sys) ' /proc/self/mountinfo"
    assert docker_cli("run", "--rm", alpine, "sh", "-c", shown).stdout.strip() == "3"
    # The CLI turns systempaths=unconfined into empty MaskedPaths and ReadonlyPaths.
    unconfined = docker_cli("run", "--rm", "--security-opt", "systempaths=unconfined", alpine,
                            "sh", "-c", shown, check=False)
    assert unconfined.stdout.strip() == "0"
    default = containers.create(alpine, ["true"])
    host_config = docker_client.api.inspect_container(default.id)["HostConfig"]
    assert "/proc/keys" in host_config["MaskedPaths"]
    assert "/proc/sys" in host_config["ReadonlyPaths"]
    privileged = containers.create(alpine, ["true"], privileged=True)
    host_config = docker_client.api.inspect_container(privileged.id)["HostConfig"]
    assert (host_config["MaskedPaths"], host_config["ReadonlyPaths"]) == (None, None)


def test_custom_seccomp_profile_file(docker_cli, alpine, tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    result = docker_cli("run", "--rm", "--security-opt", f"seccomp={profile}", alpine,
                        "mkdir", "/tmp/x", check=False)
    assert result.returncode != 0 and "Operation not permitted" in result.stderr


def test_no_new_privileges(docker_cli, alpine):
    result = docker_cli("run", "--rm", "--security-opt", "no-new-privileges", alpine,
                        "grep", "NoNewPrivs", "/proc/self/status")
    assert result.stdout.split() == ["NoNewPrivs:", "1"]


def test_apparmor_and_label_ignored_without_lsm(containers, alpine):
    out = run(containers, alpine, ["echo", "ok"],
              security_opt=["apparmor=unconfined", "label=disable"])
    assert out == "ok\n"


def test_cgroup_parent(containers, alpine):
    parent = f"servin-test-parent-{os.getpid()}"
    try:
        container = containers.run(alpine, ["cat", "/proc/self/cgroup"], detach=True,
                                   cgroup_parent=parent)
        container.wait()
        assert f"/{parent}/{container.id}" in container.logs().decode()
        container.remove()
    finally:
        remove_cgroup("/" + parent)


def test_the_primary_group_is_among_the_supplementary_ones_as_under_dockerd(docker_cli, alpine,
                                                                             containers):
    assert docker_cli("run", "--rm", "-u", "daemon", alpine, "id").stdout.strip() == \
        "uid=1(daemon) gid=1(daemon) groups=1(daemon)"
    box = containers.run(alpine, ["sleep", "60"], detach=True)
    assert docker_cli("exec", "-u", "nobody", box.id, "id").stdout.strip() == \
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"


def test_group_add_and_domainname(containers, alpine):
    out = run(containers, alpine, ["sh", "-c", "id -G; cat /proc/sys/kernel/domainname"],
              group_add=["50", "daemon"], domainname="example.org")
    groups, domain = out.splitlines()
    assert {"0", "50", "1"} <= set(groups.split())
    assert domain == "example.org"


def test_oom_kill_exits_137(containers, alpine, docker_client):
    # Only the first run fills its memory (the mark stays in the container's layer): the
    # second must still be running, not OOM killed again, when it is inspected.
    script = "if [ -e /ran ]; then exec sleep 60; fi; touch /ran; exec tail /dev/zero"
    container = containers.run(alpine, ["sh", "-c", script], detach=True, mem_limit="8m",
                               memswap_limit="8m")
    assert container.wait(timeout=60)["StatusCode"] == 137
    assert docker_client.api.inspect_container(container.id)["State"]["OOMKilled"] is True
    container.start()  # a new run starts with a clean slate
    state = docker_client.api.inspect_container(container.id)["State"]
    assert (state["Status"], state["OOMKilled"]) == ("running", False)
