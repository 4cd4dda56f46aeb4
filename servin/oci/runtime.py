"""The container runtime of one servind: runc under conmon, state under the exec root.

Layout below ``exec_root``:

    runc/            runc's state root (--root), private to this daemon
    conmon/<id>/     conmon.pid, init.pid
    exits/<id>       the container's exit code, written by conmon
    attach/<id>      conmon's link to the bundle (attach socket, ctl and winsz fifos)

Every method works for containers created by an earlier servind process with
the same exec root, which is how containers survive a daemon restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import signal as signals
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import structlog

from servin.errors import NotFound, SystemFailure
from servin.oci.attach import AttachSocket, connect_in_dir
from servin.oci.cgroups import oom_kill_count
from servin.oci.conmon import (CTL_REOPEN_LOG, CTL_RESIZE, ConmonFiles, ConmonOptions,
                               spawn_conmon)
from servin.oci.exits import ExitStatus, open_pidfd, read_exit_file, read_pid, wait_pidfd
from servin.oci.runc import OCIRuntimeError, Runc
from servin.oci.spec import Resources

log = structlog.get_logger("servin.oci")

# conmon exits right after its container; longer means it is stuck.
CONMON_EXIT_TIMEOUT = 10.0
# Docker's exit code for a container whose monitor vanished without reporting.
LOST_EXIT_CODE = 255


def _executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemFailure(f"{name} not found in PATH")
    return path


class Runtime:
    def __init__(self, exec_root: Path, runc: str = "runc", conmon: str = "conmon") -> None:
        self.exec_root = exec_root
        self.runc = Runc(_executable(runc), exec_root / "runc")
        self.conmon = _executable(conmon)
        # Deletions running in the background (delete_soon), by container id.
        self._deleting: dict[str, asyncio.Task[None]] = {}

    def _files(self, container_id: str) -> ConmonFiles:
        return ConmonFiles(state_dir=self.exec_root / "conmon" / container_id,
                           exit_dir=self.exec_root / "exits",
                           socket_dir=self.exec_root / "attach",
                           container_id=container_id)

    async def create(self, container_id: str, bundle: Path, *, log_path: Path | None,
                     terminal: bool = False, stdin: bool = False,
                     leave_stdin_open: bool = False, log_size_max: int | None = None) -> int:
        """Spawn conmon, which runs ``runc create``; the container is left ``created``.

        ``log_path`` None keeps no log. Returns the container's init pid. Raises
        OCIRuntimeError carrying runc's message when runc refuses the bundle (leaving
        no files behind).
        """
        await self._deleted(container_id)  # a previous run's clean-up touches these files
        files = self._files(container_id)
        files.prepare()
        opts = ConmonOptions(container_id=container_id, bundle=bundle.absolute(),
                             log_path=log_path.absolute() if log_path else None,
                             terminal=terminal, stdin=stdin,
                             leave_stdin_open=leave_stdin_open, log_size_max=log_size_max)
        try:
            pid = await spawn_conmon(self.conmon, self.runc, files, opts)
        except BaseException:
            # runc removes what it made when create fails, but not when we are cancelled.
            with contextlib.suppress(OCIRuntimeError):
                await self.runc.delete(container_id, force=True)
            await self._wait_conmon_gone(files)
            files.remove_all()
            raise
        log.info("container_created", container_id=container_id, pid=pid)
        return pid

    async def start(self, container_id: str) -> None:
        await self.runc.start(container_id)

    async def state(self, container_id: str) -> dict[str, Any] | None:
        """runc's state (``status``: created, running, paused, stopped), None if runc does not know it."""
        return await self.runc.state(container_id)

    async def states(self) -> dict[str, dict[str, Any]]:
        """``state`` of every container runc knows, by id: one runc process for all."""
        return await self.runc.states()

    async def kill(self, container_id: str, signal: int = signals.SIGKILL, *, all: bool = False) -> None:
        await self.runc.kill(container_id, signal, all=all)

    async def pause(self, container_id: str) -> None:
        await self.runc.run("pause", container_id)

    async def resume(self, container_id: str) -> None:
        await self.runc.run("resume", container_id)

    async def update(self, container_id: str, resources: Resources) -> None:
        """Apply new cgroup limits to a running or paused container (``runc update``)."""
        await self.runc.update(container_id, resources.to_oci())
        log.info("container_updated", container_id=container_id)

    async def delete(self, container_id: str, *, force: bool = False) -> None:
        """``runc delete``, then wait for conmon to finish and remove its files."""
        await self._deleted(container_id)
        await self._delete(container_id, force=force)

    async def _delete(self, container_id: str, *, force: bool) -> None:
        await self.runc.delete(container_id, force=force)
        files = self._files(container_id)
        await self._wait_conmon_gone(files)
        files.remove_all()
        log.info("container_deleted", container_id=container_id)

    def delete_soon(self, container_id: str) -> None:
        """``delete --force`` in the background, for a container whose exit is recorded:
        runc's clean-up (its state, the cgroups) need not hold up the client. A new
        ``create`` of the same id, ``delete`` and ``drain`` wait for it; a daemon that
        dies meanwhile leaves runc a container that ``collect`` deletes at the next start."""
        task = asyncio.create_task(self._delete_logged(container_id))
        self._deleting[container_id] = task
        task.add_done_callback(lambda done: self._deleting.pop(container_id, None)
                               if self._deleting.get(container_id) is done else None)

    async def _delete_logged(self, container_id: str) -> None:
        try:
            await self._delete(container_id, force=True)
        except (OCIRuntimeError, OSError) as exc:
            log.warning("container_delete_failed", container_id=container_id, error=str(exc))

    async def _deleted(self, container_id: str) -> None:
        task = self._deleting.get(container_id)
        if task is not None:
            await asyncio.wait([task])  # not cancelled with a caller that gives up

    async def drain(self) -> None:
        """Wait for the deletions running in the background."""
        if self._deleting:
            await asyncio.wait(list(self._deleting.values()))

    async def collect(self, keep: set[str], states: dict[str, dict[str, Any]]) -> None:
        """Delete what runc and conmon keep of containers that are not in ``keep``
        (``states``: runc's, from ``states()``), such as those a daemon removed while
        their deletion was still running in the background when it died."""
        conmon_dirs = self.exec_root / "conmon"
        known = set(states)
        if conmon_dirs.is_dir():
            known |= {p.name for p in conmon_dirs.iterdir()}
        for container_id in sorted(known - keep):
            log.info("runtime_leftover_deleted", container_id=container_id)
            await self._delete_logged(container_id)  # one that runc refuses stays, said

    async def monitor_gone(self, container_id: str) -> None:
        """Wait until the container's conmon has exited: its log is then complete."""
        await self._wait_conmon_gone(self._files(container_id))

    def read_exit(self, container_id: str) -> ExitStatus | None:
        files = self._files(container_id)
        status = read_exit_file(files.exit_file)
        # Asked only once there is an exit: it reads the bundle's spec and the cgroup.
        if status is None or not self._oom_killed(files):
            return status
        return attrs.evolve(status, oom_killed=True)

    def _oom_killed(self, files: ConmonFiles) -> bool:
        """conmon's OOM mark, or (should conmon have missed the event as its container
        exited) the kill count of the container's memory cgroup, which lasts until
        ``runc delete``."""
        if files.oom_file.exists():
            return True
        spec = self.spec(files.container_id) or {}
        cgroups_path = spec.get("linux", {}).get("cgroupsPath")
        return bool(cgroups_path) and oom_kill_count(cgroups_path) > 0

    async def wait_exit(self, container_id: str) -> ExitStatus:
        """Wait until the container has exited (through conmon's exit), then its status."""
        status = self.read_exit(container_id)
        if status is not None:
            return status
        files = self._files(container_id)
        pidfd = self._conmon_pidfd(files)
        if pidfd is not None:
            await wait_pidfd(pidfd)
        status = self.read_exit(container_id)
        if status is None:
            log.warning("container_exit_lost", container_id=container_id)
            status = ExitStatus(LOST_EXIT_CODE, datetime.now(timezone.utc))
        return status

    def conmon_alive(self, container_id: str) -> bool:
        pidfd = self._conmon_pidfd(self._files(container_id))
        if pidfd is None:
            return False
        os.close(pidfd)
        return True

    def _conmon_pidfd(self, files: ConmonFiles) -> int | None:
        pid = read_pid(files.conmon_pidfile)
        if pid is None:
            return None
        # The exit dir is unique to this exec root: a reused pid will not match.
        return open_pidfd(pid, cmdline_has=(files.container_id.encode(), str(files.exit_dir).encode()))

    async def _wait_conmon_gone(self, files: ConmonFiles) -> None:
        pidfd = self._conmon_pidfd(files)
        if pidfd is None:
            return
        if not await wait_pidfd(pidfd, CONMON_EXIT_TIMEOUT):
            pid = read_pid(files.conmon_pidfile)
            log.warning("conmon_stuck_killed", container_id=files.container_id, pid=pid)
            pidfd = self._conmon_pidfd(files)
            if pidfd is not None:
                signals.pidfd_send_signal(pidfd, signals.SIGKILL)
                await wait_pidfd(pidfd)

    async def attach(self, container_id: str) -> AttachSocket:
        """Connect to the container's stdio through conmon; works from ``created`` on."""
        link = self._files(container_id).bundle_link
        try:
            sock = await connect_in_dir(link, "attach")
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise NotFound(f"container {container_id} has no running monitor to attach to") from e
        return AttachSocket(sock)

    async def resize(self, container_id: str, height: int, width: int) -> None:
        """Resize the container's terminal through conmon's control fifo."""
        self._control(container_id, f"{CTL_RESIZE} {height} {width}\n", "resize")

    def reopen_log(self, container_id: str) -> None:
        """Have conmon write its log to a fresh file at the log path (after a rotation)."""
        self._control(container_id, f"{CTL_REOPEN_LOG} 0 0\n", "reopen its log")

    def _control(self, container_id: str, message: str, what: str) -> None:
        write_control(self._files(container_id).bundle_link / "ctl", message,
                      f"container {container_id} has no running monitor to {what}")

    def spec(self, container_id: str) -> dict[str, Any] | None:
        """The OCI spec the container runs with (from its bundle), None once it is gone."""
        try:
            return json.loads((self._files(container_id).bundle_link / "config.json").read_text())
        except (OSError, ValueError):
            return None


def write_control(ctl: Path, message: str, missing: str) -> None:
    """A message on conmon's ``ctl`` fifo; NotFound(``missing``) when no conmon reads it."""
    # Non-blocking: conmon holds the fifo's read side while it lives, and a
    # message this short is written whole.
    try:
        fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENXIO):
            raise NotFound(missing) from e
        raise
    try:
        os.write(fd, message.encode())
    finally:
        os.close(fd)
