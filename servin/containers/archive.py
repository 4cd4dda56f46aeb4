"""docker cp and docker export on a container's root filesystem, as dockerd 20.10 does them.

Blocking code: callers run it off the event loop. Paths are taken as the container
sees them: symlinks are followed inside the root, never onto the host, and the
files the engine mounts into the container (/etc/hosts, /etc/hostname,
/etc/resolv.conf) are shown from the engine's copies, as dockerd shows its bind
mounts. Tars written into a container are unpacked with the image layer
unpacker's defences: no entry lands outside the extraction directory and no
symlink met on the way leads out of the root.
"""

from __future__ import annotations

import base64
import json
import os
import posixpath
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO, Collection, Mapping

import attrs

from servin.errors import InvalidArgument, NotFound
from servin.images.archive import (WHITEOUT_META_PREFIX, ArchiveError, PAX_XATTR_PREFIX,
                                   Unpacker, clean_member_path)
from servin.oci.rootpath import SymlinkLoop, resolve_in_root
from servin.oci.users import resolve_user
from servin.timefmt import rfc3339_nano

STAT_HEADER = "X-Docker-Container-Path-Stat"
CAPABILITY_XATTR = "security.capability"
EPOCH = "1970-01-01T00:00:00Z"

# Go's os.FileMode type bits, which Docker's path stat carries.
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20

_GO_TYPE_BITS = {
    stat.S_IFDIR: GO_MODE_DIR,
    stat.S_IFLNK: GO_MODE_SYMLINK,
    stat.S_IFBLK: GO_MODE_DEVICE,
    stat.S_IFCHR: GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
    stat.S_IFIFO: GO_MODE_NAMED_PIPE,
    stat.S_IFSOCK: GO_MODE_SOCKET,
}


def go_file_mode(st_mode: int) -> int:
    """A Unix st_mode as Go's os.FileMode (permission bits plus Go's own type bits)."""
    mode = (st_mode & 0o777) | _GO_TYPE_BITS.get(stat.S_IFMT(st_mode), 0)
    for unix_bit, go_bit in ((stat.S_ISUID, GO_MODE_SETUID), (stat.S_ISGID, GO_MODE_SETGID),
                             (stat.S_ISVTX, GO_MODE_STICKY)):
        if st_mode & unix_bit:
            mode |= go_bit
    return mode


@attrs.frozen
class PathStat:
    """Docker's ContainerPathStat."""

    name: str
    size: int
    mode: int          # Go os.FileMode bits
    mtime_ns: int
    link_target: str   # the fully resolved target of a symlink, "" otherwise

    def header_value(self) -> str:
        """The base64 JSON that dockerd puts in the X-Docker-Container-Path-Stat header."""
        # rfc3339_nano turns 0 into Go's zero time; a file's 0 mtime is the epoch.
        mtime = rfc3339_nano(self.mtime_ns) if self.mtime_ns else EPOCH
        body = {"name": self.name, "size": self.size, "mode": self.mode, "mtime": mtime,
                "linkTarget": self.link_target}
        return base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()



# ---- Go's path semantics, which docker cp's trailing "/" and "/." rely on ---------------

def go_base(path: str) -> str:
    """Go's filepath.Base: the last element, trailing slashes ignored; "/" for the root."""
    if not path:
        return "."
    stripped = path.rstrip("/")
    return stripped.rsplit("/", 1)[-1] if stripped else "/"


def go_split(path: str) -> tuple[str, str]:
    """Go's filepath.Split: everything up to and including the last "/", and the rest."""
    index = path.rfind("/") + 1
    return path[:index], path[index:]


def container_absolute(path: str) -> str:
    """``path`` cleaned and made absolute, keeping a trailing "/" or "/." as docker cp does."""
    cleaned = posixpath.normpath("/" + path.lstrip("/"))
    if go_base(cleaned) != "." and go_base(path) == ".":
        cleaned += ("" if cleaned.endswith("/") else "/") + "."
    if not cleaned.endswith("/") and path.endswith("/"):
        cleaned += "/"
    return cleaned


def _asserts_directory(path: str) -> bool:
    return path.endswith("/") or go_base(path) == "."


@attrs.frozen
class _Target:
    abs_path: str    # as asked, absolute in the container
    host: Path       # where it is on the host
    container: str   # where it is in the container, symlinks resolved


