"""Processes run inside a running container (docker exec): ``runc exec`` under a conmon of their own.

conmon's exec mode (``--exec --exec-process-spec FILE``) runs ``runc exec --detach``
and then watches the process as it watches a container: it serves its stdio on an
attach socket, takes resizes on a ``ctl`` fifo, reaps it and writes its exit code,
all from a daemonized process that outlives servind. Layout below ``exec_root``:

    execs/<exec-id>/   process.json, conmon.pid, exec.pid, exit; being conmon's
                       "bundle" for the session it also holds the attach socket
                       and the ctl/winsz fifos
    attach/<exec-id>   conmon's link to that directory

Pipes (conmon 2.1): ``_OCI_SYNCPIPE`` gets ``{"data": <pid>}``, or a negative number
and runc's message when ``runc exec`` fails. With ``--exec-attach`` conmon waits for
a first message on ``_OCI_STARTPIPE``, reports the attach socket ready on
``_OCI_ATTACHPIPE``, and runs runc only after a second start message: the attached
client connects before the process runs and misses none of its output.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal as signals
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import structlog

from servin.errors import NotFound
from servin.jsoncodec import dumps
from servin.oci.attach import AttachSocket, connect_in_dir
from servin.oci.capabilities import ALL_CAPABILITIES, bounding_set
from servin.oci.conmon import (CTL_RESIZE, SCRUBBED_ENV, SYNC_PIPE_ENV, conmon_link,
                               read_sync_line)
from servin.oci.exits import ExitStatus, open_pidfd, read_exit_file, read_pid, wait_pidfd
from servin.oci.runc import OCIRuntimeError, runc_error_text
from servin.oci.runtime import LOST_EXIT_CODE, Runtime, write_control
from servin.oci.users import ResolvedUser

log = structlog.get_logger("servin.oci")

START_PIPE_ENV = "_OCI_STARTPIPE"
ATTACH_PIPE_ENV = "_OCI_ATTACHPIPE"


@attrs.frozen
class ExecFiles:
    """Where one exec session's conmon keeps its files."""

    directory: Path   # <exec_root>/execs/<exec-id>
    socket_dir: Path  # <exec_root>/attach
    exec_id: str

    @property
    def process_spec(self) -> Path:
        return self.directory / "process.json"

    @property
    def conmon_pidfile(self) -> Path:
        return self.directory / "conmon.pid"

    @property
    def pidfile(self) -> Path:
        return self.directory / "exec.pid"

    @property
    def exit_file(self) -> Path:
        """Written by conmon (``--persist-dir``) when the process has ended."""
        return self.directory / "exit"

    @property
    def attach_link(self) -> Path:
        return conmon_link(self.socket_dir, self.exec_id)

    def remove(self) -> None:
        if self.attach_link.is_symlink():
            self.attach_link.unlink()
        shutil.rmtree(self.directory, ignore_errors=True)


@attrs.frozen
class ExecProcess:
    """What to run, as docker exec asks for it; the rest comes from the container's spec."""

    args: list[str]
    env: list[str]
    cwd: str = "/"
    user: ResolvedUser | None = None  # None: the container's own user
    terminal: bool = False
    privileged: bool = False


def exec_process_spec(container_process: dict[str, Any], wanted: ExecProcess) -> dict[str, Any]:
    """The OCI process for ``runc exec``: the container's own, with what the exec changes
    (as dockerd: rlimits, no-new-privileges and AppArmor stay the container's)."""
    process = {key: value for key, value in container_process.items() if key != "consoleSize"}
    process.update(args=list(wanted.args), env=list(wanted.env), cwd=wanted.cwd or "/",
                   terminal=wanted.terminal)
    if wanted.user is not None:
        process["user"] = {"uid": wanted.user.uid, "gid": wanted.user.gid,
                           "additionalGids": list(wanted.user.additional_gids)}
    if wanted.privileged:
        # Every capability this daemon may pass on (a nested daemon has fewer).
        allowed = bounding_set()
        every = [cap for cap in ALL_CAPABILITIES if cap in allowed]
        process["capabilities"] = {"bounding": every, "effective": every, "permitted": every,
                                   "inheritable": every}
    return process


@attrs.frozen
class StartedExec:
    pid: int
    attach: AttachSocket | None  # connected before the process ran, when asked for


