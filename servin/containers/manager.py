"""The containers manager: create, start, wait, attach, logs, remove, list, inspect.

It owns the container records (persisted under ``<data-root>/containers/<id>``),
one lock per container for state changes, and one monitor task per running
container that waits for conmon to report the exit. runc, through conmon, is the
source of truth for whether a container runs: at start-up the records are
reconciled with it, so containers that kept running while the daemon was down are
adopted again (live restore) and the exits that happened meanwhile are recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import shutil
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import structlog

from servin.config import DaemonConfig
from servin.containers import views
from servin.containers.createconfig import (check_resources, command_of, merge_image_config,
                                            normalize_config, normalize_host_config,
                                            parse_signal)
from servin.containers.etcfiles import etc_file_options, write_etc_files
from servin.containers.filters import filter_containers
from servin.containers.health import HealthMonitor, health_status
from servin.containers.logconfig import log_attributes, log_policy
from servin.containers.logrotate import LogRotator
from servin.containers.names import generate_name, validate_name
from servin.containers.networking import ContainerNetworking
from servin.containers.record import RECORD_FILE, Container, load_record, save_record
from servin.containers.restartpolicy import (RestartTracker, normalize_policy,
                                             restarts_at_daemon_start)
from servin.containers.sizes import ContainerSizes, container_sizes
from servin.containers.specparams import CGROUP_PARENT, resources, spec_params
from servin.containers.volumemounts import ContainerMounts
from servin.errors import (Conflict, InvalidArgument, NotFound, NotModified, NotSupported,
                           ServinError)
from servin.events import EventBus
from servin.exec.manager import ExecManager
from servin.filters import Filters, check_keys, labels_match, timestamp_filter_ns
from servin.images.manager import ImageManager
from servin.mounts import is_mountpoint, mount, unmount
from servin.networks.manager import NetworkManager
from servin.oci.cgroups import host_cgroup_facts, remove_cgroup
from servin.oci.exec import ExecRuntime
from servin.stats.collector import StatsCollector
from servin.oci.logfile import BlockTransform, read_log
from servin.oci.runtime import AttachSocket, ExitStatus, Runtime
from servin.oci.spec import build_spec
from servin.oci.users import resolve_user
from servin.store import atomic_write_json
from servin.volumes.manager import VolumeManager

log = structlog.get_logger("servin.containers")

T = TypeVar("T")

WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
DEFAULT_STOP_TIMEOUT = 10
# What POST /containers/{id}/update may change besides RestartPolicy (dockerd's Resources).
UPDATABLE_RESOURCES = ("BlkioWeight", "CpuShares", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod",
                       "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Memory", "MemorySwap",
                       "MemoryReservation", "NanoCpus", "PidsLimit", "KernelMemory",
                       "OomKillDisable")


def _exit_code_for(message: str) -> int:
    """The exit code dockerd records when the runtime cannot start the process."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered:
        return 126
    return 128


class _Waiters:
    """Futures resolved with a container's exit code on its next exit or its removal."""

    def __init__(self) -> None:
        self.next_exit: list[asyncio.Future[int]] = []
        self.removed: list[asyncio.Future[int]] = []

    @staticmethod
    def resolve(futures: list[asyncio.Future[int]], code: int) -> None:
        for future in futures:
            if not future.done():
                future.set_result(code)
        futures.clear()


