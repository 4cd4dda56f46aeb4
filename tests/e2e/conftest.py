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


@pytest.fixture
def containers(docker_client: docker.DockerClient):
    """docker_client.containers, with every container the test made removed afterwards."""
    before = {c.id for c in docker_client.containers.list(all=True)}
    yield docker_client.containers
    for container in docker_client.containers.list(all=True):
        if container.id not in before:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass


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
