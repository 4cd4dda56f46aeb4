"""Atomic, crash-safe persistence of engine state.

Every write goes to a temporary file in the same directory, is fsynced, then
renamed over the target and the directory fsynced, so after a crash a reader
sees either the old or the new content, never a torn file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from servin.jsoncodec import dumps


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """``durable=False`` skips both fsyncs, for files made again from the engine's records
    before each use (a container's /etc files, its OCI bundle): readers still never see
    a torn file, and no start waits for the disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any, mode: int = 0o600, *, durable: bool = True) -> None:
    atomic_write(path, dumps(obj), mode, durable=durable)


def read_json(path: Path) -> Any:
    with open(path, "rb") as f:
        return json.load(f)


def remove_stale_temps(directory: Path) -> None:
    """Drop temp files a crash left behind in ``directory`` (non-recursive)."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(".tmp"):
            entry.unlink(missing_ok=True)
