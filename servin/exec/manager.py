"""The exec manager: processes run in running containers (docker exec), and health probes.

An exec is created (its configuration recorded), then started once, detached or with
the client attached to its stdio. Records are persisted under the container's own
directory (``<containers-root>/<container-id>/execs/<exec-id>.json``), so they last as
long as the container and go with it; a session whose conmon still runs after a
daemon restart is watched again. Health probes are execs too, kept only in memory
while they run (as dockerd registers its probes for their length).
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any, Protocol

import attrs
import cattrs
import structlog

from servin.containers.environment import container_environment, replace_or_append
from servin.containers.detachkeys import parse_detach_keys
from servin.containers.record import Container
from servin.errors import Conflict, InvalidArgument, NotFound, ServinError, SystemFailure
from servin.oci.attach import AttachSocket
from servin.oci.exec import ExecProcess, ExecRuntime
from servin.oci.runtime import LOST_EXIT_CODE
from servin.oci.users import ResolvedUser, resolve_user
from servin.store import atomic_write_json, read_json, remove_stale_temps

log = structlog.get_logger("servin.exec")

EXECS_DIR = "execs"
# How long a resize waits for its exec to start, as dockerd.
RESIZE_START_TIMEOUT = 10.0


class ContainerAccess(Protocol):
    """What the exec manager needs of the containers manager."""

    def get(self, ref: str) -> Container: ...

    def publish(self, container: Container, action: str, **extra: Any) -> None: ...


@attrs.define
class ExecRecord:
    id: str
    container_id: str
    entrypoint: str
    args: list[str]
    env: list[str]
    user: str
    working_dir: str
    tty: bool = False
    privileged: bool = False
    open_stdin: bool = False
    open_stdout: bool = False
    open_stderr: bool = False
    detach_keys: str = ""  # as the client gave them; "" for the default
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    # A health probe's exec: in memory only, forgotten once it ends.
    transient: bool = False

    @property
    def command_line(self) -> str:
        """As dockerd's events show it: the entrypoint, a space, the arguments."""
        return self.entrypoint + " " + " ".join(self.args)


@attrs.frozen
class RunResult:
    """A command run to its end (or its timeout) with its output captured."""

    exit_code: int | None  # None: it did not end within the timeout and was killed
    output: bytes
    error: str = ""        # why it could not run at all


_converter = cattrs.Converter()


def exec_environment(container: Container, tty: bool, env: list[str]) -> list[str]:
    """dockerd's environment of an exec: the container's, with the exec's own over it."""
    return replace_or_append(container_environment(container, tty), env)


def start_exit_code(entrypoint: str, message: str) -> int:
    """The exit code dockerd records for an exec the runtime could not start."""
    lowered = message.lower()
    if entrypoint in message and ("no such file or directory" in lowered
                                  or "executable file not found" in lowered):
        return 127
    return 126


def check_active(container: Container, ref: str) -> None:
    status = container.state.status
    if status == "paused":
        raise Conflict(f"Container {ref} is paused, unpause the container before exec")
    if status == "restarting":
        raise Conflict(f"Container {container.id} is restarting, wait until the container "
                       "is running")
    if status != "running":
        raise Conflict(f"Container {container.id} is not running")


