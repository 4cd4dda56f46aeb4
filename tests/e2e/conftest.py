"""Fixtures for end-to-end tests: pulled images and containers removed after each test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.support.registry import Entry, build_image, layer_tar, push_image

UDPECHO_SOURCE = Path(__file__).parent.parent / "support" / "udpecho.c"


@pytest.fixture(scope="session")
def alpine(docker_client: docker.DockerClient, test_images) -> str:
    """The busybox-based `alpine` image, pulled once through the registry mirror."""
    docker_client.images.pull("alpine", tag="latest")
    return "alpine:latest"


def _made_during(collection, key: str, remove, **list_args):
    """Yield ``collection``; afterwards remove what it lists that was not there before."""
    before = {getattr(item, key) for item in collection.list(**list_args)}
    yield collection
    for item in collection.list(**list_args):
        if getattr(item, key) not in before:
            try:
                remove(item)
            except docker.errors.NotFound:
                pass


@pytest.fixture
def containers(docker_client: docker.DockerClient):
    """docker_client.containers, with every container the test made removed afterwards."""
    yield from _made_during(docker_client.containers, "id",
                            lambda c: c.remove(force=True), all=True)


@pytest.fixture
def networks(docker_client: docker.DockerClient):
    """docker_client.networks, with every network the test made removed afterwards,
    and the containers still attached to it."""
    def remove(network) -> None:
        network.reload()
        for container in network.containers:
            container.remove(force=True)
        network.remove()

    yield from _made_during(docker_client.networks, "id", remove)


@pytest.fixture
def volumes(docker_client: docker.DockerClient):
    """docker_client.volumes, with every volume the test made removed afterwards,
    and the containers still using it."""
    def remove(volume) -> None:
        for container in docker_client.containers.list(all=True,
                                                       filters={"volume": volume.name}):
            container.remove(force=True)
        volume.remove(force=True)

    yield from _made_during(docker_client.volumes, "name", remove)


@pytest.fixture(scope="session")
def udpecho(docker_client: docker.DockerClient, registry, test_images, tmp_path_factory) -> str:
    """An image with a UDP echo server (`udpecho PORT`) beside busybox, built with gcc."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the UDP echo server (make install provides it)")
    binary = tmp_path_factory.mktemp("udpecho") / "udpecho"
    subprocess.run(["gcc", "-static", "-Os", "-o", str(binary), str(UDPECHO_SOURCE)],
                   check=True, capture_output=True)
    layer = layer_tar([Entry("usr/bin/udpecho", binary.read_bytes(), mode=0o755)])
    push_image(registry.url, "library/udpecho", "latest",
               build_image([test_images.busybox_layer, layer]))
    docker_client.images.pull("udpecho", tag="latest")
    return "udpecho:latest"
