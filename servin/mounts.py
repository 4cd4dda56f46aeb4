"""Mounting and unmounting on the host, off the event loop (mount(8) and umount(8))."""

from __future__ import annotations

import asyncio
from pathlib import Path

from servin.errors import SystemFailure


async def _run(*argv: str, cwd: Path | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise SystemFailure(f"{argv[0]} failed: {stderr.decode(errors='replace').strip()}")


async def mount(fstype: str, source: str, target: Path, options: str, *,
                cwd: Path | None = None) -> None:
    """``cwd`` lets relative paths in ``options`` stay short (overlay's lowerdir)."""
    await _run("mount", "-t", fstype, source, "-o", options, str(target), cwd=cwd)


async def unmount(target: Path) -> None:
    """Lazily, so a reader still inside (a docker cp) cannot make it fail."""
    await _run("umount", "-l", str(target))


def is_mountpoint(path: Path) -> bool:
    target = str(path).replace(" ", "\\040")  # mountinfo escapes blanks
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)
