"""Rotating running containers' logs by size, as dockerd's json-file and local drivers do.

conmon appends to the live log and knows nothing of a size limit (its own
``--log-size-max`` replaces the full file by an empty one, losing what was in it).
One watcher task per running container wakes on inotify; once the live file has
reached max-size, older files move up (those beyond max-file go), the live file is
hard-linked as ``<log>.1`` and conmon is asked to reopen its log, which puts a new
file in the live file's place. conmon appends to the old file until then, so no
line is lost, and the log path never goes missing; the live file may overshoot
max-size by what is written meanwhile.

Output faster than the watcher (a burst, then the exit), or written while no
daemon ran, is cut to size when the container has exited: files over max-size are
split at line ends into max-size pieces, of which the newest max-file are kept.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

import attrs

import structlog

from servin.containers.logconfig import LogPolicy
from servin.errors import ServinError
from servin.oci.inotify import IN_CREATE, IN_MODIFY, IN_MOVED_TO, ChangeWatcher
from servin.oci.logfile import inode_at, rotated_numbers, rotated_path
from servin.store import fsync_dir

log = structlog.get_logger("servin.containers")

# How long conmon may take to act on a reopen request before we ask again.
REOPEN_TIMEOUT = 5.0


class LogReopener(Protocol):
    """What conmon offers: write the log to a fresh file at its path (Runtime does this)."""

    def reopen_log(self, container_id: str) -> None: ...


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except FileNotFoundError:
        return False


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

    async def exited(self, container_id: str, log_path: Path, policy: LogPolicy) -> None:
        """The container's output has ended (conmon is gone): stop watching, cut to size."""
        await self.stop(container_id)
        if policy.rotates:
            assert policy.max_size is not None
            await asyncio.to_thread(split_log, log_path, policy.max_size, policy.max_file)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(cid) for cid in list(self._tasks)))

    async def _watch(self, container_id: str, path: Path, policy: LogPolicy) -> None:
        assert policy.max_size is not None
        watcher = ChangeWatcher()
        try:
            # The directory: the live file is a new one after each rotation.
            watcher.watch(path.parent, IN_MODIFY | IN_CREATE | IN_MOVED_TO)
            while True:
                watcher.changed.clear()
                size = _size(path)
                if size is not None and size > 0 and size >= policy.max_size:
                    rotated = inode_at(path)
                    if not await asyncio.to_thread(self._rotate, container_id, path,
                                                   policy.max_file):
                        return
                    await self._until_reopened(watcher, path, rotated)
                    continue
                await watcher.changed.wait()
        finally:
            watcher.close()

    @staticmethod
    async def _until_reopened(watcher: ChangeWatcher, path: Path, rotated: int | None) -> None:
        """Wait until conmon has put its new file at the log path.

        One reopen at a time: a second request would replace the new file, and the
        lines already in it, before it was ever linked as a rotated file.
        """
        try:
            async with asyncio.timeout(REOPEN_TIMEOUT):
                while True:
                    watcher.changed.clear()
                    if inode_at(path) != rotated:
                        return
                    await watcher.changed.wait()
        except TimeoutError:
            log.warning("log_reopen_slow", path=str(path))

    def _rotate(self, container_id: str, path: Path, max_file: int) -> bool:
        """Make the live file ``.1`` and have conmon start a new one; False once conmon is gone."""
        newest = rotated_path(path, 1)
        # Already linked when a daemon stopped before conmon reopened: only that is left.
        if not _same_file(path, newest):
            for number in reversed(rotated_numbers(path)):
                if number + 1 >= max_file:
                    rotated_path(path, number).unlink(missing_ok=True)
                else:
                    rotated_path(path, number).rename(rotated_path(path, number + 1))
            os.link(path, newest)
        if not self._reopen(container_id):
            newest.unlink()  # the output ended: the live file stays as it is
            return False
        if max_file == 1:
            # Only the live file is kept: the old one is let go, as dockerd truncates.
            newest.unlink()
        log.debug("log_rotated", id=container_id[:12])
        return True

    def _reopen(self, container_id: str) -> bool:
        try:
            self._conmon.reopen_log(container_id)
        except ServinError as exc:
            log.info("log_reopen_failed", id=container_id[:12], error=exc.message)
            return False
        return True


def _pieces(file: BinaryIO, max_size: int) -> list[tuple[int, int]]:
    """(start, end) offsets of consecutive runs of whole lines of at most ``max_size``
    bytes (a longer line makes a piece of its own)."""
    pieces: list[tuple[int, int]] = []
    start = position = 0
    for line in file:
        if position > start and position + len(line) - start > max_size:
            pieces.append((start, position))
            start = position
        position += len(line)
    if position > start:
        pieces.append((start, position))
    return pieces


@attrs.frozen
class _Piece:
    """A run of lines of one of the log's files; ``whole`` if it is the entire file."""

    source: Path
    start: int
    end: int
    whole: bool


def _pieces_of(path: Path, max_size: int) -> list[_Piece]:
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size <= max_size:
            return [_Piece(path, 0, size, whole=True)]
        return [_Piece(path, start, end, whole=False) for start, end in _pieces(file, max_size)]


def _cut_to_temp(piece: _Piece) -> Path:
    """Copy a piece to a temp file beside its source (named as atomic_write's temps)."""
    fd, name = tempfile.mkstemp(dir=piece.source.parent, prefix=f".{piece.source.name}.",
                                suffix=".tmp")
    with open(piece.source, "rb") as source, os.fdopen(fd, "wb") as target:
        source.seek(piece.start)
        remaining = piece.end - piece.start
        while remaining:
            chunk = source.read(min(remaining, 1 << 20))
            if not chunk:
                break
            target.write(chunk)
            remaining -= len(chunk)
        target.flush()
        os.fsync(target.fileno())
    return Path(name)


def split_log(path: Path, max_size: int, max_file: int) -> None:
    """Cut the files of a log that nobody writes any more to max-size, keeping max-file.

    A rotation can lag behind a burst of output, so the live file and the newest
    rotated one may both have outgrown max-size: each file over it is cut at line
    ends into max-size pieces, and the newest max-file pieces of all the files stay
    (the newest the live file, the older ones ``.1``, ``.2``...).
    """
    if not path.exists():
        return
    numbers = rotated_numbers(path)
    files = [rotated_path(path, number) for number in reversed(numbers)] + [path]
    pieces = [piece for file in files for piece in _pieces_of(file, max_size)]
    if all(piece.whole for piece in pieces) and len(pieces) <= max_file:
        return
    kept = pieces[-max_file:]
    staged = {id(piece): _cut_to_temp(piece) for piece in kept if not piece.whole}
    kept_whole = {piece.source for piece in kept if piece.whole}
    for number in numbers:
        if rotated_path(path, number) not in kept_whole:
            rotated_path(path, number).unlink()
    # Oldest first: each piece moves to the same or a higher number than its file had,
    # and the files there have moved on or gone already.
    for age, piece in zip(range(len(kept) - 1, -1, -1), kept):
        target = rotated_path(path, age) if age else path
        os.replace(staged.get(id(piece), piece.source), target)
    fsync_dir(path.parent)
