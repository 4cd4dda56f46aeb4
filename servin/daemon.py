"""servind: the daemon's life, from flags to a clean exit.

Start-up order follows dockerd: configuration, PID file, listeners, engine,
API. Shutdown runs it backwards on SIGTERM or SIGINT: stop accepting, shut the
engine down, remove the sockets and the PID file. A daemon killed outright
leaves a socket file and a PID file that the next start takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Iterator, Sequence

import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from servin import API_VERSION, __version__, hostinfo
from servin.config import ConfigError, DaemonConfig, load_config
from servin.engine import Engine
from servin.errors import ServinError
from servin.http.app import make_app
from servin.listeners import close_listeners, open_listeners
from servin.logsetup import configure_logging

log = structlog.get_logger("servin.daemon")

# In-flight requests get this long to finish on shutdown; long streams (events, logs -f,
# attach) are then cancelled, as dockerd drops them when it exits.
SHUTDOWN_GRACE_SECONDS = 3.0


class _AccessLogger(AbstractAccessLogger):
    @property
    def enabled(self) -> bool:
        # Off below debug: aiohttp then skips the call and the timing of every request.
        return logging.getLogger().isEnabledFor(logging.DEBUG)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        log.debug("request", method=request.method, path=request.path_qs,
                  status=response.status, seconds=round(time, 4))


@contextlib.contextmanager
def pidfile(path: Path) -> Iterator[None]:
    """Hold the PID file for the daemon's life.

    A lock on it, rather than the PID it names, tells whether a daemon still
    runs: the kernel drops the lock when a daemon dies, even by kill -9, and a
    recycled PID cannot keep a restart from happening.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            running = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise ConfigError(f"pid file found, ensure servind is not running or delete {path} "
                              f"(held by process {running})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def notify_systemd(state: str) -> None:
    """sd_notify(3): tell systemd we are ready or stopping (Type=notify units)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(state.encode())


def install_stop_handlers(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT end the daemon, and only the daemon.

    Not loop.add_signal_handler: its wakeup socket is inherited by forked children,
    and a signal one of them gets before it execs, written there, would stop us.
    """
    daemon_pid = os.getpid()

    def on_signal(signum: int, frame: object) -> None:
        if os.getpid() != daemon_pid:
            # A forked child told to end: end as it would without our handler.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        loop.call_soon_threadsafe(stop.set)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)


def watch_children_by_pidfd(loop: asyncio.AbstractEventLoop) -> None:
    """Child processes (conmon, runc) reaped through pidfds on the loop. Python 3.11's
    default watcher starts a thread per child to wait for it; 3.12 and later use
    pidfds themselves, and deprecate choosing a watcher."""
    if sys.version_info < (3, 12):
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(loop)
        asyncio.set_child_watcher(watcher)


async def serve(config: DaemonConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    install_stop_handlers(loop, stop)
    watch_children_by_pidfd(loop)

    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(pidfile(config.pidfile))
        listeners = open_listeners(config.hosts)
        stack.callback(close_listeners, listeners)

        engine = Engine(config)
        await engine.start()
        stack.push_async_callback(engine.shutdown)

        runner = web.AppRunner(make_app(engine), handle_signals=False,
                               access_log_class=_AccessLogger,
                               shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        for listener in listeners:
            await web.SockSite(runner, listener.sock).start()

        # runc's and conmon's versions are left to /info and /version: asking them here
        # cost every start two processes.
        log.info("daemon_started", version=__version__, api_version=API_VERSION, pid=os.getpid(),
                 hosts=[str(listener.host) for listener in listeners],
                 data_root=str(config.data_root), exec_root=str(config.exec_root),
                 engine_id=hostinfo.engine_id(config.data_root),
                 live_restore=config.live_restore)
        # What start-up made (modules, restored records) lives as long as the daemon:
        # out of the collector's sight, a full collection no longer walks it all.
        gc.freeze()
        notify_systemd("READY=1")
        await stop.wait()
        log.info("daemon_stopping")
        notify_systemd("STOPPING=1")
    log.info("daemon_stopped")


def main(argv: Sequence[str] | None = None) -> None:
    try:
        config = load_config(sys.argv[1:] if argv is None else argv)
        configure_logging(config.log_level)
        asyncio.run(serve(config))
    except ConfigError as exc:
        sys.exit(str(exc))
    except (ServinError, OSError) as exc:
        sys.exit(f"failed to start daemon: {exc}")
