"""Rotating running containers' logs by size, as dockerd's json-file and local drivers do.

conmon appends to the live log and knows nothing of a size limit (its own
``--log-size-max`` replaces the full file by an empty one, losing what was in it).
One watcher task per running container wakes on inotify; once the live file has
reached max-size it is renamed to ``<log>.1`` (older files move up, those beyond
max-file go) and conmon is asked to reopen its log. conmon keeps appending to the
renamed file until it reopens, so no line is lost; the live file may overshoot
max-size by what is written meanwhile.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol

import structlog

from servin.containers.logconfig import LogPolicy
from servin.errors import ServinError
from servin.oci.inotify import IN_CREATE, IN_MODIFY, IN_MOVED_TO, ChangeWatcher
from servin.oci.logfile import rotated_numbers, rotated_path

log = structlog.get_logger("servin.containers")


class LogReopener(Protocol):
    """What conmon offers: write the log to a fresh file at its path (Runtime does this)."""

    def reopen_log(self, container_id: str) -> None: ...


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


class LogRotator:
    def __init__(self, conmon: LogReopener) -> None:
        self._conmon = conmon
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, container_id: str, log_path: Path, policy: LogPolicy) -> None:
        """Watch a running container's log: after its start, or when adopted at restore."""
        if not policy.rotates or container_id in self._tasks:
            return
        self._tasks[container_id] = asyncio.create_task(
            self._watch(container_id, log_path, policy), name=f"logrotate-{container_id[:12]}")

    async def stop(self, container_id: str) -> None:
        """Stop watching (the container exited or is removed, or the daemon shuts down)."""
        task = self._tasks.pop(container_id, None)
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(cid) for cid in list(self._tasks)))

    async def _watch(self, container_id: str, path: Path, policy: LogPolicy) -> None:
        assert policy.max_size is not None
        watcher = ChangeWatcher()
        try:
            # The directory: the live file is a new one after each rotation.
            watcher.watch(path.parent, IN_MODIFY | IN_CREATE | IN_MOVED_TO)
            if _size(path) is None and rotated_numbers(path):
                # A daemon stopped between renaming the live file and asking conmon to
                # reopen it: conmon still appends to <log>.1.
                await asyncio.to_thread(self._reopen, container_id)
            while True:
                watcher.changed.clear()
                size = _size(path)
                if size is not None and size > 0 and size >= policy.max_size:
                    if not await asyncio.to_thread(self._rotate, container_id, path,
                                                   policy.max_file):
                        return
                    continue
                await watcher.changed.wait()
        finally:
            watcher.close()

    def _rotate(self, container_id: str, path: Path, max_file: int) -> bool:
        """Rename the live file to ``.1`` and have conmon reopen; False once conmon is gone."""
        for number in reversed(rotated_numbers(path)):
            if number + 1 >= max_file:
                rotated_path(path, number).unlink(missing_ok=True)
            else:
                rotated_path(path, number).rename(rotated_path(path, number + 1))
        path.rename(rotated_path(path, 1))
        reopened = self._reopen(container_id)
        if max_file == 1:
            # Only the live file is kept: what went to the old one is let go, as dockerd.
            rotated_path(path, 1).unlink(missing_ok=True)
        log.debug("log_rotated", id=container_id[:12])
        return reopened

    def _reopen(self, container_id: str) -> bool:
        try:
            self._conmon.reopen_log(container_id)
        except ServinError as exc:
            log.info("log_reopen_failed", id=container_id[:12], error=exc.message)
            return False
        return True
