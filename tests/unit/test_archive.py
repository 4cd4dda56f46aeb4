"""Layer unpacking: whiteout conversion, metadata, and hostile archives."""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import stat
import tarfile
from pathlib import Path

import pytest

from servin.images.archive import ArchiveError, unpack_layer
from tests.support.registry import Entry, layer_tar


def chunked(blob: bytes, size: int = 1000) -> list[bytes]:
    """A blob in small chunks, as a download gives it: entries straddle them."""
    return [blob[i:i + size] for i in range(0, len(blob), size)]


def unpack(tmp_path: Path, entries: list[Entry], *, compress: bool = False):
    data = layer_tar(entries)
    dest = tmp_path / "diff"
    dest.mkdir()
    return unpack_layer(chunked(gzip.compress(data) if compress else data), dest), dest, data


def test_whiteouts_become_overlay_whiteouts(tmp_path):
    _, dest, _ = unpack(tmp_path, [
        Entry("dir", type=tarfile.DIRTYPE, mode=0o755),
        Entry("dir/.wh.gone", uid=5, gid=6),
        Entry("opaque/.wh..wh..opq"),
        Entry("opaque/kept", b"x"),
        Entry(".wh..wh.plnk", type=tarfile.DIRTYPE),
    ])
    gone = os.lstat(dest / "dir" / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    assert (gone.st_uid, gone.st_gid) == (5, 6)
    assert not (dest / "dir" / ".wh.gone").exists()
    assert os.getxattr(dest / "opaque", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(dest / "opaque")) == ["kept"]
    assert not (dest / ".wh..wh.plnk").exists()


def test_metadata_is_preserved_and_diff_id_computed(tmp_path):
    result, dest, data = unpack(tmp_path, [
        Entry("d", type=tarfile.DIRTYPE, mode=0o750, uid=3, gid=4, mtime=1_000_000),
        Entry("d/suid", b"#!/bin/sh\n", mode=0o4755, uid=7, gid=8, mtime=1_234_567,
              xattrs={"user.note": "hello", "trusted.servin": "t"}),
        Entry("d/link", type=tarfile.SYMTYPE, linkname="suid", uid=9, gid=9),
        Entry("d/hard", type=tarfile.LNKTYPE, linkname="d/suid"),
        Entry("dev/null", type=tarfile.CHRTYPE, mode=0o666),
        Entry("fifo", type=tarfile.FIFOTYPE, mode=0o600),
    ], compress=True)
    assert result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    # As dockerd's overlay2 counts a layer: all but directories, a symlink by the length
    # of its target, a hard-linked inode once.
    assert result.size == len(b"#!/bin/sh\n") + len(b"suid")
    suid = os.lstat(dest / "d" / "suid")
    assert (stat.S_IMODE(suid.st_mode), suid.st_uid, suid.st_gid) == (0o4755, 7, 8)
    assert suid.st_mtime == 1_234_567
    assert os.getxattr(dest / "d" / "suid", "user.note") == b"hello"
    assert os.getxattr(dest / "d" / "suid", "trusted.servin") == b"t"
    directory = os.lstat(dest / "d")
    assert (stat.S_IMODE(directory.st_mode), directory.st_uid, directory.st_mtime) == \
        (0o750, 3, 1_000_000)
    assert os.readlink(dest / "d" / "link") == "suid"
    assert os.lstat(dest / "d" / "link").st_uid == 9
    assert os.lstat(dest / "d" / "hard").st_ino == suid.st_ino
    assert stat.S_ISCHR(os.lstat(dest / "dev" / "null").st_mode)
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode)


def test_absolute_paths_are_kept_inside_the_layer(tmp_path):
    _, dest, _ = unpack(tmp_path, [Entry("/etc/servin-test-abs", b"inside")])
    assert (dest / "etc" / "servin-test-abs").read_bytes() == b"inside"
    assert not Path("/etc/servin-test-abs").exists()


