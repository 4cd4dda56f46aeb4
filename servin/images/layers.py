"""The overlay2 layer store, laid out as Docker's overlay2 driver does.

``<data_root>/overlay2/<key>/`` holds ``diff/`` (the layer's files), ``link``
(a short id), ``lower`` (the short links of every layer below, top first) and,
for read-write layers, ``work/`` and ``merged/``. ``overlay2/l/<short>`` links
to ``../<key>/diff`` so that a mount's ``lowerdir`` stays within a page.
Image layers are keyed by the hex of their chain id, container layers by
their id. Their records live in ``<data_root>/image/layerdb``; a directory
without a record is a crash leftover and is collected by :meth:`load`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import attrs
import cattrs
import structlog

from servin.errors import NotFound
from servin.mounts import is_mountpoint, mount, unmount
from servin.store import atomic_write, atomic_write_json, read_json, remove_stale_temps

log = structlog.get_logger("servin.images.layers")

LINK_DIR = "l"
TEMP_PREFIX = ".tmp-"


@attrs.frozen
class Layer:
    """A read-only image layer."""

    chain_id: str
    diff_id: str
    parent: str | None   # the chain id of the layer below
    size: int


@attrs.frozen
class RWLayer:
    """A container's read-write layer on top of an image's layers."""

    layer_id: str
    parent: str | None


def chain_id(parent: str | None, diff_id: str) -> str:
    """The OCI chain id: ``sha256(parent + " " + diff_id)``, the diff id at the bottom."""
    if parent is None:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(chain_id(out[-1] if out else None, diff_id))
    return out


def _key(chain: str) -> str:
    return chain.removeprefix("sha256:")


def _short_link() -> str:
    return base64.b32encode(os.urandom(16)).decode()[:26]


class LayerStore:
    def __init__(self, data_root: Path) -> None:
        self.root = data_root / "overlay2"
        self.links = self.root / LINK_DIR
        self.layerdb = data_root / "image" / "layerdb" / "sha256"
        self.mountdb = data_root / "image" / "layerdb" / "mounts"
        self._layers: dict[str, Layer] = {}
        self._rw: dict[str, RWLayer] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # ---- state -------------------------------------------------------------------------

    async def load(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        for directory in (self.links, self.layerdb, self.mountdb):
            directory.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(directory)
        for path in self.layerdb.glob("*.json"):
            layer = cattrs.structure(read_json(path), Layer)
            self._layers[_key(layer.chain_id)] = layer
        for path in self.mountdb.glob("*.json"):
            rw = cattrs.structure(read_json(path), RWLayer)
            self._rw[rw.layer_id] = rw
        for entry in self.root.iterdir():
            if entry.name != LINK_DIR and entry.name not in self._layers \
                    and entry.name not in self._rw:
                log.info("layer_dir_collected", path=str(entry))
                shutil.rmtree(entry)
        for link in self.links.iterdir():
            if not link.exists():  # its layer was collected, or it never was recorded
                link.unlink()

    def get(self, chain: str) -> Layer | None:
        return self._layers.get(_key(chain))

    def chain(self, top: str | None) -> list[Layer]:
        """The layers from ``top`` down to the base layer."""
        out: list[Layer] = []
        while top is not None:
            layer = self._layers.get(_key(top))
            if layer is None:
                raise NotFound(f"layer {top} does not exist")
            out.append(layer)
            top = layer.parent
        return out

    def size(self, top: str | None) -> int:
        return sum(layer.size for layer in self.chain(top))

    # ---- image layers -----------------------------------------------------------------

    def make_staged(self) -> Path:
        """A new directory to unpack a layer into, as ``<dir>/diff``; see :meth:`commit`.

        Blocking: for the thread that unpacks. The directory stays invisible until
        committed, and a crash leaves it to be collected at load.
        """
        staged = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.root))
        (staged / "diff").mkdir()
        return staged

    async def discard(self, *staged: Path) -> None:
        """Remove staged directories."""
        if staged:
            await asyncio.to_thread(lambda: [shutil.rmtree(path, True) for path in staged])

    async def commit(self, staged: Path, parent: str | None, diff_id: str, size: int) -> Layer:
        """Make the unpacked layer in ``staged`` the layer ``diff_id`` on top of ``parent``.

        The parent must be registered already: the layer's ``lower`` names it.
        If that layer exists already (another pull made it), ``staged`` goes.
        """
        chain = chain_id(parent, diff_id)
        async with self._locks[_key(chain)]:
            existing = self.get(chain)
            if existing is not None:
                await self.discard(staged)
                return existing
            layer = Layer(chain, diff_id, parent, size)
            try:
                await asyncio.to_thread(self._commit_dir, staged, _key(chain), parent)
            except BaseException:
                await self.discard(staged)
                raise
            await asyncio.to_thread(atomic_write_json, self.layerdb / f"{_key(chain)}.json",
                                    cattrs.unstructure(layer))
            self._layers[_key(chain)] = layer
        log.info("layer_registered", chain_id=chain, size=size)
        return layer

    def _commit_dir(self, tmp: Path, key: str, parent: str | None) -> None:
        link = _short_link()
        atomic_write(tmp / "link", link.encode(), 0o644)
        if parent is not None:
            atomic_write(tmp / "lower", self._lower_of(parent).encode(), 0o644)
        final = self.root / key
        # An unrecorded directory of that key was left by an interrupted commit.
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        (self.links / link).symlink_to(Path("..") / key / "diff")

    def _lower_of(self, parent: str) -> str:
        """The ``lower`` value of a layer on top of ``parent``: short links, top first."""
        parent_dir = self.root / _key(parent)
        own = f"{LINK_DIR}/{(parent_dir / 'link').read_text()}"
        below = parent_dir / "lower"
        return own + (":" + below.read_text() if below.exists() else "")

    # ---- read-write layers ------------------------------------------------------------

    async def create_rw_layer(self, layer_id: str, parent_chain_id: str | None) -> None:
        async with self._locks[layer_id]:
            if layer_id in self._rw:
                return
            if parent_chain_id is not None:
                self.chain(parent_chain_id)  # raises NotFound for a missing image layer
            tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=TEMP_PREFIX,
                                               dir=self.root))
            try:
                await asyncio.to_thread(self._make_rw_dir, tmp, layer_id, parent_chain_id)
            except BaseException:
                await asyncio.to_thread(shutil.rmtree, tmp, True)
                raise
            rw = RWLayer(layer_id, parent_chain_id)
            await asyncio.to_thread(atomic_write_json, self.mountdb / f"{layer_id}.json",
                                    cattrs.unstructure(rw))
            self._rw[layer_id] = rw

    def _make_rw_dir(self, tmp: Path, layer_id: str, parent: str | None) -> None:
        for sub in ("diff", "work", "merged"):
            (tmp / sub).mkdir(mode=0o755)
        if parent is None:
            # overlay needs a lower layer: an image without layers gets an empty one.
            (tmp / "empty").mkdir(mode=0o755)
        self._commit_dir(tmp, layer_id, parent)

    def _rw_layer(self, layer_id: str) -> RWLayer:
        rw = self._rw.get(layer_id)
        if rw is None:
            raise NotFound(f"layer {layer_id} does not exist")
        return rw

    def _lowerdir_option(self, rw: RWLayer) -> str:
        layer_dir = self.root / rw.layer_id
        if rw.parent is None:
            return f"{rw.layer_id}/empty"
        return (layer_dir / "lower").read_text()

    async def mount_rw_layer(self, layer_id: str) -> Path:
        async with self._locks[layer_id]:
            rw = self._rw_layer(layer_id)
            merged = self.root / layer_id / "merged"
            if self.is_mounted(layer_id):
                return merged
            options = (f"lowerdir={self._lowerdir_option(rw)},"
                       f"upperdir={layer_id}/diff,workdir={layer_id}/work")
            # Relative paths, resolved from the overlay2 root, keep the options short.
            await mount("overlay", "overlay", merged, options, cwd=self.root)
            return merged

    async def unmount_rw_layer(self, layer_id: str) -> None:
        async with self._locks[layer_id]:
            if self.is_mounted(layer_id):
                await unmount(self.root / layer_id / "merged")

    async def remove_rw_layer(self, layer_id: str) -> None:
        await self.unmount_rw_layer(layer_id)
        async with self._locks[layer_id]:
            if layer_id not in self._rw:
                return
            layer_dir = self.root / layer_id
            link = (layer_dir / "link").read_text()
            # The record goes first: a crash later leaves an unrecorded dir, collected at load.
            (self.mountdb / f"{layer_id}.json").unlink(missing_ok=True)
            del self._rw[layer_id]
            (self.links / link).unlink(missing_ok=True)
            await asyncio.to_thread(shutil.rmtree, layer_dir)
        self._locks.pop(layer_id, None)

    def is_mounted(self, layer_id: str) -> bool:
        return is_mountpoint(self.root / layer_id / "merged")

    def graph_driver_data(self, layer_id: str) -> dict:
        """Docker's GraphDriver.Data for a container layer or an image's top layer."""
        key = _key(layer_id)
        rw = self._rw.get(key)
        parent = rw.parent if rw is not None else self.chain(layer_id)[0].parent
        layer_dir = self.root / key
        data = {"MergedDir": str(layer_dir / "merged"), "UpperDir": str(layer_dir / "diff"),
                "WorkDir": str(layer_dir / "work")}
        lowers = [str(self.root / _key(layer.chain_id) / "diff") for layer in self.chain(parent)]
        if lowers:
            data["LowerDir"] = ":".join(lowers)
        return data

