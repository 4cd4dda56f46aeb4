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

from servin.oci.inotify import (IN_ATTRIB, IN_CLOSE_WRITE, IN_CREATE, IN_MODIFY, IN_MOVED_TO,
                                ChangeWatcher)

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


def parse_line(line: bytes) -> LogEntry | None:
    """One log line (without its newline); None for a line that is not in the format."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
        return None
    try:
        time_ns = parse_timestamp_ns(parts[0].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    partial = parts[2] == b"P"
    text = parts[3] if len(parts) == 4 else b""
    return LogEntry(time_ns=time_ns, stream=parts[1].decode(), data=text if partial else text + b"\n",
                    partial=partial)


def tail_offset(f: BinaryIO, lines: int) -> int:
    """Offset where the last ``lines`` lines start, reading backwards in blocks."""
    end = f.seek(0, os.SEEK_END)
    if lines <= 0:
        return end
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
                return position + index + 1
    return 0


class _Reader:
    """Complete lines from a file that may still grow, or be replaced by conmon's rotation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: BinaryIO = open(path, "rb")
        self._pending = b""

    async def lines(self) -> list[bytes]:
        chunk = await asyncio.to_thread(self.file.read, READ_CHUNK)
        if not chunk:
            return []
        data = self._pending + chunk
        complete, newline, self._pending = data.rpartition(b"\n")
        return complete.split(b"\n") if newline else []

    def replaced(self) -> bool:
        """True when the path now names another file (conmon rotated the log)."""
        try:
            return os.stat(self.path).st_ino != os.fstat(self.file.fileno()).st_ino
        except FileNotFoundError:
            return False

    def reopen(self) -> None:
        self.file.close()
        self.file = open(self.path, "rb")
        self._pending = b""

    def close(self) -> None:
        self.file.close()


async def read_log(path: Path, *, follow: bool = False, since_ns: int | None = None,
                   until_ns: int | None = None, tail: int | None = None,
                   stop: asyncio.Event | None = None) -> AsyncIterator[LogEntry]:
    """Entries of the log at ``path``, filtered as ``docker logs`` does.

    ``tail`` keeps the last N entries (applied before ``since``); ``since_ns`` drops
    older entries; ``until_ns`` ends the stream at the first later one. With
    ``follow``, waits for new entries until ``stop`` is set and the file is drained.
    """
    if not path.exists():
        return
    reader = _Reader(path)
    watcher: ChangeWatcher | None = None
    relay: asyncio.Task | None = None
    try:
        if tail is not None:
            reader.file.seek(await asyncio.to_thread(tail_offset, reader.file, tail))
        if follow:
            watcher = ChangeWatcher()
            watcher.watch(path, IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB)
            watcher.watch(path.parent, IN_CREATE | IN_MOVED_TO)
            if stop is not None:
                relay = asyncio.create_task(_relay(stop, watcher.changed))
        while True:
            if watcher is not None:
                watcher.changed.clear()
            lines = await reader.lines()
            for line in lines:
                entry = parse_line(line)
                if entry is None or (since_ns is not None and entry.time_ns < since_ns):
                    continue
                if until_ns is not None and entry.time_ns > until_ns:
                    return
                yield entry
            if lines:
                continue
            if watcher is None:
                return
            if reader.replaced():
                reader.reopen()
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
        reader.close()


async def _relay(stop: asyncio.Event, changed: asyncio.Event) -> None:
    await stop.wait()
    changed.set()
