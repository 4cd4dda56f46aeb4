"""ImageManager against the real test registry: pulls, layer store, lookups, auth."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from servin.errors import NotFound, SystemFailure
from servin.events import EventBus
from servin.images.manager import ImageManager
from servin.images.progress import ProgressMessage
from tests.support.registry import TOKEN_USER, Entry, build_image, layer_tar, push_image


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def send(self, message: ProgressMessage) -> None:
        self.messages.append(message.to_json())

    def statuses(self) -> list[str]:
        return [m["status"] for m in self.messages]


def make_manager(root: Path, registry, **kwargs) -> ImageManager:
    kwargs.setdefault("mirrors", [registry.url])
    kwargs.setdefault("insecure", [registry.address])
    return ImageManager(root, events=EventBus(), **kwargs)


async def pulled(manager: ImageManager, ref: str, tag: str | None = None,
                 auth: dict | None = None) -> tuple:
    recorder = Recorder()
    await manager.load()
    try:
        image = await manager.pull(ref, tag=tag, auth=auth, progress=recorder)
    finally:
        await manager.close()
    return image, recorder


def test_pull_through_mirror_stores_image_and_progress(tmp_path, registry, test_images):
    manager = make_manager(tmp_path, registry)
    image, recorder = asyncio.run(pulled(manager, "alpine"))
    built = test_images.images["alpine"]
    assert image.id == built.id
    assert image.repo_tags == ["alpine:latest"]
    assert image.repo_digests == [f"alpine@{test_images.digests['alpine']}"]
    assert image.config["config"]["Cmd"] == ["sh"]
    layer_id = built.layers[0].digest.split(":")[1][:12]
    assert recorder.messages[0] == {"status": "Pulling from library/alpine", "id": "latest"}
    assert {"status": "Pulling fs layer", "progressDetail": {}, "id": layer_id} \
        in recorder.messages
    downloading = [m for m in recorder.messages if m["status"] == "Downloading"]
    assert downloading and downloading[0]["progressDetail"]["total"] == len(built.layers[0].data)
    assert downloading[0]["progress"].startswith("[")
    statuses = recorder.statuses()
    for status in ("Verifying Checksum", "Download complete", "Extracting", "Pull complete"):
        assert status in statuses
    assert statuses[-2:] == [f"Digest: {test_images.digests['alpine']}",
                             "Status: Downloaded newer image for alpine:latest"]
    assert manager.count() == 1
    event = manager.events.history()[-1]
    assert (event.type, event.action, event.actor_id) == ("image", "pull", "alpine:latest")
    assert event.attributes == {"name": "alpine"}
    # The same pull again is up to date; a fresh manager reads the state from disk.
    again, recorder = asyncio.run(pulled(make_manager(tmp_path, registry), "alpine:latest"))
    assert again.id == image.id
    assert recorder.statuses()[-1] == "Status: Image is up to date for alpine:latest"
    assert "Pulling fs layer" not in recorder.statuses()


def test_resolve_by_id_prefix_reference_and_digest(tmp_path, registry, test_images):
    manager = make_manager(tmp_path, registry)
    image, _ = asyncio.run(pulled(manager, "busybox"))
    hexid = image.id.split(":")[1]
    for name in ("busybox", "busybox:latest", "docker.io/library/busybox:latest", image.id,
                 hexid, hexid[:12], "sha256:" + hexid[:12],
                 f"busybox@{test_images.digests['busybox']}"):
        assert manager.resolve(name) is image, name
    with pytest.raises(NotFound, match="^No such image: nosuch:latest$"):
        manager.resolve("nosuch")


def test_layered_image_has_overlay_whiteouts(tmp_path, registry, test_images):
    manager = make_manager(tmp_path, registry)
    image, recorder = asyncio.run(pulled(manager, "layered"))
    layers = manager.layers.chain(image.chain_id)
    assert len(layers) == 3
    top = tmp_path / "overlay2" / layers[0].chain_id.split(":")[1]
    whiteout = os.lstat(top / "diff" / "data" / "remove-me.txt")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert os.getxattr(top / "diff" / "opaque", "trusted.overlay.opaque") == b"y"
    release = os.lstat(top / "diff" / "etc" / "layered-release")
    assert (release.st_uid, release.st_gid, stat.S_IMODE(release.st_mode)) == (1, 1, 0o640)
    # Short links and lower files as in Docker's overlay2.
    links = (top / "lower").read_text().split(":")
    assert len(links) == 2 and all((tmp_path / "overlay2" / link).is_symlink() for link in links)
    data = manager.layers.graph_driver_data(image.chain_id)
    assert data["UpperDir"] == str(top / "diff")
    assert len(data["LowerDir"].split(":")) == 2
    # Pulling busybox afterwards reuses its bottom layer.
    _, recorder = asyncio.run(pulled(make_manager(tmp_path, registry), "busybox"))
    assert "Already exists" in recorder.statuses()
    assert "Pulling fs layer" not in recorder.statuses()


def test_rw_layer_mount_merges_whiteouts(tmp_path, registry, test_images):
    async def scenario() -> None:
        manager = make_manager(tmp_path, registry)
        await manager.load()
        image = await manager.pull("layered", tag=None, auth=None, progress=Recorder())
        await manager.layers.create_rw_layer("c" * 64, image.chain_id)
        merged = await manager.layers.mount_rw_layer("c" * 64)
        try:
            assert await manager.layers.mount_rw_layer("c" * 64) == merged
            assert manager.layers.is_mounted("c" * 64)
            assert (merged / "data" / "keep.txt").read_text() == "kept\n"
            assert not (merged / "data" / "remove-me.txt").exists()
            assert sorted(p.name for p in (merged / "opaque").iterdir()) == ["new.txt"]
            assert (merged / "bin" / "busybox").is_file()
            (merged / "written").write_text("upper")
            assert (tmp_path / "overlay2" / ("c" * 64) / "diff" / "written").exists()
        finally:
            await manager.layers.remove_rw_layer("c" * 64)
            await manager.close()
        assert not manager.layers.is_mounted("c" * 64)
        assert not (tmp_path / "overlay2" / ("c" * 64)).exists()

    asyncio.run(scenario())


def test_manifest_list_and_oci_index_select_amd64(tmp_path, registry, test_images):
    manager = make_manager(tmp_path, registry)
    image, _ = asyncio.run(pulled(manager, "multiarch"))
    assert image.id == test_images.images["multiarch-amd64"].id
    assert image.repo_digests == [f"multiarch@{test_images.digests['multiarch']}"]
    oci, _ = asyncio.run(pulled(make_manager(tmp_path, registry), "oci"))
    assert oci.id == test_images.images["oci"].id


def test_pull_by_digest(tmp_path, registry, test_images):
    digest = test_images.digests["busybox"]
    image, recorder = asyncio.run(pulled(make_manager(tmp_path, registry), f"busybox@{digest}"))
    assert image.repo_tags == [] and image.repo_digests == [f"busybox@{digest}"]
    assert recorder.messages[0]["id"] == digest
    assert recorder.statuses()[-1] == f"Status: Downloaded newer image for busybox@{digest}"


def test_pull_from_insecure_registry_by_address(tmp_path, registry, test_images):
    image, _ = asyncio.run(pulled(make_manager(tmp_path, registry, mirrors=[]),
                                  f"{registry.address}/library/busybox:latest"))
    assert image.repo_tags == [f"{registry.address}/library/busybox:latest"]


def test_unknown_tag_and_repository_errors(tmp_path, registry, test_images):
    with pytest.raises(NotFound, match="^manifest for alpine:nosuch not found: "
                                       "manifest unknown: manifest unknown$"):
        asyncio.run(pulled(make_manager(tmp_path, registry), "alpine", tag="nosuch"))
    # registry 2.8 answers MANIFEST_UNKNOWN for an unknown repository too
    with pytest.raises(NotFound, match="^manifest for nosuchrepo:latest not found: "):
        asyncio.run(pulled(make_manager(tmp_path, registry), "nosuchrepo"))


def test_unreachable_mirror_gives_clear_error(tmp_path, registry):
    dead = "http://127.0.0.1:9"
    with pytest.raises(SystemFailure, match="from registry mirror http://127.0.0.1:9"):
        asyncio.run(pulled(make_manager(tmp_path, registry, mirrors=[dead]), "alpine"))


def test_corrupt_blob_is_refused_and_nothing_stored(tmp_path, registry, test_images):
    good = build_image([layer_tar([Entry("hello.txt", b"hello\n")])],
                       created="2024-05-05T00:00:00Z")
    evil_layer = layer_tar([Entry("hello.txt", b"evil!\n")])
    evil = build_image([evil_layer], created="2024-05-05T00:00:00Z")
    # The manifest names the good layer digest; the registry holds other bytes under it
    # only if we write them there ourselves: push the evil blob's bytes to the storage.
    push_image(registry.url, "library/corrupt", "latest", good)
    blob_dir = (registry.storage / "docker/registry/v2/blobs/sha256"
                / good.layers[0].digest[7:9] / good.layers[0].digest[7:])
    (blob_dir / "data").write_bytes(evil.layers[0].data)
    manager = make_manager(tmp_path, registry)
    with pytest.raises(SystemFailure, match="filesystem layer verification failed"):
        asyncio.run(pulled(manager, "corrupt"))
    assert manager.count() == 0
    assert [p.name for p in (tmp_path / "overlay2").iterdir()] == ["l"]


def test_bearer_token_challenge(tmp_path, auth_registry, token_server, test_images):
    manager = make_manager(tmp_path, auth_registry, mirrors=[])
    ref = f"{auth_registry.address}/library/busybox"
    with pytest.raises(NotFound, match="^pull access denied for .*/library/busybox, "
                                       "repository does not exist or may require"):
        asyncio.run(pulled(manager, ref))
    user, password = TOKEN_USER
    auth = {"username": user, "password": password, "serveraddress": auth_registry.address}
    image, _ = asyncio.run(pulled(make_manager(tmp_path, auth_registry, mirrors=[]), ref,
                                  auth=auth))
    assert image.id == test_images.images["busybox"].id
    asked = token_server.requests[-1]
    assert asked["user"] == user and asked["scopes"] == ["repository:library/busybox:pull"]


def test_crash_leftovers_are_collected_at_load(tmp_path, registry, test_images):
    image, _ = asyncio.run(pulled(make_manager(tmp_path, registry), "busybox"))
    half = tmp_path / "overlay2" / ".tmp-crashed"
    (half / "diff").mkdir(parents=True)
    manager = make_manager(tmp_path, registry)
    asyncio.run(manager.load())
    assert not half.exists()
    assert manager.resolve("busybox").id == image.id

