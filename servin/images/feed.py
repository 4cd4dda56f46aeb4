"""A download handed from the event loop to the thread that consumes it, chunk by chunk.

The loop puts chunks as they arrive; the thread iterates over them and hashes
each one it takes, so the blob's digest is known once it has taken them all.
``put`` waits, without blocking the loop, while ``limit`` bytes are queued:
a slow consumer slows the download down instead of piling it up in memory.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import threading

FEED_LIMIT = 4 * 1024 * 1024


class FeedAborted(Exception):
    """The producer gave up on the download: the consumer stops where it is."""


class ChunkFeed:
    def __init__(self, limit: int = FEED_LIMIT) -> None:
        self.limit = limit
        self.fed = 0   # bytes put so far
        self._loop = asyncio.get_running_loop()
        self._cond = threading.Condition()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._ended = False      # the producer put its last chunk
        self._aborted = False    # the producer gave up
        self._stopped = False    # the consumer takes nothing more
        self._producer_waiting = False
        self._room = asyncio.Event()
        self._hash = hashlib.sha256()

    # ---- the producer, on the event loop ---------------------------------------------

    async def put(self, chunk: bytes) -> bool:
        """Queue ``chunk``; False when the consumer has stopped (its outcome says why)."""
        with self._cond:
            if self._stopped:
                return False
            self._chunks.append(chunk)
            self._queued += len(chunk)
            self.fed += len(chunk)
            self._cond.notify()
            full = self._queued >= self.limit
            if full:
                self._room.clear()
                self._producer_waiting = True
        if full:
            await self._room.wait()
        return True

    def end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._chunks.clear()
            self._cond.notify()

    # ---- the consumer, in its thread -------------------------------------------------

    def __iter__(self) -> "ChunkFeed":
        return self

    def __next__(self) -> bytes:
        with self._cond:
            while not (self._chunks or self._ended or self._aborted):
                self._cond.wait()
            if self._aborted:
                raise FeedAborted()
            if not self._chunks:
                raise StopIteration
            chunk = self._chunks.popleft()
            self._queued -= len(chunk)
            # Half empty before the producer goes on: fewer wake-ups of the loop.
            if self._producer_waiting and self._queued <= self.limit // 2:
                self._wake_producer()
        self._hash.update(chunk)   # outside the lock: hashlib releases the GIL meanwhile
        return chunk

    def drain(self) -> None:
        """Take (and hash) whatever the producer still puts."""
        for _ in self:
            pass

    def stop(self) -> None:
        """The consumer is done: a producer waiting for room, or putting later, is let go."""
        with self._cond:
            self._stopped = True
            self._chunks.clear()
            self._queued = 0
            if self._producer_waiting:
                self._wake_producer()

    def _wake_producer(self) -> None:
        self._producer_waiting = False
        self._loop.call_soon_threadsafe(self._room.set)

    def digest(self) -> str:
        """The digest of the chunks taken so far."""
        return "sha256:" + self._hash.hexdigest()
