"""A client of conmon's attach socket (SOCK_SEQPACKET).

Each packet from conmon is one byte naming the stream (2 stdout, 3 stderr)
followed by the data; packets to conmon are raw stdin bytes. Shutting down our
write side makes conmon close the container's stdin (unless it runs with
--leave-stdin-open). conmon closes the connection when the container exits,
after sending all remaining output.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import structlog

log = structlog.get_logger("servin.oci")

STREAMS = {1: "stdin", 2: "stdout", 3: "stderr"}
# conmon reads its container's pipes 8 KiB at a time; a packet is that plus the stream byte.
RECV_SIZE = 65536
# conmon reads stdin packets into a 32 KiB buffer and drops the rest; stay well below.
SEND_CHUNK = 8192


async def connect_in_dir(directory: Path, name: str) -> socket.socket:
    """Connect to the seqpacket socket ``directory/name`` whatever the path length.

    A unix socket address is limited to 107 bytes, so the path goes through an
    O_PATH descriptor of the directory, as conmon does when binding.
    """
    dirfd = os.open(directory, os.O_PATH | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{dirfd}/{name}")
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dirfd)
    return sock


class AttachSocket:
    """One attached client: read output packets, write stdin, close stdin, close.

    ``close()`` may be called while another task waits in ``read()``; that read
    then returns None.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._reading: asyncio.Task | None = None
        self._closed = False

    async def read(self) -> tuple[str, bytes] | None:
        """Next output chunk as ("stdout"|"stderr", data); None once the container's output ended."""
        if self._closed:
            return None
        self._reading = asyncio.ensure_future(self._loop.sock_recv(self._sock, RECV_SIZE))
        try:
            packet = await self._reading
        except asyncio.CancelledError:
            if self._closed:
                return None
            raise
        except OSError as e:  # reset by conmon
            log.debug("attach_read_ended", error=str(e))
            return None
        finally:
            self._reading = None
        if not packet:
            return None
        return STREAMS.get(packet[0], "stdout"), packet[1:]

    async def write(self, data: bytes) -> None:
        for start in range(0, len(data), SEND_CHUNK):
            await self._loop.sock_sendall(self._sock, data[start:start + SEND_CHUNK])

    async def close_stdin(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as e:  # already disconnected
            log.debug("attach_shutdown_failed", error=str(e))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reading is not None:
            self._reading.cancel()
            # Closing only after the cancelled read has unregistered the descriptor,
            # which it does in a callback already queued.
            self._loop.call_soon(self._sock.close)
        else:
            self._sock.close()

    async def __aenter__(self) -> AttachSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
