"""Mounting and unmounting on the host with mount(2) and umount2(2), off the event loop.

Options are read as mount(8) reads them: the flag words (``ro``, ``nosuid``,
``bind``...) become mount flags, the rest goes to the filesystem as its data. A
system call in a thread costs far less than a mount(8) process per container start.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import struct
from pathlib import Path

from servin.errors import SystemFailure
from servin.ownthread import run_in_own_thread

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2
CLONE_FS = 0x200
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
STATX_ATTR_MOUNT_ROOT = 0x2000
_STATX_SIZE = 256            # struct statx, with room to spare
_STX_ATTRIBUTES = 8          # its __u64 stx_attributes
_STX_ATTRIBUTES_MASK = 56    # its __u64 stx_attributes_mask

# mount(8)'s flag words: word -> (flags it clears, flags it sets)
_FLAG_WORDS: dict[str, tuple[int, int]] = {
    "defaults": (0, 0),
    "ro": (0, MS_RDONLY), "rw": (MS_RDONLY, 0),
    "nosuid": (0, MS_NOSUID), "suid": (MS_NOSUID, 0),
    "nodev": (0, MS_NODEV), "dev": (MS_NODEV, 0),
    "noexec": (0, MS_NOEXEC), "exec": (MS_NOEXEC, 0),
    "sync": (0, MS_SYNCHRONOUS), "async": (MS_SYNCHRONOUS, 0),
    "dirsync": (0, MS_DIRSYNC),
    "remount": (0, MS_REMOUNT),
    "mand": (0, MS_MANDLOCK), "nomand": (MS_MANDLOCK, 0),
    "noatime": (0, MS_NOATIME), "atime": (MS_NOATIME, 0),
    "nodiratime": (0, MS_NODIRATIME), "diratime": (MS_NODIRATIME, 0),
    "relatime": (0, MS_RELATIME), "norelatime": (MS_RELATIME, 0),
    "strictatime": (0, MS_STRICTATIME),
    "bind": (0, MS_BIND), "rbind": (0, MS_BIND | MS_REC),
}

_libc = ctypes.CDLL(None, use_errno=True)  # ctypes drops the GIL during the calls
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.unshare.argtypes = (ctypes.c_int,)
_libc.statx.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint,
                        ctypes.c_char_p)


def parse_options(options: str) -> tuple[int, str]:
    """mount(8)'s ``-o`` text as mount flags and the filesystem's data."""
    flags = 0
    data = []
    for word in filter(None, options.split(",")):
        if word in _FLAG_WORDS:
            clear, add = _FLAG_WORDS[word]
            flags = (flags & ~clear) | add
        else:
            data.append(word)
    return flags, ",".join(data)


def _failure(what: str, code: int) -> SystemFailure:
    return SystemFailure(f"{what}: {os.strerror(code)}", errno=errno.errorcode.get(code, code))


def _mount_call(source: str, target: str, fstype: str | None, flags: int, data: str,
                what: str) -> None:
    if _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                   flags, data.encode() if data else None) != 0:
        raise _failure(what, ctypes.get_errno())


def mount_now(fstype: str, source: str, target: Path, options: str) -> None:
    """mount(2), blocking; relative paths in ``options`` resolve from the working directory."""
    flags, data = parse_options(options)
    what = f"mounting {source} ({fstype}) on {target}"
    _mount_call(source, str(target), fstype, flags, data, what)
    if flags & MS_BIND and flags & ~(MS_BIND | MS_REC):
        # A bind takes its flags (ro, nosuid...) only from a remount, as mount(8) does it.
        _mount_call("", str(target), None, (flags & ~MS_REC) | MS_REMOUNT, "", what)


def _mount_from(cwd: Path, fstype: str, source: str, target: Path, options: str) -> None:
    # This thread's own working directory: other threads keep theirs.
    if _libc.unshare(CLONE_FS) != 0:
        raise _failure("unsharing the working directory", ctypes.get_errno())
    os.chdir(cwd)
    mount_now(fstype, source, target, options)


async def mount(fstype: str, source: str, target: Path, options: str, *,
                cwd: Path | None = None) -> None:
    """``cwd`` lets relative paths in ``options`` stay short (overlay's lowerdir): the
    options of one mount must fit in a page."""
    if cwd is None:
        await asyncio.to_thread(mount_now, fstype, source, target, options)
    else:
        await run_in_own_thread(_mount_from, cwd, fstype, source, target, options)


def unmount_now(target: Path) -> None:
    """umount2(2) with MNT_DETACH, blocking."""
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        raise _failure(f"unmounting {target}", ctypes.get_errno())


async def unmount(target: Path) -> None:
    """Lazily, so a reader still inside (a docker cp) cannot make it fail."""
    await asyncio.to_thread(unmount_now, target)


def make_shared(directory: Path) -> None:
    """``directory`` a shared mount point (bound on itself first if it is none), as
    iproute2 makes its netns directory, so the bind mounts under it propagate."""
    try:
        _mount_call("", str(directory), None, MS_SHARED | MS_REC, "", "")
    except SystemFailure:
        _mount_call(str(directory), str(directory), None, MS_BIND | MS_REC, "",
                    f"binding {directory} on itself")
        _mount_call("", str(directory), None, MS_SHARED | MS_REC, "",
                    f"making {directory} a shared mount")


def is_mountpoint(path: Path) -> bool:
    """True when something is mounted on ``path``: one statx(2), where reading the mount
    table grows with every mount of the host."""
    buffer = ctypes.create_string_buffer(_STATX_SIZE)
    if _libc.statx(AT_FDCWD, str(path).encode(), AT_SYMLINK_NOFOLLOW, 0, buffer) != 0:
        code = ctypes.get_errno()
        if code in (errno.ENOENT, errno.ENOTDIR):
            return False
        raise _failure(f"looking at {path}", code)
    attributes, = struct.unpack_from("=Q", buffer, _STX_ATTRIBUTES)
    supported, = struct.unpack_from("=Q", buffer, _STX_ATTRIBUTES_MASK)
    if supported & STATX_ATTR_MOUNT_ROOT:
        return bool(attributes & STATX_ATTR_MOUNT_ROOT)
    return _in_mount_table(path)  # kernels before 5.8


def _in_mount_table(path: Path) -> bool:
    target = str(path).replace(" ", "\\040")  # mountinfo escapes blanks
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)
