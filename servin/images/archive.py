"""Safe unpacking of image layer tarballs into an overlay2 ``diff`` directory.

Blocking code: callers run it off the event loop. OCI whiteouts become overlay
whiteouts (``.wh.NAME`` -> 0/0 character device ``NAME``; ``.wh..wh..opq`` ->
``trusted.overlay.opaque=y`` on the directory). Hostile entries are refused:
paths that climb out of the layer, symlinks that lead outside it, hard links
to files outside it. Ownership, modes, mtimes, xattrs and device nodes are
kept, as the image author made them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO, Callable

import attrs

from servin.errors import InvalidArgument

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
PAX_XATTR_PREFIX = "SCHILY.xattr."
MAX_SYMLINK_HOPS = 40
CHUNK = 1024 * 1024

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ArchiveError(InvalidArgument):
    """A layer archive that cannot be unpacked safely."""


@attrs.frozen
class UnpackResult:
    diff_id: str   # sha256 of the uncompressed tar stream
    size: int      # bytes of regular file content in the layer


ReadCallback = Callable[[int], None]


class _CountingReader:
    """Reports how many (compressed) bytes were consumed, for progress."""

    def __init__(self, raw: BinaryIO, on_read: ReadCallback | None) -> None:
        self._raw = raw
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if self._on_read is not None and data:
            self._on_read(len(data))
        return data


class _HashingReader:
    """Hashes the uncompressed tar stream as tarfile reads it: the layer's diff id."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def open_decompressed(blob: BinaryIO, on_read: ReadCallback | None = None) -> BinaryIO:
    """The uncompressed stream of a layer blob (plain tar or gzip)."""
    magic = blob.read(4)
    blob.seek(0)
    counted = _CountingReader(blob, on_read)
    if magic.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=counted, mode="rb")  # type: ignore[arg-type]
    if magic == ZSTD_MAGIC:
        raise ArchiveError("unsupported layer compression: zstd")
    return counted  # type: ignore[return-value]


def unpack_layer(blob: Path, dest: Path, on_read: ReadCallback | None = None) -> UnpackResult:
    """Unpack the layer blob at ``blob`` into the empty directory ``dest``."""
    with open(blob, "rb") as raw:
        hashing = _HashingReader(open_decompressed(raw, on_read))
        try:
            size = Unpacker(str(dest)).run(hashing)
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise ArchiveError(f"invalid layer archive: {exc}") from None
        hashing.drain()
    return UnpackResult("sha256:" + hashing.hash.hexdigest(), size)


def clean_member_path(name: str) -> list[str]:
    """Components of a tar entry's path inside the layer; refuses escapes.

    A leading ``/`` is neutralised (the path is taken relative to the layer, as
    Docker does); ``..`` that climbs above the layer root is refused.
    """
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ArchiveError(f"invalid tar entry {name!r}: path escapes the layer")
            parts.pop()
        else:
            parts.append(part)
    return parts


class Unpacker:
    def __init__(self, root: str) -> None:
        self.root = root
        self.dir_times: list[tuple[str, int]] = []
        self.size = 0

    def run(self, stream: BinaryIO) -> int:
        with tarfile.open(fileobj=stream, mode="r|", format=tarfile.PAX_FORMAT) as tar:
            for member in tar:
                self._member(tar, member)
        # Directory mtimes last: creating entries inside them changed them.
        for path, mtime_ns in reversed(self.dir_times):
            os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
        return self.size

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = clean_member_path(member.name)
        if not parts:
            return  # the layer root itself: its metadata belongs to the lower layers
        base = parts[-1]
        parent = self._resolve_dir(parts[:-1], member.name)
        if base == OPAQUE_MARKER:
            os.setxattr(parent, OPAQUE_XATTR, b"y", follow_symlinks=False)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # aufs bookkeeping entries carry nothing for overlay
        if base.startswith(WHITEOUT_PREFIX):
            path = os.path.join(parent, base[len(WHITEOUT_PREFIX):])
            self._make_room(path, is_dir=False)
            os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            os.chown(path, member.uid, member.gid, follow_symlinks=False)
            return
        path = os.path.join(parent, base)
        self._make_room(path, is_dir=member.isdir())
        self._create(tar, member, path)
        self._apply_metadata(member, path)

    def _resolve_dir(self, parts: list[str], entry: str) -> str:
        """Real path of a directory of the layer, created if missing.

        Symlinks met on the way are followed as if the layer were the root
        filesystem; one that leads above the layer root is refused.
        """
        pending = list(parts)
        resolved: list[str] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise ArchiveError(f"invalid tar entry {entry!r}: "
                                       f"a symlink on its path leads outside the layer")
                resolved.pop()
                continue
            path = os.path.join(self.root, *resolved, part)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
                resolved.append(part)
                continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise ArchiveError(f"invalid tar entry {entry!r}: too many symlinks")
                target = os.readlink(path)
                if target.startswith("/"):
                    resolved = []
                pending = target.split("/") + pending
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise ArchiveError(f"invalid tar entry {entry!r}: "
                                   f"{'/'.join(resolved + [part])} is not a directory")
            resolved.append(part)
        return os.path.join(self.root, *resolved)

    def _make_room(self, path: str, *, is_dir: bool) -> None:
        """Remove what is at ``path`` unless a directory is replaced by a directory."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not is_dir:
                shutil.rmtree(path)
        else:
            os.unlink(path)

    def _create(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
        if member.isdir():
            if not os.path.isdir(path):
                os.mkdir(path, 0o700)
        elif member.isreg():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                source = tar.extractfile(member)
                assert source is not None  # a regular member always has a body
                shutil.copyfileobj(source, out, CHUNK)
            self.size += member.size
        elif member.issym():
            os.symlink(member.linkname, path)
        elif member.islnk():
            os.link(self._link_target(member), path, follow_symlinks=False)
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        elif member.isfifo():
            os.mkfifo(path, 0o600)
        else:
            raise ArchiveError(f"invalid tar entry {member.name!r}: "
                               f"unsupported type {member.type!r}")

    def _link_target(self, member: tarfile.TarInfo) -> str:
        parts = clean_member_path(member.linkname)
        if not parts:
            raise ArchiveError(f"invalid tar entry {member.name!r}: hard link to the root")
        target = os.path.join(self._resolve_dir(parts[:-1], member.name), parts[-1])
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            raise ArchiveError(f"invalid tar entry {member.name!r}: hard link target "
                               f"{member.linkname!r} is not in the layer") from None
        if stat.S_ISDIR(st.st_mode):
            raise ArchiveError(f"invalid tar entry {member.name!r}: hard link to a directory")
        return target

    def _apply_metadata(self, member: tarfile.TarInfo, path: str) -> None:
        if member.islnk():
            return  # a hard link shares its target's inode, metadata included
        os.chown(path, member.uid, member.gid, follow_symlinks=False)
        if not member.issym():
            os.chmod(path, member.mode & 0o7777)  # after chown, which clears set-id bits
        for key, value in member.pax_headers.items():
            if key.startswith(PAX_XATTR_PREFIX):
                os.setxattr(path, key[len(PAX_XATTR_PREFIX):],
                            value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
        mtime_ns = int(member.mtime * 1_000_000_000)
        if member.isdir():
            self.dir_times.append((path, mtime_ns))
        else:
            os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
