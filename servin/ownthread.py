"""Blocking work that changes per-thread kernel state, in a thread that ends with it.

A thread may leave its working directory (after ``unshare(CLONE_FS)``) or its
network namespace (``setns``, ``unshare(CLONE_NEWNET)``) for a task; a pool thread
would keep that state for the next task, so such work runs in a thread of its own,
which ends with the task. A thread costs far less than the fork it replaces.
"""

from __future__ import annotations

import _thread
import asyncio
from typing import Callable, TypeVar

T = TypeVar("T")


def _settle(future: asyncio.Future, result: object, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def run_in_own_thread(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a new thread. A cancelled caller still waits for the thread to
    end, so its clean-up never runs before the thread's work is done."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def target() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the awaiting task, raised there
            loop.call_soon_threadsafe(_settle, future, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    # Not threading.Thread: its start() waits until the new thread holds the GIL, which
    # stalls the event loop when other threads keep the GIL busy.
    _thread.start_new_thread(target, ())
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        if not future.cancelled():
            future.exception()  # retrieved: the cancellation is what the caller sees
        raise
