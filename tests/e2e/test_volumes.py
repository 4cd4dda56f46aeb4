"""Volumes through the docker SDK for Python and the docker CLI against a real servind."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.support.registry import Entry, build_image, layer_tar, push_image

DATA_FILE = b"seeded by the image\n"


@pytest.fixture(scope="session")
def volume_image(docker_client: docker.DockerClient, registry, test_images) -> str:
    """busybox with ``VOLUME /data`` and a file of its own at /data."""
    layer = layer_tar([Entry("data/", type=b"5", mode=0o750, uid=1, gid=1),
                       Entry("data/seed.txt", DATA_FILE, uid=1, gid=1)])
    push_image(registry.url, "library/withvolume", "latest",
               build_image([test_images.busybox_layer, layer],
                           {"Volumes": {"/data": {}}}))
    docker_client.images.pull("withvolume", tag="latest")
    return "withvolume:latest"


def test_create_inspect_list_remove(volumes, docker_client):
    volume = volumes.create("vol-basic", labels={"tier": "db"})
    info = docker_client.api.inspect_volume("vol-basic")
    assert info["Name"] == "vol-basic" and info["Driver"] == "local"
    assert info["Scope"] == "local" and info["Labels"] == {"tier": "db"}
    assert info["Mountpoint"].endswith("/volumes/vol-basic/_data")
    assert os.path.isdir(info["Mountpoint"])
    assert info["CreatedAt"].endswith("Z")
    # A second create of the same name answers with the volume that exists.
    assert volumes.create("vol-basic").name == "vol-basic"
    names = {v.name for v in volumes.list(filters={"label": "tier=db"})}
    assert names == {"vol-basic"}
    assert {v.name for v in volumes.list(filters={"name": "basic"})} >= {"vol-basic"}
    assert "vol-basic" in {v.name for v in volumes.list(filters={"dangling": True})}
    assert not volumes.list(filters={"label": "tier=web"})
    volume.remove()
    with pytest.raises(docker.errors.NotFound, match="no such volume"):
        docker_client.api.inspect_volume("vol-basic")
    assert not os.path.exists(info["Mountpoint"])


def test_bad_names_and_options_are_refused(volumes):
    with pytest.raises(docker.errors.APIError) as bad_name:
        volumes.create("no/slash")
    assert bad_name.value.status_code == 400
    assert ('create no/slash: "no/slash" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path") in str(bad_name.value)
    with pytest.raises(docker.errors.APIError, match='invalid option: "colour"') as bad_opt:
        volumes.create("vol-opts", driver_opts={"colour": "blue"})
    assert bad_opt.value.status_code == 400
    with pytest.raises(docker.errors.NotFound, match="plugin"):
        volumes.create("vol-plugin", driver="nfs-plugin")
    assert not any(v.name in ("vol-opts", "vol-plugin") for v in volumes.list())


def test_data_persists_across_containers(volumes, containers, alpine):
    volumes.create("vol-persist")
    containers.run(alpine, ["sh", "-c", "echo kept > /data/f"], remove=True,
                   volumes=["vol-persist:/data"])
    assert containers.run(alpine, ["cat", "/data/f"], remove=True,
                          volumes={"vol-persist": {"bind": "/data", "mode": "ro"}}) == b"kept\n"


def test_volume_in_use_cannot_be_removed(volumes, containers, alpine, docker_client,
                                         docker_cli):
    volumes.create("vol-busy")
    container = containers.create(alpine, ["true"], volumes=["vol-busy:/data"])
    message = f"remove vol-busy: volume is in use - [{container.id}]"
    with pytest.raises(docker.errors.APIError) as in_use:
        docker_client.api.remove_volume("vol-busy")
    assert in_use.value.status_code == 409 and message in str(in_use.value)
    # As dockerd, force does not take a volume from its users.
    forced = docker_cli("volume", "rm", "-f", "vol-busy", check=False)
    assert forced.returncode != 0 and message in forced.stderr
    assert volumes.list(filters={"dangling": False, "name": "vol-busy"})
    container.remove()
    docker_client.api.remove_volume("vol-busy")
    docker_cli("volume", "rm", "-f", "vol-busy")  # gone already: no error with force


def test_copy_up_from_the_image(volumes, containers, volume_image, docker_client):
    volumes.create("vol-seeded")
    out = containers.run(volume_image, ["sh", "-c", "cat /data/seed.txt; stat -c '%u %a' /data"],
                         volumes=["vol-seeded:/data"], remove=True)
    assert out == DATA_FILE + b"1 750\n"
    # Only into an empty volume: a second container sees what the first left.
    containers.run(volume_image, ["sh", "-c", "echo changed > /data/seed.txt"],
                   volumes=["vol-seeded:/data"], remove=True)
    assert containers.run(volume_image, ["cat", "/data/seed.txt"], volumes=["vol-seeded:/data"],
                          remove=True) == b"changed\n"
    volumes.create("vol-nocopy")
    assert containers.run(volume_image, ["ls", "-A", "/data"], volumes=["vol-nocopy:/data:nocopy"],
                          remove=True) == b""


def test_anonymous_volumes_go_with_rm_v(volumes, containers, volume_image, docker_cli):
    container = containers.run(volume_image, ["cat", "/data/seed.txt"], detach=True)
    container.wait()
    assert container.logs() == DATA_FILE
    mount = container.attrs["Mounts"][0]
    assert mount["Type"] == "volume" and mount["Destination"] == "/data"
    assert mount["Driver"] == "local" and mount["RW"] is True and mount["Mode"] == ""
    name = mount["Name"]
    assert len(name) == 64 and mount["Source"].endswith(f"/volumes/{name}/_data")
    docker_cli("rm", "-v", container.id)
    assert name not in {v.name for v in volumes.list()}

    kept = containers.run(volume_image, ["true"], detach=True)
    kept.wait()
    kept_name = kept.attrs["Mounts"][0]["Name"]
    kept.remove()  # without v the anonymous volume stays, for prune
    assert kept_name in {v.name for v in volumes.list(filters={"dangling": True})}

    auto = docker_cli("run", "--rm", "-d", volume_image, "sleep", "30").stdout.strip()
    auto_name = docker_cli("inspect", "-f", "{{(index .Mounts 0).Name}}", auto).stdout.strip()
    docker_cli("stop", "-t", "0", auto)
    docker_cli("wait", auto, check=False)
    assert auto_name not in {v.name for v in volumes.list()}


def test_prune_takes_unused_anonymous_volumes_unless_all(volumes, docker_client, containers,
                                                         alpine):
    volumes.create("vol-named")
    anonymous = docker_client.api.create_volume()["Name"]
    used = docker_client.api.create_volume(labels={"keep": "1"})["Name"]
    containers.create(alpine, ["true"], volumes=[f"{used}:/data"])
    result = docker_client.api.prune_volumes()
    assert anonymous in result["VolumesDeleted"]
    assert used not in result["VolumesDeleted"] and "vol-named" not in result["VolumesDeleted"]
    result = docker_client.api.prune_volumes(filters={"all": "true", "label": "nothing"})
    assert not result["VolumesDeleted"]
    result = docker_client.api.prune_volumes(filters={"all": "true"})
    assert "vol-named" in result["VolumesDeleted"]
    assert used in {v.name for v in volumes.list()}


def test_tmpfs_driver_options(volumes, containers, alpine, docker_client):
    volumes.create("vol-tmpfs", driver_opts={"type": "tmpfs", "device": "tmpfs",
                                             "o": "size=2m"})
    container = containers.run(alpine, ["sh", "-c", "grep ' /data ' /proc/mounts; sleep 30"],
                               volumes=["vol-tmpfs:/data"], detach=True)
    data = Path(docker_client.api.inspect_volume("vol-tmpfs")["Mountpoint"])
    try:
        assert os.path.ismount(data)
    finally:
        container.stop(timeout=0)
    assert container.logs().split()[2] == b"tmpfs"
    assert b"size=2048k" in container.logs()
    assert not os.path.ismount(data)


def test_docker_cli_volume_commands(docker_cli):
    assert docker_cli("volume", "create", "--label", "a=b", "vol-cli").stdout.strip() == "vol-cli"
    listed = docker_cli("volume", "ls", "-q", "--filter", "label=a=b").stdout.split()
    assert listed == ["vol-cli"]
    info = json.loads(docker_cli("volume", "inspect", "vol-cli").stdout)
    assert info[0]["Labels"] == {"a": "b"} and info[0]["Driver"] == "local"
    missing = docker_cli("volume", "inspect", "vol-nope", check=False)
    assert missing.returncode != 0 and "no such volume" in missing.stderr.lower()
    assert docker_cli("volume", "rm", "vol-cli").stdout.strip() == "vol-cli"
    anonymous = docker_cli("volume", "create").stdout.strip()
    pruned = docker_cli("volume", "prune", "-f").stdout
    assert anonymous in pruned and "Total reclaimed space" in pruned


def test_kill_9_leaves_no_half_made_volume_nor_mount(make_servind, test_images):
    daemon = make_servind()
    client = daemon.client()
    client.images.pull("alpine", tag="latest")
    tmpfs = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    for name in ("vol-running", "vol-exiting"):
        client.volumes.create(name, driver_opts=tmpfs)
    running = client.containers.run("alpine", ["sleep", "300"], detach=True,
                                    volumes=["vol-running:/data"])
    exiting = client.containers.run("alpine", ["sleep", "2"], detach=True,
                                    volumes=["vol-exiting:/data"])
    volumes_dir = daemon.data_root / "volumes"
    assert os.path.ismount(volumes_dir / "vol-exiting" / "_data")
    daemon.kill9()
    # A create cut short: the directory is there, the record never was.
    (volumes_dir / "half-made" / "_data").mkdir(parents=True)
    time.sleep(3)  # the second container exits while no daemon runs
    daemon.start()
    client = daemon.client()
    assert {v.name for v in client.volumes.list()} == {"vol-running", "vol-exiting"}
    assert not (volumes_dir / "half-made").exists()
    assert os.path.ismount(volumes_dir / "vol-running" / "_data")  # still in use
    assert not os.path.ismount(volumes_dir / "vol-exiting" / "_data")
    with pytest.raises(docker.errors.APIError, match="volume is in use"):
        client.api.remove_volume("vol-running")
    client.api.remove_container(running.id, v=True, force=True)
    client.api.remove_container(exiting.id, v=True, force=True)
    assert not os.path.ismount(volumes_dir / "vol-running" / "_data")
    for name in ("vol-running", "vol-exiting"):
        client.api.remove_volume(name)
