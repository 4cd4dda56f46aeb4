"""Disk usage of images, containers and volumes, as GET /system/df reports it.

An image's SharedSize is what its layers hold that another image uses too;
LayersSize counts every layer once. Counting files runs off the event loop.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs

from servin.containers.manager import ContainerManager
from servin.images.filters import ListedImage
from servin.images.manager import ImageManager
from servin.volumes.manager import VolumeManager


@attrs.frozen
class ImageUsage:
    listed: ListedImage
    shared_size: int
    containers: int


@attrs.frozen
class DataUsage:
    layers_size: int
    images: list[ImageUsage]
    containers: list[dict[str, Any]]  # container summaries with SizeRw and SizeRootFs
    volumes: list[dict[str, Any]]     # volumes with UsageData


async def data_usage(images: ImageManager, containers: ContainerManager,
                     volumes: VolumeManager) -> DataUsage:
    listed = images.list_images({})
    chains = {item.image.id: images.layers.chain(item.image.chain_id) for item in listed}
    users: Counter[str] = Counter()
    sizes: dict[str, int] = {}
    for chain in chains.values():
        for layer in chain:
            users[layer.chain_id] += 1
            sizes[layer.chain_id] = layer.size
    all_containers = containers.list(all=True)
    per_image = Counter(c.image_id for c in all_containers)
    image_usage = [ImageUsage(item, sum(layer.size for layer in chains[item.image.id]
                                        if users[layer.chain_id] > 1),
                              per_image[item.image.id]) for item in listed]
    return DataUsage(
        layers_size=sum(sizes.values()),
        images=image_usage,
        containers=[await containers.summary(c, size=True) for c in all_containers],
        volumes=[volumes.view(v, await volumes.usage(v.name)) for v in volumes.list({})])
