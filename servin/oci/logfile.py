"""Reading the k8s-file container logs that conmon writes.

One line per chunk of output: ``<RFC3339Nano time> stdout|stderr F|P <text>``.
``F`` ends a line of output (its newline is not stored), ``P`` is a partial
line that the following entries continue.

The reader hands whole blocks of lines to a transform that runs in its thread:
a log of 200,000 lines is then a few dozen blocks on the event loop, and the
per-line work (what `docker logs` sends) stays off it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

from servin.oci.inotify import IN_CLOSE_WRITE, IN_CREATE, IN_MODIFY, IN_MOVED_TO, ChangeWatcher

READ_CHUNK = 1 << 20
TAIL_BLOCK = 64 * 1024
STREAMS = (b"stdout", b"stderr")

T = TypeVar("T")
# What the reader's thread makes of a block of complete lines (joined by newlines).
BlockTransform = Callable[[bytes], T]


def parse_timestamp_ns(text: str) -> int:
    """RFC 3339 with up to nanosecond fractions (``...T12:00:00.123456789+02:00`` or ``Z``)."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, _, rest = text.partition(".")
    if rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, zone = rest[:digits], rest[digits:]
    else:
        main, zone, fraction = text[:19], text[19:], ""
    seconds = int(datetime.fromisoformat(main + zone).timestamp())
    return seconds * 1_000_000_000 + int((fraction + "000000000")[:9])


def log_fields(block: bytes) -> Iterator[tuple[bytes, bytes, bytes]]:
    """(time, stream, output) of each line of a block, the output with its newline
    restored unless partial; lines not in the format are skipped. Runs per line of
    output (200,000 for a `docker logs` of as many lines): kept to a few operations."""
    for line in block.split(b"\n"):
        try:
            stamp, stream, flag, text = line.split(b" ", 3)
        except ValueError:
            try:
                (stamp, stream, flag), text = line.split(b" "), b""
            except ValueError:
                continue
        if stream in STREAMS:
            yield stamp, stream, text if flag == b"P" else text + b"\n"


def rotated_path(path: Path, number: int) -> Path:
    """The ``number``-th newest rotated file of the log at ``path`` (``<log>.1`` is the newest)."""
    return path.with_name(f"{path.name}.{number}")


def rotated_numbers(path: Path) -> list[int]:
    """The numbers of the rotated files of the log at ``path`` that exist, in ascending order."""
    prefix = path.name + "."
    numbers = []
    try:
        entries = list(os.scandir(path.parent))
    except FileNotFoundError:
        return []
    for entry in entries:
        suffix = entry.name[len(prefix):]
        if (entry.name.startswith(prefix) and suffix.isascii() and suffix.isdigit()
                and suffix[0] != "0"):
            numbers.append(int(suffix))
    return sorted(numbers)


def tail_start(f: BinaryIO, lines: int) -> tuple[int, int]:
    """Where the last ``lines`` lines of ``f`` start, and how many lines that takes in
    (fewer when the file holds fewer); reads backwards in blocks."""
    end = f.seek(0, os.SEEK_END)
    if lines <= 0 or end == 0:
        return end, 0
    position = end
    found = 0
    while position > 0:
        size = min(TAIL_BLOCK, position)
        position -= size
        f.seek(position)
        block = f.read(size)
        index = len(block)
        if position + size == end and block.endswith(b"\n"):
            index -= 1  # the last line's own newline separates nothing
        while (index := block.rfind(b"\n", 0, index)) >= 0:
            found += 1
            if found == lines:
                return position + index + 1, found
    return 0, found + 1  # the first line has no newline before it