def test_dotdot_escape_is_refused(tmp_path):
    with pytest.raises(ArchiveError, match="path escapes the layer"):
        unpack(tmp_path, [Entry("a/../../escaped", b"x")])
    assert not (tmp_path / "escaped").exists()


def test_symlink_to_outside_is_not_followed_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(ArchiveError, match="leads outside the layer"):
        unpack(tmp_path, [Entry("evil", type=tarfile.SYMTYPE, linkname="../outside"),
                          Entry("evil/planted", b"x")])
    assert list(outside.iterdir()) == []


def test_absolute_symlink_resolves_inside_the_layer(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    _, dest, _ = unpack(tmp_path, [Entry("evil", type=tarfile.SYMTYPE, linkname=str(outside)),
                                   Entry("evil/planted", b"x")])
    assert list(outside.iterdir()) == []
    assert (dest / str(outside).lstrip("/") / "planted").read_bytes() == b"x"


def test_hardlink_to_outside_is_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("secret")
    with pytest.raises(ArchiveError, match="path escapes the layer"):
        unpack(tmp_path, [Entry("h", type=tarfile.LNKTYPE, linkname="../secret")])
    again = tmp_path / "again"
    again.mkdir()
    with pytest.raises(ArchiveError, match="is not in the layer"):
        unpack(again, [Entry("h", type=tarfile.LNKTYPE, linkname=str(secret))])
    assert secret.stat().st_nlink == 1


def test_later_entries_replace_earlier_ones(tmp_path):
    _, dest, _ = unpack(tmp_path, [Entry("x", b"first"), Entry("x", type=tarfile.DIRTYPE),
                                   Entry("x/y", b"in dir"), Entry("x", b"file again")])
    assert (dest / "x").read_bytes() == b"file again"


def test_corrupt_archive_is_an_archive_error(tmp_path):
    (tmp_path / "diff").mkdir()
    with pytest.raises(ArchiveError, match="invalid layer archive"):
        unpack_layer([gzip.compress(b"not a tar at all" * 100)[:50]], tmp_path / "diff")


def test_files_span_chunks_and_pieces(tmp_path):
    noise = random.Random(1).randbytes(600_000)   # incompressible: stored gzip blocks
    zeros = bytes(1_000_000)                       # one chunk inflates into many pieces
    result, dest, data = unpack(tmp_path, [Entry("noise", noise), Entry("zeros", zeros),
                                           Entry("small", b"s")], compress=True)
    assert (dest / "noise").read_bytes() == noise
    assert (dest / "zeros").read_bytes() == zeros
    assert (dest / "small").read_bytes() == b"s"
    assert result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert result.size == len(noise) + len(zeros) + 1


def test_gzip_members_in_a_row_and_what_follows_the_tar_count(tmp_path):
    data = layer_tar([Entry("a", b"first"), Entry("b", b"second" * 300)])
    tail = b"after the end of the archive"
    blob = gzip.compress(data[:700]) + bytes(10) + gzip.compress(data[700:] + tail)
    dest = tmp_path / "diff"
    dest.mkdir()
    result = unpack_layer(chunked(blob, 100), dest)
    assert (dest / "a").read_bytes() == b"first"
    assert (dest / "b").read_bytes() == b"second" * 300
    assert result.diff_id == "sha256:" + hashlib.sha256(data + tail).hexdigest()


def test_a_truncated_gzip_stream_is_an_archive_error(tmp_path):
    blob = gzip.compress(layer_tar([Entry("a", b"complete tar, cut trailer")]))
    (tmp_path / "diff").mkdir()
    with pytest.raises(ArchiveError, match="ends before its end-of-stream marker"):
        unpack_layer(chunked(blob[:-8]), tmp_path / "diff")


def test_zstd_layers_are_refused(tmp_path):
    (tmp_path / "diff").mkdir()
    with pytest.raises(ArchiveError, match="unsupported layer compression: zstd"):
        unpack_layer([b"\x28\xb5", b"\x2f\xfd" + bytes(100)], tmp_path / "diff")
