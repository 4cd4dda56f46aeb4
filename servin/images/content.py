"""Content-addressed blob store (``<data_root>/image/blobs/sha256/<hex>``).

Every blob is verified against its digest before it is stored; downloads land
in ``ingest/`` first and only a verified file is ever renamed into place.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from servin.errors import SystemFailure
from servin.store import atomic_write, fsync_dir, remove_stale_temps

# Hashing and writing are batched so the loop hands work to a thread about once per MiB.
INGEST_BATCH = 1024 * 1024


class DigestMismatch(SystemFailure):
    """Content did not hash to the digest it was fetched by."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_hex(digest: str) -> str:
    return digest.split(":", 1)[1]


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.blobs = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"

    def load(self) -> None:
        """Create the directories; drop downloads and temp files a crash left behind."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.blobs)
        shutil.rmtree(self.ingest_dir, ignore_errors=True)
        self.ingest_dir.mkdir(parents=True)

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

    def ingest(self, digest: str) -> "Ingest":
        return Ingest(self, digest)

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)


class Ingest:
    """A download in progress: written and hashed off the loop, verified at the end."""

    def __init__(self, store: ContentStore, digest: str) -> None:
        self.store = store
        self.digest = digest
        fd, name = tempfile.mkstemp(dir=store.ingest_dir, prefix="blob-")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        self.size += len(chunk)
        if self._pending_size >= INGEST_BATCH:
            await self._flush()

    async def _flush(self) -> None:
        data = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        await asyncio.to_thread(self._write_and_hash, data)

    def _write_and_hash(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)

    async def verify(self, *, what: str = "blob") -> None:
        """Finish writing; raise DigestMismatch unless the content has the digest."""
        await self._flush()
        await asyncio.to_thread(self._file.close)
        if "sha256:" + self._hash.hexdigest() != self.digest:
            raise DigestMismatch(f"{what} verification failed for digest {self.digest}")

    async def commit(self) -> None:
        """Move the verified download into the blob store."""
        target = self.store.path(self.digest)
        await asyncio.to_thread(os.replace, self.path, target)
        await asyncio.to_thread(fsync_dir, target.parent)

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)
