"""Spawning conmon, the per-container monitor, and its files under the exec root.

conmon runs ``runc create`` for us, then daemonizes: the container outlives
servind. It reports the outcome of ``runc create`` on a sync pipe as one JSON
line, ``{"data": <pid>}`` or ``{"data": -1, "message": <runc's stderr>}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import attrs

from servin.oci.runc import OCIRuntimeError, Runc, runc_error_text

SYNC_PIPE_ENV = "_OCI_SYNCPIPE"
# Variables of servind's own service manager that must not leak into conmon/runc.
SCRUBBED_ENV = ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
                "_OCI_STARTPIPE", "_OCI_ATTACHPIPE", SYNC_PIPE_ENV)


# sun_path's size: conmon shortens a link whose path would be one byte short of it.
SUN_PATH_SIZE = 108


def conmon_link(socket_dir: Path, cuuid: str) -> Path:
    """The link conmon makes in ``--socket-dir-path`` to a bundle (``--cuuid``): its path
    loses its last character when it is exactly 107 bytes long (conmon's
    socket_parent_dir, so that the link never has the length of the socket's path)."""
    link = socket_dir / cuuid
    if len(os.fsencode(link)) == SUN_PATH_SIZE - 1:
        return socket_dir / cuuid[:-1]
    return link


@attrs.frozen
class ConmonFiles:
    """Where conmon keeps one container's pidfiles, exit file and attach link."""

    state_dir: Path      # <exec_root>/conmon/<id>
    exit_dir: Path       # <exec_root>/exits, conmon writes <id> there
    socket_dir: Path     # <exec_root>/attach, conmon links <id> -> the bundle
    container_id: str

    @property
    def conmon_pidfile(self) -> Path:
        return self.state_dir / "conmon.pid"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "init.pid"

    @property
    def exit_file(self) -> Path:
        return self.exit_dir / self.container_id

    @property
    def oom_file(self) -> Path:
        """Created by conmon (``--persist-dir``) when the OOM killer hits the container."""
        return self.state_dir / "oom"

    @property
    def bundle_link(self) -> Path:
        """Symlink to the bundle, holding the ``attach`` socket and ``ctl``/``winsz`` fifos."""
        return conmon_link(self.socket_dir, self.container_id)

    def prepare(self) -> None:
        for d in (self.state_dir, self.exit_dir, self.socket_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.remove_run_files()

    def remove_run_files(self) -> None:
        """Forget a previous run of this container (files conmon leaves behind)."""
        for path in (self.exit_file, self.conmon_pidfile, self.pidfile, self.oom_file):
            path.unlink(missing_ok=True)
        if self.bundle_link.is_symlink():
            for name in ("attach", "ctl", "winsz"):
                (self.bundle_link / name).unlink(missing_ok=True)
            self.bundle_link.unlink()

    def remove_all(self) -> None:
        self.remove_run_files()
        # conmon's --persist-dir files (exit, oom) live here too.
        shutil.rmtree(self.state_dir, ignore_errors=True)


@attrs.frozen
class ConmonOptions:
    container_id: str
    bundle: Path
    log_path: Path | None  # None: the output is not logged (the attach socket still serves it)
    terminal: bool = False
    stdin: bool = False
    leave_stdin_open: bool = False
    log_size_max: int | None = None


# Messages on conmon's ``ctl`` fifo: "<type> <height> <width>\n".
CTL_RESIZE = 1
CTL_REOPEN_LOG = 2


def conmon_argv(conmon: str, runc: Runc, files: ConmonFiles, opts: ConmonOptions) -> list[str]:
    argv = [
        conmon, "--api-version", "1",
        "-c", opts.container_id, "-u", opts.container_id, "-n", opts.container_id,
        "-r", runc.binary,
        "-b", str(opts.bundle),
        "-p", str(files.pidfile), "-P", str(files.conmon_pidfile),
        "-l", f"k8s-file:{opts.log_path}" if opts.log_path else "none",
        "--exit-dir", str(files.exit_dir),
        "--socket-dir-path", str(files.socket_dir),
        "--persist-dir", str(files.state_dir),
    ]
    for arg in runc.global_args:
        argv += ["--runtime-arg", arg]
    if opts.terminal:
        argv.append("-t")
    if opts.stdin:
        argv.append("-i")
    if opts.leave_stdin_open:
        argv.append("--leave-stdin-open")
    if opts.log_size_max:
        argv += ["--log-size-max", str(opts.log_size_max)]
    return argv


async def read_sync_line(read_fd: int) -> bytes:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0))
    try:
        return await reader.readline()
    finally:
        transport.close()


async def spawn_conmon(conmon: str, runc: Runc, files: ConmonFiles, opts: ConmonOptions) -> int:
    """Run conmon (hence ``runc create``); the container's pid, or OCIRuntimeError with runc's text."""
    read_fd, write_fd = os.pipe()
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env[SYNC_PIPE_ENV] = str(write_fd)
    try:
        proc = await asyncio.create_subprocess_exec(
            *conmon_argv(conmon, runc, files, opts), env=env, pass_fds=(write_fd,),
            # conmon drops files (an "oom" mark) in its working directory: keep them
            # in the container's own state directory, not wherever servind started.
            cwd=files.state_dir,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    line = await read_sync_line(read_fd)
    # The first conmon process exits as soon as its daemon child is forked.
    _, conmon_err = await proc.communicate()
    if not line:
        text = conmon_err.decode(errors="replace").strip() or f"conmon exited with status {proc.returncode}"
        raise OCIRuntimeError("create", text)
    report = json.loads(line)
    pid = int(report.get("data", -1))
    if pid <= 0:
        raise OCIRuntimeError("create", runc_error_text(report.get("message", "")))
    return pid
