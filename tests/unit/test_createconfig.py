import pytest

from servin.containers.createconfig import (DEFAULT_SHM_SIZE, command_of, merge_image_config,
                                            normalize_config, normalize_host_config)
from servin.errors import InvalidArgument

IMAGE = {"Env": ["PATH=/usr/bin:/bin", "LANG=C"], "Cmd": ["sh"], "Entrypoint": None,
         "WorkingDir": "/srv", "User": "daemon", "Labels": {"a": "image", "b": "image"},
         "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGQUIT"}


def test_image_fills_what_the_request_leaves_empty():
    merged = merge_image_config({"Image": "x"}, IMAGE)
    assert merged["Cmd"] == ["sh"]
    assert merged["User"] == "daemon"
    assert merged["WorkingDir"] == "/srv"
    assert merged["StopSignal"] == "SIGQUIT"
    assert merged["ExposedPorts"] == {"80/tcp": {}}


def test_request_env_wins_and_image_env_is_appended():
    merged = merge_image_config({"Env": ["LANG=fr_FR", "X=1"]}, IMAGE)
    assert merged["Env"] == ["LANG=fr_FR", "X=1", "PATH=/usr/bin:/bin"]


def test_request_labels_override_image_labels():
    merged = merge_image_config({"Labels": {"b": "user"}}, IMAGE)
    assert merged["Labels"] == {"a": "image", "b": "user"}


def test_request_cmd_replaces_image_cmd():
    assert merge_image_config({"Cmd": ["echo", "hi"]}, IMAGE)["Cmd"] == ["echo", "hi"]


def test_request_entrypoint_drops_image_cmd():
    image = {**IMAGE, "Entrypoint": ["/init"], "Cmd": ["--serve"]}
    merged = merge_image_config({"Entrypoint": ["/bin/echo"]}, image)
    assert command_of(merged) == ("/bin/echo", [])


def test_empty_entrypoint_resets_the_image_entrypoint():
    image = {**IMAGE, "Entrypoint": ["/init"]}
    merged = merge_image_config({"Entrypoint": [""], "Cmd": ["ls"]}, image)
    assert command_of(merged) == ("ls", [])


def test_image_entrypoint_and_cmd_combine():
    image = {**IMAGE, "Entrypoint": ["/init", "-v"], "Cmd": ["--serve"]}
    assert command_of(merge_image_config({}, image)) == ("/init", ["-v", "--serve"])


def test_no_command_is_a_400():
    with pytest.raises(InvalidArgument, match="No command specified"):
        command_of(merge_image_config({}, {"Cmd": None}))


def test_config_needs_an_image():
    with pytest.raises(InvalidArgument, match="Config cannot be empty"):
        normalize_config({"Cmd": ["true"]})


@pytest.mark.parametrize("body", [{"Image": "x", "Cmd": 5}, {"Image": "x", "Env": [1]},
                                  {"Image": "x", "Labels": {"a": 1}},
                                  {"Image": "x", "Tty": "yes"}])
def test_mistyped_fields_are_400(body):
    with pytest.raises(InvalidArgument):
        normalize_config(body)


def test_string_cmd_is_accepted_as_a_list():
    assert normalize_config({"Image": "x", "Cmd": "true"})["Cmd"] == ["true"]


