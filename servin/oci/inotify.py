"""A minimal inotify binding (ctypes) that wakes an asyncio waiter on file changes."""

from __future__ import annotations

import asyncio
import ctypes
import os
from pathlib import Path

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


class ChangeWatcher:
    """Sets ``changed`` whenever a watched path sees one of the given events."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()
        self._fd = _check(_libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1")
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._drain)

    def watch(self, path: Path, mask: int) -> None:
        _check(_libc.inotify_add_watch(self._fd, os.fsencode(path), mask), f"inotify_add_watch {path}")

    def _drain(self) -> None:
        try:
            while os.read(self._fd, 65536):
                pass
        except BlockingIOError:
            pass
        self.changed.set()

    def close(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
