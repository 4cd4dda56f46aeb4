"""Waiting in tests for what the daemon does in its own time."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 20.0, interval: float = 0.1,
               what: str = "the condition") -> T:
    """``check()``'s first truthy answer, asked every ``interval`` seconds; an
    AssertionError naming ``what`` when none comes within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (answer := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(interval)
    return answer
