"""ChunkFeed: a download handed from the event loop to a consuming thread."""

from __future__ import annotations

import asyncio
import hashlib
import threading

import pytest

from servin.images.feed import ChunkFeed, FeedAborted


async def in_thread(fn) -> object:
    return await asyncio.to_thread(fn)


def test_chunks_arrive_in_order_and_are_hashed():
    async def scenario() -> tuple[list[bytes], str]:
        feed = ChunkFeed()
        consumer = asyncio.ensure_future(in_thread(lambda: list(feed)))
        for chunk in (b"abc", b"", b"defg", b"h" * 5000):
            assert await feed.put(chunk)
        feed.end()
        return await consumer, feed.digest()

    chunks, digest = asyncio.run(scenario())
    assert chunks == [b"abc", b"", b"defg", b"h" * 5000]
    assert digest == "sha256:" + hashlib.sha256(b"abcdefg" + b"h" * 5000).hexdigest()


def test_put_waits_for_room_once_the_limit_is_queued():
    async def scenario() -> None:
        feed = ChunkFeed(limit=10)
        assert await feed.put(b"12345")          # under the limit: returns at once
        full = asyncio.ensure_future(feed.put(b"67890"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not full.done()                   # 10 bytes queued, nobody took any
        assert await in_thread(lambda: next(feed)) == b"12345"
        assert await full                        # half empty: the producer goes on
        feed.end()
        assert await in_thread(lambda: list(feed)) == [b"67890"]

    asyncio.run(scenario())


def test_a_stopped_consumer_lets_a_waiting_producer_go():
    async def scenario() -> None:
        feed = ChunkFeed(limit=4)
        waiting = asyncio.ensure_future(feed.put(b"too much"))
        await asyncio.sleep(0)
        assert not waiting.done()
        await in_thread(feed.stop)
        assert await waiting                     # the chunk it had put was queued
        assert not await feed.put(b"more")       # nothing is taken any more

    asyncio.run(scenario())


def test_abort_stops_a_waiting_consumer():
    async def scenario() -> None:
        feed = ChunkFeed()
        taken: list[bytes] = []
        failed = threading.Event()

        def consume() -> None:
            try:
                for chunk in feed:
                    taken.append(chunk)
            except FeedAborted:
                failed.set()

        consumer = asyncio.ensure_future(in_thread(consume))
        await feed.put(b"first")
        feed.abort()
        await consumer
        assert failed.is_set()
        assert taken in ([], [b"first"])   # the abort may come before the first take

    asyncio.run(scenario())


def test_drain_takes_what_is_left():
    async def scenario() -> str:
        feed = ChunkFeed()
        await feed.put(b"head")
        await feed.put(b"tail")
        feed.end()
        await in_thread(lambda: next(feed))
        await in_thread(feed.drain)
        with pytest.raises(StopIteration):
            next(feed)
        return feed.digest()

    assert asyncio.run(scenario()) == "sha256:" + hashlib.sha256(b"headtail").hexdigest()
