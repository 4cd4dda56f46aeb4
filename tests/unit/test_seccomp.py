import pytest

from servin.errors import InvalidArgument
from servin.oci.capabilities import DEFAULT_CAPABILITIES
from servin.oci.seccomp import (CLONE_NAMESPACE_FLAGS, default_profile, parse_profile, to_oci)


def allowed(spec) -> set[str]:
    return {name for rule in spec["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"
            and not rule.get("args") for name in rule["names"]}


def default_for(caps, machine="x86_64", kernel=(6, 1)):
    return to_oci(default_profile(), caps, machine=machine, kernel=kernel)


def test_default_denies_with_eperm_on_x86_architectures():
    spec = default_for(DEFAULT_CAPABILITIES)
    assert spec["defaultAction"] == "SCMP_ACT_ERRNO" and spec["defaultErrnoRet"] == 1
    assert spec["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def test_ordinary_syscalls_allowed_dangerous_ones_not():
    names = allowed(default_for(DEFAULT_CAPABILITIES))
    assert {"read", "write", "openat", "execve", "arch_prctl", "ptrace"} <= names
    for blocked in ("mount", "unshare", "setns", "reboot", "init_module", "settimeofday",
                    "keyctl", "add_key", "kexec_load", "s390_runtime_instr"):
        assert blocked not in names


@pytest.mark.parametrize("cap, syscalls", [
    ("CAP_SYS_ADMIN", {"mount", "umount2", "unshare", "setns", "sethostname", "clone"}),
    ("CAP_SYS_PTRACE", {"kcmp", "pidfd_getfd"}),
    ("CAP_SYS_MODULE", {"init_module", "finit_module", "delete_module"}),
    ("CAP_SYS_BOOT", {"reboot"}),
    ("CAP_SYS_TIME", {"settimeofday", "clock_settime"}),
])
def test_capabilities_unlock_their_syscalls(cap, syscalls):
    base = [c for c in DEFAULT_CAPABILITIES if c != cap]
    assert not syscalls & allowed(default_for(base)) - {"clone"}
    assert syscalls <= allowed(default_for([*base, cap]))


def test_chroot_needs_sys_chroot():
    assert "chroot" in allowed(default_for(DEFAULT_CAPABILITIES))  # in Docker's defaults
    without = [c for c in DEFAULT_CAPABILITIES if c != "CAP_SYS_CHROOT"]
    assert "chroot" not in allowed(default_for(without))


def test_clone_without_sys_admin_may_not_create_namespaces():
    spec = default_for(DEFAULT_CAPABILITIES)
    clones = [r for r in spec["syscalls"] if r["names"] == ["clone"]]
    assert clones == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                       "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                                 "op": "SCMP_CMP_MASKED_EQ"}]}]
    clone3 = next(r for r in spec["syscalls"] if r["names"] == ["clone3"])
    assert clone3["action"] == "SCMP_ACT_ERRNO" and clone3["errnoRet"] == 38
    with_admin = default_for([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    assert not any(r["names"] == ["clone3"] and r["action"] == "SCMP_ACT_ERRNO"
                   for r in with_admin["syscalls"])


def test_personality_only_with_known_values():
    spec = default_for(DEFAULT_CAPABILITIES)
    values = sorted(r["args"][0]["value"] for r in spec["syscalls"]
                    if r["names"] == ["personality"])
    assert values == [0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF]


def test_arch_specific_rules_follow_the_machine():
    arm = default_for(DEFAULT_CAPABILITIES, machine="aarch64")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in allowed(arm) and "set_tls" in allowed(arm)


def test_min_kernel_filter():
    assert "ptrace" not in allowed(default_for(DEFAULT_CAPABILITIES, kernel=(4, 4)))


def test_custom_profile_and_its_errors():
    profile = parse_profile('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": '
                            '["SCMP_ARCH_X86_64"], "syscalls": [{"name": "mkdir", '
                            '"action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}')
    spec = to_oci(profile, [], machine="x86_64", kernel=(6, 1))
    assert spec == {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                  "errnoRet": 13}]}
    with pytest.raises(InvalidArgument, match="Decoding seccomp profile failed"):
        parse_profile("{nope")
    with pytest.raises(InvalidArgument, match="use either 'name' or 'names'"):
        parse_profile('{"syscalls": [{"name": "a", "names": ["b"]}]}')
