"""Docker's ``local`` volume driver: names, driver options, and mounting them.

A volume's data lives in ``<data-root>/volumes/<name>/_data``. With driver options
``type``, ``device`` and ``o`` it is instead a filesystem mounted there while a
container uses it (``mount -t <type> -o <o> <device> _data``), as dockerd's
volume/local does: tmpfs, a bind of a host directory (``type=none,o=bind``), NFS...
"""

from __future__ import annotations

import re
from pathlib import Path

from servin.errors import InvalidArgument
from servin.mounts import is_mountpoint, mount, unmount

DRIVER = "local"
DATA_DIR = "_data"
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
VALID_OPTIONS = ("type", "o", "device", "size")
# Each option needs the others it names (dockerd's mandatoryOpts).
REQUIRED_WITH = {"device": ("type",), "type": ("device",), "o": ("device", "type")}


def check_name(name: str) -> None:
    if len(name) == 1:
        raise InvalidArgument("volume name is too short, names should be at least two "
                              "alphanumeric characters")
    if not NAME_RE.match(name):
        raise InvalidArgument(f'"{name}" includes invalid characters for a local volume name, '
                              f'only "{NAME_CHARS}" are allowed. If you intended to pass a host '
                              "directory, use absolute path")


def check_options(options: dict[str, str]) -> None:
    for key in options:
        if key not in VALID_OPTIONS:
            raise InvalidArgument(f'invalid option: "{key}"')
    if "size" in options:
        # Size limits need project quotas on the backing filesystem, which Servin does not set.
        raise InvalidArgument("quota size requested but no quota support")
    for key, required in REQUIRED_WITH.items():
        for other in required:
            if key in options and other not in options:
                raise InvalidArgument(f'missing required option: "{other}"')


def needs_mount(options: dict[str, str] | None) -> bool:
    return bool(options and options.get("device"))


async def mount_data(options: dict[str, str], data: Path) -> None:
    await mount(options["type"], options["device"], data, options.get("o") or "defaults")


async def unmount_data(data: Path) -> None:
    if is_mountpoint(data):
        await unmount(data)
