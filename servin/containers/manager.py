"""SCAFFOLD, replaced by the containers work."""
from __future__ import annotations


class ContainerManager:
    def __init__(self, config, images, runtime, events) -> None:
        self.config = config

    async def restore(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def state_counts(self) -> dict[str, int]:
        return {"running": 0, "paused": 0, "stopped": 0}