class _Reader:
    """Complete lines from one log file, which conmon may still be writing."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self._pending = b""

    @property
    def inode(self) -> int:
        return os.fstat(self.file.fileno()).st_ino

    async def block(self, transform: BlockTransform[T]) -> tuple[bool, T | None]:
        """The next block of complete lines, read and transformed off the loop (None
        when it holds no complete line yet); False at end of file."""
        return await asyncio.to_thread(self._read_block, transform)

    def _read_block(self, transform: BlockTransform[T]) -> tuple[bool, T | None]:
        chunk = self.file.read(READ_CHUNK)
        if not chunk:
            return False, None
        data = self._pending + chunk
        complete, newline, self._pending = data.rpartition(b"\n")
        if not newline:
            return True, None
        return True, transform(complete)

    def close(self) -> None:
        self.file.close()


def _open(path: Path) -> BinaryIO | None:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def inode_at(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _open_all(path: Path, attempts: int = 5) -> list[_Reader]:
    """Readers of the live log and its rotated files, oldest first.

    The live file is opened first and the rotated ones newest to oldest, skipping a
    file seen already: a rotation in between renames the live file to ``.1``, so
    every line is read once and in order. A rotation can also drop the oldest file
    while we open the others; then the names no longer point where they did, and
    the files are opened again.
    """
    for _ in range(attempts):
        readers: list[_Reader] = []
        opened: dict[Path, int | None] = {}
        seen: set[int] = set()
        candidates = [path, *(rotated_path(path, n) for n in rotated_numbers(path))]
        for candidate in candidates:
            file = _open(candidate)
            if file is None:
                opened[candidate] = None
                continue
            reader = _Reader(file)
            opened[candidate] = reader.inode
            if reader.inode in seen:
                reader.close()
                continue
            seen.add(reader.inode)
            readers.append(reader)
        unchanged = (all(inode_at(name) == inode for name, inode in opened.items())
                     and [path, *(rotated_path(path, n) for n in rotated_numbers(path))]
                     == candidates)
        if unchanged:
            break
        for reader in readers:
            reader.close()
    readers.reverse()
    return readers


async def _seek_tail(readers: list[_Reader], lines: int) -> list[_Reader]:
    """Position the readers on the last ``lines`` lines across the files; those still needed."""
    needed = 0
    for index in range(len(readers) - 1, -1, -1):
        offset, found = await asyncio.to_thread(tail_start, readers[index].file, lines)
        readers[index].file.seek(offset)
        needed = index
        lines -= found
        if lines <= 0:
            break
    for reader in readers[:needed]:
        reader.close()
    return readers[needed:]


async def read_log(path: Path, transform: BlockTransform[T], *, follow: bool = False,
                   tail: int | None = None,
                   stop: asyncio.Event | None = None) -> AsyncIterator[T]:
    """The log at ``path`` and its rotated files, oldest line first, as ``transform``
    makes each block of complete lines (in the reader's thread).

    ``tail`` starts at the last N lines. With ``follow``, waits for new lines, across
    rotations of the live file, until ``stop`` is set and the file is drained.
    """
    readers = await asyncio.to_thread(_open_all, path)
    watcher: ChangeWatcher | None = None
    relay: asyncio.Task | None = None
    try:
        if tail is not None:
            readers = await _seek_tail(readers, tail)
        if follow:
            watcher = ChangeWatcher()
            # The directory: the live file is replaced at each rotation.
            watcher.watch(path.parent, IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO)
            if stop is not None:
                relay = asyncio.create_task(_relay(stop, watcher.changed))
        while True:
            if watcher is not None:
                watcher.changed.clear()
            if readers:
                more, block = await readers[0].block(transform)
                if block is not None:
                    yield block
                if more:
                    continue
                if len(readers) > 1:
                    readers.pop(0).close()
                    continue
            if watcher is None:
                return
            # A new live file (conmon reopened its log after a rotation) is read once
            # the current one is drained again: conmon closed that before the new one
            # took the log's name, so nothing written to it is missed.
            inode = inode_at(path)
            if inode is not None and (not readers or readers[-1].inode != inode):
                file = _open(path)
                if file is not None:
                    readers.append(_Reader(file))
                    continue
            if stop is not None and stop.is_set():
                return
            await watcher.changed.wait()
    finally:
        if relay is not None:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
        if watcher is not None:
            watcher.close()
        for reader in readers:
            reader.close()


async def _relay(stop: asyncio.Event, changed: asyncio.Event) -> None:
    await stop.wait()
    changed.set()
