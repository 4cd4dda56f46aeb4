"""The images manager: pulls, the image store, the layer store, lookups and listing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import structlog

from servin.errors import NotFound, ServinError, SystemFailure
from servin.events import EventBus
from servin.images.content import ContentStore
from servin.images.filters import ListedImage, filter_images
from servin.images.imagestore import Image, ImageStore
from servin.images.layers import LayerStore
from servin.images.progress import ProgressMessage, ProgressSink
from servin.images.pull import Puller
from servin.images.reference import parse_reference, with_tag_or_digest
from servin.images.registry import Credentials, RegistryClient, RegistryUnreachable, endpoints_for

__all__ = ["Image", "ImageManager", "LayerStore", "ProgressSink"]

log = structlog.get_logger("servin.images")


class ImageManager:
    def __init__(self, data_root: Path, *, mirrors: list[str], insecure: list[str],
                 events: EventBus) -> None:
        self.mirrors = mirrors
        self.insecure = insecure
        self.events = events
        self.content = ContentStore(data_root / "image")
        self.layers = LayerStore(data_root)
        self.store = ImageStore(data_root / "image", self.content)
        self._session: aiohttp.ClientSession | None = None

    async def load(self) -> None:
        await asyncio.to_thread(self.content.load)
        await self.layers.load()
        await asyncio.to_thread(self.store.load)
        log.info("images_loaded", images=len(self.store))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def count(self) -> int:
        return len(self.store)

    def resolve(self, name: str) -> Image:
        return self.store.resolve(name)

    def list_images(self, filters: dict[str, list[str]]) -> list[ListedImage]:
        return filter_images(self.store.all(), filters, self.resolve)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def pull(self, ref: str, *, tag: str | None, auth: dict | None,
                   progress: ProgressSink) -> Image:
        """Pull ``ref`` (with the API's separate ``tag``, a tag or a digest).

        Errors found before the first progress message (bad reference, unknown
        manifest or repository) are raised before anything was sent.
        """
        reference = with_tag_or_digest(parse_reference(ref), tag).with_default_tag()
        endpoints = endpoints_for(reference, mirrors=self.mirrors, insecure=self.insecure)
        credentials = Credentials.from_auth(auth)
        failure: ServinError | None = None
        for endpoint in endpoints:
            client = RegistryClient(self._http(), endpoint, reference.path, credentials)
            puller = Puller(client, reference, content=self.content, layers=self.layers,
                            images=self.store, progress=progress)
            try:
                result = await puller.pull()
            except RegistryUnreachable as exc:
                where = "registry mirror" if endpoint.mirror else "registry"
                failure = SystemFailure(f"error pulling {reference.familiar()} from {where} "
                                        f"{endpoint.url}: {exc}")
                log.warning("pull_endpoint_failed", ref=str(reference), endpoint=endpoint.url,
                            error=str(exc))
                continue
            except NotFound as exc:
                if not endpoint.mirror:
                    raise
                failure = exc   # like dockerd, the next mirror may have it
                continue
            break
        else:
            assert failure is not None  # there is always at least one endpoint
            raise failure
        status = "Downloaded newer image for" if result.updated else "Image is up to date for"
        await progress.send(ProgressMessage(f"Status: {status} {reference.familiar()}"))
        self.events.publish("image", "pull", reference.familiar(), name=reference.familiar_name)
        log.info("image_pulled", ref=str(reference), id=result.image.id,
                 digest=result.manifest_digest, updated=result.updated)
        return result.image
