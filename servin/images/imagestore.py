"""Image records and the repositories index (tags and digests -> image ids).

An image is its config blob (in the content store, the image id is its digest)
plus a record in ``image/imagedb/<hex>.json`` written after its layers are in
the layer store. ``image/repositories.json`` maps familiar references to
image ids, as Docker's file of the same name does.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import attrs
import cattrs

from servin.errors import NotFound
from servin.images.content import ContentStore, digest_hex
from servin.images.reference import ID_RE, Reference, parse_reference
from servin.store import atomic_write_json, read_json, remove_stale_temps
from servin.timefmt import ZERO_TIME, parse_rfc3339_ns

HEX_PREFIX_RE = re.compile(r"^[0-9a-f]{1,64}$")


@attrs.define
class ImageRecord:
    """What is persisted per image beside its config."""

    id: str
    chain_id: str | None
    size: int
    last_tag_time: str = ZERO_TIME


@attrs.define
class Image:
    id: str                    # "sha256:<hex>", the digest of the config
    config: dict               # the image config JSON
    chain_id: str | None       # top layer chain id, None for an image without layers
    size: int = 0              # bytes of all its layers
    repo_tags: list[str] = attrs.field(factory=list)
    repo_digests: list[str] = attrs.field(factory=list)
    last_tag_time: str = ZERO_TIME

    @property
    def created(self) -> str:
        return self.config.get("created") or ZERO_TIME

    @property
    def created_unix(self) -> float:
        return parse_rfc3339_ns(self.created) / 1e9

    @property
    def labels(self) -> dict[str, str]:
        return (self.config.get("config") or {}).get("Labels") or {}


class ImageStore:
    def __init__(self, image_root: Path, content: ContentStore) -> None:
        self.db = image_root / "imagedb"
        self.repositories_path = image_root / "repositories.json"
        self.content = content
        self._images: dict[str, Image] = {}
        self._refs: dict[str, str] = {}   # familiar reference -> image id
        self._refs_lock = asyncio.Lock()

    def load(self) -> None:
        self.db.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.db)
        remove_stale_temps(self.repositories_path.parent)
        for path in self.db.glob("*.json"):
            record = cattrs.structure(read_json(path), ImageRecord)
            if not self.content.has(record.id):
                path.unlink()  # its config went missing: the image cannot be used
                continue
            config = json.loads(self.content.read(record.id))
            self._images[record.id] = Image(record.id, config, record.chain_id, record.size,
                                            last_tag_time=record.last_tag_time)
        if self.repositories_path.exists():
            for refs in read_json(self.repositories_path)["Repositories"].values():
                self._refs.update({ref: image_id for ref, image_id in refs.items()
                                   if image_id in self._images})
        self._index_refs()

    def _index_refs(self) -> None:
        for image in self._images.values():
            image.repo_tags.clear()
            image.repo_digests.clear()
        for ref, image_id in self._refs.items():
            image = self._images[image_id]
            (image.repo_digests if "@" in ref else image.repo_tags).append(ref)

    def _repositories(self) -> dict:
        repositories: dict[str, dict[str, str]] = {}
        for ref, image_id in sorted(self._refs.items()):
            repositories.setdefault(parse_reference(ref).familiar_name, {})[ref] = image_id
        return {"Repositories": repositories}

    def __len__(self) -> int:
        return len(self._images)

    def all(self) -> list[Image]:
        return list(self._images.values())

    def get(self, image_id: str) -> Image | None:
        return self._images.get(image_id)

    async def add(self, image: Image) -> Image:
        """Record an image whose config is in the content store and layers in place."""
        existing = self._images.get(image.id)
        if existing is not None:
            return existing
        record = ImageRecord(image.id, image.chain_id, image.size, image.last_tag_time)
        await asyncio.to_thread(atomic_write_json, self.db / f"{digest_hex(image.id)}.json",
                                cattrs.unstructure(record))
        return self._images.setdefault(image.id, image)

    async def reference(self, ref: Reference, image_id: str) -> bool:
        """Point a tag or digest reference at an image; True if it changed."""
        key = ref.familiar()
        async with self._refs_lock:
            if self._refs.get(key) == image_id:
                return False
            self._refs[key] = image_id
            self._index_refs()
            # The snapshot is taken under the lock, so writes land in order.
            await asyncio.to_thread(atomic_write_json, self.repositories_path,
                                    self._repositories())
        return True

    def lookup(self, ref: Reference) -> Image | None:
        image_id = self._refs.get(ref.familiar())
        return self._images.get(image_id) if image_id else None

    def resolve(self, name: str) -> Image:
        """Docker's GetImage: by id, by reference, then by unique short id prefix."""
        if ID_RE.match(name):
            name = "sha256:" + name
        if name.startswith("sha256:") and len(name) == 71:
            image = self._images.get(name)
            if image is None:
                raise NotFound(f"No such image: {name}")
            return image
        ref = parse_reference(name).with_default_tag()
        image = self.lookup(ref)
        if image is not None:
            return image
        prefix = name.removeprefix("sha256:")
        if HEX_PREFIX_RE.match(prefix):
            matches = [image for image_id, image in self._images.items()
                       if digest_hex(image_id).startswith(prefix)]
            if len(matches) == 1:
                return matches[0]
        raise NotFound(f"No such image: {ref.familiar()}")
