"""Docker's JSON shape of a volume (GET /volumes, inspect, create, /system/df)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs

from servin.volumes.record import Volume


@attrs.frozen
class UsageData:
    size: int       # bytes; -1 when not counted
    ref_count: int  # containers referencing the volume


def created_at(created_ns: int) -> str:
    """dockerd's local driver reports the creation time in RFC 3339, whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created_ns // 1_000_000_000))


def volume_view(volume: Volume, mountpoint: Path, usage: UsageData | None = None
                ) -> dict[str, Any]:
    out: dict[str, Any] = {
        "CreatedAt": created_at(volume.created_ns),
        "Driver": volume.driver,
        "Labels": volume.labels,
        "Mountpoint": str(mountpoint),
        "Name": volume.name,
        "Options": volume.options,
        "Scope": "local",
    }
    if usage is not None:
        out["UsageData"] = {"Size": usage.size, "RefCount": usage.ref_count}
    return out
