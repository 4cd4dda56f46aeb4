"""Images end to end: pulls through the registry mirror, list, inspect, errors."""

from __future__ import annotations

import json
import os
import stat

import docker
import docker.errors
import pytest

pytestmark = pytest.mark.e2e


def test_sdk_pull_streams_docker_progress(docker_client, test_images, servind):
    stream = docker_client.api.pull("busybox", tag="latest", stream=True, decode=True)
    messages = list(stream)
    assert messages[0] == {"status": "Pulling from library/busybox", "id": "latest"}
    statuses = [m["status"] for m in messages]
    assert statuses[-1] in ("Status: Downloaded newer image for busybox:latest",
                            "Status: Image is up to date for busybox:latest")
    assert f"Digest: {test_images.digests['busybox']}" in statuses
    assert not any("error" in m for m in messages)
    image = docker_client.images.get("busybox")
    assert image.id == test_images.images["busybox"].id
    assert "busybox:latest" in image.tags


def test_cli_pull_draws_progress_and_prints_reference(docker_cli, test_images):
    result = docker_cli("pull", "layered")
    assert result.returncode == 0, result.stderr
    assert "latest: Pulling from library/layered" in result.stdout
    assert f"Digest: {test_images.digests['layered']}" in result.stdout
    assert "layered:latest" in result.stdout.splitlines()[-1]
    again = docker_cli("pull", "layered")
    assert "Status: Image is up to date for layered:latest" in again.stdout


def test_layered_pull_keeps_overlay_whiteouts(docker_client, test_images, servind):
    image = docker_client.images.pull("layered", tag="latest")
    data = image.attrs["GraphDriver"]
    assert data["Name"] == "overlay2"
    upper = data["Data"]["UpperDir"]
    assert upper.startswith(str(servind.data_root / "overlay2"))
    assert len(data["Data"]["LowerDir"].split(":")) == 2
    whiteout = os.lstat(os.path.join(upper, "data", "remove-me.txt"))
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert os.getxattr(os.path.join(upper, "opaque"), "trusted.overlay.opaque") == b"y"
    assert image.attrs["RootFS"] == {"Type": "layers",
                                     "Layers": test_images.images["layered"].diff_ids}


def test_manifest_list_pull_picks_amd64(docker_client, test_images):
    image = docker_client.images.pull("multiarch", tag="latest")
    assert image.id == test_images.images["multiarch-amd64"].id
    assert image.attrs["Architecture"] == "amd64"
    assert image.attrs["RepoDigests"] == [f"multiarch@{test_images.digests['multiarch']}"]
    oci = docker_client.images.pull("oci", tag="latest")
    assert oci.labels == {"org.servin.test": "oci"}


def test_inspect_shape(docker_client, alpine, test_images):
    attrs = docker_client.api.inspect_image("alpine")
    for key in ("Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container",
                "ContainerConfig", "DockerVersion", "Author", "Config", "Architecture", "Os",
                "Size", "VirtualSize", "GraphDriver", "RootFS", "Metadata"):
        assert key in attrs, key
    assert attrs["Id"] == test_images.images["alpine"].id
    assert attrs["RepoTags"] == ["alpine:latest"]
    assert attrs["Config"]["Cmd"] == ["sh"]
    assert attrs["Config"]["Env"][0].startswith("PATH=/usr/local/sbin")
    assert attrs["Config"]["Entrypoint"] is None
    assert set(attrs["GraphDriver"]["Data"]) == {"MergedDir", "UpperDir", "WorkDir"}
    short = attrs["Id"].split(":")[1][:12]
    assert docker_client.api.inspect_image(short)["Id"] == attrs["Id"]
    assert docker_client.api.inspect_image(
        f"alpine@{test_images.digests['alpine']}")["Id"] == attrs["Id"]


def test_list_and_filters(docker_client, alpine, test_images):
    docker_client.images.pull("layered", tag="latest")
    listed = docker_client.api.images()
    by_id = {item["Id"]: item for item in listed}
    summary = by_id[test_images.images["alpine"].id]
    assert summary["RepoTags"] == ["alpine:latest"]
    assert set(summary) >= {"Id", "ParentId", "RepoTags", "RepoDigests", "Created", "Size",
                            "SharedSize", "VirtualSize", "Labels", "Containers"}
    assert isinstance(summary["Created"], int) and summary["Size"] > 0
    assert [i["RepoTags"] for i in docker_client.api.images(name="alp*")] == [["alpine:latest"]]
    labelled = docker_client.api.images(filters={"label": "org.servin.test=layered"})
    assert [i["RepoTags"] for i in labelled] == [["layered:latest"]]
    assert docker_client.api.images(filters={"dangling": True}) == []


def test_cli_images_table(docker_cli, alpine):
    result = docker_cli("images", "--format", "{{json .}}")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert any(row["Repository"] == "alpine" and row["Tag"] == "latest" for row in rows)


def test_unknown_image_errors(docker_client, docker_cli, test_images):
    with pytest.raises(docker.errors.ImageNotFound) as info:
        docker_client.images.get("nosuch")
    assert "No such image: nosuch:latest" in str(info.value)
    with pytest.raises(docker.errors.NotFound) as info:
        docker_client.images.pull("alpine", tag="nosuch")
    assert "manifest for alpine:nosuch not found: manifest unknown" in str(info.value)
    result = docker_cli("pull", "alpine:nosuch", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == ("Error response from daemon: manifest for alpine:nosuch "
                                     "not found: manifest unknown: manifest unknown")


def test_invalid_reference(docker_client):
    with pytest.raises(docker.errors.APIError) as info:
        docker_client.api.inspect_image("UPPER")
    assert info.value.status_code == 400
    assert "invalid reference format" in str(info.value)
