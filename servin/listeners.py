"""The sockets the API is served on: unix sockets, TCP, and systemd-activated fds."""

from __future__ import annotations

import errno
import grp
import os
import socket
import stat
from pathlib import Path

import attrs
import structlog

from servin.config import ConfigError, Host, parse_host

log = structlog.get_logger("servin.daemon")

SD_LISTEN_FDS_START = 3  # systemd passes activated sockets from fd 3 on
SOCKET_GROUP = "docker"  # as dockerd, so members of the docker group may use the socket


@attrs.define
class Listener:
    host: Host
    sock: socket.socket
    owned_path: Path | None = None  # a unix socket file we created, removed on close


def open_listeners(hosts: list[str]) -> list[Listener]:
    """Open a listening socket per host; on any failure close those already open."""
    listeners: list[Listener] = []
    activated: dict[int, socket.socket] | None = None
    try:
        for host in map(parse_host, hosts):
            if host.scheme == "unix":
                listeners.append(_unix_listener(host))
            elif host.scheme == "tcp":
                listeners.append(_tcp_listener(host))
            else:
                if activated is None:
                    activated = _activated_sockets()
                listeners.extend(_fd_listeners(host, activated))
    except BaseException:
        close_listeners(listeners)
        raise
    return listeners


def close_listeners(listeners: list[Listener]) -> None:
    for listener in listeners:
        listener.sock.close()
        if listener.owned_path is not None:
            listener.owned_path.unlink(missing_ok=True)


def _unix_listener(host: Host) -> Listener:
    path = Path(host.address)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The umask makes the socket appear with its final mode, never wider, even briefly.
    old_umask = os.umask(0o117)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"can't create unix socket {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    try:
        os.chown(path, -1, grp.getgrnam(SOCKET_GROUP).gr_gid)
    except KeyError:
        pass  # no docker group on this host: the socket stays root's only
    os.chmod(path, 0o660)
    return Listener(host, sock, owned_path=path)


def _remove_stale_socket(path: Path) -> None:
    """A socket file left by a daemon that died is taken over; a live daemon's is not."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"can't create unix socket {path}: the path exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise ConfigError(f"can't create unix socket {path}: {exc}") from None
    else:
        raise ConfigError(f"can't create unix socket {path}: another daemon is listening on it")
    finally:
        probe.close()
    log.info("stale_socket_removed", path=str(path))
    path.unlink(missing_ok=True)


def _tcp_listener(host: Host) -> Listener:
    address, port = host.tcp_endpoint
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = socket.create_server((address, port), family=family)
    except OSError as exc:
        raise ConfigError(f"can't listen on {host}: {exc.strerror}") from None
    log.warning("tcp_without_tls", host=str(host),
                warning="anyone who can reach this address has root access to this host")
    return Listener(host, sock)


def _activated_sockets() -> dict[int, socket.socket]:
    """The sockets systemd passed (sd_listen_fds), by fd number; the variables are consumed."""
    listen_pid = os.environ.pop("LISTEN_PID", "")
    count = os.environ.pop("LISTEN_FDS", "")
    os.environ.pop("LISTEN_FDNAMES", None)
    if listen_pid != str(os.getpid()) or not count.isdigit():
        return {}
    sockets = {}
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)):
        os.set_inheritable(fd, False)
        sockets[fd] = socket.socket(fileno=fd)
    return sockets


def _fd_listeners(host: Host, activated: dict[int, socket.socket]) -> list[Listener]:
    if not activated:
        raise ConfigError("no sockets found via socket activation: make sure the service was "
                          "started by systemd")
    if not host.address:
        return [Listener(host, sock) for sock in activated.values()]
    fd = int(host.address)
    if fd not in activated:
        raise ConfigError(f"{host}: fd {fd} was not passed by systemd "
                          f"(activated fds: {', '.join(map(str, activated))})")
    return [Listener(host, activated[fd])]
