"""One image pull from one registry endpoint, with Docker's progress messages.

The manifest (and, for a manifest list or OCI index, the linux/amd64 entry) is
resolved before the first progress message, so "not found" and "access
denied" reach the client as plain HTTP errors, as from dockerd. Layers download
three at a time; each one is unpacked as it arrives, by a thread of its own,
into a staged directory of the layer store (one pass over its bytes: the
blob's digest, gunzip, the diff id and the files). Once all are verified
against both digests, they are registered in order, each on its parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import structlog

from servin.errors import NotFound, ServinError, SystemFailure
from servin.images.archive import ArchiveError, unpack_layer
from servin.images.cleanup import run_to_end
from servin.images.content import ContentStore, DigestMismatch, sha256_digest
from servin.images.feed import ChunkFeed
from servin.images.imagestore import Image, ImageStore
from servin.images.layers import LayerStore, chain_ids
from servin.images.progress import ProgressMessage, ProgressSink
from servin.images.reference import Reference
from servin.images.registry import (INDEX_TYPES, MT_DOCKER_MANIFEST, MT_OCI_MANIFEST, Manifest,
                                    RegistryClient, RegistryError)

log = structlog.get_logger("servin.images.pull")

PLATFORM_OS = "linux"
PLATFORM_ARCH = "amd64"
MAX_CONCURRENT_DOWNLOADS = 3
PROGRESS_INTERVAL = 0.1


@attrs.frozen
class StagedLayer:
    """A layer unpacked and verified in a directory of its own, not registered yet."""

    path: Path
    size: int


@attrs.frozen
class PullResult:
    image: Image
    manifest_digest: str
    updated: bool      # a new image, or the reference now points somewhere else


def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def translate_registry_error(error: RegistryError, ref: Reference) -> ServinError:
    """dockerd's wording for what the registry answered (distribution/errors.go)."""
    cause = str(error)
    if error.code in ("DENIED", "UNAUTHORIZED"):
        return NotFound(f"pull access denied for {ref.familiar_name}, repository does not "
                        f"exist or may require 'docker login': {cause}")
    if error.code == "MANIFEST_UNKNOWN":
        return NotFound(f"manifest for {ref.familiar()} not found: {cause}")
    if error.code == "NAME_UNKNOWN":
        return NotFound(f"repository {ref.familiar_name} not found: {cause}")
    return SystemFailure(f"error pulling {ref.familiar()}: {cause}")


class Throttle:
    """Lets a progress line through at most every PROGRESS_INTERVAL seconds."""

    def __init__(self) -> None:
        self._last = 0.0

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL:
            return False
        self._last = now
        return True


