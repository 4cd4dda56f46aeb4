"""Bind, volume and tmpfs mounts of containers, and /system/df, through the SDK and CLI."""

from __future__ import annotations

import subprocess

import docker
import docker.errors
import pytest
from docker.types import Mount

from tests.support.waiting import wait_until


def _create_error(containers, alpine, **kwargs) -> docker.errors.APIError:
    with pytest.raises(docker.errors.APIError) as error:
        containers.create(alpine, ["true"], **kwargs)
    assert error.value.status_code == 400
    return error.value


def test_read_only_bind_refuses_writes(containers, alpine, tmp_path):
    (tmp_path / "in.txt").write_text("from the host\n")
    out = containers.run(alpine, ["sh", "-c", "cat /data/in.txt; { echo x > /data/new; } 2>&1; "
                                              "echo rc=$?"],
                         volumes=[f"{tmp_path}:/data:ro"], remove=True)
    assert out.decode().splitlines()[0] == "from the host"
    assert "Read-only file system" in out.decode() and "rc=1" in out.decode()
    assert not (tmp_path / "new").exists()


def test_bind_writes_reach_the_host_and_missing_sources_are_made(containers, alpine, tmp_path):
    source = tmp_path / "made" / "by-run"
    container = containers.run(alpine, ["sh", "-c", "echo hi > /data/out"], detach=True,
                               volumes=[f"{source}:/data"])
    assert container.wait()["StatusCode"] == 0
    assert (source / "out").read_text() == "hi\n"
    mount = container.attrs["Mounts"][0]
    assert mount == {"Type": "bind", "Source": str(source), "Destination": "/data", "Mode": "",
                     "RW": True, "Propagation": "rprivate"}


def test_mount_bind_needs_an_existing_source(containers, alpine, tmp_path):
    error = _create_error(containers, alpine, mounts=[
        Mount("/data", str(tmp_path / "missing"), type="bind")])
    assert (f'invalid mount config for type "bind": bind source path does not exist: '
            f'{tmp_path / "missing"}') in str(error)


def test_tmpfs_mount_size_limit(containers, alpine, docker_cli):
    out = docker_cli("run", "--rm", "--mount", "type=tmpfs,destination=/scratch,tmpfs-size=1m",
                     alpine, "sh", "-c",
                     "grep ' /scratch ' /proc/mounts; dd if=/dev/zero of=/scratch/big bs=1k "
                     "count=2048 2>&1; ls -l /scratch/big", check=False).stdout
    assert "tmpfs /scratch tmpfs" in out and "size=1024k" in out
    assert "No space left on device" in out
    assert " 1048576 " in out


def test_mount_validation_errors(containers, alpine, tmp_path):
    assert "invalid mount path: 'data' mount path must be absolute" in str(
        _create_error(containers, alpine, volumes=[f"{tmp_path}:data"]))
    assert "Duplicate mount point: /data" in str(
        _create_error(containers, alpine, volumes=[f"{tmp_path}:/data", "vol-dup:/data"]))
    assert "destination can't be '/'" in str(
        _create_error(containers, alpine, volumes=[f"{tmp_path}:/"]))
    assert "invalid mode: rx" in str(
        _create_error(containers, alpine, volumes=[f"{tmp_path}:/data:rx"]))
    assert "field BindOptions must not be specified" in str(
        _create_error(containers, alpine, volumes=["vol-prop:/data:rshared"]))
    assert 'invalid mount config for type "tmpfs": field Source must not be specified' in str(
        _create_error(containers, alpine, mounts=[Mount("/t", "src", type="tmpfs")]))
    assert "includes invalid characters for a local volume name" in str(
        _create_error(containers, alpine, volumes=["relative/path:/data"]))