def test_host_config_defaults_as_inspect_shows_them():
    host_config = normalize_host_config(None)
    assert host_config["NetworkMode"] == "default"
    assert host_config["ShmSize"] == DEFAULT_SHM_SIZE
    assert host_config["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert host_config["LogConfig"]["Type"] == "json-file"




def test_system_paths_default_unless_given_and_none_when_privileged():
    default = normalize_host_config(None)
    assert "/proc/kcore" in default["MaskedPaths"] and "/proc/sys" in default["ReadonlyPaths"]
    unconfined = normalize_host_config({"MaskedPaths": [], "ReadonlyPaths": []})
    assert (unconfined["MaskedPaths"], unconfined["ReadonlyPaths"]) == ([], [])
    privileged = normalize_host_config({"Privileged": True})
    assert (privileged["MaskedPaths"], privileged["ReadonlyPaths"]) == (None, None)
    with pytest.raises(InvalidArgument, match="MaskedPaths"):
        normalize_host_config({"MaskedPaths": ["proc/kcore"]})


def test_auto_remove_with_restart_policy_is_refused():
    with pytest.raises(InvalidArgument, match="AutoRemove"):
        normalize_host_config({"AutoRemove": True, "RestartPolicy": {"Name": "always"}})


def test_negative_shm_size_is_refused():
    with pytest.raises(InvalidArgument, match="SHM size"):
        normalize_host_config({"ShmSize": -1})


# ----------------------------------------------------------- HostConfig checks

from servin.containers.createconfig import (nano_cpus_quota, parse_security_opts,  # noqa: E402
                                            tmpfs_options)
from servin.oci.cgroups import CgroupFacts  # noqa: E402

FACTS = CgroupFacts(cpus="0-1", mems="0", blkio_weight=False)


def host(raw, facts=FACTS):
    warnings: list[str] = []
    return normalize_host_config(raw, facts=facts, warnings=warnings), warnings


@pytest.mark.parametrize("raw, message", [
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": -1}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 64 << 20, "MemorySwap": 32 << 20}, "Minimum memoryswap limit should be larger"),
    ({"MemorySwap": 64 << 20}, "You should always set the Memory limit"),
    ({"MemoryReservation": 1 << 20}, "Minimum memory reservation allowed is 6MB"),
    ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
    ({"NanoCpus": 1, "CpuPeriod": 1000}, "Conflicting options: Nano CPUs and CPU Period"),
    ({"NanoCpus": 1, "CpuQuota": 1000}, "Conflicting options: Nano CPUs and CPU Quota"),
    ({"NanoCpus": 3 * 10**9},
     "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"CpuPeriod": 999}, "CPU cfs period can not be less than 1ms"),
    ({"CpuQuota": 999}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"CpuShares": -5}, "invalid CpuShares"),
    ({"CpusetCpus": "5"}, "Requested CPUs are not available - requested 5, available: 0-1"),
    ({"CpusetMems": "1"}, "Requested memory nodes are not available - requested 1, available: 0"),
    ({"CpusetCpus": "x"}, "Invalid value x for cpuset cpus"),
    ({"OomScoreAdj": -1001}, "range for oom score adj is [-1000, 1000]"),
    ({"Memory": "lots"}, "invalid Memory: expected an integer"),
    ({"IpcMode": "container:"}, "invalid IPC mode: container:"),
    ({"PidMode": "private"}, "invalid PID mode: private"),
    ({"UTSMode": "private"}, "invalid UTS mode: private"),
    ({"CgroupnsMode": "other"}, "invalid cgroup namespace mode: other"),
    ({"SecurityOpt": ["seccomp"]}, 'invalid --security-opt 1: "seccomp"'),
    ({"SecurityOpt": ["no-new-privileges=maybe"]}, 'invalid --security-opt 2'),
    ({"CapDrop": ["BOGUS"]}, 'unknown capability: "CAP_BOGUS"'),
    ({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]},
     "ulimit soft limit must be less than or equal to hard limit: 10 > 5"),
    ({"DeviceCgroupRules": ["c 1:3"]}, "invalid device cgroup rule format: 'c 1:3'"),
    ({"Devices": [{"PathOnHost": "/dev/null", "CgroupPermissions": "rwx"}]},
     "bad mode specified: rwx"),
    ({"Devices": [{"PathOnHost": "/etc/hostname"}]}, "not a device node"),
    ({"Sysctls": {"kernel.hostname": "x"}}, "is not in a separate kernel namespace"),
    ({"Sysctls": {"kernel.shmmax": "1"}, "IpcMode": "host"}, "not allowed in host IPC"),
    ({"Tmpfs": {"/": ""}}, "destination can't be '/'"),
    ({"ExtraHosts": ["db:999.1.1.1"]}, 'invalid IP address in add-host: "999.1.1.1"'),
    ({"Dns": ["dns.example"]}, "dns.example is not an ip address"),
])
def test_bad_host_configs_are_refused(raw, message):
    with pytest.raises(InvalidArgument) as caught:
        host(raw)
    assert message in caught.value.message


