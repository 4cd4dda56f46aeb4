from pathlib import Path

import pytest

from servin.errors import InvalidArgument
from servin.oci.capabilities import ALL_CAPABILITIES, DEFAULT_CAPABILITIES, tweak_capabilities
from servin.oci.spec import (MountSpec, NamespaceMode, Resources, Rlimit, SpecParams, build_spec,
                             cgroups_path)
from servin.oci.users import ResolvedUser

DOCKER_CAPS = {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
               "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
               "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}


def params(**overrides) -> SpecParams:
    values = dict(rootfs=Path("/var/lib/servin/c/rootfs"), args=["echo", "hi"],
                  cgroups_path="/servin/abc", env=["PATH=/bin"], hostname="abc",
                  daemon_nofile_hard=1 << 30)
    values.update(overrides)
    return SpecParams(**values)


def namespaces(spec) -> dict[str, str | None]:
    return {ns["type"]: ns.get("path") for ns in spec["linux"]["namespaces"]}


def mount(spec, destination):
    return next(m for m in spec["mounts"] if m["destination"] == destination)


def test_basic_process_and_root():
    spec = build_spec(params(cwd="/work", terminal=True,
                             user=ResolvedUser(1000, 1000, [10, 20])))
    assert spec["ociVersion"] == "1.0.2"
    process = spec["process"]
    assert process["args"] == ["echo", "hi"]
    assert process["env"] == ["PATH=/bin"]
    assert process["cwd"] == "/work"
    assert process["terminal"] is True
    assert process["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [10, 20]}
    assert process["noNewPrivileges"] is False
    assert process["oomScoreAdj"] == 0
    assert spec["root"] == {"path": "/var/lib/servin/c/rootfs", "readonly": False}
    assert spec["hostname"] == "abc"
    assert spec["linux"]["cgroupsPath"] == "/servin/abc"


def test_docker_default_capabilities():
    caps = build_spec(params())["process"]["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        assert set(caps[kind]) == DOCKER_CAPS
    assert caps["inheritable"] == []
    assert "ambient" not in caps


def test_private_namespaces_without_cgroupns_on_v1():
    spec = build_spec(params())
    assert namespaces(spec) == {"mount": None, "network": None, "pid": None, "ipc": None, "uts": None}
    assert "cgroup" in namespaces(build_spec(params(cgroupns=True)))


def test_host_network_has_no_netns_and_no_port_sysctls():
    spec = build_spec(params(network=NamespaceMode.host()))
    assert "network" not in namespaces(spec)
    assert "net.ipv4.ip_unprivileged_port_start" not in spec["linux"]["sysctl"]


def test_network_namespace_at_path_is_joined():
    spec = build_spec(params(network=NamespaceMode.join("/run/servin/netns/abc")))
    assert namespaces(spec)["network"] == "/run/servin/netns/abc"
    assert spec["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"] == "0"


def test_host_uts_drops_hostname():
    spec = build_spec(params(uts=NamespaceMode.host()))
    assert "uts" not in namespaces(spec)
    assert "hostname" not in spec


def test_domainname_set_only_when_given():
    assert "domainname" not in build_spec(params())
    assert build_spec(params(domainname="example.org"))["domainname"] == "example.org"


def test_default_mounts():
    spec = build_spec(params())
    destinations = [m["destination"] for m in spec["mounts"]]
    assert destinations == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
                            "/dev/shm"]
    assert mount(spec, "/dev")["type"] == "tmpfs"
    assert "size=67108864" in mount(spec, "/dev/shm")["options"]
    assert "ro" in mount(spec, "/sys")["options"]
    assert "ro" in mount(spec, "/sys/fs/cgroup")["options"]
    assert mount(spec, "/proc")["type"] == "proc"


def test_etc_files_bind_mounted():
    spec = build_spec(params(etc_files={"/etc/hostname": Path("/c/hostname"),
                                        "/etc/hosts": Path("/c/hosts"),
                                        "/etc/resolv.conf": Path("/c/resolv.conf")}))
    hosts = mount(spec, "/etc/hosts")
    assert hosts == {"destination": "/etc/hosts", "type": "bind", "source": "/c/hosts",
                     "options": ["rbind", "rprivate"]}
    assert mount(spec, "/etc/resolv.conf")["source"] == "/c/resolv.conf"


def test_user_mounts_sorted_parents_first_and_override_defaults():
    spec = build_spec(params(mounts=[MountSpec.bind("/h/b", "/data/sub", readonly=True),
                                     MountSpec.bind("/h/a", "/data"),
                                     MountSpec.tmpfs("/dev/shm", ["size=1m"])]))
    destinations = [m["destination"] for m in spec["mounts"]]
    assert destinations.index("/data") < destinations.index("/data/sub")
    assert destinations.count("/dev/shm") == 1
    assert mount(spec, "/dev/shm")["options"][-1] == "size=1m"
    assert mount(spec, "/data/sub")["options"] == ["rbind", "rprivate", "ro"]


def test_masked_and_readonly_paths():
    linux = build_spec(params())["linux"]
    assert "/proc/kcore" in linux["maskedPaths"]
    assert "/sys/firmware" in linux["maskedPaths"]
    assert linux["readonlyPaths"] == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                      "/proc/sysrq-trigger"]


def test_devices_and_device_rules():
    linux = build_spec(params())["linux"]
    assert [d["path"] for d in linux["devices"]] == ["/dev/null", "/dev/zero", "/dev/full",
                                                     "/dev/random", "/dev/urandom", "/dev/tty"]
    rules = linux["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in rules


def test_nofile_like_docker_but_never_above_daemon_hard_limit():
    assert build_spec(params())["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}]
    assert build_spec(params(daemon_nofile_hard=20000))["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 20000, "hard": 20000}]


def test_explicit_rlimits_are_kept_as_asked():
    limits = build_spec(params(daemon_nofile_hard=1024,
                               rlimits=[Rlimit("RLIMIT_NOFILE", 4096, 8192),
                                        Rlimit("RLIMIT_NPROC", 10, 20)]))["process"]["rlimits"]
    assert limits == [{"type": "RLIMIT_NOFILE", "soft": 4096, "hard": 8192},
                      {"type": "RLIMIT_NPROC", "soft": 10, "hard": 20}]


def test_readonly_rootfs_and_no_new_privileges_and_oom_score():
    spec = build_spec(params(readonly_rootfs=True, no_new_privileges=True, oom_score_adj=500))
    assert spec["root"]["readonly"] is True
    assert spec["process"]["noNewPrivileges"] is True
    assert spec["process"]["oomScoreAdj"] == 500


def test_resources():
    res = build_spec(params(resources=Resources(memory=1 << 27, cpu_shares=512, pids_limit=100)))
    res = res["linux"]["resources"]
    assert res["memory"] == {"limit": 1 << 27}
    assert res["cpu"] == {"shares": 512}
    assert res["pids"] == {"limit": 100}


def test_privileged():
    spec = build_spec(params(privileged=True, capabilities=list(ALL_CAPABILITIES),
                             seccomp={"defaultAction": "SCMP_ACT_ERRNO"}))
    assert spec["process"]["capabilities"]["bounding"] == ALL_CAPABILITIES
    assert "seccomp" not in spec["linux"]  # privileged containers are unconfined
    assert spec["linux"]["maskedPaths"] == [] and spec["linux"]["readonlyPaths"] == []
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "ro" not in mount(spec, "/sys")["options"]


def test_console_size_only_with_terminal():
    assert "consoleSize" not in build_spec(params(console_size=(24, 80)))["process"]
    spec = build_spec(params(terminal=True, console_size=(24, 80)))
    assert spec["process"]["consoleSize"] == {"height": 24, "width": 80}


def test_cgroups_path_parent_is_configurable():
    assert cgroups_path("servin", "abc") == "/servin/abc"
    assert cgroups_path("/test-1/", "abc") == "/test-1/abc"


def test_cap_add_and_drop():
    caps = tweak_capabilities(["net_admin"], ["CAP_MKNOD", "kill"])
    assert "CAP_NET_ADMIN" in caps and "CAP_MKNOD" not in caps and "CAP_KILL" not in caps
    assert tweak_capabilities(["ALL"], ["SYS_ADMIN"]) == [c for c in ALL_CAPABILITIES
                                                         if c != "CAP_SYS_ADMIN"]
    assert tweak_capabilities(["chown"], ["all"]) == ["CAP_CHOWN"]
    assert tweak_capabilities([], []) == DEFAULT_CAPABILITIES
    with pytest.raises(InvalidArgument, match='unknown capability: "CAP_BOGUS"'):
        tweak_capabilities(["bogus"], [])


def test_extra_devices_rules_seccomp_and_no_shm():
    from servin.oci.spec import Device, allow_rule
    spec = build_spec(params(devices=[Device("/dev/mynull", "c", 1, 3, file_mode=0o600)],
                             device_rules=[allow_rule("c", 42, None, "rw")],
                             seccomp={"defaultAction": "SCMP_ACT_ERRNO"}, shm=False,
                             domainname="example.org", apparmor_profile="docker-default"))
    devices = {d["path"]: d for d in spec["linux"]["devices"]}
    assert devices["/dev/mynull"]["fileMode"] == 0o600 and "/dev/null" in devices
    assert spec["linux"]["resources"]["devices"][-1] == {"allow": True, "type": "c",
                                                         "access": "rw", "major": 42}
    assert spec["linux"]["seccomp"] == {"defaultAction": "SCMP_ACT_ERRNO"}
    assert "/dev/shm" not in {m["destination"] for m in spec["mounts"]}
    assert spec["linux"]["sysctl"]["kernel.domainname"] == "example.org"
    assert spec["process"]["apparmorProfile"] == "docker-default"


def test_rootfs_propagation_follows_the_binds():
    from servin.oci.spec import MountSpec, rootfs_propagation
    private = MountSpec.bind("/a", "/a")
    assert rootfs_propagation([private]) is None
    assert rootfs_propagation([private, MountSpec.bind("/b", "/b", propagation="rslave")]) == "rslave"
    assert rootfs_propagation([MountSpec.bind("/b", "/b", propagation="rslave"),
                               MountSpec.bind("/c", "/c", propagation="rshared")]) == "shared"