class ContainerFS:
    """A container's root filesystem mounted at ``root``, seen from inside the container."""

    def __init__(self, root: Path, container_name: str,
                 mounts: Mapping[str, Path] | None = None) -> None:
        self.root = root
        self._name = container_name
        # Keyed by where each mount lands once symlinks in the image are followed, as
        # the runtime resolves a mount's destination.
        self._mounts = {self._in_container(self._resolve(dest)): source
                        for dest, source in (mounts or {}).items()}

    # ---- resolution -------------------------------------------------------------------

    def _resolve(self, path: str) -> Path:
        try:
            return resolve_in_root(self.root, path)
        except SymlinkLoop as exc:
            raise InvalidArgument(str(exc)) from None

    def _in_container(self, host: Path) -> str:
        relative = host.relative_to(self.root).as_posix()
        return "/" if relative == "." else "/" + relative

    def _target(self, path: str) -> _Target:
        """dockerd's ResolvePath: the directory part resolved in the root, the last element
        kept as is (a symlink stays a symlink) unless the path ends in "/" or "/."."""
        abs_path = container_absolute(path)
        directory, base = go_split(abs_path)
        if base in ("", "."):
            host = self._resolve(abs_path)
        else:
            host = self._resolve(directory) / base
        return _Target(abs_path, host, self._in_container(host))

    def _not_found(self, path: str) -> NotFound:
        return NotFound(f"Could not find the file {path} in container {self._name}")

    def _lstat(self, host: Path, container: str) -> os.stat_result:
        mounted = self._mounts.get(container)
        return os.stat(mounted) if mounted is not None else os.lstat(host)

    # ---- stat -------------------------------------------------------------------------

    def stat(self, path: str) -> PathStat:
        """HEAD /containers/{id}/archive."""
        target = self._target(path)
        try:
            st = self._lstat(target.host, target.container)
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(path) from None
        if _asserts_directory(target.abs_path) and not stat.S_ISDIR(st.st_mode):
            raise self._not_found(path)
        link_target = ""
        if stat.S_ISLNK(st.st_mode):
            link_target = self._in_container(self._resolve(target.abs_path))
        return PathStat(name=go_base(target.abs_path), size=st.st_size,
                        mode=go_file_mode(st.st_mode), mtime_ns=st.st_mtime_ns,
                        link_target=link_target)

    # ---- reading ------------------------------------------------------------------------

    def write_tar(self, path: str, out: BinaryIO) -> None:
        """GET /containers/{id}/archive: a tar of ``path`` (stat it first).

        Entries are named after the path's last element as asked ("." for "dir/.",
        "/"-rooted for "/"), even when a symlink led elsewhere, as dockerd does.
        """
        target = self._target(path)
        rebase = go_base(target.abs_path)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            st = self._lstat(target.host, target.container)
            if stat.S_ISDIR(st.st_mode):
                self._add_tree(tar, target.host, target.container, "" if rebase == "/" else rebase)
            else:
                self._add(tar, target.host, target.container, rebase)

    def export(self, out: BinaryIO) -> None:
        """GET /containers/{id}/export: the whole root, entries named without a leading "./"."""
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            self._add_tree(tar, self.root, "/", None)

    def _add_tree(self, tar: tarfile.TarFile, host: Path, container: str,
                  name: str | None) -> None:
        """Depth first in name order; ``name`` None leaves the top directory out."""
        if name is not None:
            self._add(tar, host, container, name)
        for child in self._children(host, container):
            child_host, child_container = host / child, posixpath.join(container, child)
            child_name = child if name is None else f"{name}/{child}"
            try:
                st = self._lstat(child_host, child_container)
            except FileNotFoundError:
                continue  # removed by the running container meanwhile
            if stat.S_ISDIR(st.st_mode):
                self._add_tree(tar, child_host, child_container, child_name)
            else:
                self._add(tar, child_host, child_container, child_name)

    def _children(self, host: Path, container: str) -> list[str]:
        try:
            names = set(os.listdir(host))
        except (FileNotFoundError, NotADirectoryError):
            names = set()
        # A mount shows even where the image has no file under it.
        names.update(posixpath.basename(dest) for dest in self._mounts
                     if posixpath.dirname(dest) == container)
        return sorted(names)

    def _add(self, tar: tarfile.TarFile, host: Path, container: str, name: str) -> None:
        source = str(self._mounts.get(container, host))
        try:
            info = tar.gettarinfo(source, arcname=name)
        except FileNotFoundError:
            return  # removed by the running container meanwhile
        if info is None:
            return  # sockets have no tar form; dockerd skips them too
        info.name = name  # gettarinfo strips the leading "/" that a copy of "/" keeps
        if info.islnk() and name.startswith("/"):
            info.linkname = "/" + info.linkname
        info.uname = info.gname = ""
        info.mtime = int(info.mtime)  # whole seconds, as Docker's archives
        try:
            capability = os.getxattr(source, CAPABILITY_XATTR, follow_symlinks=False)
        except OSError:
            capability = None
        if capability is not None and not info.issym():
            info.pax_headers[PAX_XATTR_PREFIX + CAPABILITY_XATTR] = capability.decode(
                "utf-8", "surrogateescape")
        if not info.isreg():
            tar.addfile(info)
            return
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as body:
            tar.addfile(info, body)

    # ---- writing ------------------------------------------------------------------------

    def extract(self, path: str, stream: BinaryIO, *, no_overwrite_dir_non_dir: bool,
                owner: tuple[int, int] | None, readonly_rootfs: bool) -> None:
        """PUT /containers/{id}/archive: unpack the tar ``stream`` into the directory ``path``.

        The path's last element is followed too, so a symlink to a directory is a
        valid destination. ``owner`` replaces the entries' ownership (copyUIDGID).
        """
        abs_path = container_absolute(path)
        host = self._resolve(abs_path)
        container = self._in_container(host)
        try:
            st = self._lstat(host, container)
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(path) from None
        if not stat.S_ISDIR(st.st_mode) or container in self._mounts:
            raise InvalidArgument("extraction point is not a directory")
        if readonly_rootfs:
            raise InvalidArgument("container rootfs is marked read-only")
        unpacker = _CopyUnpacker(str(self.root), container, mounts=self._mounts.keys(),
                                 no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, owner=owner)
        try:
            unpacker.run(stream)
        except (tarfile.TarError, EOFError) as exc:
            raise ArchiveError(f"invalid tar archive: {exc}") from None


