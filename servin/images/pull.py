"""One image pull from one registry endpoint, with Docker's progress messages.

The manifest (and, for a manifest list or OCI index, the linux/amd64 entry) is
resolved before the first progress message, so "not found" and "access
denied" reach the client as plain HTTP errors, as from dockerd. Layers download
three at a time into the content store's ingest area, are verified against
their digests, then unpacked in order into the layer store.
"""

from __future__ import annotations

import asyncio
import json
import time

import attrs
import structlog

from servin.errors import NotFound, ServinError, SystemFailure
from servin.images.content import ContentStore, DigestMismatch, Ingest, sha256_digest
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
        slots = asyncio.Semaphore(MAX_CONCURRENT_DOWNLOADS)
        downloads = {i: asyncio.create_task(self._download(descriptors[i], slots))
                     for i, absent in enumerate(missing) if absent}
        try:
            for i, task in downloads.items():
                ingest = await task
                try:
                    await self._extract(descriptors[i], diff_ids[i],
                                        chains[i - 1] if i else None, ingest)
                finally:
                    await asyncio.to_thread(ingest.discard)
        except BaseException:
            for task in downloads.values():
                task.cancel()
            results = await asyncio.gather(*downloads.values(), return_exceptions=True)
            for result in results:
                if isinstance(result, Ingest):
                    await asyncio.to_thread(result.discard)
            raise

    async def _download(self, descriptor: dict, slots: asyncio.Semaphore) -> Ingest:
        layer_id = short_id(descriptor["digest"])
        if slots.locked():
            await self.progress.send(ProgressMessage("Waiting", id=layer_id))
        async with slots:
            ingest = self.content.ingest(descriptor["digest"])
            try:
                total = descriptor.get("size")
                throttle = Throttle()
                async for chunk in self.client.stream_blob(descriptor["digest"]):
                    await ingest.write(chunk)
                    if throttle.ready():
                        await self.progress.send(ProgressMessage(
                            "Downloading", id=layer_id, current=ingest.size, total=total))
                await self.progress.send(ProgressMessage("Verifying Checksum", id=layer_id))
                await ingest.verify(what="filesystem layer")
            except BaseException:
                await asyncio.to_thread(ingest.discard)
                raise
            await self.progress.send(ProgressMessage("Download complete", id=layer_id))
            return ingest

    async def _extract(self, descriptor: dict, diff_id: str, parent: str | None,
                       ingest: Ingest) -> None:
        layer_id = short_id(descriptor["digest"])
        consumed = [0]   # updated from the unpacking thread

        def on_read(size: int) -> None:
            consumed[0] += size

        register = asyncio.create_task(self.layers.register(parent, diff_id, ingest.path,
                                                            on_read))
        while not register.done():
            await asyncio.wait({register}, timeout=PROGRESS_INTERVAL)
            await self.progress.send(ProgressMessage("Extracting", id=layer_id,
                                                     current=consumed[0], total=ingest.size))
        await register
        await self.progress.send(ProgressMessage("Pull complete", id=layer_id))
