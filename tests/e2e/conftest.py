"""Fixtures for end-to-end tests: pulled images and containers removed after each test."""

from __future__ import annotations

import docker
import docker.errors
import pytest


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
