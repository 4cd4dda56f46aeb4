"""Clean-up that a cancellation cannot cut short."""

from __future__ import annotations

import asyncio
from typing import Awaitable


async def run_to_end(cleanup: Awaitable[None]) -> None:
    """Await ``cleanup`` until it is done, even if the caller is cancelled meanwhile.

    For ``except``/``finally`` blocks that re-raise: a task cancelled while it cleans
    up after a failure still ends with an exception, and leaves nothing half removed.
    """
    task = asyncio.ensure_future(cleanup)
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            continue
    task.result()
