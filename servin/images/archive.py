"""Safe unpacking of image layer tarballs into an overlay2 ``diff`` directory.

Blocking code: callers run it off the event loop. OCI whiteouts become overlay
whiteouts (``.wh.NAME`` -> 0/0 character device ``NAME``; ``.wh..wh..opq`` ->
``trusted.overlay.opaque=y`` on the directory). Hostile entries are refused:
paths that climb out of the layer, symlinks that lead outside it, hard links
to files outside it. Ownership, modes, mtimes, xattrs and device nodes are
kept, as the image author made them.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import stat
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import attrs

from servin.errors import InvalidArgument

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
PAX_XATTR_PREFIX = "SCHILY.xattr."
MAX_SYMLINK_HOPS = 40
CHUNK = 1024 * 1024

PIECE = 256 * 1024   # uncompressed bytes handled at a time
GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 16 + zlib.MAX_WBITS
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ArchiveError(InvalidArgument):
    """A layer archive that cannot be unpacked safely."""


@attrs.frozen
class UnpackResult:
    diff_id: str   # sha256 of the uncompressed tar stream
    size: int      # bytes of regular file content in the layer


def _inflate(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The uncompressed pieces of a layer blob given in chunks: plain tar or gzip.

    Gzip members may follow each other, with zero padding between them, as
    gzip readers allow; pieces are at most PIECE bytes, so they stay in cache.
    """
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(ZSTD_MAGIC):
            break
    if head.startswith(ZSTD_MAGIC):
        raise ArchiveError("unsupported layer compression: zstd")
    if not head.startswith(GZIP_MAGIC):
        yield from (chunk for chunk in itertools.chain([head], chunks) if chunk)
        return
    decompressor = zlib.decompressobj(GZIP_WBITS)
    for chunk in itertools.chain([head], chunks):
        while chunk:
            if decompressor.eof:
                chunk = chunk.lstrip(b"\0")
                if not chunk:
                    break
                decompressor = zlib.decompressobj(GZIP_WBITS)
            piece = decompressor.decompress(chunk, PIECE)
            chunk = decompressor.unconsumed_tail or decompressor.unused_data
            if piece:
                yield piece
    if not decompressor.eof:
        raise EOFError("the compressed layer ends before its end-of-stream marker")


class TarStream:
    """A layer's uncompressed tar, read once from front to back and hashed (its diff id).

    tarfile reads headers through ``read``/``seek``/``tell`` (seeking forward
    only); regular files' bodies go straight from the uncompressed pieces to
    their files with :meth:`copy_to`, without tarfile's buffering and copies.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._pieces = _inflate(iter(chunks))
        self._piece = memoryview(b"")
        self._at = 0     # read position in the current piece
        self._pos = 0    # read position in the stream
        self.hash = hashlib.sha256()

    def _take(self, size: int) -> memoryview:
        """Up to ``size`` bytes from the read position; empty at the end of the stream."""
        if self._at == len(self._piece):
            piece = next(self._pieces, b"")
            self.hash.update(piece)
            self._piece, self._at = memoryview(piece), 0
        end = min(len(self._piece), self._at + size)
        view = self._piece[self._at:end]
        self._pos += end - self._at
        self._at = end
        return view

    def read(self, size: int) -> bytes:
        parts = []
        while size > 0 and (view := self._take(size)):
            parts.append(view)
            size -= len(view)
        return b"".join(parts)

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int) -> int:
        if offset < self._pos:
            raise tarfile.StreamError("seeking backwards is not allowed")
        while self._pos < offset and self._take(offset - self._pos):
            pass
        return self._pos

    def copy_to(self, fd: int, offset: int, size: int) -> None:
        """Write the ``size`` bytes at ``offset`` (ahead of the read position) to ``fd``."""
        self.seek(offset)
        while size > 0:
            view = self._take(size)
            if not view:
                raise tarfile.ReadError("unexpected end of data")
            size -= len(view)
            while view:
                view = view[os.write(fd, view):]

    def drain(self) -> None:
        """Read to the end: what follows the tar's end marker counts toward the diff id."""
        while self._take(PIECE):
            pass


def unpack_layer(chunks: Iterable[bytes], dest: Path) -> UnpackResult:
    """Unpack the layer blob given as ``chunks`` into the empty directory ``dest``."""
    stream = TarStream(chunks)
    try:
        # Not tarfile's stream mode: TarStream is the stream, without a second buffer.
        with tarfile.TarFile(fileobj=stream,  # type: ignore[arg-type]
                             format=tarfile.PAX_FORMAT) as tar:
            size = Unpacker(str(dest)).unpack(tar)
        stream.drain()
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"invalid layer archive: {exc}") from None
    return UnpackResult("sha256:" + stream.hash.hexdigest(), size)


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
        """Unpack a tar read from front to back."""
        with tarfile.open(fileobj=stream, mode="r|", format=tarfile.PAX_FORMAT) as tar:
            return self.unpack(tar)

    def unpack(self, tar: tarfile.TarFile) -> int:
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
                if isinstance(tar.fileobj, TarStream) and not member.issparse():
                    tar.fileobj.copy_to(fd, member.offset_data, member.size)
                else:
                    source = tar.extractfile(member)
                    assert source is not None  # a regular member always has a body
                    shutil.copyfileobj(source, out, CHUNK)
            self.size += member.size
        elif member.issym():
            os.symlink(member.linkname, path)
            self.size += len(os.fsencode(member.linkname))  # a symlink's st_size
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