class ContainerManager:
    def __init__(self, config: DaemonConfig, images: ImageManager, runtime: Runtime,
                 networks: NetworkManager, events: EventBus, volumes: VolumeManager) -> None:
        self._config = config
        self._images = images
        self._runtime = runtime
        self._events = events
        self._root = config.data_root / "containers"
        self._bundles = config.exec_root / "bundles"
        self._containers: dict[str, Container] = {}
        self._names: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._monitors: dict[str, asyncio.Task[None]] = {}
        self._waiters: dict[str, _Waiters] = {}
        self._stopped: dict[str, asyncio.Event] = {}
        self._pending_attach: dict[str, list[asyncio.Future[AttachSocket]]] = {}
        self._rootfs_users: dict[str, int] = {}
        self._trackers: dict[str, RestartTracker] = {}
        self._restarts: dict[str, asyncio.Task[None]] = {}
        # List entries without their time-dependent Status, rebuilt after each change.
        self._summaries: dict[str, dict[str, Any]] = {}
        # Counts the changes to what lists show (added, changed, removed containers).
        self.generation = 0
        self._shutting_down = False
        self._log_rotator = LogRotator(runtime)
        self._networks = networks
        self._net = ContainerNetworking(networks, self.get)
        self.execs = ExecManager(ExecRuntime(runtime), self, self._root)
        self._health = HealthMonitor(self.execs, self._persist, self.publish)
        self.stats = StatsCollector(runtime)
        self._mounts = ContainerMounts(volumes, events, self.get)

    # ----------------------------------------------------------------- lookup

    def get(self, ref: str) -> Container:
        """By full id, name (with or without '/'), or unique id prefix, as dockerd."""
        if ref in self._containers:
            return self._containers[ref]
        name = ref.lstrip("/")
        if name in self._names:
            return self._containers[self._names[name]]
        if ref:
            matches = [cid for cid in self._containers if cid.startswith(ref)]
            if len(matches) == 1:
                return self._containers[matches[0]]
            if len(matches) > 1:
                raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def state_counts(self) -> dict[str, int]:
        counts = {"running": 0, "paused": 0, "stopped": 0}
        for container in self._containers.values():
            status = container.state.status
            key = status if status in ("running", "paused") else "stopped"
            counts[key] += 1
        return counts

    def _dir(self, container_id: str) -> Path:
        return self._root / container_id

    def files(self, container_id: str) -> views.ContainerFiles:
        """Where the container's own files live on the host."""
        directory = self._dir(container_id)
        return views.ContainerFiles(hostname=str(directory / "hostname"),
                                    hosts=str(directory / "hosts"),
                                    resolv_conf=str(directory / "resolv.conf"),
                                    log=str(directory / "container.log"),
                                    shm=str(directory / "mounts" / "shm"))

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self._locks.setdefault(container_id, asyncio.Lock())

    def _image_name(self, container: Container) -> str:
        return container.config.get("Image") or container.image_id

    # ------------------------------------------------------------------ create

    async def create(self, body: dict[str, Any],
                     name: str | None) -> tuple[Container, list[str]]:
        """A new container and the warnings for the client (limits the host cannot apply)."""
        config = normalize_config(body)
        warnings: list[str] = []
        host_config = normalize_host_config(body.get("HostConfig"), warnings=warnings)
        endpoints = self._net.endpoints_at_create(host_config, body.get("NetworkingConfig"))
        image = self._images.resolve(config["Image"])
        config = merge_image_config(config, image.config.get("config") or {})
        path, args = command_of(config)

        container_id = secrets.token_hex(32)
        name = self._reserve_name(container_id, name)
        host_network = host_config["NetworkMode"] == "host"
        if not config.get("Hostname"):
            config["Hostname"] = socket.gethostname() if host_network else container_id[:12]
        container = Container(id=container_id, name=name, created_ns=time.time_ns(),
                              image_id=image.id, config=config, host_config=host_config,
                              path=path, args=args, endpoints=endpoints)
        directory = self._dir(container_id)
        try:
            container.mounts = await self._mounts.resolve(container)
            directory.mkdir(parents=True, mode=0o710)
            await self._images.layers.create_rw_layer(container_id, image.chain_id)
            await asyncio.to_thread(write_etc_files, directory, hostname=config["Hostname"],
                                    host_network=host_network,
                                    **etc_file_options(host_config))
            # The record is written last: a crash before this leaves only an orphan
            # that restore() collects, never a half-made container.
            await asyncio.to_thread(save_record, directory, container)
        except BaseException:
            self._names.pop(name, None)
            await self._mounts.release(container_id, container.mounts, remove_volumes=True)
            await self._discard_files(container_id)
            raise
        self._containers[container_id] = container
        self._changed(container_id)
        self._waiters[container_id] = _Waiters()
        self.publish(container, "create")
        log.info("container_created", id=container.short_id, name=name, image=config["Image"])
        return container, warnings

    def _reserve_name(self, container_id: str, requested: str | None) -> str:
        if requested:
            name = validate_name(requested)
            if name in self._names:
                holder = self._names[name]
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                               f'container "{holder}". You have to remove (or rename) that '
                               f'container to be able to reuse that name.')
        else:
            attempt = 0
            name = generate_name()
            while name in self._names:
                attempt += 1
                name = generate_name(attempt)
        self._names[name] = container_id
        return name

    def publish(self, container: Container, action: str, **extra: Any) -> None:
        """A container event with dockerd's attributes (labels, image, name)."""
        self._events.publish("container", action, container.id,
                             **self._attributes(container, **extra))

    def _attributes(self, container: Container, **extra: Any) -> dict[str, Any]:
        labels = container.config.get("Labels") or {}
        return {**labels, "image": self._image_name(container), "name": container.name,
                **extra}

    async def _persist(self, container: Container) -> None:
        # Every change to what the list shows is persisted: the one place to note it
        # (before the write, so that a list meanwhile already shows the change).
        self._changed(container.id)
        await asyncio.to_thread(save_record, self._dir(container.id), container)

    def _changed(self, container_id: str) -> None:
        self._summaries.pop(container_id, None)
        self.generation += 1

    # ------------------------------------------------------------------- start

    async def start(self, ref: str) -> None:
        container = self.get(ref)
        await self._cancel_restart(container)
        async with self._lock(container.id):
            status = container.state.status
            if status in ("running", "paused"):
                raise NotModified("container already started")
            if status in ("removing", "dead"):
                raise Conflict(f"cannot start container {container.id}: it is {status}")
            # A start by hand begins a new run: restart count and back-off start over.
            container.manually_stopped = False
            container.restart_count = 0
            self._trackers.pop(container.id, None)
            try:
                await self._start_locked(container)
                return
            except ServinError as exc:
                error = exc
        # As dockerd, a container that was to be removed at exit is removed when it
        # cannot start, so a client's wait(removed) returns.
        if container.host_config.get("AutoRemove"):
            await self.remove(container.id, force=True, volumes=True)
        raise error

    async def _start_locked(self, container: Container) -> None:
        layers = self._images.layers
        rootfs = await layers.mount_rw_layer(container.id)
        bundle = self._bundles / container.id
        log_path = Path(self.files(container.id).log)
        policy = log_policy(container.host_config["LogConfig"])
        try:
            await self._mount_shareable_shm(container)
            network, etc_files = await self._net.attach(container, self.files(container.id),
                                                        self.files)
            user = await asyncio.to_thread(resolve_user, rootfs, container.config.get("User") or "",
                                           container.host_config.get("GroupAdd"))
            volume_mounts = await self._mounts.setup(container, rootfs)
            spec = build_spec(spec_params(container, rootfs, user, self.files(container.id),
                                          peers=self, network=network, etc_files=etc_files,
                                          volume_mounts=volume_mounts))
            # The bundle is made again at each start: no need to wait for the disk.
            await asyncio.to_thread(atomic_write_json, bundle / "config.json", spec,
                                    durable=False)
            # conmon runs `runc create`; the process waits in runc's "created" state
            # until `runc start`, so attaches made before start miss no output.
            pid = await self._runtime.create(
                container.id, bundle, log_path=log_path if policy.keeps_log else None,
                terminal=container.tty, stdin=bool(container.config.get("OpenStdin")),
                # Without StdinOnce the container's stdin outlives its first attach.
                leave_stdin_open=not container.config.get("StdinOnce"))
        except ServinError as exc:
            raise await self._fail_start(container, exc) from None
        await self._hand_over_attaches(container)
        started_ns = time.time_ns()
        try:
            await self._runtime.start(container.id)
        except ServinError as exc:
            await self._runtime.delete(container.id, force=True)
            raise await self._fail_start(container, exc) from None
        container.state.status = "running"
        container.state.pid = pid
        container.state.exit_code = 0
        container.state.error = ""
        container.state.oom_killed = False
        container.state.started_ns = started_ns
        self._health.start(container)
        await self._persist(container)
        self._stopped[container.id] = asyncio.Event()
        self._monitors[container.id] = asyncio.create_task(self._monitor(container))
        self._log_rotator.start(container.id, log_path, policy)
        self.publish(container, "start")
        log.info("container_started", id=container.short_id, pid=pid)

    async def _mount_shareable_shm(self, container: Container) -> None:
        """A shareable-IPC container's /dev/shm: a tmpfs on the host, that joiners bind too."""
        if container.host_config.get("IpcMode") != "shareable":
            return
        shm = Path(self.files(container.id).shm)
        if is_mountpoint(shm):
            return
        shm.mkdir(parents=True, exist_ok=True)
        await mount("tmpfs", "shm", shm, "nosuid,nodev,noexec,mode=1777,"
                    f"size={container.host_config['ShmSize']}")

    async def _release_host_side(self, container: Container) -> None:
        """What a container that no longer runs leaves on the host: its rootfs mount,
        shm, volume mounts and network sandbox."""
        await self._release_rootfs(container)
        await self._unmount_shm(container)
        await self._mounts.teardown(container)
        await self._net.detach(container)

    async def _unmount_shm(self, container: Container) -> None:
        shm = Path(self.files(container.id).shm)
        if is_mountpoint(shm):
            await unmount(shm)

    async def _fail_start(self, container: Container, exc: ServinError) -> ServinError:
        """Record why the start failed, as dockerd does, and leave nothing mounted.

        Returns the error for the client: a process that cannot be found or run is the
        request's fault (400, exit code 127 or 126), anything else the engine's.
        """
        container.state.error = exc.message
        container.state.exit_code = _exit_code_for(exc.message)
        await self._release_host_side(container)
        await asyncio.to_thread(shutil.rmtree, self._bundles / container.id, True)
        await self._persist(container)
        for future in self._pending_attach.pop(container.id, []):
            if not future.done():
                future.cancel()
        self.publish(container, "die", exitCode=container.state.exit_code)
        if container.state.exit_code in (126, 127):
            return InvalidArgument(exc.message, **exc.details)
        return exc

    async def _hand_over_attaches(self, container: Container) -> None:
        for future in self._pending_attach.pop(container.id, []):
            if future.done():
                continue
            try:
                future.set_result(await self._runtime.attach(container.id))
            except ServinError as exc:
                future.set_exception(exc)

    # ---------------------------------------------------------------- monitor

    async def _monitor(self, container: Container) -> None:
        """Wait for the container's exit, record it, then restart or clean up after it."""
        status = await self._runtime.wait_exit(container.id)
        async with self._lock(container.id):
            await self._record_exit(container, status)
            self._monitors.pop(container.id, None)
            if await self._schedule_restart(container):
                return
        if container.host_config.get("AutoRemove"):
            try:
                await self.remove(container.id, force=True, volumes=True)
            except NotFound:
                pass  # removed meanwhile by a client's DELETE

    async def _schedule_restart(self, container: Container) -> bool:
        """Apply the restart policy to an exit just recorded; True if a restart is due."""
        if container.manually_stopped or self._shutting_down:
            return False
        tracker = self._trackers.setdefault(container.id, RestartTracker())
        ran_for = (container.state.finished_ns - container.state.started_ns) / 1e9
        delay = tracker.next_delay(container.host_config["RestartPolicy"],
                                   exit_code=container.state.exit_code, manually_stopped=False,
                                   ran_for=ran_for, restart_count=container.restart_count)
        if delay is None:
            return False
        container.state.status = "restarting"
        await self._persist(container)
        self._restarts[container.id] = asyncio.create_task(self._restart_after(container, delay))
        return True

    async def _restart_after(self, container: Container, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self._lock(container.id):
            self._restarts.pop(container.id, None)
            if container.state.status != "restarting":
                return
            if container.manually_stopped:  # stopped or killed while we waited for the lock
                container.state.status = "exited"
                await self._persist(container)
                return
            container.restart_count += 1
            try:
                await self._start_locked(container)
            except ServinError as exc:
                log.warning("restart_failed", id=container.short_id, error=exc.message)
                container.state.status = "exited"
                await self._persist(container)

    async def _cancel_restart(self, container: Container) -> bool:
        """Call off a pending restart; the container stays exited. True if there was one."""
        task = self._restarts.pop(container.id, None)
        if task is None:
            return False
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with self._lock(container.id):
            if container.state.status == "restarting":
                container.state.status = "exited"
                await self._persist(container)
        return True

    async def _record_exit(self, container: Container, status: ExitStatus) -> None:
        container.state.status = "exited"
        container.state.pid = 0
        container.state.exit_code = status.exit_code
        container.state.oom_killed = status.oom_killed
        await self._health.stop(container)
        # The exit file's mtime comes from the kernel's coarse clock: never before the start.
        container.state.finished_ns = max(int(status.finished_at.timestamp() * 1e9),
                                          container.state.started_ns)
        # Once conmon is gone the log is complete; runc's clean-up can come after the
        # client has its answer (the host's, mounts and network, cannot).
        await self._runtime.monitor_gone(container.id)
        await self._release_host_side(container)
        await self._log_rotator.exited(container.id, Path(self.files(container.id).log),
                                       log_policy(container.host_config["LogConfig"]))
        await asyncio.to_thread(shutil.rmtree, self._bundles / container.id, True)
        await self._persist(container)
        self._runtime.delete_soon(container.id)
        if status.oom_killed:
            self.publish(container, "oom")
        self.publish(container, "die", exitCode=status.exit_code)
        log.info("container_exited", id=container.short_id, exit_code=status.exit_code)
        waiters = self._waiters.get(container.id)
        if waiters:
            _Waiters.resolve(waiters.next_exit, status.exit_code)
        stopped = self._stopped.get(container.id)
        if stopped:
            stopped.set()

    # -------------------------------------------------------------------- wait

    def waiter(self, container: Container, condition: str) -> asyncio.Future[int]:
        """Register a wait now (before the caller starts the container) and return it;
        it resolves with the exit code, as POST /containers/{id}/wait."""
        if condition not in WAIT_CONDITIONS:
            raise InvalidArgument(f"invalid condition: {condition!r}")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        # Running too while its monitor still records the exit and releases its mounts.
        running = (container.state.status in ("running", "paused", "restarting")
                   or container.id in self._monitors)
        if condition == "not-running" and not running:
            future.set_result(container.state.exit_code)
        elif condition == "removed":
            self._waiters[container.id].removed.append(future)
        else:
            self._waiters[container.id].next_exit.append(future)
        return future

    # ------------------------------------------------------------------ remove

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        container = self.get(ref)
        if container.state.status in ("running", "paused", "restarting"):
            if not force:
                raise Conflict(f"You cannot remove a running container {container.id}. Stop "
                               "the container before attempting removal or force remove")
            await self._mark_manually_stopped(container)
            if not await self._cancel_restart(container):
                await self._kill_and_wait(container, self._monitors.get(container.id))
        async with self._lock(container.id):
            if container.id not in self._containers:
                return  # auto-removed as it exited: gone, as asked
            if container.state.status == "removing":
                raise Conflict(f"removal of container {container.id} is already in progress")
            previous = container.state.status
            container.state.status = "removing"
            self._changed(container.id)
            # Dropping the record first makes a crash mid-way leave only an orphan.
            (self._dir(container.id) / RECORD_FILE).unlink(missing_ok=True)
            if previous not in ("exited", "created"):
                # Recorded exits and failed starts delete the runc container themselves.
                await self._runtime.delete(container.id, force=True)
            await self.execs.forget(container.id)
            await self._mounts.release(container.id, container.mounts, remove_volumes=volumes)
            await self._discard_files(container.id)
            del self._containers[container.id]
            self._changed(container.id)
            self._names.pop(container.name, None)
            self._stopped.pop(container.id, None)
            self._trackers.pop(container.id, None)
            waiters = self._waiters.pop(container.id, _Waiters())
        self._locks.pop(container.id, None)
        self.publish(container, "destroy")
        log.info("container_removed", id=container.short_id)
        _Waiters.resolve(waiters.next_exit, container.state.exit_code)
        _Waiters.resolve(waiters.removed, container.state.exit_code)

    async def update(self, ref: str, changes: dict[str, Any]) -> list[str]:
        """POST /containers/{id}/update: new limits (applied live with runc) and restart
        policy. As dockerd, a field left at its zero value keeps its current setting."""
        container = self.get(ref)
        async with self._lock(container.id):
            if container.state.status in ("removing", "dead"):
                raise Conflict(f"Cannot update container {container.id}: it is "
                               f"{container.state.status}")
            host_config = dict(container.host_config)
            host_config.update({key: value for key, value in changes.items()
                                if key in UPDATABLE_RESOURCES and value})
            warnings: list[str] = []
            check_resources(host_config, host_cgroup_facts(), warnings)
            if (changes.get("RestartPolicy") or {}).get("Name"):
                policy = normalize_policy(changes["RestartPolicy"])
                if host_config["AutoRemove"] and policy["Name"] != "no":
                    raise InvalidArgument("Restart policy cannot be updated because AutoRemove "
                                          "is enabled for the container")
                host_config["RestartPolicy"] = policy
            if container.state.status in ("running", "paused"):
                await self._runtime.update(container.id, resources(host_config))
            container.host_config = host_config
            await self._persist(container)
        self.publish(container, "update")
        return warnings

    async def connect_network(self, container_ref: str, network_id: str,
                              endpoint_config: dict[str, Any]) -> None:
        """POST /networks/{id}/connect: recorded, and live for a running container."""
        container = self.get(container_ref)
        async with self._lock(container.id):
            await self._net.connect(container, self.files(container.id), network_id,
                                    endpoint_config)
            await self._persist(container)

    async def disconnect_network(self, container_ref: str, network_id: str, *,
                                 force: bool) -> None:
        container = self.get(container_ref)
        async with self._lock(container.id):
            await self._net.disconnect(container, self.files(container.id), network_id,
                                       force=force)
            await self._persist(container)

    def remove_link(self, name: str) -> None:
        """DELETE ?link=1 removes a link alias (``/parent/alias``), never a container."""
        parent, _, _ = ("/" + name.lstrip("/")).rpartition("/")
        if not parent:
            raise Conflict("Conflict, cannot remove the default link name of the container")
        # Links between containers come with bridge networking; none exist yet.
        raise NotFound(f"Could not find entity for {name}")

    async def stop(self, ref: str, timeout: int | None = None) -> None:
        """The stop signal, then SIGKILL after the timeout, as `docker stop`."""
        container = self.get(ref)
        if container.state.status not in ("running", "paused", "restarting"):
            raise NotModified("container already stopped")
        # Marked first, so that no restart begins from here on.
        await self._mark_manually_stopped(container)
        if await self._cancel_restart(container):
            self.publish(container, "stop")
            return
        async with self._lock(container.id):
            pass  # a restart already under way finishes first
        monitor = self._monitors.get(container.id)
        if container.state.status not in ("running", "paused") or monitor is None:
            raise NotModified("container already stopped")
        if timeout is None:
            timeout = container.config.get("StopTimeout") or DEFAULT_STOP_TIMEOUT
        stop_signal = parse_signal(container.config.get("StopSignal") or "SIGTERM")
        try:
            await self._signal(container, stop_signal)
            await asyncio.wait_for(asyncio.shield(monitor), timeout if timeout >= 0 else None)
        except (asyncio.TimeoutError, ServinError):
            await self._kill_and_wait(container, monitor)
        self.publish(container, "stop")

    async def kill(self, ref: str, signal_text: str | None) -> None:
        container = self.get(ref)
        number = parse_signal(signal_text or "SIGKILL")
        if container.state.status not in ("running", "paused", "restarting"):
            raise Conflict(f"Cannot kill container: {ref}: Container {container.id} is not running")
        # As dockerd: any kill by a client keeps the restart policy from bringing it back.
        await self._mark_manually_stopped(container)
        if not await self._cancel_restart(container):
            await self._signal(container, number)
        self.publish(container, "kill", signal=number)

    async def _signal(self, container: Container, number: int) -> None:
        await self._runtime.kill(container.id, number)
        if container.state.status == "paused":
            # A frozen process only gets the signal once thawed.
            await self._runtime.resume(container.id)
            container.state.status = "running"
            await self._persist(container)

    async def _mark_manually_stopped(self, container: Container) -> None:
        if self._shutting_down:
            return  # a daemon going down stops containers without a client asking
        container.manually_stopped = True
        await self._persist(container)

    async def pause(self, ref: str) -> None:
        container = self.get(ref)
        async with self._lock(container.id):
            if container.state.status == "paused":
                raise Conflict(f"Container {container.id} is already paused")
            if container.state.status != "running":
                raise Conflict(f"Container {container.id} is not running")
            await self._runtime.pause(container.id)
            container.state.status = "paused"
            await self._persist(container)
        self.publish(container, "pause")

    async def unpause(self, ref: str) -> None:
        container = self.get(ref)
        async with self._lock(container.id):
            if container.state.status != "paused":
                raise Conflict(f"Container {container.id} is not paused")
            await self._runtime.resume(container.id)
            container.state.status = "running"
            await self._persist(container)
        self.publish(container, "unpause")

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        container = self.get(ref)
        try:
            await self.stop(container.id, timeout)
        except NotModified:
            pass
        await self.start(container.id)
        self.publish(container, "restart")

    async def rename(self, ref: str, new_name: str) -> None:
        container = self.get(ref)
        if not new_name:
            raise InvalidArgument("Neither old nor new names may be empty")
        name = validate_name(new_name)
        if name == container.name:
            raise InvalidArgument("Renaming a container with the same name as its current "
                                  "name")
        async with self._lock(container.id):
            old_name = container.name
            self._reserve_name(container.id, name)
            container.name = name
            try:
                await self._persist(container)
            except BaseException:
                container.name = old_name
                self._names.pop(name, None)
                self._changed(container.id)
                raise
            self._names.pop(old_name, None)
        self.publish(container, "rename", oldName="/" + old_name)

    async def resize(self, ref: str, height: int, width: int) -> None:
        container = self.get(ref)
        if container.state.status not in ("running", "paused"):
            raise Conflict(f"Container {container.id} is not running")
        await self._runtime.resize(container.id, height, width)

    async def _kill_and_wait(self, container: Container,
                             monitor: asyncio.Task[None] | None) -> None:
        try:
            await self._runtime.kill(container.id, signal.SIGKILL, all=True)
        except ServinError as exc:
            log.warning("kill_failed", id=container.short_id, error=exc.message)
        if monitor is not None:
            await asyncio.shield(monitor)

    async def _discard_files(self, container_id: str) -> None:
        await self._networks.release(container_id)
        await self._images.layers.remove_rw_layer(container_id)
        shm = Path(self.files(container_id).shm)
        if is_mountpoint(shm):
            await unmount(shm)
        await asyncio.to_thread(shutil.rmtree, self._bundles / container_id, True)
        await asyncio.to_thread(shutil.rmtree, self._dir(container_id), True)

    # ------------------------------------------------------------------ rootfs

    @contextlib.asynccontextmanager
    async def rootfs(self, container: Container) -> AsyncIterator[Path]:
        """The container's root filesystem, mounted for the block (docker cp, export...)."""
        self._rootfs_users[container.id] = self._rootfs_users.get(container.id, 0) + 1
        try:
            yield await self._images.layers.mount_rw_layer(container.id)
        finally:
            self._rootfs_users[container.id] -= 1
            await self._release_rootfs(container)

    async def _release_rootfs(self, container: Container) -> None:
        """Unmount the rootfs unless the container runs or a client still reads it."""
        if self._rootfs_users.get(container.id, 0) > 0:
            return
        if container.state.status in ("running", "paused", "restarting"):
            return
        self._rootfs_users.pop(container.id, None)
        await self._images.layers.unmount_rw_layer(container.id)

    # ------------------------------------------------------------ attach, logs

    async def open_attach(self, container: Container) -> AttachSocket | None:
        """The container's live stdio: now if running, at start if not yet started."""
        status = container.state.status
        if status in ("running", "paused"):
            return await self._runtime.attach(container.id)
        if status == "created":
            future: asyncio.Future[AttachSocket] = asyncio.get_running_loop().create_future()
            self._pending_attach.setdefault(container.id, []).append(future)
            try:
                return await future
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # our caller went away
                return None  # the start failed: nothing will come
            finally:
                pending = self._pending_attach.get(container.id, [])
                if future in pending:
                    pending.remove(future)
        return None

    @staticmethod
    def check_logs_readable(container: Container) -> None:
        if not log_policy(container.host_config["LogConfig"]).keeps_log:
            raise NotSupported("configured logging driver does not support reading")

    @staticmethod
    def log_attributes(container: Container) -> dict[str, str]:
        """The attributes its log driver gives each line (``docker logs --details``)."""
        return log_attributes(container.host_config["LogConfig"],
                              container.config.get("Labels"), container.config.get("Env"))

    def logs(self, container: Container, transform: BlockTransform[T], *, follow: bool,
             tail: int | None) -> AsyncIterator[T]:
        """The container's log, as ``transform`` makes each block of lines; NotSupported
        at once (before any output) when its log driver keeps none."""
        self.check_logs_readable(container)
        stop = self._stopped.get(container.id)
        if stop is None or container.state.status not in ("running", "paused"):
            stop = asyncio.Event()
            stop.set()
        return read_log(Path(self.files(container.id).log), transform, follow=follow, tail=tail,
                        stop=stop)

    # -------------------------------------------------------------- list, view

    def list(self, *, all: bool = False, limit: int | None = None,
             filters: Filters | None = None) -> list[Container]:
        """Newest first, as GET /containers/json: running ones only unless ``all``, a
        ``limit`` or a status filter asks for more."""
        filters = filters or {}
        containers = filter_containers(list(self._containers.values()), filters,
                                       resolve=self.get, image_ids=self._image_id,
                                       health=health_status)
        if not (all or (limit and limit > 0) or "status" in filters):
            containers = [c for c in containers if c.state.status in ("running", "paused",
                                                                       "restarting")]
        return containers[:limit] if limit and limit > 0 else containers

    async def summary(self, container: Container, *, size: bool = False) -> dict[str, Any]:
        cached = self._summaries.get(container.id)
        if cached is None:
            cached = self._summaries[container.id] = views.summary(
                container, self._image_name(container), self._net.settings(container))
        out = dict(cached)
        out["Status"] = views.status_text(container)
        if size:
            out.update(await self._size_fields(container))
        return out

    async def sizes(self, container: Container) -> ContainerSizes:
        """SizeRw and SizeRootFs, counted off the event loop."""
        try:
            chain_id = self._images.resolve(container.image_id).chain_id
        except NotFound:
            chain_id = None  # the image is gone: only the container's own layer counts
        return await asyncio.to_thread(container_sizes, self._images.layers, container.id,
                                       chain_id)

    async def _size_fields(self, container: Container) -> dict[str, int]:
        sizes = await self.sizes(container)
        return {"SizeRw": sizes.size_rw, "SizeRootFs": sizes.size_root_fs}

    async def prune(self, filters: Filters) -> tuple[list[str], int]:
        """Remove the stopped containers that pass the filters, as POST /containers/prune."""
        check_keys(filters, ("until", "label", "label!"))
        until = [timestamp_filter_ns(value) for value in filters.get("until", [])]
        deleted: list[str] = []
        reclaimed = 0
        for container in list(self._containers.values()):
            if container.state.status not in ("created", "exited", "dead"):
                continue
            if any(container.created_ns >= moment for moment in until):
                continue
            if not labels_match(container.config.get("Labels") or {}, filters):
                continue
            size = (await self.sizes(container)).size_rw
            try:
                await self.remove(container.id)
            except (Conflict, NotFound):
                continue  # started or removed meanwhile
            deleted.append(container.id)
            reclaimed += size
        self._events.publish("container", "prune", "", reclaimed=reclaimed)
        return deleted, reclaimed

    def _image_id(self, ref: str) -> str | None:
        try:
            return self._images.resolve(ref).id
        except NotFound:
            return None

    async def inspect(self, ref: str, *, size: bool = False) -> dict[str, Any]:
        container = self.get(ref)
        out = views.inspect(container, files=self.files(container.id),
                            graph_driver=self._images.layers.graph_driver_data(container.id),
                            network_settings=self._net.settings(container),
                            exec_ids=self.execs.exec_ids(container.id))
        if size:
            out.update(await self._size_fields(container))
        return out

    # --------------------------------------------------------- restore, close

    async def restore(self) -> None:
        """Load the records, reconcile them with what runc knows (live restore), then
        bring back the containers whose restart policy says so, as dockerd does."""
        self._root.mkdir(parents=True, exist_ok=True, mode=0o710)
        self._bundles.mkdir(parents=True, exist_ok=True, mode=0o700)
        # One runc process for every container, while the records are read. One that
        # exits after this is seen running, then recorded by its monitor, as any exit.
        records, states = await asyncio.gather(asyncio.to_thread(self._load_records),
                                               self._runtime.states())
        for directory, container in records:
            if isinstance(container, FileNotFoundError):
                log.info("orphan_collected", id=directory.name[:12])  # runc's part: below
                await self._discard_files(directory.name)
                continue
            if isinstance(container, Exception):
                log.error("record_unreadable", id=directory.name[:12], error=str(container))
                continue
            self._containers[container.id] = container
            self._names[container.name] = container.id
            self._waiters[container.id] = _Waiters()
            await self._reconcile(container, states.get(container.id))
            await self.execs.restore(container)
        # What runc and conmon keep of orphans and of containers removed while their
        # deletion ran in the background; containers with unreadable records stay.
        await self._runtime.collect({directory.name for directory, container in records
                                     if not isinstance(container, FileNotFoundError)}, states)
        await self._mounts.restore(self._containers.values())
        # Before any restart: sandboxes of containers that did not survive are collected.
        await self._networks.restore(c.id for c in self._containers.values()
                                     if c.state.status in ("running", "paused"))
        # As dockerd: a container to be removed at its exit that no longer runs (it
        # exited while no daemon watched, or never started) is removed now.
        for container in [c for c in self._containers.values()
                          if c.host_config.get("AutoRemove")
                          and c.state.status not in ("running", "paused")]:
            try:
                await self.remove(container.id, force=True, volumes=True)
            except ServinError as exc:
                log.warning("auto_remove_at_start_failed", id=container.short_id,
                            error=exc.message)
        comebacks = [c for c in self._containers.values() if c.state.status == "exited"
                     and restarts_at_daemon_start(
                         c.host_config["RestartPolicy"], exit_code=c.state.exit_code,
                         manually_stopped=c.manually_stopped, restart_count=c.restart_count)]
        for container in comebacks:
            try:
                async with self._lock(container.id):
                    await self._start_locked(container)
            except ServinError as exc:
                log.warning("restart_at_start_failed", id=container.short_id, error=exc.message)
        log.info("containers_restored", count=len(self._containers), restarted=len(comebacks))

    def _load_records(self) -> list[tuple[Path, Container | Exception]]:
        """Each container directory with its record, or why it has none to use."""
        loaded: list[tuple[Path, Container | Exception]] = []
        for directory in sorted(self._root.iterdir()):
            try:
                loaded.append((directory, load_record(directory)))
            except (FileNotFoundError, ValueError, TypeError, KeyError) as exc:
                loaded.append((directory, exc))
        return loaded

    async def _reconcile(self, container: Container, state: dict[str, Any] | None) -> None:
        """Bring the record in line with runc's ``state`` of the container (None: runc
        does not know it)."""
        status = state["status"] if state else None
        if status in ("running", "paused"):
            recorded = copy.deepcopy(container.state)
            container.state.status = status
            container.state.pid = state.get("pid", container.state.pid)
            if not container.state.started_ns:
                container.state.started_ns = time.time_ns()
            self._health.start(container)
            if container.state != recorded:  # most containers simply run on
                await self._persist(container)
            self._stopped[container.id] = asyncio.Event()
            self._monitors[container.id] = asyncio.create_task(self._monitor(container))
            self._log_rotator.start(container.id, Path(self.files(container.id).log),
                                    log_policy(container.host_config["LogConfig"]))
            log.info("container_adopted", id=container.short_id, pid=container.state.pid)
            return
        exit_status = self._runtime.read_exit(container.id)
        if container.state.status in ("running", "paused") or (
                container.state.status == "created" and exit_status is not None):
            # It exited while no daemon watched (or ran, its start not yet recorded):
            # record it now, 255 if conmon could not say.
            await self._record_exit(container, exit_status or ExitStatus(
                exit_code=255, finished_at=datetime.now(timezone.utc)))
        elif status is not None or exit_status is not None:
            # Created by runc but never started (the daemon died mid-start), or an exit
            # recorded whose deletion had not finished.
            await self._runtime.delete(container.id, force=True)
        if container.state.status == "restarting":
            # Its exit was recorded before the crash; the restart never happened.
            container.state.status = "exited"
            await self._persist(container)
        if container.state.status == "removing":
            await self.remove(container.id, force=True)
        else:
            await self._release_rootfs(container)

    async def shutdown(self) -> None:
        """Leave running containers to conmon (live restore) or stop them."""
        self._shutting_down = True
        for task in self._restarts.values():
            task.cancel()
        await asyncio.gather(*self._restarts.values(), return_exceptions=True)
        if not self._config.live_restore:
            await asyncio.gather(*(self.stop(c.id) for c in list(self._containers.values())
                                   if c.state.status in ("running", "paused")),
                                 return_exceptions=True)
        for task in self._monitors.values():
            task.cancel()
        await asyncio.gather(*self._monitors.values(), return_exceptions=True)
        self._monitors.clear()
        await self._runtime.drain()
        await self._log_rotator.close()
        await self._health.close()
        await self.execs.shutdown()
        await self.stats.close()
        # runc leaves the parent cgroup behind; it goes once no container uses it.
        await asyncio.to_thread(remove_cgroup, "/" + CGROUP_PARENT)
