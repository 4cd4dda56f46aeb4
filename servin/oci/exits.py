"""Container exits: conmon's exit files and waiting on a process that is not our child.

conmon daemonizes, so servind cannot waitpid() it; a pidfd becomes readable
when the process ends, whoever its parent is, and survives a daemon restart.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
from pathlib import Path

import attrs


@attrs.frozen
class ExitStatus:
    exit_code: int  # 128 + n when signal n killed it (conmon's convention, as Docker's)
    finished_at: datetime  # UTC
    oom_killed: bool = False  # the kernel's OOM killer killed a process of the container


def read_exit_file(path: Path) -> ExitStatus | None:
    """conmon's exit file: the exit code as text; its mtime is when the container ended."""
    try:
        text = path.read_text()
        mtime_ns = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    finished = datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc)
    return ExitStatus(exit_code=int(text.strip() or "-1"), finished_at=finished)


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def open_pidfd(pid: int, *, cmdline_has: tuple[bytes, ...] = ()) -> int | None:
    """A pidfd for ``pid``, or None if it is gone or (pid reuse) its command line lacks a marker."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
    except FileNotFoundError:
        cmdline = []
    if not all(marker in cmdline for marker in cmdline_has):
        os.close(pidfd)
        return None
    return pidfd


async def wait_fd_readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(None))
    try:
        await done
    finally:
        loop.remove_reader(fd)


async def wait_pidfd(pidfd: int, timeout: float | None = None) -> bool:
    """Wait for the process of ``pidfd`` to end; False on timeout. Closes ``pidfd``."""
    try:
        await asyncio.wait_for(wait_fd_readable(pidfd), timeout)
        return True
    except asyncio.TimeoutError:
        return False
    finally:
        os.close(pidfd)
