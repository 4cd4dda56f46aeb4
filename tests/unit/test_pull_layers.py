"""Puller's layers against a scripted registry: each one unpacked while it downloads,
registered in order once all are verified, none registered when any one fails."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
from pathlib import Path
from typing import AsyncIterator, Callable

import attrs
import pytest

from servin.images.archive import ArchiveError
from servin.images.content import ContentStore, DigestMismatch
from servin.images.imagestore import ImageStore
from servin.images.layers import LayerStore, chain_ids
from servin.images.progress import ProgressMessage
from servin.images.pull import PullResult, Puller, short_id
from servin.images.reference import parse_reference
from servin.images.registry import Manifest
from tests.support.registry import (MT_DOCKER_LAYER, MT_DOCKER_MANIFEST, Blob, BuiltImage, Entry,
                                    build_image, layer_tar)

CHUNK = 1024   # the scripted registry's chunks: every layer here spans several


SIZES = (8 * CHUNK, 2 * CHUNK, 3 * CHUNK)


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def random_layer(name: str, size: int, seed: int) -> bytes:
    """A layer of one file of random (incompressible) bytes."""
    return layer_tar([Entry(name, random_bytes(size, seed))])


def with_layers(config_of: BuiltImage, layers: list[Blob]) -> BuiltImage:
    """An image with the config (and so the diff ids) of one image and other layer blobs."""
    manifest = {"schemaVersion": 2, "mediaType": MT_DOCKER_MANIFEST,
                "config": config_of.config.descriptor(),
                "layers": [blob.descriptor() for blob in layers]}
    return BuiltImage(config_of.config, layers,
                      Blob(MT_DOCKER_MANIFEST, json.dumps(manifest).encode()),
                      config_of.diff_ids)


class ScriptedRegistry:
    """What Puller asks of a registry client, for one image, blobs in CHUNK-byte chunks.

    A blob in ``hold`` stops after its first chunk until its event is set;
    ``blobs`` can be changed to serve other bytes under a digest.
    """

    def __init__(self, image: BuiltImage) -> None:
        self.image = image
        self.blobs = {blob.digest: blob.data for blob in (image.config, *image.layers)}
        self.hold: dict[str, asyncio.Event] = {}
        self.holding = asyncio.Event()   # a held blob reached its hold

    async def get_manifest(self, reference: str) -> Manifest:
        manifest = self.image.manifest
        return Manifest(manifest.media_type, manifest.data, manifest.digest)

    async def get_blob(self, digest: str) -> bytes:
        return self.blobs[digest]

    async def stream_blob(self, digest: str) -> AsyncIterator[bytes]:
        data = self.blobs[digest]
        for offset in range(0, len(data), CHUNK):
            if offset and digest in self.hold:
                self.holding.set()
                await self.hold[digest].wait()
            yield data[offset:offset + CHUNK]


@attrs.define
class Recorder:
    """Progress messages as the client would get them; ``hook`` sees each one first."""

    hook: Callable[[dict], None] = lambda message: None
    messages: list[dict] = attrs.Factory(list)

    async def send(self, message: ProgressMessage) -> None:
        body = message.to_json()
        self.hook(body)
        self.messages.append(body)

    def statuses(self, layer: Blob) -> list[str]:
        """The layer's statuses, repeated Downloading lines as one."""
        out: list[str] = []
        for message in self.messages:
            if message.get("id") == short_id(layer.digest) and \
                    (not out or out[-1] != message["status"]):
                out.append(message["status"])
        return out

    def ids_with(self, status: str) -> list[str]:
        return [m["id"] for m in self.messages if m["status"] == status]


@attrs.define
class Stores:
    root: Path
    content: ContentStore
    layers: LayerStore
    images: ImageStore

    async def pull(self, registry: ScriptedRegistry, recorder: Recorder) -> PullResult:
        puller = Puller(registry,  # type: ignore[arg-type]  # what Puller uses of a client
                        parse_reference("scripted").with_default_tag(), content=self.content,
                        layers=self.layers, images=self.images, progress=recorder)
        return await puller.pull()

    def assert_nothing_registered(self) -> None:
        overlay = self.root / "overlay2"
        assert sorted(p.name for p in overlay.iterdir()) == ["l"]   # no layer, nothing staged
        assert list((overlay / "l").iterdir()) == []
        assert list(self.layers.layerdb.iterdir()) == []
        assert len(self.images) == 0


