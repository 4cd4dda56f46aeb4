"""Work in a thread of its own: results, errors, and a cancelled caller."""

from __future__ import annotations

import asyncio
import threading

import pytest

from servin.ownthread import run_in_own_thread


def test_runs_in_a_new_thread_that_ends():
    seen = {}

    def work(value):
        seen["thread"] = threading.current_thread().ident
        return value * 2

    async def scenario():
        return await run_in_own_thread(work, 21)

    assert asyncio.run(scenario()) == 42
    assert seen["thread"] != threading.main_thread().ident


def test_errors_reach_the_caller():
    def work():
        raise OSError(5, "bad")

    with pytest.raises(OSError, match="bad"):
        asyncio.run(run_in_own_thread(work))


def test_a_cancelled_caller_waits_for_the_thread_to_finish():
    release = threading.Event()
    done = []

    def work():
        release.wait(30)
        done.append(True)

    async def scenario():
        task = asyncio.create_task(run_in_own_thread(work))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0)
        assert not task.done()  # still waiting for the thread
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert done == [True]

    asyncio.run(scenario())
