"""A container's mounts over its life: made at create, mounted at start, let go at
exit, released (anonymous volumes removed on request) at removal.

The containers manager calls this with the container's lock held; the volumes
manager owns the volumes and counts who references and who mounts each one.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Callable, Iterable

import structlog

from servin.containers.createconfig import tmpfs_options
from servin.containers.mounts import MountPoint, requested_mounts
from servin.containers.record import Container
from servin.errors import Conflict, InvalidArgument, NotFound, SystemFailure
from servin.events import EventBus
from servin.oci.rootpath import resolve_in_root
from servin.oci.spec import MountSpec
from servin.volumes.manager import VolumeManager

log = structlog.get_logger("servin.containers.mounts")


def _mount_of(path: str) -> tuple[str, list[str]]:
    """The mount point holding ``path`` and its optional fields (shared:N, master:N)."""
    best, fields = "/", []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            target = parts[4].replace("\\040", " ")
            if (path == target or path.startswith(target.rstrip("/") + "/")) \
                    and len(target) >= len(best):
                best, fields = target, parts[6:parts.index("-")]
    return best, fields


def _check_propagation(source: str, propagation: str) -> None:
    """dockerd's ensureShared / ensureSharedOrSlave: a shared or slave bind needs its
    source on a host mount that propagates."""
    if propagation not in ("shared", "rshared", "slave", "rslave"):
        return
    mount_point, fields = _mount_of(os.path.realpath(source))
    shared = any(f.startswith("shared:") for f in fields)
    slave = any(f.startswith("master:") for f in fields)
    if propagation.endswith("shared") and not shared:
        raise InvalidArgument(f"path {source} is mounted on {mount_point} but it is not a "
                              "shared mount")
    if propagation.endswith("slave") and not (shared or slave):
        raise InvalidArgument(f"path {source} is mounted on {mount_point} but it is not a "
                              "shared or slave mount")


def _prepare_bind(point: MountPoint) -> None:
    if not os.path.lexists(point.source):
        if not point.create_source:
            raise InvalidArgument(f'invalid mount config for type "bind": bind source path '
                                  f"does not exist: {point.source}")
        # As dockerd, a missing host path of a -v bind is made as a directory.
        try:
            os.makedirs(point.source, 0o755, exist_ok=True)
        except OSError as exc:
            raise SystemFailure(f"error while creating mount source path "
                                f"'{point.source}': {exc.strerror}") from None
    _check_propagation(point.source, point.propagation)


def _bind_spec(source: Path | str, point: MountPoint) -> MountSpec:
    options = ["bind" if point.non_recursive else "rbind"]
    if point.propagation:
        options.append(point.propagation)
    if not point.rw:
        options.append("ro")
    return MountSpec(point.destination, str(source), "bind", options)


async def copy_up(rootfs: Path, destination: str, data: Path) -> None:
    """Docker's copy-up: the image's content at ``destination`` into an empty volume,
    with owners, modes and links (cp -a), and the directory's own owner and mode."""
    source = resolve_in_root(rootfs, destination)
    if not source.is_dir() or any(data.iterdir()):
        return
    proc = await asyncio.create_subprocess_exec(
        "cp", "-a", "--", f"{source}/.", str(data),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise SystemFailure(f"copying image content of {destination} into the volume: "
                            f"{stderr.decode(errors='replace').strip()}")
    st = source.stat()
    await asyncio.to_thread(os.chown, data, st.st_uid, st.st_gid)
    await asyncio.to_thread(os.chmod, data, st.st_mode & 0o7777)


class ContainerMounts:
    def __init__(self, volumes: VolumeManager, events: EventBus,
                 lookup: Callable[[str], Container]) -> None:
        self._volumes = volumes
        self._events = events
        self._lookup = lookup

    async def resolve(self, container: Container) -> list[MountPoint]:
        """The new container's mount points, its volumes made and referenced."""
        requested = requested_mounts(container.config, container.host_config,
                                     lambda ref: self._lookup(ref).mounts)
        points: list[MountPoint] = []
        try:
            for mount in requested:
                point = mount.point
                if point.type == "volume" and mount.volume is None:
                    self._volumes.reference(point.name, container.id)  # from --volumes-from
                elif point.type == "volume":
                    volume = await self._volumes.create(
                        point.name or None, driver=mount.volume.driver or "local",
                        driver_opts=mount.volume.options, labels=mount.volume.labels,
                        reference=container.id)
                    point.name, point.driver = volume.name, volume.driver
                    point.source = str(self._volumes.data_path(volume.name))
                points.append(point)
        except BaseException:
            await self.release(container.id, points, remove_volumes=True)
            raise
        return points

    async def release(self, container_id: str, points: Iterable[MountPoint], *,
                      remove_volumes: bool) -> None:
        """Drop the container's references; with ``remove_volumes`` its anonymous
        volumes go too unless another container uses them (dockerd's rm -v)."""
        for point in points:
            if point.type != "volume":
                continue
            self._volumes.release(point.name, container_id)
            if remove_volumes and point.anonymous:
                try:
                    await self._volumes.remove(point.name)
                except (Conflict, NotFound):
                    pass

    async def setup(self, container: Container, rootfs: Path) -> list[MountSpec]:
        """Mount the container's volumes (copy-up at its first start) and make missing
        bind sources: the mounts of its OCI spec. ``teardown`` undoes it."""
        specs = []
        first_start = not container.state.started_ns
        for point in container.mounts:
            if point.type == "bind":
                await asyncio.to_thread(_prepare_bind, point)
                specs.append(_bind_spec(point.source, point))
            elif point.type == "volume":
                data = await self._volumes.mount(point.name, container.id)
                self._events.publish("volume", "mount", point.name, container=container.id,
                                     destination=point.destination, driver=point.driver,
                                     propagation=point.propagation,
                                     **{"read/write": str(point.rw).lower()})
                if point.copy_data and first_start:
                    await copy_up(rootfs, point.destination, data)
                specs.append(_bind_spec(data, point))
            else:
                specs.append(MountSpec(point.destination, "tmpfs", "tmpfs",
                                       tmpfs_options(point.tmpfs_options)))
        return specs

    async def teardown(self, container: Container) -> None:
        for point in container.mounts:
            if point.type == "volume" and await self._volumes.unmount(point.name, container.id):
                self._events.publish("volume", "unmount", point.name, container=container.id,
                                     driver=point.driver)

    async def restore(self, containers: Iterable[Container]) -> None:
        """After a daemon restart: references of every container, mounts of the running
        ones; what no running container holds any more is unmounted."""
        for container in containers:
            for point in container.mounts:
                if point.type != "volume":
                    continue
                try:
                    self._volumes.reference(point.name, container.id)
                except NotFound:
                    log.warning("volume_missing", id=container.short_id, volume=point.name)
                    continue
                if container.state.status in ("running", "paused"):
                    self._volumes.adopt(point.name, container.id)
        await self._volumes.unmount_unused()