async def stores(root: Path) -> Stores:
    content = ContentStore(root / "image")
    content.load()
    images = ImageStore(root / "image", content)
    images.load()
    layers = LayerStore(root)
    await layers.load()
    return Stores(root, content, layers, images)


def release_when_complete(registry: ScriptedRegistry, held: Blob, others: list[Blob]
                          ) -> Callable[[dict], None]:
    """A hook that lets ``held`` go on once every one of ``others`` is downloaded."""
    registry.hold[held.digest] = asyncio.Event()
    waiting = {short_id(blob.digest) for blob in others}

    def hook(message: dict) -> None:
        if message["status"] == "Download complete":
            waiting.discard(message["id"])
            if not waiting:
                registry.hold[held.digest].set()
    return hook


def three_layers() -> tuple[BuiltImage, list[bytes]]:
    tars = [random_layer(f"file-{i}", size, seed=i) for i, size in enumerate(SIZES)]
    return build_image(tars), tars


def test_layers_finished_out_of_order_register_in_order(tmp_path):
    image, _ = three_layers()

    async def scenario() -> tuple[Stores, PullResult, Recorder]:
        registry = ScriptedRegistry(image)
        # The bottom layer finishes last: the layers above it are unpacked before it.
        recorder = Recorder(release_when_complete(registry, image.layers[0], image.layers[1:]))
        s = await stores(tmp_path)
        return s, await s.pull(registry, recorder), recorder

    s, result, recorder = asyncio.run(scenario())
    chains = chain_ids(image.diff_ids)
    assert result.image.chain_id == chains[-1]
    registered = s.layers.chain(result.image.chain_id)
    assert [layer.chain_id for layer in registered] == chains[::-1]
    assert [layer.parent for layer in registered] == [chains[1], chains[0], None]
    assert [layer.diff_id for layer in registered] == image.diff_ids[::-1]
    dirs = [tmp_path / "overlay2" / chain.split(":")[1] for chain in chains]
    for index, directory in enumerate(dirs):
        assert (directory / "diff" / f"file-{index}").read_bytes() == \
            random_bytes(SIZES[index], seed=index)
    links = [(directory / "link").read_text() for directory in dirs]
    assert not (dirs[0] / "lower").exists()
    assert (dirs[1] / "lower").read_text() == f"l/{links[0]}"
    assert (dirs[2] / "lower").read_text() == f"l/{links[1]}:l/{links[0]}"
    # Each layer's messages in dockerd's order; registered (Pull complete) bottom up,
    # once all were downloaded and verified.
    for layer in image.layers:
        assert recorder.statuses(layer) == ["Pulling fs layer", "Downloading",
                                            "Verifying Checksum", "Download complete",
                                            "Extracting", "Pull complete"]
    ids = [short_id(layer.digest) for layer in image.layers]
    assert recorder.ids_with("Download complete")[-1] == ids[0]
    assert recorder.ids_with("Pull complete") == ids
    statuses = [m["status"] for m in recorder.messages]
    assert statuses.index("Extracting") > max(i for i, status in enumerate(statuses)
                                              if status == "Download complete")


def test_layers_on_an_existing_one_keep_it(tmp_path):
    image, tars = three_layers()
    upper = build_image([tars[0], random_layer("other", 2 * CHUNK, seed=9)])

    async def scenario() -> tuple[Stores, PullResult, Recorder]:
        s = await stores(tmp_path)
        await s.pull(ScriptedRegistry(image), Recorder())
        recorder = Recorder()
        return s, await s.pull(ScriptedRegistry(upper), recorder), recorder

    s, result, recorder = asyncio.run(scenario())
    assert recorder.statuses(upper.layers[0]) == ["Already exists"]
    assert recorder.ids_with("Pull complete") == [short_id(upper.layers[1].digest)]
    top = s.layers.chain(result.image.chain_id)
    assert [layer.chain_id for layer in top] == chain_ids(upper.diff_ids)[::-1]


