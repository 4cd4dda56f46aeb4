"""SCAFFOLD, replaced by the images work: the interface the engine relies on."""
from __future__ import annotations
from pathlib import Path
from servin.events import EventBus


class ImageManager:
    def __init__(self, data_root: Path, *, mirrors: list[str], insecure: list[str],
                 events: EventBus) -> None:
        self.data_root = data_root
        self.mirrors = mirrors
        self.insecure = insecure
        self.events = events

    async def load(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def count(self) -> int:
        return 0
