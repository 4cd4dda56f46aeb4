"""Stats streams: one sampler per container, shared by every client that streams it.

A sampler reads the container's usage once a second (off the event loop, one
batch of small file reads) and hands each sample to its subscribers, newest only:
a slow client skips samples rather than holding the sampler. It stops when its
last subscriber leaves. As dockerd, each stream's object carries the sample before
it (precpu_stats), so a stream's first object has none; a container that does not
run gives zeroed objects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import structlog

from servin.containers.record import Container
from servin.oci.cgroupstats import machine_memory
from servin.oci.runtime import Runtime
from servin.stats.views import Sample, docker_stats, read_sample

log = structlog.get_logger("servin.stats")

INTERVAL = 1.0


class StatsCollector:
    def __init__(self, runtime: Runtime, interval: float = INTERVAL) -> None:
        self._runtime = runtime
        self._interval = interval
        self._machine_memory = machine_memory()
        self._subscribers: dict[str, set[asyncio.Queue[Sample | None]]] = {}
        self._samplers: dict[str, asyncio.Task[None]] = {}

    async def sample(self, container: Container) -> Sample | None:
        """The container's usage now; None when it does not run."""
        if container.state.status not in ("running", "paused"):
            return None
        spec = self._runtime.spec(container.id)
        cgroups_path = (spec or {}).get("linux", {}).get("cgroupsPath")
        if not cgroups_path:
            return None  # it has just stopped
        with_networks = container.host_config.get("NetworkMode") != "host"
        return await asyncio.to_thread(read_sample, cgroups_path, container.state.pid,
                                       with_networks=with_networks)

    async def stats(self, container: Container, *, stream: bool,
                    one_shot: bool) -> AsyncIterator[dict[str, Any]]:
        """GET /containers/{id}/stats: a stream of objects, or one (primed with a previous
        sample, unless ``one_shot``)."""
        if not stream and (one_shot or container.state.status not in ("running", "paused")):
            yield self._view(container, await self.sample(container), None)
            return
        pre: Sample | None = None
        first = True
        async for sample in self._samples(container):
            if stream or not first:
                yield self._view(container, sample, pre)
                if not stream:
                    return
            pre, first = sample, False

    def _view(self, container: Container, sample: Sample | None,
              pre: Sample | None) -> dict[str, Any]:
        return docker_stats(container.name, container.id, sample, pre, self._machine_memory)

    async def _samples(self, container: Container) -> AsyncIterator[Sample | None]:
        queue: asyncio.Queue[Sample | None] = asyncio.Queue(maxsize=1)
        subscribers = self._subscribers.setdefault(container.id, set())
        subscribers.add(queue)
        if container.id not in self._samplers:
            self._samplers[container.id] = asyncio.create_task(self._run(container))
        try:
            while True:
                yield await queue.get()
        finally:
            subscribers.discard(queue)
            if not subscribers:
                self._subscribers.pop(container.id, None)
                task = self._samplers.pop(container.id, None)
                if task is not None:
                    task.cancel()

    async def _run(self, container: Container) -> None:
        while True:
            try:
                sample = await self.sample(container)
            except OSError as exc:
                log.warning("stats_read_failed", id=container.short_id, error=str(exc))
                sample = None
            for queue in self._subscribers.get(container.id, ()):
                if queue.full():
                    queue.get_nowait()  # the client is behind: it gets the newest
                queue.put_nowait(sample)
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        tasks = list(self._samplers.values())
        self._samplers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
