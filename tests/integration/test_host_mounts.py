"""mount(2) and umount2(2) through servin.mounts, on real tmpfs and overlay mounts."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from servin.errors import SystemFailure
from servin.mounts import is_mountpoint, mount, unmount


def mount_options(path: Path) -> set[str]:
    """The per-mount options /proc/self/mountinfo shows for ``path``."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(path):
            return set(fields[5].split(","))
    raise AssertionError(f"{path} is not mounted")


@pytest.fixture
def target(tmp_path: Path):
    path = tmp_path / "target"
    path.mkdir()
    yield path
    while is_mountpoint(path):
        asyncio.run(unmount(path))


def test_tmpfs_with_flags_mounts_and_unmounts(target):
    asyncio.run(mount("tmpfs", "shm", target, "nosuid,nodev,noexec,mode=1777,size=1m"))
    assert is_mountpoint(target)
    assert {"nosuid", "nodev", "noexec"} <= mount_options(target)
    assert oct(target.stat().st_mode & 0o7777) == "0o1777"
    asyncio.run(unmount(target))
    assert not is_mountpoint(target)


def test_read_only_bind_is_remounted_read_only(tmp_path, target):
    source = tmp_path / "source"
    source.mkdir()
    asyncio.run(mount("none", str(source), target, "bind,ro"))
    assert "ro" in mount_options(target)
    with pytest.raises(OSError) as caught:
        (target / "file").write_text("x")
    assert caught.value.errno == errno.EROFS


def test_overlay_with_paths_relative_to_cwd_leaves_the_process_cwd(tmp_path, target):
    for name in ("lower", "upper", "work"):
        (tmp_path / name).mkdir()
    (tmp_path / "lower" / "file").write_text("from below")
    before = os.getcwd()
    asyncio.run(mount("overlay", "overlay", target, "lowerdir=lower,upperdir=upper,workdir=work",
                      cwd=tmp_path))
    assert os.getcwd() == before
    assert (target / "file").read_text() == "from below"


def test_failures_say_what_and_why(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(SystemFailure, match=f"mounting tmpfs \\(tmpfs\\) on {missing}: "
                                            "No such file or directory"):
        asyncio.run(mount("tmpfs", "tmpfs", missing, "size=1m"))
    with pytest.raises(SystemFailure, match=f"unmounting {tmp_path}: Invalid argument"):
        asyncio.run(unmount(tmp_path))
    with pytest.raises(SystemFailure, match="No such device"):
        asyncio.run(mount("nosuchfs", "x", tmp_path, ""))


def test_is_mountpoint_of_paths_that_are_none():
    assert is_mountpoint(Path("/proc"))
    assert not is_mountpoint(Path("/proc/self/status"))
    assert not is_mountpoint(Path("/no/such/path"))
