"""A container's SizeRw and SizeRootFs, as dockerd's ``size=1`` reports them.

SizeRw is what the container's upper layer holds, counted as Docker's overlay2
driver counts a layer: the sizes of everything but directories, each hard-linked
inode once. SizeRootFs adds the image's layers. Blocking code: callers run it
off the event loop.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import attrs

from servin.images.layers import LayerStore


@attrs.frozen
class ContainerSizes:
    size_rw: int
    size_root_fs: int


def directory_size(path: Path) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, dirs, files in os.walk(path):
        for name in (*dirs, *files):  # a symlink to a directory is listed with the directories
            try:
                st = os.lstat(os.path.join(directory, name))
            except FileNotFoundError:
                continue  # removed by the running container meanwhile
            if stat.S_ISDIR(st.st_mode) or st.st_size == 0 or (st.st_ino, st.st_dev) in seen:
                continue
            seen.add((st.st_ino, st.st_dev))
            total += st.st_size
    return total


def container_sizes(layers: LayerStore, container_id: str,
                    image_chain_id: str | None) -> ContainerSizes:
    size_rw = directory_size(Path(layers.graph_driver_data(container_id)["UpperDir"]))
    return ContainerSizes(size_rw=size_rw, size_root_fs=size_rw + layers.size(image_chain_id))
