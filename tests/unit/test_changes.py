"""docker diff from overlay layer directories: whiteouts, opaque directories, dockerd's rules."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from servin.containers.changes import ChangeKind, ImageView, layer_changes
from servin.images.archive import OPAQUE_XATTR

A, C, D = ChangeKind.ADDED, ChangeKind.MODIFIED, ChangeKind.DELETED


def write(path: Path, text: str = "x", mtime: int = 1_700_000_000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def whiteout(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def opaque(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.setxattr(path, OPAQUE_XATTR, b"y")


@pytest.fixture
def layers(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An image of two layers (the top one deletes /base/gone) and an empty upper layer."""
    bottom, top, upper = tmp_path / "bottom", tmp_path / "top", tmp_path / "upper"
    for name in ("bin/sh", "etc/passwd", "base/gone", "base/kept", "data/one", "data/two"):
        write(bottom / name)
    write(top / "etc/extra")
    whiteout(top / "base/gone")
    upper.mkdir()
    return upper, top, bottom


def changes(upper: Path, *lowers: Path) -> list[tuple[str, ChangeKind]]:
    return [(c.path, c.kind) for c in layer_changes(upper, list(lowers))]


def test_image_view_merges_layers_and_honours_whiteouts(layers):
    _, top, bottom = layers
    view = ImageView([str(top), str(bottom)])
    assert view.children(["base"]) == {"kept"}
    assert view.children(["etc"]) == {"passwd", "extra"}
    assert view.stat(["base", "gone"]) is None
    assert view.stat(["etc", "passwd"])[0] == str(bottom / "etc/passwd")


def test_no_upper_content_means_no_changes(layers):
    assert changes(*layers) == []


def test_added_modified_deleted_with_parents_first(layers):
    upper, top, bottom = layers
    write(upper / "new/sub/file")
    write(upper / "etc/passwd", "changed", mtime=1_700_000_100)
    whiteout(upper / "bin/sh")
    assert changes(upper, top, bottom) == [
        ("/bin", C), ("/bin/sh", D),
        ("/etc", C), ("/etc/passwd", C),
        ("/new", A), ("/new/sub", A), ("/new/sub/file", A),
    ]


def test_copied_up_but_unchanged_entries_are_not_changes(layers):
    upper, top, bottom = layers
    # A copy-up with the same metadata, and a directory whose mtime moved only.
    write(upper / "data/one")
    (upper / "etc").mkdir()
    os.utime(upper / "etc", (1, 1))
    assert changes(upper, top, bottom) == []


def test_a_file_with_a_new_mode_is_modified(layers):
    upper, top, bottom = layers
    write(upper / "data/two")
    os.chmod(upper / "data/two", 0o600)
    assert changes(upper, top, bottom) == [("/data", C), ("/data/two", C)]


def test_opaque_directory_deletes_what_the_image_had(layers):
    upper, top, bottom = layers
    opaque(upper / "data")
    write(upper / "data/two")
    write(upper / "data/three")
    assert changes(upper, top, bottom) == [
        ("/data", C), ("/data/three", A), ("/data/one", D)]


def test_whiteout_of_something_the_image_lacks_is_ignored(layers):
    upper, top, bottom = layers
    whiteout(upper / "base/gone")
    assert changes(upper, top, bottom) == []


def test_runtime_mount_points_are_not_changes(layers):
    upper, top, bottom = layers
    for name in ("etc/hosts", "etc/hostname", "etc/resolv.conf", "dev/console"):
        write(upper / name, "")
    for name in ("proc", "sys", "dev/pts", "dev/shm"):
        (upper / name).mkdir(parents=True)
    assert changes(upper, top, bottom) == []
    write(upper / "dev/custom")
    assert changes(upper, top, bottom) == [("/dev", C), ("/dev/custom", A)]


def test_without_image_layers_everything_is_added(tmp_path):
    write(tmp_path / "upper/a/b")
    assert changes(tmp_path / "upper") == [("/a", A), ("/a/b", A)]
