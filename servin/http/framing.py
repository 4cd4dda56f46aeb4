"""Docker's multiplexed stdout/stderr stream framing.

Each frame is an 8-byte header ``[stream, 0, 0, 0, size (uint32 big-endian)]``
followed by ``size`` bytes; stream 0 is stdin, 1 stdout, 2 stderr, 3 system
(errors). Containers with a TTY send raw bytes instead.
"""

from __future__ import annotations

import struct

STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2, "system": 3}
HEADER = struct.Struct(">BxxxI")
MAX_FRAME = 0xFFFFFFFF


def frame(stream: str, data: bytes) -> bytes:
    stream_id = STREAM_IDS[stream]
    if len(data) <= MAX_FRAME:
        return HEADER.pack(stream_id, len(data)) + data
    return b"".join(frame(stream, data[i:i + MAX_FRAME]) for i in range(0, len(data), MAX_FRAME))


def deframe(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Split complete frames off ``buffer``; return them and the incomplete rest."""
    frames = []
    offset = 0
    while len(buffer) - offset >= HEADER.size:
        stream_id, size = HEADER.unpack_from(buffer, offset)
        end = offset + HEADER.size + size
        if end > len(buffer):
            break
        frames.append((stream_id, buffer[offset + HEADER.size:end]))
        offset = end
    return frames, buffer[offset:]
