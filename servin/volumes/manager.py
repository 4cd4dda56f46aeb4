"""The volumes manager: create, inspect, list, remove, prune, and mounting for containers.

Volumes are records under ``<data-root>/volumes/<name>`` (``volume.json`` beside
``_data``). A volume's record is written last when it is made and removed first when
it goes, so after a crash a directory without one is a half-made or half-removed
volume that ``load`` collects. References (the containers that use a volume) live in
memory: the containers manager takes them again from its records at restore.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import structlog

from servin.containers.sizes import directory_size
from servin.errors import Conflict, NotFound, ServinError, SystemFailure
from servin.events import EventBus
from servin.filters import Filters, bool_filter, check_keys, labels_match
from servin.mounts import is_mountpoint
from servin.store import remove_stale_temps
from servin.volumes import local
from servin.volumes.record import ANONYMOUS_LABEL, RECORD_FILE, Volume, load_record, save_record
from servin.volumes.views import UsageData, volume_view

log = structlog.get_logger("servin.volumes")

LIST_FILTERS = ("dangling", "driver", "label", "name")
PRUNE_FILTERS = ("label", "label!", "all")


def _matches(pattern: str, value: str) -> bool:
    """filters.Args.Match: equal, or the value holds the pattern as a regular expression."""
    try:
        return pattern == value or re.search(pattern, value) is not None
    except re.error:
        return False


class VolumeManager:
    def __init__(self, data_root: Path, events: EventBus) -> None:
        self.root = data_root / "volumes"
        self._events = events
        self._volumes: dict[str, Volume] = {}
        self._refs: dict[str, set[str]] = {}
        # Containers running with each mounted (driver option) volume.
        self._active: dict[str, set[str]] = {}
        self._lock = asyncio.Lock()

    # ----------------------------------------------------------------- state

    async def load(self) -> None:
        """Read the records; collect what a crash left half-made or half-removed."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o701)
        for directory in sorted(self.root.iterdir()):
            if not directory.is_dir():
                continue
            remove_stale_temps(directory)
            if not (directory / RECORD_FILE).exists():
                log.info("volume_collected", name=directory.name)
                await self._discard(directory)
                continue
            try:
                volume = await asyncio.to_thread(load_record, directory)
            except (ValueError, TypeError, KeyError) as exc:
                log.error("volume_record_unreadable", name=directory.name, error=str(exc))
                continue
            self._volumes[volume.name] = volume
        log.info("volumes_loaded", count=len(self._volumes))

    async def unmount_unused(self) -> None:
        """After a restart: unmount the volumes no running container holds any more."""
        for name in self._volumes:
            if not self._active.get(name):
                await local.unmount_data(self.data_path(name))

    def path(self, name: str) -> Path:
        return self.root / name

    def data_path(self, name: str) -> Path:
        return self.root / name / local.DATA_DIR

    async def _discard(self, directory: Path) -> None:
        data = directory / local.DATA_DIR
        await local.unmount_data(data)
        if is_mountpoint(data):
            # Never delete through a mount: it may be a host directory bound there.
            raise SystemFailure(f"volume data {data} is still mounted")
        await asyncio.to_thread(shutil.rmtree, directory, True)

    # ---------------------------------------------------------------- lookup

    def get(self, name: str) -> Volume:
        volume = self._volumes.get(name)
        if volume is None:
            raise NotFound(f"get {name}: no such volume")
        return volume

    def refs(self, name: str) -> set[str]:
        return set(self._refs.get(name, ()))

    def reference(self, name: str, container_id: str) -> None:
        self.get(name)
        self._refs.setdefault(name, set()).add(container_id)

    def release(self, name: str, container_id: str) -> None:
        users = self._refs.get(name)
        if users is not None:
            users.discard(container_id)
            if not users:
                del self._refs[name]

    # ---------------------------------------------------------------- create

    async def create(self, name: str | None = None, *, driver: str = local.DRIVER,
                     driver_opts: dict[str, str] | None = None,
                     labels: dict[str, str] | None = None,
                     reference: str | None = None) -> Volume:
        """A new volume, or the existing one of that name (as dockerd). Without a name
        it gets a random one and the anonymous label. ``reference`` is the container
        that will use it, referenced before any other request can remove it."""
        if not name:
            name = secrets.token_hex(32)
            labels = {**(labels or {}), ANONYMOUS_LABEL: ""}
        try:
            async with self._lock:
                volume = self._volumes.get(name)
                if volume is None:
                    volume = await self._create(name, driver or local.DRIVER,
                                                driver_opts, labels)
                elif driver and driver != volume.driver:
                    raise Conflict(f"volume name must be unique: {name} already exists with "
                                   f"driver {volume.driver}")
                if reference:
                    self._refs.setdefault(name, set()).add(reference)
        except ServinError as exc:
            raise type(exc)(f"create {name}: {exc.message}", **exc.details) from None
        return volume

    async def _create(self, name: str, driver: str, driver_opts: dict[str, str] | None,
                      labels: dict[str, str] | None) -> Volume:
        if driver != local.DRIVER:
            raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not '
                           "found")
        local.check_name(name)
        local.check_options(driver_opts or {})
        volume = Volume(name=name, created_ns=time.time_ns(), driver=driver, labels=labels,
                        options=driver_opts)
        directory = self.path(name)
        try:
            await asyncio.to_thread(self.data_path(name).mkdir, 0o755, True)
            directory.chmod(0o701)
            # The record last: until it is there, load() takes the directory for debris.
            await asyncio.to_thread(save_record, directory, volume)
        except OSError as exc:
            await asyncio.to_thread(shutil.rmtree, directory, True)
            raise SystemFailure(f"error while creating volume path '{directory}': "
                                f"{exc.strerror}") from None
        self._volumes[name] = volume
        self._events.publish("volume", "create", name, driver=driver)
        log.info("volume_created", name=name, anonymous=volume.anonymous)
        return volume

    # ---------------------------------------------------------------- remove

    async def remove(self, name: str, *, force: bool = False) -> None:
        """DELETE /volumes/{name}: 409 while a container uses it. As dockerd, ``force``
        only makes an unknown name no error; it does not take a volume from its users."""
        async with self._lock:
            volume = self._volumes.get(name)
            if volume is None:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = self._refs.get(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(sorted(users))}]")
            await self._remove(volume)

    async def _remove(self, volume: Volume) -> None:
        directory = self.path(volume.name)
        await local.unmount_data(self.data_path(volume.name))
        # The record first: a crash from here on leaves debris that load() collects.
        (directory / RECORD_FILE).unlink(missing_ok=True)
        del self._volumes[volume.name]
        self._active.pop(volume.name, None)
        await self._discard(directory)
        self._events.publish("volume", "destroy", volume.name, driver=volume.driver)
        log.info("volume_removed", name=volume.name)

    async def prune(self, filters: Filters) -> tuple[list[str], int]:
        """Remove unused volumes: the anonymous ones, or every one with ``all=true``
        (Docker 23's rule; 20.10 removed named ones too), that pass the label filters."""
        check_keys(filters, PRUNE_FILTERS)
        every = bool_filter(filters, "all") or False
        deleted: list[str] = []
        reclaimed = 0
        async with self._lock:
            for volume in list(self._volumes.values()):
                if self._refs.get(volume.name) or not (every or volume.anonymous):
                    continue
                if not labels_match(volume.labels or {}, filters):
                    continue
                size = await self.size(volume.name)
                await self._remove(volume)
                deleted.append(volume.name)
                reclaimed += size
        self._events.publish("volume", "prune", "", reclaimed=reclaimed)
        return deleted, reclaimed

    # ------------------------------------------------------------------ list

    def list(self, filters: Filters) -> list[Volume]:
        check_keys(filters, LIST_FILTERS)
        dangling = bool_filter(filters, "dangling")
        out = []
        for volume in sorted(self._volumes.values(), key=lambda v: v.name):
            if dangling is not None and dangling == bool(self._refs.get(volume.name)):
                continue
            if filters.get("driver") and not any(_matches(d, volume.driver)
                                                 for d in filters["driver"]):
                continue
            if filters.get("name") and not any(_matches(n, volume.name)
                                               for n in filters["name"]):
                continue
            if not labels_match(volume.labels or {}, {"label": filters.get("label", [])}):
                continue
            out.append(volume)
        return out

    async def size(self, name: str) -> int:
        return await asyncio.to_thread(directory_size, self.data_path(name))

    async def usage(self, name: str) -> UsageData:
        return UsageData(size=await self.size(name), ref_count=len(self._refs.get(name, ())))

    def view(self, volume: Volume, usage: UsageData | None = None) -> dict[str, Any]:
        return volume_view(volume, self.data_path(volume.name), usage)

    # ----------------------------------------------------------------- mount

    async def mount(self, name: str, container_id: str) -> Path:
        """The volume's data directory for a starting container, its filesystem mounted
        there first if its driver options name one (once, however many use it)."""
        async with self._lock:
            volume = self.get(name)
            data = self.data_path(name)
            users = self._active.setdefault(name, set())
            if local.needs_mount(volume.options) and not is_mountpoint(data):
                try:
                    await local.mount_data(volume.options or {}, data)
                except SystemFailure as exc:
                    raise SystemFailure(f"error while mounting volume '{data}': failed to "
                                        f"mount local volume: {exc.message}") from None
            users.add(container_id)
            return data

    async def unmount(self, name: str, container_id: str) -> bool:
        """Let go of a container's use; False if it held none."""
        async with self._lock:
            users = self._active.get(name)
            if users is None or container_id not in users:
                return False
            users.discard(container_id)
            if not users:
                del self._active[name]
                await local.unmount_data(self.data_path(name))
            return True

    def adopt(self, name: str, container_id: str) -> None:
        """A container that kept running over a daemon restart still holds its mount."""
        if name in self._volumes:
            self._active.setdefault(name, set()).add(container_id)
