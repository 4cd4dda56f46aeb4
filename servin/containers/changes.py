"""docker diff: a container's changes to its image's files, read from its overlay layers.

dockerd 20.10 compares the container's whole filesystem with its image's (the
overlay2 driver's naive diff). Only what the upper layer holds can differ, so
this walks the upper layer and compares each entry with the image's view of the
same path, with dockerd's rules: a directory counts as changed only for its
mode, owner or device (never its size or mtime), a file also for its mtime,
size or file capabilities; the parent of a change is reported as modified, ahead
of its children. Overlay whiteouts (0/0 character devices) are deletions; an
opaque directory deletes what the image had below it.

Blocking code: callers run it off the event loop.
"""

from __future__ import annotations

import asyncio
import enum
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import attrs

from servin.containers.record import Container
from servin.images.archive import OPAQUE_XATTR
from servin.images.layers import LayerStore

CAPABILITY_XATTR = "security.capability"

# Docker's init layer holds these, so that the runtime's mount points are not changes
# of the container; runc creates them in the upper layer here, and they are left out.
INIT_LAYER_PATHS = frozenset({
    "/dev", "/dev/pts", "/dev/shm", "/dev/console", "/proc", "/sys", "/etc",
    "/.dockerenv", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname", "/etc/mtab",
})


class ChangeKind(enum.IntEnum):
    MODIFIED = 0
    ADDED = 1
    DELETED = 2


@attrs.frozen
class Change:
    path: str
    kind: ChangeKind

    def to_json(self) -> dict[str, object]:
        return {"Path": self.path, "Kind": int(self.kind)}


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _capability(path: str) -> bytes | None:
    try:
        return os.getxattr(path, CAPABILITY_XATTR, follow_symlinks=False)
    except OSError:
        return None


class ImageView:
    """The image's merged filesystem, looked up through its layer directories (top first)."""

    def __init__(self, layers: list[str]) -> None:
        self.layers = layers

    def _visible(self, parts: list[str]) -> Iterator[tuple[str, os.stat_result]]:
        """The path's entries in the layers, top down, as far as lower ones are not hidden."""
        for layer in self.layers:
            current, found, hides_below = layer, None, False
            for index, part in enumerate(parts):
                current = os.path.join(current, part)
                st = _lstat(current)
                if st is None:
                    break
                if _is_whiteout(st):
                    return
                if index == len(parts) - 1:
                    found = st
                elif not stat.S_ISDIR(st.st_mode):
                    return  # a file above hides everything below its name
                elif _is_opaque(current):
                    hides_below = True
            if not parts:
                found = _lstat(current)
            if found is not None:
                yield current, found
                if not stat.S_ISDIR(found.st_mode) or _is_opaque(current):
                    return
            if hides_below:
                return

    def stat(self, parts: list[str]) -> tuple[str, os.stat_result] | None:
        return next(self._visible(parts), None)

    def children(self, parts: list[str]) -> set[str]:
        names: set[str] = set()
        hidden: set[str] = set()
        for directory, st in self._visible(parts):
            if not stat.S_ISDIR(st.st_mode):
                break
            for entry in os.scandir(directory):
                if entry.name in hidden or entry.name in names:
                    continue
                if _is_whiteout(entry.stat(follow_symlinks=False)):
                    hidden.add(entry.name)
                else:
                    names.add(entry.name)
        return names


def _differs(old_path: str, old: os.stat_result, new_path: str, new: os.stat_result) -> bool:
    """dockerd's statDifferent, plus its file capability comparison."""
    if (old.st_mode, old.st_uid, old.st_gid, old.st_rdev) != \
            (new.st_mode, new.st_uid, new.st_gid, new.st_rdev):
        return True
    if not stat.S_ISDIR(old.st_mode):
        # Whole seconds match when either side has none (tar keeps no fractions).
        same_time = old.st_mtime_ns == new.st_mtime_ns or (
            old.st_mtime_ns // 10**9 == new.st_mtime_ns // 10**9
            and (old.st_mtime_ns % 10**9 == 0 or new.st_mtime_ns % 10**9 == 0))
        if not same_time or old.st_size != new.st_size:
            return True
    return _capability(old_path) != _capability(new_path)


class _Walk:
    def __init__(self, upper: str, image: ImageView) -> None:
        self.upper = upper
        self.image = image
        self.changes: list[Change] = []

    def directory(self, parts: list[str], *, in_image: bool, opaque: bool,
                  reported: bool) -> None:
        """Compare the upper layer's directory ``parts`` with the image's."""
        start = len(self.changes)
        host = os.path.join(self.upper, *parts)
        try:
            names = sorted(os.listdir(host))
        except (FileNotFoundError, NotADirectoryError):
            return  # removed by the running container meanwhile
        for name in names:
            self.entry(parts + [name], in_image=in_image)
        if opaque and in_image:
            # An opaque directory hides all the image had in it, but what the upper has.
            for name in sorted(self.image.children(parts) - set(names)):
                self.changes.append(Change(_path(parts + [name]), ChangeKind.DELETED))
        if len(self.changes) > start and parts and not reported:
            self.changes.insert(start, Change(_path(parts), ChangeKind.MODIFIED))

    def entry(self, parts: list[str], *, in_image: bool) -> None:
        host = os.path.join(self.upper, *parts)
        st = _lstat(host)
        if st is None:
            return
        path = _path(parts)
        old = self.image.stat(parts) if in_image else None
        if _is_whiteout(st):
            if old is not None:
                self.changes.append(Change(path, ChangeKind.DELETED))
            return
        is_dir = stat.S_ISDIR(st.st_mode)
        reported = False
        if path in INIT_LAYER_PATHS:
            pass  # baseline, as if an init layer held it
        elif old is None:
            self.changes.append(Change(path, ChangeKind.ADDED))
            reported = True
        elif _differs(old[0], old[1], host, st):
            self.changes.append(Change(path, ChangeKind.MODIFIED))
            reported = True
        if is_dir:
            old_is_dir = old is not None and stat.S_ISDIR(old[1].st_mode)
            self.directory(parts, in_image=old_is_dir, opaque=_is_opaque(host),
                           reported=reported)


def _path(parts: list[str]) -> str:
    return "/" + "/".join(parts)


def layer_changes(upper: Path, image_layers: list[Path]) -> list[Change]:
    """The changes of the upper layer ``upper`` over the image layers (top first)."""
    walk = _Walk(str(upper), ImageView([str(layer) for layer in image_layers]))
    walk.directory([], in_image=True, opaque=_is_opaque(str(upper)), reported=True)
    return walk.changes


async def container_changes(layers: LayerStore, container: Container) -> list[Change]:
    """GET /containers/{id}/changes, read off the event loop."""
    data = layers.graph_driver_data(container.id)
    lowers = [Path(p) for p in data["LowerDir"].split(":")] if data.get("LowerDir") else []
    return await asyncio.to_thread(layer_changes, Path(data["UpperDir"]), lowers)
