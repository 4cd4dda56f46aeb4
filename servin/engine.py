"""The engine: every manager, wired together, with its start-up and shutdown."""

from __future__ import annotations

import asyncio

import structlog

from servin.config import DaemonConfig
from servin.containers.manager import ContainerManager
from servin.events import EventBus
from servin.images.manager import ImageManager
from servin.networks.manager import NetworkManager
from servin.oci.runtime import Runtime
from servin.volumes.manager import VolumeManager

log = structlog.get_logger("servin.engine")


class Engine:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.events = EventBus()
        self.runtime = Runtime(config.exec_root)
        self.images = ImageManager(config.data_root, mirrors=config.registry_mirrors,
                                   insecure=config.insecure_registries, events=self.events)
        self.networks = NetworkManager(config, self.events)
        self.volumes = VolumeManager(config.data_root, self.events)
        self.containers = ContainerManager(config, self.images, self.runtime, self.networks,
                                           self.events, self.volumes)

    async def start(self) -> None:
        for path in (self.config.data_root, self.config.exec_root):
            path.mkdir(parents=True, exist_ok=True, mode=0o711)
        # Independent of each other (the networks' wait on iptables the longest); the
        # containers need all three.
        await asyncio.gather(self.images.load(), self.networks.load(), self.volumes.load())
        await self.containers.restore()
        log.info("engine_started", data_root=str(self.config.data_root))

    async def shutdown(self) -> None:
        await self.containers.shutdown()
        await self.networks.close()
        await self.images.close()
        log.info("engine_stopped")
