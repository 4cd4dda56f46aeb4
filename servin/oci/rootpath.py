"""Resolve paths inside a container root filesystem without escaping it.

Image content is untrusted: an absolute or ``..``-laden symlink such as
``/etc/passwd -> /../../host/etc/shadow`` must resolve against the rootfs, the
way the kernel would see it after pivot_root, never against the host.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# Linux's own limit on symlinks followed while resolving one path.
MAX_SYMLINKS = 40


class SymlinkLoop(OSError):
    pass


def resolve_in_root(root: Path, path: str) -> Path:
    """Host path of ``path`` as seen from inside ``root``, symlinks followed within root.

    Missing components are allowed (the result may not exist); the result is
    always ``root`` or below it.
    """
    pending = [part for part in path.split("/") if part]
    pending.reverse()
    resolved: list[str] = []
    followed = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if not candidate.is_symlink():
            resolved.append(part)
            continue
        followed += 1
        if followed > MAX_SYMLINKS:
            raise SymlinkLoop(f"too many levels of symbolic links resolving {path}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending.extend(reversed([p for p in target.split("/") if p]))
    return root.joinpath(*resolved)


def read_text_in_root(root: Path, path: str) -> str | None:
    """Content of a regular file inside ``root``, or None when it is absent or not a file."""
    host_path = resolve_in_root(root, path)
    try:
        fd = os.open(host_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read().decode("utf-8", errors="replace")
