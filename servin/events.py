"""The in-process event bus managers publish on (Docker's events model)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs


@attrs.frozen
class Event:
    type: str            # container, image, network, volume, daemon
    action: str          # create, start, die, destroy, pull, ...
    actor_id: str
    attributes: dict[str, str]
    time_nano: int

    def to_docker(self) -> dict[str, Any]:
        """Docker's JSON event shape (with the legacy status/id/from fields)."""
        seconds = self.time_nano // 1_000_000_000
        out: dict[str, Any] = {
            "Type": self.type, "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": "local", "time": seconds, "timeNano": self.time_nano,
        }
        if self.type == "container":
            out.update(status=self.action, id=self.actor_id,
                       **({"from": self.attributes["image"]} if "image" in self.attributes else {}))
        elif self.type == "image":
            out.update(status=self.action, id=self.actor_id)
        return out


class EventBus:
    """Fan-out of events to subscribers, each with a bounded queue."""

    def __init__(self, history: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._history: list[Event] = []
        self._history_size = history

    def publish(self, type: str, action: str, actor_id: str, /, **attributes: Any) -> Event:
        event = Event(type, action, actor_id, {k: str(v) for k, v in attributes.items()},
                      time.time_ns())
        self._history.append(event)
        del self._history[:-self._history_size]
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # a slow subscriber loses its oldest event, not the daemon
            queue.put_nowait(event)
        return event

    def subscribe(self, maxsize: int = 1024) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._subscribers.discard(queue)

    @property
    def listener_count(self) -> int:
        return len(self._subscribers)

    def history(self) -> list[Event]:
        return list(self._history)
