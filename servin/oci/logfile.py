"""Reading the k8s-file container logs that conmon writes.

One line per chunk of output: ``<RFC3339Nano time> stdout|stderr F|P <text>``.
``F`` ends a line of output (its newline is not stored), ``P`` is a partial
line that the following entries continue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import attrs

from servin.oci.inotify import IN_CLOSE_WRITE, IN_CREATE, IN_MODIFY, IN_MOVED_TO, ChangeWatcher

READ_CHUNK = 1 << 20
TAIL_BLOCK = 64 * 1024


@attrs.frozen
class LogEntry:
    time_ns: int  # nanoseconds since the epoch
    stream: str  # "stdout" | "stderr"
    data: bytes  # the output, with its newline restored unless partial
    partial: bool


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


def parse_line(line: bytes, *, times: bool = True) -> LogEntry | None:
    """One log line (without its newline); None for a line that is not in the format.

    Without ``times`` the timestamp is not parsed (time_ns is 0): most of the cost of
    a line, and needed only for since/until and timestamps.
    """
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
        return None
    try:
        time_ns = parse_timestamp_ns(parts[0].decode("ascii")) if times else 0
    except (ValueError, UnicodeDecodeError):
        return None
    partial = parts[2] == b"P"
    text = parts[3] if len(parts) == 4 else b""
    return LogEntry(time_ns=time_ns, stream=parts[1].decode(), data=text if partial else text + b"\n",
                    partial=partial)


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

    async def entries(self, times: bool) -> tuple[bool, list[LogEntry]]:
        """The next block's entries, read and parsed off the loop; False at end of file."""
        return await asyncio.to_thread(self._read_entries, times)

    def _read_entries(self, times: bool) -> tuple[bool, list[LogEntry]]:
        chunk = self.file.read(READ_CHUNK)
        if not chunk:
            return False, []
        data = self._pending + chunk
        complete, newline, self._pending = data.rpartition(b"\n")
        if not newline:
            return True, []
        parsed = (parse_line(line, times=times) for line in complete.split(b"\n"))
        return True, [entry for entry in parsed if entry is not None]

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


async def read_log(path: Path, *, follow: bool = False, since_ns: int | None = None,
                   until_ns: int | None = None, tail: int | None = None,
                   stop: asyncio.Event | None = None,
                   times: bool = True) -> AsyncIterator[list[LogEntry]]:
    """Entries of the log at ``path`` and its rotated files, filtered as ``docker logs``
    does, in batches (one per block read) so that big logs cost few loop iterations.

    ``tail`` keeps the last N entries (applied before ``since``); ``since_ns`` drops
    older entries; ``until_ns`` ends the stream at the first later one. With
    ``follow``, waits for new entries, across rotations of the live file, until
    ``stop`` is set and the file is drained. ``times=False`` leaves timestamps
    unparsed (0) when no filter needs them.
    """
    times = times or since_ns is not None or until_ns is not None
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
                more, entries = await readers[0].entries(times)
                if since_ns is not None:
                    entries = [entry for entry in entries if entry.time_ns >= since_ns]
                if until_ns is not None:
                    later = next((i for i, entry in enumerate(entries)
                                  if entry.time_ns > until_ns), None)
                    if later is not None:
                        if later:
                            yield entries[:later]
                        return
                if entries:
                    yield entries
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