class ExecManager:
    def __init__(self, runtime: ExecRuntime, containers: ContainerAccess,
                 containers_root: Path) -> None:
        self._runtime = runtime
        self._containers = containers
        self._root = containers_root
        self._execs: dict[str, ExecRecord] = {}
        self._started: dict[str, asyncio.Event] = {}
        self._ended: dict[str, asyncio.Event] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}

    # ------------------------------------------------------------- records

    def get(self, exec_id: str) -> ExecRecord:
        record = self._execs.get(exec_id)
        if record is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return record

    def _dir(self, container_id: str) -> Path:
        return self._root / container_id / EXECS_DIR

    async def _persist(self, record: ExecRecord) -> None:
        if record.transient:
            return
        directory = self._dir(record.container_id)
        await asyncio.to_thread(_save, directory, record)

    def _register(self, record: ExecRecord) -> None:
        self._execs[record.id] = record
        self._started[record.id] = asyncio.Event()
        self._ended[record.id] = asyncio.Event()

    def _unregister(self, exec_id: str) -> None:
        self._execs.pop(exec_id, None)
        self._started.pop(exec_id, None)
        self._ended.pop(exec_id, None)
        self._watchers.pop(exec_id, None)

    def exec_ids(self, container_id: str) -> list[str]:
        """The container's execs that have not ended yet (inspect's ExecIDs)."""
        return [r.id for r in self._execs.values()
                if r.container_id == container_id and r.exit_code is None]

    # -------------------------------------------------------------- create

    async def create(self, ref: str, body: dict[str, Any]) -> ExecRecord:
        """POST /containers/{id}/exec."""
        container = self._containers.get(ref)
        check_active(container, ref)
        cmd = body.get("Cmd") or []
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd:
            raise InvalidArgument("No exec command specified")
        detach_keys = body.get("DetachKeys") or ""
        if detach_keys:
            try:
                parse_detach_keys(detach_keys)
            except InvalidArgument:
                raise InvalidArgument(f"Invalid escape keys ({detach_keys}) provided") from None
        tty = bool(body.get("Tty"))
        record = ExecRecord(
            id=secrets.token_hex(32), container_id=container.id, entrypoint=cmd[0],
            args=list(cmd[1:]), env=exec_environment(container, tty, body.get("Env") or []),
            user=body.get("User") or container.config.get("User") or "",
            working_dir=body.get("WorkingDir") or container.config.get("WorkingDir") or "",
            tty=tty, privileged=bool(body.get("Privileged")),
            open_stdin=bool(body.get("AttachStdin")), open_stdout=bool(body.get("AttachStdout")),
            open_stderr=bool(body.get("AttachStderr")), detach_keys=detach_keys)
        await self._persist(record)
        self._register(record)
        self._containers.publish(container, "exec_create: " + record.command_line,
                                 execID=record.id)
        return record

    # --------------------------------------------------------------- start

    def check_startable(self, exec_id: str) -> tuple[ExecRecord, Container]:
        """The exec and its container, if it can start now (before a connection is hijacked)."""
        record = self.get(exec_id)
        container = self._active_container(record)
        if record.exit_code is not None:
            raise Conflict(f"Error: Exec command {record.id} has already run")
        if record.running:
            raise Conflict(f"Error: Exec command {record.id} is already running")
        return record, container

    def _active_container(self, record: ExecRecord) -> Container:
        try:
            container = self._containers.get(record.container_id)
        except NotFound:
            raise NotFound(f"No such container: {record.id}") from None
        check_active(container, container.id)
        return container

    async def start(self, exec_id: str, *, attach: bool) -> AttachSocket | None:
        """Run the exec's process; with ``attach`` its stdio, connected before it runs.

        When the runtime cannot run it, the exit code is recorded (126, or 127 for a
        missing command) and the error raised, as dockerd does.
        """
        record, container = self.check_startable(exec_id)
        record.running = True
        self._containers.publish(container, "exec_start: " + record.command_line,
                                 execID=record.id)
        try:
            user = await self._resolve_user(record, container)
            started = await self._runtime.start(container.id, record.id, ExecProcess(
                args=[record.entrypoint, *record.args], env=record.env,
                cwd=record.working_dir or "/", user=user, terminal=record.tty,
                privileged=record.privileged), stdin=record.open_stdin, attach=attach)
        except ServinError as exc:
            record.running = False
            record.exit_code = start_exit_code(record.entrypoint, exc.message)
            await self._persist(record)
            self._ended[record.id].set()
            if record.exit_code == 127 or "permission denied" in exc.message.lower():
                raise InvalidArgument(exc.message, **exc.details) from None
            raise
        record.pid = started.pid
        await self._persist(record)
        self._started[record.id].set()
        self._watchers[record.id] = asyncio.create_task(self._watch(record, container))
        return started.attach

    async def _resolve_user(self, record: ExecRecord,
                            container: Container) -> ResolvedUser | None:
        """The exec's user against the files the container sees; None keeps the container's."""
        if not record.user:
            return None
        root = Path(f"/proc/{container.state.pid}/root")
        return await asyncio.to_thread(resolve_user, root, record.user,
                                       container.host_config.get("GroupAdd"))

    async def _watch(self, record: ExecRecord, container: Container) -> None:
        status = await self._runtime.wait(record.id)
        await self._ended_with(record, container, status.exit_code)

    async def _ended_with(self, record: ExecRecord, container: Container, exit_code: int) -> None:
        record.running = False
        record.exit_code = exit_code
        await self._persist(record)
        await self._runtime.remove(record.id)
        self._containers.publish(container, "exec_die", execID=record.id, exitCode=exit_code)
        log.info("exec_ended", exec_id=record.id[:12], container=container.short_id,
                 exit_code=exit_code)
        self._watchers.pop(record.id, None)
        self._ended[record.id].set()

    async def wait(self, exec_id: str) -> int | None:
        """The exit code once the exec has ended."""
        await self._ended[exec_id].wait()
        return self._execs[exec_id].exit_code

    def detached(self, exec_id: str) -> None:
        """The attached client typed the detach keys; the process goes on."""
        record = self.get(exec_id)
        self._containers.publish(self._containers.get(record.container_id), "exec_detach",
                                 execID=record.id)

    # -------------------------------------------------- resize, inspect

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        record = self.get(exec_id)
        self._active_container(record)
        try:
            await asyncio.wait_for(self._started[exec_id].wait(), RESIZE_START_TIMEOUT)
        except asyncio.TimeoutError:
            raise SystemFailure("timeout waiting for exec session ready") from None
        self._runtime.resize(exec_id, height, width)

    def inspect(self, exec_id: str) -> dict[str, Any]:
        """GET /exec/{id}/json in dockerd's shape."""
        record = self.get(exec_id)
        process: dict[str, Any] = {"tty": record.tty, "entrypoint": record.entrypoint,
                                   "arguments": list(record.args),
                                   "privileged": record.privileged}
        if record.user:
            process["user"] = record.user
        return {
            "ID": record.id,
            "Running": record.running,
            "ExitCode": record.exit_code,
            "ProcessConfig": process,
            "OpenStdin": record.open_stdin,
            "OpenStderr": record.open_stderr,
            "OpenStdout": record.open_stdout,
            "CanRemove": record.exit_code is not None,
            "ContainerID": record.container_id,
            "DetachKeys": record.detach_keys,
            "Pid": record.pid,
        }

    # ------------------------------------------------------ health probes

    async def run(self, container: Container, argv: list[str], *, timeout: float,
                  output_limit: int) -> RunResult:
        """Run ``argv`` in the container as the container's user and directory, stdout and
        stderr captured together up to ``output_limit`` bytes (a health probe)."""
        record = ExecRecord(
            id=secrets.token_hex(32), container_id=container.id, entrypoint=argv[0],
            args=list(argv[1:]), env=exec_environment(container, False, []),
            user=container.config.get("User") or "",
            working_dir=container.config.get("WorkingDir") or "", open_stdout=True,
            open_stderr=True, transient=True)
        self._register(record)
        self._containers.publish(container, "exec_create: " + record.command_line,
                                 execID=record.id)
        try:
            try:
                socket = await self.start(record.id, attach=True)
            except ServinError as exc:
                return RunResult(None, b"", error=exc.message)
            assert socket is not None
            output = bytearray()
            try:
                async with asyncio.timeout(timeout):
                    while (chunk := await socket.read()) is not None:
                        output += chunk[1][:max(0, output_limit - len(output))]
                    return RunResult(await self.wait(record.id), bytes(output))
            except TimeoutError:
                self._runtime.kill(record.id)
                await self.wait(record.id)
                return RunResult(None, bytes(output))
            finally:
                socket.close()
        finally:
            watcher = self._watchers.get(record.id)
            if watcher is not None:  # cancelled meanwhile: the process goes too
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                await self._runtime.remove(record.id)
            self._unregister(record.id)

    # --------------------------------------------- container life, daemon life

    async def restore(self, container: Container) -> None:
        """Load the container's exec records after a daemon start; sessions still running
        are watched again, those that ended meanwhile get their exit code."""
        directory = self._dir(container.id)
        records = await asyncio.to_thread(_load_all, directory)
        for record in records:
            self._register(record)
            if not record.running:
                if record.exit_code is not None:
                    self._ended[record.id].set()
                continue
            if container.state.status in ("running", "paused") and self._runtime.alive(record.id):
                self._started[record.id].set()
                self._watchers[record.id] = asyncio.create_task(self._watch(record, container))
                log.info("exec_adopted", exec_id=record.id[:12], container=container.short_id)
                continue
            status = self._runtime.read_exit(record.id)
            await self._ended_with(record, container,
                                   status.exit_code if status else LOST_EXIT_CODE)

    async def forget(self, container_id: str) -> None:
        """The container is being removed: its exec sessions and their files go."""
        for record in [r for r in self._execs.values() if r.container_id == container_id]:
            watcher = self._watchers.get(record.id)
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            await self._runtime.remove(record.id)
            self._unregister(record.id)

    async def shutdown(self) -> None:
        """Stop watching; the sessions' conmons go on (and are watched again after a start)."""
        watchers = list(self._watchers.values())
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)


def _save(directory: Path, record: ExecRecord) -> None:
    directory.mkdir(mode=0o700, exist_ok=True)
    atomic_write_json(directory / f"{record.id}.json", _converter.unstructure(record))


def _load_all(directory: Path) -> list[ExecRecord]:
    if not directory.is_dir():
        return []
    remove_stale_temps(directory)
    records = []
    for path in sorted(directory.glob("*.json")):
        try:
            records.append(_converter.structure(read_json(path), ExecRecord))
        except (OSError, ValueError, TypeError, KeyError, cattrs.BaseValidationError) as exc:
            log.error("exec_record_unreadable", path=str(path), error=str(exc))
    return records
