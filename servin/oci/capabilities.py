"""Docker's capability sets and its --cap-add/--cap-drop arithmetic."""

from __future__ import annotations

from servin.errors import InvalidArgument

DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

# Every capability of current Linux kernels, in the kernel's numbering (ALL_CAPABILITIES[n]
# is capability n), for privileged containers and --cap-add=ALL.
ALL_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]

ALL = "ALL"


def normalize(names: list[str]) -> list[str]:
    """``net_admin`` / ``NET_ADMIN`` / ``CAP_NET_ADMIN`` -> ``CAP_NET_ADMIN``; ``ALL`` kept."""
    out: list[str] = []
    for name in names:
        upper = name.upper()
        if upper == ALL:
            out.append(ALL)
            continue
        cap = upper if upper.startswith("CAP_") else f"CAP_{upper}"
        if cap not in ALL_CAPABILITIES:
            raise InvalidArgument(f'unknown capability: "{cap}"')
        if cap not in out:
            out.append(cap)
    return out


def tweak_capabilities(add: list[str], drop: list[str], *, privileged: bool = False,
                       base: list[str] = DEFAULT_CAPABILITIES) -> list[str]:
    """The capability set of a container started with ``--cap-add``/``--cap-drop``."""
    if privileged:
        return list(ALL_CAPABILITIES)
    cap_add, cap_drop = normalize(add), normalize(drop)
    if ALL in cap_add:
        return [c for c in ALL_CAPABILITIES if c not in cap_drop]
    if ALL in cap_drop:
        return cap_add
    kept = [c for c in base if c not in cap_drop]
    return kept + [c for c in cap_add if c not in kept]


def bounding_set(status_path: str = "/proc/self/status") -> set[str]:
    """The capabilities this process may pass on: a container can get no others."""
    with open(status_path) as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return {name for bit, name in enumerate(ALL_CAPABILITIES) if mask & (1 << bit)}