class Puller:
    def __init__(self, client: RegistryClient, ref: Reference, *, content: ContentStore,
                 layers: LayerStore, images: ImageStore, progress: ProgressSink) -> None:
        self.client = client
        self.ref = ref
        self.content = content
        self.layers = layers
        self.images = images
        self.progress = progress

    async def pull(self) -> PullResult:
        try:
            manifest, manifest_digest = await self._resolve_manifest()
            body = manifest.json()
            await self.progress.send(ProgressMessage(f"Pulling from {self.ref.path}",
                                                     id=self.ref.tag_or_digest, detail=False))
            config_digest = body["config"]["digest"]
            image = self.images.get(config_digest)
            updated = image is None
            if image is None:
                image = await self._pull_image(config_digest, body["layers"])
        except RegistryError as exc:
            raise translate_registry_error(exc, self.ref) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise SystemFailure(f"invalid manifest for {self.ref.familiar()}: {exc!r}") from None
        if self.ref.tag is not None and self.ref.digest is None:
            updated |= await self.images.reference(self.ref, image.id)
        digest_ref = attrs.evolve(self.ref, tag=None, digest=manifest_digest)
        updated |= await self.images.reference(digest_ref, image.id)
        await self.progress.send(ProgressMessage(f"Digest: {manifest_digest}"))
        return PullResult(image, manifest_digest, updated)

    async def _resolve_manifest(self) -> tuple[Manifest, str]:
        manifest = await self._fetch_manifest(self.ref.tag_or_digest, pinned=self.ref.digest)
        manifest_digest = manifest.digest or ""
        if manifest.media_type in INDEX_TYPES:
            entry = self._select_platform(manifest.json())
            manifest = await self._fetch_manifest(entry["digest"], pinned=entry["digest"])
        if manifest.media_type not in (MT_DOCKER_MANIFEST, MT_OCI_MANIFEST):
            raise SystemFailure(f"unsupported manifest media type {manifest.media_type!r} "
                                f"for {self.ref.familiar()}")
        return manifest, manifest_digest

    async def _fetch_manifest(self, reference: str, *, pinned: str | None) -> Manifest:
        manifest = await self.client.get_manifest(reference)
        actual = await asyncio.to_thread(sha256_digest, manifest.body)
        expected = pinned or manifest.digest
        if expected is not None and expected.startswith("sha256:") and expected != actual:
            raise DigestMismatch(f"manifest verification failed for digest {expected}")
        return attrs.evolve(manifest, digest=actual)

    def _select_platform(self, index: dict) -> dict:
        for entry in index.get("manifests", []):
            platform = entry.get("platform") or {}
            if platform.get("os") == PLATFORM_OS and platform.get("architecture") == PLATFORM_ARCH:
                return entry
        raise NotFound(f"no matching manifest for {PLATFORM_OS}/{PLATFORM_ARCH} "
                       f"in the manifest list entries")

    async def _pull_image(self, config_digest: str, descriptors: list[dict]) -> Image:
        if not self.content.has(config_digest):
            raw = await self.client.get_blob(config_digest)
            await self.content.put(raw, config_digest, what="image config")
        config = json.loads(self.content.read(config_digest))
        diff_ids: list[str] = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(descriptors):
            raise SystemFailure(f"invalid image {self.ref.familiar()}: the manifest has "
                                f"{len(descriptors)} layers, the config {len(diff_ids)}")
        chains = chain_ids(diff_ids)
        await self._pull_layers(descriptors, diff_ids, chains)
        top = chains[-1] if chains else None
        image = Image(config_digest, config, top, self.layers.size(top))
        return await self.images.add(image)

    async def _pull_layers(self, descriptors: list[dict], diff_ids: list[str],
                           chains: list[str]) -> None:
        missing = [self.layers.get(chain) is None for chain in chains]
        for descriptor, absent in zip(descriptors, missing):
            status = "Pulling fs layer" if absent else "Already exists"
            await self.progress.send(ProgressMessage(status, id=short_id(descriptor["digest"])))
        wanted = {i: (descriptors[i], diff_ids[i]) for i, absent in enumerate(missing) if absent}
        staged = await self._stage_layers(wanted)
        # Registered only once every layer is verified: a bad one leaves none behind.
        try:
            for i, (descriptor, diff_id) in wanted.items():
                layer_id, size = short_id(descriptor["digest"]), descriptor.get("size")
                await self.progress.send(ProgressMessage("Extracting", id=layer_id,
                                                         current=size, total=size))
                layer = staged.pop(i)
                await self.layers.commit(layer.path, chains[i - 1] if i else None, diff_id,
                                         layer.size)
                await self.progress.send(ProgressMessage("Pull complete", id=layer_id))
        finally:
            await run_to_end(self.layers.discard(*(layer.path for layer in staged.values())))

    async def _stage_layers(self, wanted: dict[int, tuple[dict, str]]
                            ) -> dict[int, StagedLayer]:
        """Download and unpack the layers, a few at a time; the first failure stops all."""
        if not wanted:
            return {}
        slots = asyncio.Semaphore(MAX_CONCURRENT_DOWNLOADS)
        # Threads of this pull's own: each one waits on its download, for as long as it lasts.
        pool = ThreadPoolExecutor(MAX_CONCURRENT_DOWNLOADS, thread_name_prefix="layer-unpack")
        tasks = {i: asyncio.create_task(self._stage(descriptor, diff_id, slots, pool))
                 for i, (descriptor, diff_id) in wanted.items()}
        try:
            done, _ = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()   # raises the failure, if there is one
            return {i: task.result() for i, task in tasks.items()}
        except BaseException:
            for task in tasks.values():
                task.cancel()
            await run_to_end(self._discard_staged(*tasks.values()))
            raise
        finally:
            pool.shutdown(wait=False)

    async def _stage(self, descriptor: dict, diff_id: str, slots: asyncio.Semaphore,
                     pool: ThreadPoolExecutor) -> StagedLayer:
        """One layer, unpacked by a thread as it downloads."""
        layer_id = short_id(descriptor["digest"])
        if slots.locked():
            await self.progress.send(ProgressMessage("Waiting", id=layer_id))
        async with slots:
            started = time.monotonic()
            feed = ChunkFeed()
            unpacking = asyncio.get_running_loop().run_in_executor(
                pool, unpack_verified, self.layers, feed, descriptor["digest"], diff_id)
            try:
                await self._download(descriptor, feed)
                await self.progress.send(ProgressMessage("Verifying Checksum", id=layer_id))
                # Shielded: when cancelled, the thread is stopped and waited for below.
                staged = await asyncio.shield(unpacking)
                await self.progress.send(ProgressMessage("Download complete", id=layer_id))
            except BaseException:
                feed.abort()
                await run_to_end(self._discard_staged(unpacking))
                raise
        log.info("layer_unpacked", digest=descriptor["digest"], size=staged.size,
                 seconds=round(time.monotonic() - started, 3))
        return staged

    async def _discard_staged(self, *stagings: asyncio.Future[StagedLayer]) -> None:
        """Wait for ``stagings`` to end; remove the layers they staged."""
        outcomes = await asyncio.gather(*stagings, return_exceptions=True)
        await self.layers.discard(*(outcome.path for outcome in outcomes
                                    if isinstance(outcome, StagedLayer)))

    async def _download(self, descriptor: dict, feed: ChunkFeed) -> None:
        digest, total = descriptor["digest"], descriptor.get("size")
        layer_id = short_id(digest)
        throttle = Throttle()
        async with contextlib.aclosing(self.client.stream_blob(digest)) as chunks:
            async for chunk in chunks:
                if total is not None and feed.fed + len(chunk) > total:
                    raise DigestMismatch(f"filesystem layer verification failed for digest "
                                         f"{digest}: more than the {total} bytes the manifest "
                                         f"gives")
                if not await feed.put(chunk):
                    break   # the unpacking failed: its error is the one to report
                if throttle.ready():
                    await self.progress.send(ProgressMessage(
                        "Downloading", id=layer_id, current=feed.fed, total=total))
        feed.end()


def unpack_verified(layers: LayerStore, feed: ChunkFeed, digest: str,
                    diff_id: str) -> StagedLayer:
    """Unpack a layer download as it arrives into a staged directory; check both digests.

    Runs in a thread; the staged directory goes again if anything fails. The
    blob's digest decides first: a corrupt download is a verification failure
    even when it also broke the archive.
    """
    mismatch = f"filesystem layer verification failed for digest {digest}"
    staged = layers.make_staged()
    try:
        try:
            result = unpack_layer(feed, staged / "diff")
        except ArchiveError:
            feed.drain()
            if feed.digest() != digest:
                raise DigestMismatch(mismatch) from None
            raise
        feed.drain()   # what follows the archive counts toward the blob's digest
        if feed.digest() != digest:
            raise DigestMismatch(mismatch)
        if result.diff_id != diff_id:
            raise ArchiveError(f"layer content does not match the image config: "
                               f"diff id {result.diff_id}, expected {diff_id}")
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    finally:
        feed.stop()
    return StagedLayer(staged, result.size)
