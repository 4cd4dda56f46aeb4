"""The images both engines are loaded with, pushed to a registry on 127.0.0.1.

``alpine`` is a busybox image under the name the rows use. Each ``pull-N`` is a
~210 MB image in 6 layers of seeded random data (incompressible, as real
binaries nearly are), one per pull sample: Servin cannot remove images yet, so
every sample pulls layers neither engine has seen.
"""

from __future__ import annotations

import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.registry import (BuiltImage, Entry, Registry, build_image, dir_tar,
                                    layer_tar, push_image)
from tests.support.rootfs import make_busybox_rootfs

SMALL_IMAGE = "alpine"
PULL_LAYERS = 6
PULL_BYTES = 210_000_000


def pull_image_name(sample: int) -> str:
    return f"pull-{sample}"


def busybox_layer(workdir: Path, extra_file: tuple[str, bytes] | None = None) -> bytes:
    root = make_busybox_rootfs(workdir)
    try:
        if extra_file is not None:
            name, data = extra_file
            (root / name).write_bytes(data)
        return dir_tar(root)
    finally:
        shutil.rmtree(root)


def pull_image(seed: int, workdir: Path) -> BuiltImage:
    """busybox plus random data in the first layer, random data alone in the other five."""
    rng = random.Random(seed)
    per_layer = PULL_BYTES // PULL_LAYERS
    layers = [busybox_layer(workdir, ("random-0", rng.randbytes(per_layer)))]
    for index in range(1, PULL_LAYERS):
        layers.append(layer_tar([Entry(f"random-{index}", rng.randbytes(per_layer))]))
    return build_image(layers)


def push_bench_images(registry: Registry, workdir: Path, pull_samples: int) -> None:
    push_image(registry.url, f"library/{SMALL_IMAGE}", "latest",
               build_image([busybox_layer(workdir / "alpine-rootfs")]))

    def push_pull_image(sample: int) -> None:
        image = pull_image(seed=sample, workdir=workdir / f"pull-rootfs-{sample}")
        push_image(registry.url, f"library/{pull_image_name(sample)}", "latest", image)

    # gzip and sha256 release the GIL: two images at a time use both cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(push_pull_image, range(pull_samples)))

