"""Host cgroup facts the spec needs, and removal of a daemon's emptied cgroup parent."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import structlog

log = structlog.get_logger("servin.oci")

CGROUP_ROOT = Path("/sys/fs/cgroup")


def is_cgroup_v2(root: Path = CGROUP_ROOT) -> bool:
    """True on a unified (v2-only) hierarchy, where Docker gives containers a cgroup namespace."""
    return (root / "cgroup.controllers").exists()


def remove_cgroup(path: str, root: Path = CGROUP_ROOT) -> None:
    """rmdir the cgroup ``path`` (e.g. ``/servin``) in every hierarchy, if it is empty.

    runc deletes a container's own cgroup but leaves the parent it created.
    """
    relative = path.strip("/")
    candidates = [root / relative] if is_cgroup_v2(root) else [h / relative for h in root.iterdir()]
    for candidate in candidates:
        try:
            os.rmdir(candidate)
        except FileNotFoundError:
            continue
        except OSError as e:
            if e.errno == errno.EBUSY:  # live containers still use it
                log.debug("cgroup_in_use", path=str(candidate))
                continue
            log.warning("cgroup_remove_failed", path=str(candidate), error=str(e))
