"""The engine's record of a volume, persisted beside its data."""

from __future__ import annotations

from pathlib import Path

import attrs
import cattrs

from servin.store import atomic_write_json, read_json

RECORD_FILE = "volume.json"
# Later Docker's mark of a volume made without a name; prune removes only these by default.
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


@attrs.define
class Volume:
    name: str
    created_ns: int
    driver: str = "local"
    # None when the request gave none: inspect shows null, as dockerd.
    labels: dict[str, str] | None = None
    options: dict[str, str] | None = None

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in (self.labels or {})


def save_record(directory: Path, volume: Volume) -> None:
    atomic_write_json(directory / RECORD_FILE, cattrs.unstructure(volume))


def load_record(directory: Path) -> Volume:
    return cattrs.structure(read_json(directory / RECORD_FILE), Volume)
