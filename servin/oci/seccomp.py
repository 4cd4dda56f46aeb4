"""Seccomp for containers: Docker's default profile and Docker-format profiles made OCI.

A Docker profile lists syscall rules that may apply only with some capabilities,
on some architectures or from some kernel on (``includes``/``excludes``); the
OCI spec has no such conditions, so ``to_oci`` resolves them for one container:
its capabilities, the host's architecture and kernel. Anything not allowed fails
with EPERM, as with Docker.
"""

from __future__ import annotations

import json
import platform
from typing import Any

from servin.errors import InvalidArgument

EPERM = 1
ENOSYS = 38

# Go's GOARCH names, which Docker profiles use in their ``arches`` filters.
_GO_ARCH = {"x86_64": "amd64", "i686": "386", "aarch64": "arm64", "armv7l": "arm",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
# libseccomp's name of the native architecture and the ones its binaries may also use.
ARCH_MAP = [
    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
    {"architecture": "SCMP_ARCH_PPC64LE", "subArchitectures": []},
    {"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]},
    {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": []},
]
_SCMP_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64",
              "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X",
              "riscv64": "SCMP_ARCH_RISCV64"}

# Syscalls every container may make: what ordinary programs need, nothing that
# changes the host (mounts, modules, clocks, namespaces, keyrings, reboot...).
_ALLOWED = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64
fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs
fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd
getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register
io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr
lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open
openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect
poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom
recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2
restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop
semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid
setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit
umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid
waitpid write writev
"""

# Syscalls a capability makes safe to allow, as the kernel checks that capability.
_BY_CAPABILITY = {
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
    "CAP_SYS_ADMIN": """bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick
        lookup_dcookie mount mount_setattr move_mount open_tree perf_event_open quotactl
        quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare""",
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_CHROOT": "chroot",
    "CAP_SYS_MODULE": "delete_module init_module finit_module",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_PTRACE": "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64",
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYS_NICE": "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    "CAP_SYSLOG": "syslog",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
}

# Syscalls of one architecture family only (Go arch names).
_BY_ARCH = [
    (("amd64", "x32"), "arch_prctl"),
    (("amd64", "x32", "386"), "modify_ldt"),
    (("arm", "arm64"), "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint "
                       "cacheflush set_tls"),
    (("ppc64le",), "sync_file_range2 swapcontext"),
    (("s390", "s390x"), "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"),
    (("riscv64",), "riscv_flush_icache"),
]

# clone(2) flags that create namespaces: without CAP_SYS_ADMIN clone may not use them.
CLONE_NAMESPACE_FLAGS = (0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
                         | 0x40000000 | 0x02000000)  # NS UTS IPC USER PID NET CGROUP

# personality(2) values programs use: PER_LINUX, UNAME26, PER_LINUX32 (+UNAME26), query.
_PERSONALITIES = (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)


def _rule(names: str, **extra: Any) -> dict[str, Any]:
    return {"names": names.split(), "action": "SCMP_ACT_ALLOW", **extra}


def default_profile() -> dict[str, Any]:
    """Docker's default profile, in Docker's profile format (with conditional rules)."""
    syscalls = [_rule(_ALLOWED)]
    syscalls.append(_rule("process_vm_readv process_vm_writev ptrace",
                          includes={"minKernel": "4.8"}))
    syscalls.append(_rule("socket", args=[{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]))  # AF_VSOCK
    syscalls += [_rule("personality", args=[{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}])
                 for value in _PERSONALITIES]
    syscalls += [_rule(names, includes={"arches": list(arches)}) for arches, names in _BY_ARCH]
    syscalls += [_rule(names, includes={"caps": [cap]}) for cap, names in _BY_CAPABILITY.items()]
    # clone's flags are its first argument, except on s390 where they are the second.
    clone_flags = {"value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
    syscalls.append(_rule("clone", args=[{"index": 0, **clone_flags}],
                          excludes={"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}))
    syscalls.append(_rule("clone", args=[{"index": 1, **clone_flags}],
                          includes={"arches": ["s390", "s390x"]},
                          excludes={"caps": ["CAP_SYS_ADMIN"]}))
    # clone3 hides its flags in memory seccomp cannot read: ENOSYS makes libc fall back to clone.
    syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
                     "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": EPERM,
            "archMap": ARCH_MAP, "syscalls": syscalls}


def parse_profile(text: str) -> dict[str, Any]:
    """A profile sent as ``seccomp=<json>`` (the docker CLI sends the file's content)."""
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(profile, dict):
        raise InvalidArgument("Decoding seccomp profile failed: expected a JSON object")
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidArgument("'architectures' and 'archMap' were specified in the seccomp "
                              "profile, use either 'architectures' or 'archMap'")
    for rule in profile.get("syscalls") or []:
        if not isinstance(rule, dict):
            raise InvalidArgument("Decoding seccomp profile failed: a syscall rule is not an object")
        if rule.get("name") and rule.get("names"):
            raise InvalidArgument("'name' and 'names' were specified in the seccomp profile, "
                                  "use either 'name' or 'names'")
    return profile


def _kernel_at_least(kernel: tuple[int, int], minimum: str) -> bool:
    major, _, minor = minimum.partition(".")
    return kernel >= (int(major), int(minor or 0))


def host_kernel() -> tuple[int, int]:
    major, minor = platform.release().split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _applies(rule: dict[str, Any], caps: set[str], arch: str, kernel: tuple[int, int]) -> bool:
    includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if includes.get("caps") and not set(includes["caps"]) <= caps:
        return False
    if includes.get("minKernel") and not _kernel_at_least(kernel, includes["minKernel"]):
        return False
    if excludes.get("arches") and arch in excludes["arches"]:
        return False
    if excludes.get("caps") and set(excludes["caps"]) & caps:
        return False
    if excludes.get("minKernel") and _kernel_at_least(kernel, excludes["minKernel"]):
        return False
    return True


def to_oci(profile: dict[str, Any], capabilities: list[str], *, machine: str | None = None,
           kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """The spec's ``linux.seccomp`` for a container with ``capabilities`` on this host."""
    machine = machine or platform.machine()
    kernel = kernel or host_kernel()
    go_arch = _GO_ARCH.get(machine, machine)
    caps = set(capabilities)
    out: dict[str, Any] = {"defaultAction": profile.get("defaultAction") or "SCMP_ACT_ERRNO"}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    if profile.get("architectures"):
        out["architectures"] = list(profile["architectures"])
    native = _SCMP_ARCH.get(machine)
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == native:
            out["architectures"] = [native, *(entry.get("subArchitectures") or [])]
    if profile.get("flags"):
        out["flags"] = list(profile["flags"])
    syscalls = []
    for rule in profile.get("syscalls") or []:
        if not _applies(rule, caps, go_arch, kernel):
            continue
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        oci: dict[str, Any] = {"names": list(names), "action": rule.get("action")}
        if rule.get("errnoRet") is not None:
            oci["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            oci["args"] = [{"index": a["index"], "value": a.get("value", 0),
                            "valueTwo": a.get("valueTwo", 0), "op": a["op"]}
                           for a in rule["args"]]
        syscalls.append(oci)
    out["syscalls"] = syscalls
    return out
