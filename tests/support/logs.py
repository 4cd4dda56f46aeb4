"""Reading conmon's k8s-file logs in tests, through servin's own reader."""

from __future__ import annotations

from pathlib import Path

import attrs

from servin.http.logrender import LogRenderer
from servin.oci.logfile import log_fields, read_log


@attrs.frozen
class Line:
    stream: str  # "stdout" | "stderr"
    data: bytes  # with its newline unless partial


def lines_of(block: bytes) -> list[Line]:
    return [Line(stream.decode(), data) for _, stream, data in log_fields(block)]


async def read_lines(path: Path, **kwargs) -> list[Line]:
    """Every line read (``read_log``'s keyword arguments: follow, tail, stop)."""
    return [line async for block in read_log(path, lines_of, **kwargs) for line in block]


async def rendered(path: Path, renderer: LogRenderer, **kwargs) -> bytes:
    """What `docker logs` sends with ``renderer``, up to the end its ``until`` makes."""
    parts = []
    async for block in read_log(path, renderer, **kwargs):
        parts.append(block.data)
        if block.ended:
            break
    return b"".join(parts)