def copy_owner(root: Path, user: str) -> tuple[int, int] | None:
    """The owner that copyUIDGID gives extracted files: the container's user, if it has one.

    dockerd looks the user up in the host's passwd database; the container's own
    /etc/passwd is what the container's processes see, so it is used here.
    """
    if not user:
        return None
    resolved = resolve_user(root, user)
    return resolved.uid, resolved.gid


def _within(path: str, directory: str) -> bool:
    return directory == "/" or path == directory or path.startswith(directory + "/")


class _CopyUnpacker(Unpacker):
    """The layer unpacker, rooted at the container's root and confined to one directory.

    As dockerd's Untar: entries and hard links may not climb out of the extraction
    directory, relative symlinks may not point out of it, ``.wh.`` names are plain
    files (no whiteouts outside of image layers), and an existing directory and a
    non-directory may be refused to replace each other.
    """

    def __init__(self, root: str, dest: str, *, mounts: Collection[str],
                 no_overwrite_dir_non_dir: bool, owner: tuple[int, int] | None) -> None:
        super().__init__(root)
        self.dest = dest
        self.mounts = mounts
        self.no_overwrite_dir_non_dir = no_overwrite_dir_non_dir
        self.owner = owner

    def _inside_dest(self, name: str, entry: str) -> str:
        path = posixpath.normpath(posixpath.join(self.dest, name.lstrip("/")))
        if not _within(path, self.dest):
            raise ArchiveError(f"invalid tar entry {entry!r}: it is outside of {self.dest}")
        return path

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        if posixpath.normpath(member.name).startswith(WHITEOUT_META_PREFIX):
            return  # aufs bookkeeping, skipped by dockerd
        path = self._inside_dest(member.name, member.name)
        if member.issym():
            # Go joins an absolute target under the directory too: it stays inside.
            target = posixpath.normpath(posixpath.dirname(path) + "/" + member.linkname)
            if not _within(target, self.dest):
                raise ArchiveError(f"invalid symlink {path!r} -> {member.linkname!r}")
        elif member.islnk():
            member.linkname = self._inside_dest(member.linkname, member.name)
        if path == self.dest:
            return  # the directory itself keeps its metadata
        if path in self.mounts:
            raise ArchiveError(f"cannot overwrite {path}: it is mounted into the container "
                               f"(device or resource busy)")
        parts = clean_member_path(path)
        host = os.path.join(self._resolve_dir(parts[:-1], member.name), parts[-1])
        self._check_overwrite(host, member)
        self._make_room(host, is_dir=member.isdir())
        self._create(tar, member, host)
        if self.owner is not None:
            member.uid, member.gid = self.owner
        self._apply_metadata(member, host)

    def _check_overwrite(self, host: str, member: tarfile.TarInfo) -> None:
        if not self.no_overwrite_dir_non_dir:
            return
        try:
            is_dir = stat.S_ISDIR(os.lstat(host).st_mode)
        except FileNotFoundError:
            return
        path = "/" + os.path.relpath(host, self.root)
        if is_dir and not member.isdir():
            raise ArchiveError(f'cannot overwrite directory "{path}" with non-directory '
                               f'"{self.dest}"')
        if not is_dir and member.isdir():
            raise ArchiveError(f'cannot overwrite non-directory "{path}" with directory '
                               f'"{self.dest}"')
