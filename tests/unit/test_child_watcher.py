"""servind reaps its children (conmon, runc) through pidfds, not a thread per child."""

from __future__ import annotations

import asyncio
import sys
import threading
import warnings

import pytest

from servin.daemon import watch_children_by_pidfd


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="pidfds are asyncio's own default")
def test_children_are_reaped_without_a_thread_each():
    async def scenario() -> tuple[int, int, list[int]]:
        watch_children_by_pidfd(asyncio.get_running_loop())
        before = threading.active_count()
        children = [await asyncio.create_subprocess_exec("sh", "-c", f"sleep 0.2; exit {n}")
                    for n in range(5)]
        during = threading.active_count()
        return before, during, [await child.wait() for child in children]

    try:
        before, during, codes = asyncio.run(scenario())
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_child_watcher(None)  # the next loop of this process: the default
    assert codes == [0, 1, 2, 3, 4]
    assert during == before