def test_a_corrupt_layer_leaves_none_registered(tmp_path):
    """The middle layer's bytes differ from its digest; the others are good and done first."""
    image, _ = three_layers()
    bad = image.layers[1]

    async def scenario() -> tuple[Stores, Recorder]:
        registry = ScriptedRegistry(image)
        corrupt = bytearray(bad.data)
        corrupt[len(corrupt) // 2] ^= 0xFF
        registry.blobs[bad.digest] = bytes(corrupt)
        recorder = Recorder(release_when_complete(registry, bad,
                                                  [image.layers[0], image.layers[2]]))
        s = await stores(tmp_path)
        with pytest.raises(DigestMismatch,
                           match=f"^filesystem layer verification failed for digest "
                                 f"{bad.digest}$"):
            await s.pull(registry, recorder)
        return s, recorder

    s, recorder = asyncio.run(scenario())
    assert sorted(recorder.ids_with("Download complete")) == \
        sorted([short_id(image.layers[0].digest), short_id(image.layers[2].digest)])
    assert recorder.ids_with("Pull complete") == []
    s.assert_nothing_registered()


def test_bytes_that_break_the_archive_and_the_digest_are_a_digest_failure(tmp_path):
    image, _ = three_layers()

    async def scenario() -> Stores:
        registry = ScriptedRegistry(image)
        registry.blobs[image.layers[2].digest] = gzip.compress(b"not a tar at all " * 100)
        s = await stores(tmp_path)
        with pytest.raises(DigestMismatch, match="filesystem layer verification failed"):
            await s.pull(registry, Recorder())
        return s

    asyncio.run(scenario()).assert_nothing_registered()


def test_a_layer_that_is_not_an_archive_is_refused(tmp_path):
    image, _ = three_layers()
    garbage = Blob(MT_DOCKER_LAYER, gzip.compress(b"not a tar at all " * 100))

    async def scenario() -> Stores:
        s = await stores(tmp_path)
        with pytest.raises(ArchiveError, match="invalid layer archive"):
            await s.pull(ScriptedRegistry(with_layers(image, [*image.layers[:2], garbage])),
                         Recorder())
        return s

    asyncio.run(scenario()).assert_nothing_registered()


def test_a_layer_unlike_the_config_diff_id_is_refused(tmp_path):
    image, _ = three_layers()
    other = build_image([random_layer("other", CHUNK, seed=7)])

    async def scenario() -> Stores:
        s = await stores(tmp_path)
        with pytest.raises(ArchiveError, match=f"layer content does not match the image "
                                               f"config: diff id {other.diff_ids[0]}, "
                                               f"expected {image.diff_ids[1]}"):
            await s.pull(ScriptedRegistry(with_layers(
                image, [image.layers[0], other.layers[0], image.layers[2]])), Recorder())
        return s

    asyncio.run(scenario()).assert_nothing_registered()


def test_more_bytes_than_the_manifest_gives_are_refused(tmp_path):
    image, _ = three_layers()
    layer = image.layers[0]

    async def scenario() -> Stores:
        registry = ScriptedRegistry(image)
        registry.blobs[layer.digest] = layer.data + bytes(2 * CHUNK)
        s = await stores(tmp_path)
        with pytest.raises(DigestMismatch, match=f"more than the {len(layer.data)} bytes"):
            await s.pull(registry, Recorder())
        return s

    asyncio.run(scenario()).assert_nothing_registered()


def test_a_pull_cancelled_mid_download_leaves_nothing(tmp_path):
    """As when the daemon stops, or aiohttp cancels the handler of a client gone."""
    image, _ = three_layers()

    async def scenario() -> Stores:
        registry = ScriptedRegistry(image)
        registry.hold[image.layers[0].digest] = asyncio.Event()   # never set
        s = await stores(tmp_path)
        pull = asyncio.create_task(s.pull(registry, Recorder()))
        await registry.holding.wait()
        pull.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pull
        return s

    asyncio.run(scenario()).assert_nothing_registered()


def test_a_client_gone_mid_download_leaves_nothing(tmp_path):
    image, _ = three_layers()

    def hang_up(message: dict) -> None:
        if message["status"] == "Download complete":
            raise ConnectionResetError("Cannot write to closing transport")

    async def scenario() -> Stores:
        s = await stores(tmp_path)
        with pytest.raises(ConnectionResetError):
            await s.pull(ScriptedRegistry(image), Recorder(hang_up))
        return s

    asyncio.run(scenario()).assert_nothing_registered()
