"""Content-addressed blob store (``<data_root>/image/blobs/sha256/<hex>``).

Every blob is verified against its digest before it is stored. Layer blobs are
not kept: they are unpacked as they download (see servin.images.pull).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from servin.errors import SystemFailure
from servin.store import atomic_write, remove_stale_temps


class DigestMismatch(SystemFailure):
    """Content did not hash to the digest it was fetched by."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_hex(digest: str) -> str:
    return digest.split(":", 1)[1]


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.blobs = root / "blobs" / "sha256"

    def load(self) -> None:
        """Create the directory; drop the temp files a crash left behind."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.blobs)

    def path(self, digest: str) -> Path:
        return self.blobs / digest_hex(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    async def put(self, data: bytes, digest: str, *, what: str = "blob") -> None:
        """Store ``data`` under ``digest`` after checking it hashes to it."""
        actual = await asyncio.to_thread(sha256_digest, data)
        if actual != digest:
            raise DigestMismatch(f"{what} verification failed for digest {digest}")
        await asyncio.to_thread(atomic_write, self.path(digest), data, 0o644)

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)
