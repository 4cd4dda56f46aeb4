"""docker cp's path semantics and safe extraction on a plain directory standing for a rootfs."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tests.support.tars import make_tar

from servin.containers.archive import (GO_MODE_DIR, GO_MODE_SYMLINK, ContainerFS,
                                       container_absolute, copy_owner, go_file_mode)
from servin.containers.sizes import directory_size
from servin.errors import InvalidArgument, NotFound




def tar_of(fs: ContainerFS, path: str | None = None) -> dict[str, bytes | str]:
    out = io.BytesIO()
    if path is None:
        fs.export(out)
    else:
        fs.write_tar(path, out)
    out.seek(0)
    entries: dict[str, bytes | str] = {}
    with tarfile.open(fileobj=out) as tar:
        for info in tar:
            entries[info.name] = (tar.extractfile(info).read() if info.isreg()
                                  else "->" + info.linkname if info.issym() else "dir")
    return entries


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for sub in ("etc", "tmp", "srv/data"):
        (root / sub).mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\napp:x:1001:\n")
    (root / "srv" / "data" / "a.txt").write_text("alpha")
    (root / "srv" / "link").symlink_to("/srv/data")
    (root / "srv" / "climb").symlink_to("../../../../srv/data/a.txt")
    return root


@pytest.fixture
def fs(rootfs: Path, tmp_path: Path) -> ContainerFS:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    return ContainerFS(rootfs, "web", {"/etc/hosts": hosts})


def test_go_file_mode_carries_go_type_bits():
    assert go_file_mode(stat.S_IFDIR | 0o755) == GO_MODE_DIR | 0o755
    assert go_file_mode(stat.S_IFLNK | 0o777) == GO_MODE_SYMLINK | 0o777
    assert go_file_mode(stat.S_IFREG | stat.S_ISUID | 0o755) == (1 << 23) | 0o755
    assert go_file_mode(stat.S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666
    assert go_file_mode(stat.S_IFDIR | stat.S_ISVTX | 0o777) == GO_MODE_DIR | (1 << 20) | 0o777


@pytest.mark.parametrize("given, expected", [
    ("etc", "/etc"), ("/etc/", "/etc/"), ("/etc/.", "/etc/."), ("/a/../etc/./x", "/etc/x"),
    ("/", "/"), (".", "/."), ("//x//", "/x/"), ("../../x", "/x"),
])
def test_container_absolute_keeps_docker_cps_markers(given, expected):
    assert container_absolute(given) == expected


def test_stat_of_a_file_a_directory_and_a_symlink(fs):
    passwd = fs.stat("/etc/passwd")
    assert (passwd.name, passwd.mode, passwd.link_target) == ("passwd", 0o644, "")
    assert fs.stat("/srv/data/").mode & GO_MODE_DIR
    assert fs.stat("/").name == "/"
    link = fs.stat("/srv/link")
    assert link.mode & GO_MODE_SYMLINK and link.link_target == "/srv/data"
    # A relative symlink climbing above the root stops at the root, as in the container.
    assert fs.stat("/srv/climb").link_target == "/srv/data/a.txt"
    header = json.loads(base64.b64decode(passwd.header_value()))
    assert header["name"] == "passwd" and header["size"] == passwd.size
    assert header["mtime"].endswith("Z") and header["linkTarget"] == ""


def test_missing_paths_are_not_found_with_dockerds_message(fs):
    with pytest.raises(NotFound, match="^Could not find the file /nope in container web$"):
        fs.stat("/nope")
    with pytest.raises(NotFound):
        fs.stat("/etc/passwd/")  # a file asked for as a directory
    with pytest.raises(NotFound):
        fs.stat("/etc/passwd/x")


def test_tar_names_follow_the_path_as_asked(fs):
    assert tar_of(fs, "/srv/data") == {"data": "dir", "data/a.txt": b"alpha"}
    assert tar_of(fs, "/srv/data/.") == {".": "dir", "./a.txt": b"alpha"}
    # Through a symlink with a trailing slash: the target's content under the link's name.
    assert tar_of(fs, "/srv/link/") == {"link": "dir", "link/a.txt": b"alpha"}
    # Without it, the symlink itself.
    assert tar_of(fs, "/srv/link") == {"link": "->/srv/data"}
    assert tar_of(fs, "/srv/data/a.txt") == {"a.txt": b"alpha"}
    whole = tar_of(fs, "/")
    # The root is named "/" (tarfile reads it back without its trailing slash).
    assert whole[""] == "dir" and whole["/srv/data/a.txt"] == b"alpha"


def test_mounted_files_show_the_engines_copy(fs, rootfs):
    assert tar_of(fs, "/etc/hosts") == {"hosts": b"127.0.0.1 localhost\n"}
    assert tar_of(fs, "/etc")["etc/hosts"] == b"127.0.0.1 localhost\n"
    assert fs.stat("/etc/hosts").size == len("127.0.0.1 localhost\n")
    # Export is the root filesystem alone, named without "./".
    exported = tar_of(ContainerFS(rootfs, "web"))
    assert "etc/hosts" not in exported and exported["srv/data/a.txt"] == b"alpha"
    with pytest.raises(InvalidArgument, match="busy"):
        fs.extract("/etc", io.BytesIO(make_tar(("hosts", "file", b"x"))), no_overwrite_dir_non_dir=False,
                   owner=None, readonly_rootfs=False)


def extract(fs: ContainerFS, path: str, *entries: tuple, **options) -> None:
    kwargs = {"no_overwrite_dir_non_dir": False, "owner": None, "readonly_rootfs": False,
              **options}
    fs.extract(path, io.BytesIO(make_tar(*entries)), **kwargs)


def test_extract_follows_symlinks_inside_the_root(fs, rootfs, tmp_path):
    extract(fs, "/srv/link", ("new.txt", "file", b"new"), ("sub/deep.txt", "file", b"deep"))
    assert (rootfs / "srv/data/new.txt").read_text() == "new"
    assert (rootfs / "srv/data/sub/deep.txt").read_text() == "deep"
    # An absolute symlink to a host directory leads into the root's copy of that path.
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    extract(fs, "/tmp", ("escape", "sym", str(host_dir)))
    extract(fs, "/tmp", ("escape/pwned", "file", b"inside"))
    assert list(host_dir.iterdir()) == []
    assert (rootfs / str(host_dir)[1:] / "pwned").read_text() == "inside"
    # Whiteout-looking names are plain files outside of image layers.
    extract(fs, "/tmp", (".wh.note", "file", b"plain"))
    assert (rootfs / "tmp/.wh.note").read_text() == "plain"


@pytest.mark.parametrize("entry, message", [
    (("../escaped", "file", b"x"), "outside of /tmp"),
    (("a/../../escaped", "file", b"x"), "outside of /tmp"),
    (("out", "sym", "../etc"), "invalid symlink"),
    (("hard", "link", "../etc/passwd"), "outside of /tmp"),
])
def test_hostile_entries_are_refused(fs, rootfs, entry, message):
    with pytest.raises(InvalidArgument, match=message):
        extract(fs, "/tmp", entry)
    assert not (rootfs / "escaped").exists() and not (rootfs.parent / "escaped").exists()
    assert list((rootfs / "tmp").iterdir()) == []


def test_destination_checks(fs):
    with pytest.raises(InvalidArgument, match="^extraction point is not a directory$"):
        extract(fs, "/etc/passwd", ("x", "file", b"x"))
    with pytest.raises(NotFound, match="/nowhere"):
        extract(fs, "/nowhere", ("x", "file", b"x"))
    with pytest.raises(InvalidArgument, match="^container rootfs is marked read-only$"):
        extract(fs, "/tmp", ("x", "file", b"x"), readonly_rootfs=True)


def test_no_overwrite_dir_non_dir(fs, rootfs):
    with pytest.raises(InvalidArgument,
                       match='cannot overwrite directory "/srv/data" with non-directory "/srv"'):
        extract(fs, "/srv", ("data", "file", b"x"), no_overwrite_dir_non_dir=True)
    with pytest.raises(InvalidArgument, match='cannot overwrite non-directory "/etc/passwd"'):
        extract(fs, "/etc", ("passwd", "dir", None), no_overwrite_dir_non_dir=True)
    extract(fs, "/srv", ("data", "file", b"replaced"))
    assert (rootfs / "srv/data").read_text() == "replaced"


def test_owner_replaces_the_tars_ownership(fs, rootfs):
    extract(fs, "/tmp", ("kept", "file", b"x", (123, 456)))
    extract(fs, "/tmp", ("mapped", "file", b"x", (123, 456)), owner=copy_owner(rootfs, "app"))
    assert (os.stat(rootfs / "tmp/kept").st_uid, os.stat(rootfs / "tmp/kept").st_gid) == (123, 456)
    assert (os.stat(rootfs / "tmp/mapped").st_uid,
            os.stat(rootfs / "tmp/mapped").st_gid) == (1000, 1001)
    assert copy_owner(rootfs, "") is None


def test_directory_size_counts_hard_links_once(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x" * 100)
    os.link(tmp_path / "d" / "f", tmp_path / "hard")
    (tmp_path / "sym").symlink_to("d")
    (tmp_path / "empty").write_bytes(b"")
    assert directory_size(tmp_path) == 100 + len("d")
