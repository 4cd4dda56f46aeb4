"""The engine's record of a container, persisted as JSON under the data root."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import cattrs

from servin.store import atomic_write_json, read_json

ZERO_TIME = "0001-01-01T00:00:00Z"
RECORD_FILE = "config.v2.json"


def rfc3339_nano(moment: datetime | None = None) -> str:
    """Docker's time format: RFC 3339 with nanoseconds, UTC, trailing Z."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


@attrs.define
class ContainerState:
    status: str = "created"  # created, running, paused, restarting, removing, exited, dead
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    dead: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")


@attrs.define
class Container:
    id: str
    name: str                 # without Docker's leading slash
    created: str
    image_id: str
    config: dict[str, Any]    # Docker's Config, merged with the image's
    host_config: dict[str, Any]
    path: str
    args: list[str]
    state: ContainerState = attrs.Factory(ContainerState)
    restart_count: int = 0

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))


_converter = cattrs.Converter()


def save_record(directory: Path, container: Container) -> None:
    atomic_write_json(directory / RECORD_FILE, _converter.unstructure(container))


def load_record(directory: Path) -> Container:
    return _converter.structure(read_json(directory / RECORD_FILE), Container)
