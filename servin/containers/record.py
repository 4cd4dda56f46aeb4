"""The engine's record of a container, persisted as JSON under the data root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import cattrs

from servin.containers.mounts import MountPoint
from servin.store import atomic_write_json, read_json

RECORD_FILE = "config.v2.json"


@attrs.define
class HealthResult:
    """One healthcheck probe: times in nanoseconds since the epoch."""

    start_ns: int
    end_ns: int
    exit_code: int
    output: str


@attrs.define
class Health:
    status: str = "starting"  # starting, healthy, unhealthy
    failing_streak: int = 0
    log: list[HealthResult] = attrs.Factory(list)  # the last five results


@attrs.define
class ContainerState:
    status: str = "created"  # created, running, paused, restarting, removing, exited, dead
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    dead: bool = False
    # Nanoseconds since the epoch; 0 for never.
    started_ns: int = 0
    finished_ns: int = 0
    # Only for containers with a healthcheck (State.Health).
    health: Health | None = None

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")


@attrs.define
class Container:
    id: str
    name: str                 # without Docker's leading slash
    created_ns: int
    image_id: str
    config: dict[str, Any]    # Docker's Config, merged with the image's
    host_config: dict[str, Any]
    path: str
    args: list[str]
    state: ContainerState = attrs.Factory(ContainerState)
    restart_count: int = 0
    # Stopped or killed by a client: no restart until started again (dockerd's
    # HasBeenManuallyStopped; unless-stopped also stays down across daemon restarts).
    manually_stopped: bool = False
    # EndpointsConfig by network name, with each network's id (NetworkID).
    endpoints: dict[str, dict[str, Any]] = attrs.Factory(dict)
    # Binds, Mounts, VolumesFrom and anonymous volumes, resolved at create.
    mounts: list[MountPoint] = attrs.Factory(list)

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