class ExecRuntime:
    """exec sessions of the containers of one Runtime; works across daemon restarts."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._root = runtime.exec_root / "execs"
        self._socket_dir = runtime.exec_root / "attach"

    def files(self, exec_id: str) -> ExecFiles:
        return ExecFiles(self._root / exec_id, self._socket_dir, exec_id)

    async def start(self, container_id: str, exec_id: str, wanted: ExecProcess, *,
                    stdin: bool, attach: bool) -> StartedExec:
        """Run the process in the running container; OCIRuntimeError with runc's text
        when runc refuses it (nothing is left behind then)."""
        container_spec = self._runtime.spec(container_id)
        if container_spec is None:
            raise NotFound(f"container {container_id} has no running monitor to exec in")
        files = self.files(exec_id)
        files.directory.mkdir(parents=True, mode=0o700)
        self._socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            await asyncio.to_thread(files.process_spec.write_bytes, dumps(
                exec_process_spec(container_spec["process"], wanted)))
            started = await self._spawn(container_id, files, terminal=wanted.terminal,
                                        stdin=stdin, attach=attach)
        except BaseException:
            await self._wait_conmon_gone(files)
            files.remove()
            raise
        log.info("exec_started", container_id=container_id, exec_id=exec_id, pid=started.pid)
        return started

    def _argv(self, container_id: str, files: ExecFiles, *, terminal: bool, stdin: bool,
              attach: bool) -> list[str]:
        runc = self._runtime.runc
        argv = [self._runtime.conmon, "--api-version", "1",
                "-c", container_id, "-u", files.exec_id, "-n", files.exec_id,
                "-r", runc.binary, "-b", str(files.directory),
                "-p", str(files.pidfile), "-P", str(files.conmon_pidfile),
                "-l", "none", "--socket-dir-path", str(self._socket_dir),
                "--persist-dir", str(files.directory),
                "--exec", "--exec-process-spec", str(files.process_spec)]
        for arg in runc.global_args:
            argv += ["--runtime-arg", arg]
        if terminal:
            argv.append("-t")
        if stdin:
            argv.append("-i")
        if attach:
            argv.append("--exec-attach")
        return argv

    async def _spawn(self, container_id: str, files: ExecFiles, *, terminal: bool, stdin: bool,
                     attach: bool) -> StartedExec:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        sync_read, sync_write = os.pipe()
        ours, theirs = [sync_read], [sync_write]
        env[SYNC_PIPE_ENV] = str(sync_write)
        if attach:
            start_read, start_write = os.pipe()
            attach_read, attach_write = os.pipe()
            ours += [start_write, attach_read]
            theirs += [start_read, attach_write]
            env[START_PIPE_ENV], env[ATTACH_PIPE_ENV] = str(start_read), str(attach_write)
        socket: AttachSocket | None = None
        try:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self._argv(container_id, files, terminal=terminal, stdin=stdin,
                                attach=attach),
                    env=env, pass_fds=theirs, cwd=files.directory,
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE)
            finally:
                for fd in theirs:
                    os.close(fd)
            if attach:
                os.write(start_write, b"0")  # conmon may daemonize
                ours.remove(attach_read)  # the reader closes it
                if await read_sync_line(attach_read):
                    socket = AttachSocket(await connect_in_dir(files.directory, "attach"))
                os.write(start_write, b"0")  # attached: runc may run the process
            ours.remove(sync_read)
            line = await read_sync_line(sync_read)
            # The first conmon process exits once its daemon is forked (and the pidfile written).
            _, conmon_err = await proc.communicate()
            if not line:
                text = (conmon_err.decode(errors="replace").strip()
                        or f"conmon exited with status {proc.returncode}")
                raise OCIRuntimeError("exec", text)
            report = json.loads(line)
            pid = int(report.get("data", -1))
            if pid <= 0:
                raise OCIRuntimeError("exec", runc_error_text(report.get("message", "")))
        except BaseException:
            if socket is not None:
                socket.close()
            raise
        finally:
            for fd in ours:
                os.close(fd)
        return StartedExec(pid, socket)

    def _conmon_pidfd(self, files: ExecFiles) -> int | None:
        pid = read_pid(files.conmon_pidfile)
        if pid is None:
            return None
        # The session's directory is unique to it: a reused pid will not match.
        return open_pidfd(pid, cmdline_has=(files.exec_id.encode(), str(files.directory).encode()))

    def alive(self, exec_id: str) -> bool:
        """Whether the session's conmon still watches its process."""
        pidfd = self._conmon_pidfd(self.files(exec_id))
        if pidfd is None:
            return False
        os.close(pidfd)
        return True

    def read_exit(self, exec_id: str) -> ExitStatus | None:
        return read_exit_file(self.files(exec_id).exit_file)

    async def wait(self, exec_id: str) -> ExitStatus:
        """Wait for the process to end (through its conmon), then its exit status."""
        files = self.files(exec_id)
        pidfd = self._conmon_pidfd(files)
        if pidfd is not None:
            await wait_pidfd(pidfd)
        status = read_exit_file(files.exit_file)
        if status is None:
            log.warning("exec_exit_lost", exec_id=exec_id)
            status = ExitStatus(LOST_EXIT_CODE, datetime.now(timezone.utc))
        return status

    async def _wait_conmon_gone(self, files: ExecFiles) -> None:
        pidfd = self._conmon_pidfd(files)
        if pidfd is not None:
            await wait_pidfd(pidfd)

    def kill(self, exec_id: str, signal: int = signals.SIGKILL) -> None:
        """Signal the exec's process (runc kill only reaches a container's init)."""
        files = self.files(exec_id)
        pid = read_pid(files.pidfile)
        if pid is None or not self.alive(exec_id):
            return
        pidfd = open_pidfd(pid)
        if pidfd is None:
            return
        try:
            signals.pidfd_send_signal(pidfd, signal)
        except ProcessLookupError:
            pass
        finally:
            os.close(pidfd)

    def resize(self, exec_id: str, height: int, width: int) -> None:
        write_control(self.files(exec_id).directory / "ctl", f"{CTL_RESIZE} {height} {width}\n",
                      f"exec {exec_id} has no running monitor to resize")

    async def remove(self, exec_id: str) -> None:
        """Forget a session whose process has ended (or kill it first)."""
        files = self.files(exec_id)
        if self.alive(exec_id):
            self.kill(exec_id)
            await self._wait_conmon_gone(files)
        await asyncio.to_thread(files.remove)