def test_memory_defaults_and_unlimited_pids():
    hc, warnings = host({"Memory": 64 << 20, "PidsLimit": -1})
    assert hc["MemorySwap"] == 128 << 20 and hc["PidsLimit"] is None and warnings == []
    assert host({"Memory": 64 << 20, "MemorySwap": -1})[0]["MemorySwap"] == -1


def test_unsupported_limits_are_dropped_with_warnings():
    facts = CgroupFacts(cpus="0-1", swap=False, swappiness=False, blkio_weight=False)
    hc, warnings = host({"Memory": 64 << 20, "MemorySwappiness": 10, "BlkioWeight": 5,
                         "KernelMemory": 64 << 20}, facts)
    assert (hc["MemorySwap"], hc["MemorySwappiness"], hc["BlkioWeight"],
            hc["KernelMemory"]) == (-1, None, 0, 0)
    assert len(warnings) == 4


def test_blkio_weight_range_where_supported():
    with pytest.raises(InvalidArgument, match="Range of blkio weight is from 10 to 1000"):
        host({"BlkioWeight": 5}, CgroupFacts(cpus="0-1", blkio_weight=True))


def test_namespace_mode_defaults_follow_the_cgroup_version():
    assert host({"IpcMode": ""})[0]["IpcMode"] == "private"
    assert host({})[0]["CgroupnsMode"] == "host"
    assert host({}, CgroupFacts(version=2, cpus="0-1"))[0]["CgroupnsMode"] == "private"


def test_valid_options_are_kept():
    hc, _ = host({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "",
                               "CgroupPermissions": ""}],
                  "Sysctls": {"net.ipv4.ip_forward": "1", "fs.mqueue.msg_max": "20"},
                  "Tmpfs": {"/run": "rw,size=64m"}, "IpcMode": "container:abc",
                  "PidMode": "host", "ExtraHosts": ["db:10.0.0.2", "v6:::1"]})
    assert hc["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/null",
                              "CgroupPermissions": "rwm"}]
    assert hc["IpcMode"] == "container:abc" and hc["PidMode"] == "host"


def test_security_opts():
    opts = parse_security_opts(["no-new-privileges", "seccomp=unconfined", "apparmor=x",
                                "label=disable"])
    assert opts.no_new_privileges and opts.seccomp == "unconfined" and opts.apparmor == "x"
    assert not parse_security_opts(["no-new-privileges=false"]).no_new_privileges
    assert parse_security_opts(["seccomp:unconfined"]).seccomp == "unconfined"


def test_tmpfs_options_and_nano_cpus():
    assert tmpfs_options("rw,size=64m") == ["noexec", "nosuid", "nodev", "rw", "size=64m"]
    assert tmpfs_options("exec") == ["nosuid", "nodev", "exec"]
    assert nano_cpus_quota(1_500_000_000) == (150_000, 100_000)


def test_stop_signal_is_checked():
    with pytest.raises(InvalidArgument, match="Invalid signal: SIGNOPE"):
        normalize_config({"Image": "x", "StopSignal": "SIGNOPE"})
    assert normalize_config({"Image": "x", "StopSignal": "9"})["StopSignal"] == "9"


def test_healthcheck_fields_left_unset_come_from_the_image():
    image = {**IMAGE, "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000,
                                      "Retries": 2}}
    merged = merge_image_config({"Healthcheck": {"Interval": 1_000_000_000}}, image)
    assert merged["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 1_000_000_000,
                                     "Retries": 2}
    assert merge_image_config({}, image)["Healthcheck"] == image["Healthcheck"]


@pytest.mark.parametrize("healthcheck, message", [
    ({"Interval": 10}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Timeout": 999_999}, "Timeout in Healthcheck cannot be less than 1ms"),
    ({"StartPeriod": 5}, "StartPeriod in Healthcheck cannot be less than 1ms"),
    ({"Retries": -1}, "Retries in Healthcheck cannot be negative")])
def test_bad_healthchecks_are_400(healthcheck, message):
    with pytest.raises(InvalidArgument, match=message):
        normalize_config({"Image": "x", "Healthcheck": healthcheck})
