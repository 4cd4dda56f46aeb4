"""docker cp, export, diff and top through the docker SDK and CLI against a real servind."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile

import docker.errors
import pytest

from tests.support.tars import make_tar
from tests.support.waiting import wait_until

GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27


def read_tar(chunks) -> dict[str, tarfile.TarInfo | bytes]:
    """Entries of a tar stream (possibly gzipped): name -> file content, or the TarInfo."""
    out: dict[str, tarfile.TarInfo | bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode="r:*") as tar:
        for info in tar:
            out[info.name] = tar.extractfile(info).read() if info.isreg() else info
    return out


@pytest.fixture
def sleeper(containers, alpine):
    return containers.run(alpine, ["sleep", "300"], detach=True)


# ---- archive -----------------------------------------------------------------------------

@pytest.mark.parametrize("running", [False, True], ids=["created", "running"])
def test_put_then_get_archive_round_trip(containers, alpine, running):
    container = (containers.run(alpine, ["sleep", "300"], detach=True) if running
                 else containers.create(alpine, ["true"]))
    data = make_tar(("d", "dir", None), ("d/a.txt", "file", b"alpha\n", 0o640),
                    ("d/link", "sym", "a.txt"))
    assert container.put_archive("/tmp", data) is True

    bits, stat_ = container.get_archive("/tmp/d")
    entries = read_tar(bits)
    assert entries["d/a.txt"] == b"alpha\n"
    assert entries["d/link"].issym() and entries["d/link"].linkname == "a.txt"
    assert entries["d"].isdir()
    assert stat_["name"] == "d" and stat_["mode"] & GO_MODE_DIR
    assert stat_["mode"] & 0o777 == 0o755

    bits, stat_ = container.get_archive("/tmp/d/a.txt")
    assert read_tar(bits) == {"a.txt": b"alpha\n"}
    assert stat_["size"] == 6 and stat_["mode"] == 0o640
    assert stat_["mtime"].startswith("2023-11-14T22:13:20")


def test_trailing_dot_copies_the_contents(containers, alpine):
    container = containers.create(alpine, ["true"])
    container.put_archive("/", make_tar(("src", "dir", None), ("src/x", "file", b"x")))
    contents, stat_ = container.get_archive("/src/.")
    assert set(read_tar(contents)) == {".", "./x"}
    assert stat_["name"] == "."
    whole, _ = container.get_archive("/src/")
    assert set(read_tar(whole)) == {"src", "src/x"}


def test_stat_of_a_symlink_resolves_inside_the_container(containers, alpine):
    container = containers.create(alpine, ["true"])
    # Extracted at "/", a relative symlink may climb (the root's ".." is the root).
    container.put_archive("/", make_tar(("tmp/up", "sym", "../../../../../etc"),
                                        ("tmp/abs", "sym", "/etc/passwd")))
    _, stat_ = container.get_archive("/tmp/up")
    assert stat_["mode"] & GO_MODE_SYMLINK and stat_["linkTarget"] == "/etc"
    _, stat_ = container.get_archive("/tmp/abs")
    assert stat_["linkTarget"] == "/etc/passwd"
    # Through the symlink with a trailing slash: the directory it leads to.
    bits, stat_ = container.get_archive("/tmp/up/")
    assert stat_["mode"] & GO_MODE_DIR and "up/passwd" in read_tar(bits)


def test_head_archive_header_and_missing_path(containers, alpine, docker_client):
    container = containers.create(alpine, ["true"], name="files-missing")
    api = docker_client.api
    response = api.head(api._url("/containers/{0}/archive", container.id),
                        params={"path": "/etc/passwd"})
    api._raise_for_status(response)
    header = json.loads(base64.b64decode(response.headers["X-Docker-Container-Path-Stat"]))
    assert set(header) == {"name", "size", "mode", "mtime", "linkTarget"}
    assert header["name"] == "passwd" and header["linkTarget"] == ""
    with pytest.raises(docker.errors.NotFound) as missing:
        api.get_archive("files-missing", "/nope")
    assert missing.value.explanation == "Could not find the file /nope in container files-missing"
    with pytest.raises(docker.errors.APIError) as empty:
        api._raise_for_status(api.get(api._url("/containers/{0}/archive", container.id)))
    assert empty.value.status_code == 400


def test_mounted_etc_files_are_seen_as_the_container_sees_them(containers, alpine):
    container = containers.run(alpine, ["sleep", "300"], detach=True, hostname="filesbox")
    bits, _ = container.get_archive("/etc/hostname")
    assert read_tar(bits) == {"hostname": b"filesbox\n"}
    etc = read_tar(container.get_archive("/etc")[0])
    assert etc["etc/hostname"] == b"filesbox\n" and "etc/hosts" in etc
    with pytest.raises(docker.errors.APIError):
        container.put_archive("/etc", make_tar(("hostname", "file", b"other\n")))
    assert read_tar(container.get_archive("/etc/hostname")[0]) == {"hostname": b"filesbox\n"}


def test_extraction_point_must_be_a_directory(containers, alpine):
    container = containers.create(alpine, ["true"])
    with pytest.raises(docker.errors.APIError) as error:
        container.put_archive("/etc/passwd", make_tar(("x", "file", b"x")))
    assert error.value.status_code == 400
    assert error.value.explanation == "extraction point is not a directory"
    with pytest.raises(docker.errors.NotFound):
        container.put_archive("/no/such/dir", make_tar(("x", "file", b"x")))


def test_read_only_rootfs_refuses_writes(containers, alpine):
    container = containers.create(alpine, ["true"], read_only=True)
    with pytest.raises(docker.errors.APIError) as error:
        container.put_archive("/tmp", make_tar(("x", "file", b"x")))
    assert error.value.explanation == "container rootfs is marked read-only"


def test_no_overwrite_dir_non_dir(containers, alpine, docker_client):
    container = containers.create(alpine, ["true"])
    api = docker_client.api
    url = api._url("/containers/{0}/archive", container.id)
    replace_dir = make_tar(("tmp", "file", b"not a dir"))
    response = api.put(url, params={"path": "/", "noOverwriteDirNonDir": "1"}, data=replace_dir)
    assert response.status_code == 400
    assert response.json()["message"] == \
        'cannot overwrite directory "/tmp" with non-directory "/"'
    response = api.put(url, params={"path": "/etc", "noOverwriteDirNonDir": "true"},
                       data=make_tar(("passwd", "dir", None)))
    assert response.json()["message"] == \
        'cannot overwrite non-directory "/etc/passwd" with directory "/etc"'
    assert read_tar(container.get_archive("/etc/passwd")[0])["passwd"].startswith(b"root:")


def test_hostile_tars_write_nothing_outside(containers, alpine, tmp_path):
    container = containers.create(alpine, ["true"])
    outside = tmp_path / "outside"
    outside.mkdir()
    for name, hostile in {
        "climb": make_tar(("../../../../../../escaped", "file", b"x")),
        "symlink-out": make_tar(("out", "sym", "../../../../../../../../../../etc")),
        "hardlink-out": make_tar(("hard", "link", "../../../../../../../etc/passwd")),
    }.items():
        with pytest.raises(docker.errors.APIError) as error:
            container.put_archive("/tmp", hostile)
        assert error.value.status_code == 400, name
    with pytest.raises(docker.errors.NotFound):
        container.get_archive("/escaped")
    assert set(read_tar(container.get_archive("/tmp")[0])) == {"tmp"}
    # A symlink in the container that points at the host's directory stays in the container.
    container.put_archive("/tmp", make_tar(("escape", "sym", str(outside))))
    container.put_archive("/tmp", make_tar(("escape/pwned", "file", b"inside")))
    assert list(outside.iterdir()) == []
    assert read_tar(container.get_archive(str(outside) + "/pwned")[0]) == {"pwned": b"inside"}


def test_copy_uid_gid_gives_the_container_user(containers, alpine, docker_cli, tmp_path):
    container = containers.create(alpine, ["true"], user="daemon")
    source = tmp_path / "owned.txt"
    source.write_text("mine\n")
    os.chown(source, 4321, 4321)
    docker_cli("cp", str(source), f"{container.id}:/tmp/plain.txt")
    docker_cli("cp", "-a", str(source), f"{container.id}:/tmp/archive.txt")
    assert read_tar(container.get_archive("/tmp")[0])["tmp/plain.txt"] == b"mine\n"
    # docker cp keeps the tar's owner; -a gives the container's user (daemon, 1:1).
    with tarfile.open(fileobj=io.BytesIO(b"".join(container.get_archive("/tmp")[0])),
                      mode="r:*") as tar:
        infos = {info.name: (info.uid, info.gid) for info in tar}
    assert infos["tmp/archive.txt"] == (1, 1)
    assert infos["tmp/plain.txt"] == (4321, 4321)


def test_docker_cp_both_ways(containers, alpine, docker_cli, tmp_path):
    container = containers.run(alpine, ["sleep", "300"], detach=True)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("deep\n")
    (tree / "top").write_text("top\n")
    docker_cli("cp", str(tree), f"{container.id}:/srv")
    docker_cli("cp", f"{tree}/.", f"{container.id}:/tmp")

    back = tmp_path / "back"
    back.mkdir()
    docker_cli("cp", f"{container.id}:/srv", str(back / "srv"))
    assert (back / "srv" / "sub" / "f").read_text() == "deep\n"
    docker_cli("cp", f"{container.id}:/tmp/.", str(back / "contents"))
    assert (back / "contents" / "top").read_text() == "top\n"
    streamed = docker_cli("cp", f"{container.id}:/etc/passwd", "-", text=False).stdout
    assert read_tar([streamed])["passwd"].startswith(b"root:")
    missing = docker_cli("cp", f"{container.id}:/nope", str(back), check=False)
    assert missing.returncode != 0 and "/nope" in missing.stderr


# ---- export ------------------------------------------------------------------------------

def test_export_is_the_whole_root(containers, alpine, docker_cli, tmp_path):
    container = containers.create(alpine, ["true"])
    container.put_archive("/", make_tar(("added.txt", "file", b"added\n")))
    names = set(read_tar(container.export()))
    assert {"bin/busybox", "etc/passwd", "added.txt", "tmp"} <= names
    assert not any(name.startswith(("/", "./")) for name in names)

    out = tmp_path / "export.tar"
    docker_cli("export", "-o", str(out), container.id)
    listed = subprocess.run(["tar", "tf", str(out)], check=True, capture_output=True,
                            text=True).stdout.split()
    assert "added.txt" in listed and "bin/busybox" in listed


# ---- changes -----------------------------------------------------------------------------

def test_diff_reports_added_changed_and_deleted(containers, alpine, docker_cli):
    container = containers.run(alpine, ["sh", "-c",
                                        "mkdir -p /new/sub && echo x > /new/sub/f && "
                                        "echo more >> /etc/passwd && rm /bin/vi && sleep 300"],
                               detach=True)
    changes = wait_until(lambda: [c for c in container.diff() or []
                                  if c["Path"] == "/bin/vi"] and container.diff())
    by_path = {change["Path"]: change["Kind"] for change in changes}
    assert by_path["/new"] == 1 and by_path["/new/sub"] == 1 and by_path["/new/sub/f"] == 1
    assert by_path["/etc/passwd"] == 0 and by_path["/etc"] == 0
    assert by_path["/bin/vi"] == 2 and by_path["/bin"] == 0
    # The runtime's mount points are not the container's changes.
    for path in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/proc", "/dev", "/sys"):
        assert path not in by_path
    # Parents come before their children.
    paths = [change["Path"] for change in changes]
    assert paths.index("/new") < paths.index("/new/sub") < paths.index("/new/sub/f")

    printed = docker_cli("diff", container.id).stdout.splitlines()
    assert "A /new/sub/f" in printed and "D /bin/vi" in printed and "C /etc/passwd" in printed


def test_diff_of_an_unchanged_container_is_empty(containers, alpine):
    container = containers.run(alpine, ["true"], detach=True)
    container.wait()
    assert container.diff() is None


# ---- top ---------------------------------------------------------------------------------

def test_top_lists_the_container_processes(sleeper, docker_cli):
    top = sleeper.top()
    assert "PID" in top["Titles"] and "CMD" in top["Titles"]
    commands = [row[top["Titles"].index("CMD")] for row in top["Processes"]]
    assert commands == ["sleep 300"]
    pid = int(top["Processes"][0][top["Titles"].index("PID")])
    sleeper.reload()
    assert pid == sleeper.attrs["State"]["Pid"]

    custom = sleeper.top(ps_args="-o pid,comm")
    assert custom["Titles"] == ["PID", "COMMAND"]
    assert [row[1] for row in custom["Processes"]] == ["sleep"]
    printed = docker_cli("top", sleeper.id, "-o", "pid,comm").stdout.splitlines()
    assert printed[0].split() == ["PID", "COMMAND"] and printed[1].split()[1] == "sleep"


def test_top_errors(containers, alpine, sleeper):
    stopped = containers.create(alpine, ["true"])
    with pytest.raises(docker.errors.APIError) as error:
        stopped.top()
    assert error.value.status_code == 409
    assert error.value.explanation == f"Container {stopped.id} is not running"
    with pytest.raises(docker.errors.APIError) as error:
        sleeper.top(ps_args="-o user=PID")
    assert error.value.status_code == 400
    assert error.value.explanation == 'specifying "user=PID" is not allowed'
    with pytest.raises(docker.errors.APIError) as error:
        sleeper.top(ps_args="--no-such-option")
    assert error.value.status_code == 500 and error.value.explanation.startswith("ps: ")
