"""Facts about the host the daemon runs on, as ``docker info`` and ``docker version`` show them.

Small reads of /proc, /sys and /etc are cheap and done inline; the versions of
runc, conmon and the init binary come from running them, once per process.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import platform
import shutil
import socket
import tempfile
import urllib.parse
import uuid
from pathlib import Path

import attrs

from servin.oci.cgroups import CgroupFacts, is_cgroup_v2
from servin.store import atomic_write

ENGINE_ID_FILE = "engine-id"
# Go's GOARCH names, which Docker's clients expect in /version.
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
           "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x",
           "riscv64": "riscv64"}
# Docker's names for backing filesystems (graphdriver.FsNames).
FS_NAMES = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "overlay": "overlayfs"}


@attrs.frozen
class BinaryVersion:
    path: str
    version: str
    commit: str


def parse_version_output(text: str) -> tuple[str, str]:
    """``NAME version X`` and ``commit: Y`` lines, as runc, conmon and catatonit print them."""
    version = commit = ""
    for line in text.splitlines():
        head, sep, tail = line.partition("version ")
        if sep and not version:
            version = tail.strip()
        key, sep, value = line.partition(":")
        if sep and key.strip() == "commit":
            commit = value.strip()
    return version, commit


async def _run(*argv: str, cwd: str | None = None) -> str | None:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    except OSError:
        return None
    out, _ = await proc.communicate()
    return out.decode(errors="replace") if proc.returncode == 0 else None


_binary_versions: dict[str, BinaryVersion | None] = {}


async def binary_version(name: str) -> BinaryVersion | None:
    """Version of a helper binary found on PATH; None when it is missing. Asked once."""
    if name not in _binary_versions:
        path = shutil.which(name)
        output = await _run(path, "--version") if path else None
        _binary_versions[name] = (BinaryVersion(path, *parse_version_output(output))
                                  if path and output is not None else None)
    return _binary_versions[name]


@attrs.frozen
class SourceRevision:
    commit: str = ""
    time: str = ""


_revision: list[SourceRevision] = []


async def source_revision() -> SourceRevision:
    """The git commit Servin runs from, when it runs from a checkout (the editable install)."""
    if not _revision:
        package_dir = str(Path(__file__).resolve().parent)
        output = await _run("git", "log", "-1", "--format=%h %cI", cwd=package_dir)
        _revision.append(SourceRevision(*output.split()) if output else SourceRevision())
    return _revision[0]


def engine_id(data_root: Path) -> str:
    """The daemon's persistent identity, made on first use (dockerd's engine-id file)."""
    path = data_root / ENGINE_ID_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = str(uuid.uuid4())
        atomic_write(path, value.encode(), mode=0o644)
        return value


def _read(path: Path | str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _flag(path: str) -> bool:
    return (_read(path) or "").strip() in ("1", "Y")


def os_release() -> dict[str, str]:
    fields = {}
    for line in (_read("/etc/os-release") or _read("/usr/lib/os-release") or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return fields


def cpu_count() -> int:
    return os.cpu_count() or 1


def mem_total() -> int:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def go_arch() -> str:
    machine = platform.machine()
    return GO_ARCH.get(machine, machine)


def cgroup_version() -> str:
    return "2" if is_cgroup_v2() else "1"


@attrs.frozen
class NetworkSysctls:
    ipv4_forwarding: bool
    bridge_nf_iptables: bool
    bridge_nf_ip6tables: bool


def network_sysctls() -> NetworkSysctls:
    return NetworkSysctls(_flag("/proc/sys/net/ipv4/ip_forward"),
                          _flag("/proc/sys/net/bridge/bridge-nf-call-iptables"),
                          _flag("/proc/sys/net/bridge/bridge-nf-call-ip6tables"))


def _unescape_mount_path(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    return field.encode().decode("unicode_escape")


def backing_filesystem(path: Path) -> str:
    """Docker's name of the filesystem holding ``path`` (the longest mount point above it)."""
    target = str(path.resolve())
    best, fstype = "", "unknown"
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        fields, _, tail = line.partition(" - ")
        mount_point = _unescape_mount_path(fields.split()[4])
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, fstype = mount_point, tail.split()[0]
    return FS_NAMES.get(fstype, fstype)


class _Dirent(ctypes.Structure):
    # glibc's struct dirent on 64-bit Linux
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


_DT_UNKNOWN = 0


def _dirent_types(directory: str) -> dict[str, int]:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.opendir.argtypes = [ctypes.c_char_p]
    libc.readdir.restype = ctypes.POINTER(_Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.closedir.argtypes = [ctypes.c_void_p]
    handle = libc.opendir(os.fsencode(directory))
    if not handle:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), directory)
    types = {}
    try:
        while entry := libc.readdir(handle):
            types[os.fsdecode(entry.contents.d_name)] = entry.contents.d_type
    finally:
        libc.closedir(handle)
    return types


@functools.cache
def supports_d_type(directory: Path) -> bool:
    """Whether the filesystem fills in d_type, which overlay2 needs (a file is listed and read)."""
    with tempfile.TemporaryDirectory(dir=directory, prefix=".d_type-probe.") as probe:
        Path(probe, "file").touch()
        return _dirent_types(probe).get("file", _DT_UNKNOWN) != _DT_UNKNOWN


def native_overlay_diff() -> bool:
    # With redirect_dir on, an upper dir alone no longer describes a layer's changes.
    return not _flag("/sys/module/overlay/parameters/redirect_dir")


def apparmor_enabled() -> bool:
    return _flag("/sys/module/apparmor/parameters/enabled")


def seccomp_supported() -> bool:
    return any(line.startswith("Seccomp:") for line in (_read("/proc/self/status") or "").splitlines())


def open_fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _masked_proxy(value: str) -> str:
    url = urllib.parse.urlsplit(value)
    if not url.password:
        return value
    netloc = "xxxxx:xxxxx@" + url.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(url._replace(netloc=netloc))


def proxy_settings() -> tuple[str, str, str]:
    """HTTP_PROXY, HTTPS_PROXY and NO_PROXY from the environment, credentials masked."""
    def env(name: str) -> str:
        return os.environ.get(name) or os.environ.get(name.lower()) or ""
    return _masked_proxy(env("HTTP_PROXY")), _masked_proxy(env("HTTPS_PROXY")), env("NO_PROXY")


def hostname() -> str:
    return socket.gethostname()


def feature_warnings(cgroups: CgroupFacts, sysctls: NetworkSysctls) -> list[str]:
    """dockerd's warnings for missing kernel features."""
    missing = {"memory limit": cgroups.memory, "swap limit": cgroups.swap,
               "oom kill disable": cgroups.oom_kill_disable or cgroups.version == 2,
               "cpu cfs quota": cgroups.cpu_cfs, "cpu cfs period": cgroups.cpu_cfs,
               "cpu shares": cgroups.cpu_shares, "cpuset": cgroups.cpuset,
               "pids limit": cgroups.pids}
    warnings = [f"WARNING: No {name} support" for name, present in missing.items() if not present]
    if not sysctls.ipv4_forwarding:
        warnings.append("WARNING: IPv4 forwarding is disabled")
    if not sysctls.bridge_nf_iptables:
        warnings.append("WARNING: bridge-nf-call-iptables is disabled")
    if not sysctls.bridge_nf_ip6tables:
        warnings.append("WARNING: bridge-nf-call-ip6tables is disabled")
    return warnings