def test_volumes_from(containers, alpine, docker_client, tmp_path):
    donor = containers.create(alpine, ["true"], volumes=["vol-from:/shared", f"{tmp_path}:/host"])
    try:
        out = containers.run(alpine, ["sh", "-c", "echo hi > /shared/f; cat /shared/f; "
                                                  "touch /host/x 2>&1; echo rc=$?"],
                             volumes_from=[f"{donor.id}:ro"], remove=True)
        assert b"Read-only file system" in out and b"rc=1" in out
        out = containers.run(alpine, ["sh", "-c", "echo hi > /shared/f; cat /shared/f"],
                             volumes_from=[donor.id], remove=True)
        assert out == b"hi\n"
    finally:
        donor.remove()
        docker_client.api.remove_volume("vol-from")


def test_rslave_bind_sees_host_mounts_made_later(containers, alpine, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(shared)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(shared)], check=True)
        container = containers.run(alpine, ["sh", "-c", "while [ ! -e /data/late/flag ]; do "
                                                        "sleep 0.1; done; echo seen"],
                                   volumes=[f"{shared}:/data:rslave"], detach=True)
        (shared / "late").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(shared / "late")], check=True)
        (shared / "late" / "flag").write_text("x")
        assert container.wait(timeout=30)["StatusCode"] == 0
        assert container.logs() == b"seen\n"
        assert container.attrs["Mounts"][0]["Propagation"] == "rslave"
    finally:
        subprocess.run(["umount", "-R", "-l", str(shared)], check=False)


def test_rshared_bind_propagates_container_mounts_to_the_host(containers, alpine, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(shared)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(shared)], check=True)
        container = containers.run(
            alpine, ["sh", "-c", "mkdir /data/inner && mount -t tmpfs tmpfs /data/inner && "
                                 "touch /data/inner/flag && sleep 30"],
            volumes=[f"{shared}:/data:rshared"], cap_add=["SYS_ADMIN"], detach=True)
        wait_until((shared / "inner" / "flag").exists,
                   what="the container's mount on the host")
        container.kill()
    finally:
        subprocess.run(["umount", "-R", "-l", str(shared)], check=False)


def test_shared_propagation_needs_a_shared_source(containers, alpine, tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "--make-private", "tmpfs", str(private)],
                   check=True)
    try:
        container = containers.create(alpine, ["true"], volumes=[f"{private}:/data:rshared"])
        with pytest.raises(docker.errors.APIError, match="is not a shared mount"):
            container.start()
    finally:
        subprocess.run(["umount", "-l", str(private)], check=False)


def test_system_df_figures(containers, alpine, docker_client, docker_cli):
    docker_client.volumes.create("vol-df")
    container = containers.run(alpine, ["sh", "-c", "head -c 100000 /dev/zero > /data/f; "
                                                    "head -c 30000 /dev/zero > /rootfile"],
                               volumes=["vol-df:/data"], detach=True)
    try:
        container.wait()
        df = docker_client.df()
        volume = next(v for v in df["Volumes"] if v["Name"] == "vol-df")
        assert volume["UsageData"] == {"Size": 100000, "RefCount": 1}
        listed = next(c for c in df["Containers"] if c["Id"] == container.id)
        assert listed["SizeRw"] == 30000
        image = next(i for i in df["Images"] if "alpine:latest" in i["RepoTags"])
        assert listed["SizeRootFs"] == 30000 + image["Size"]
        assert image["Containers"] >= 1 and image["SharedSize"] >= 0
        assert df["LayersSize"] >= image["Size"] and df["BuildCache"] == []
        sized = docker_client.api._result(docker_client.api._get(
            docker_client.api._url("/volumes"), params={"size": 1}), json=True)
        assert [v["UsageData"] for v in sized["Volumes"] if v["Name"] == "vol-df"] == [
            {"Size": 100000, "RefCount": 1}]
        verbose = docker_cli("system", "df", "-v").stdout
        volume_line = next(line for line in verbose.splitlines() if line.startswith("vol-df"))
        assert volume_line.split()[1:] == ["1", "100kB"]
    finally:
        container.remove()
        docker_client.api.remove_volume("vol-df")
