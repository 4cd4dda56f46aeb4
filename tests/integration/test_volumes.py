"""The volumes manager on real directories and real mounts: events, mounting with
driver options, and what load() collects after a crash."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from servin.errors import Conflict, InvalidArgument
from servin.events import EventBus
from servin.volumes.manager import VolumeManager
from servin.volumes.record import RECORD_FILE

TMPFS = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture
def data_root(tmp_path: Path):
    yield tmp_path
    mounted = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
               if line.split()[4].startswith(str(tmp_path))]
    for target in mounted:
        subprocess.run(["umount", "-l", target], check=False)
    assert not mounted, f"mounts left: {mounted}"


def test_events_and_references(data_root):
    events = EventBus()
    manager = VolumeManager(data_root, events)

    async def scenario():
        await manager.load()
        volume = await manager.create("vol", labels={"a": "b"}, reference="c1")
        with pytest.raises(Conflict, match=r"remove vol: volume is in use - \[c1\]"):
            await manager.remove("vol")
        manager.release("vol", "c1")
        await manager.remove("vol")
        return volume

    volume = run(scenario())
    assert volume.labels == {"a": "b"}
    assert [(e.type, e.action, e.actor_id, e.attributes) for e in events.history()] == [
        ("volume", "create", "vol", {"driver": "local"}),
        ("volume", "destroy", "vol", {"driver": "local"})]
    assert not (data_root / "volumes" / "vol").exists()


def test_driver_options_are_mounted_once_for_all_users(data_root):
    manager = VolumeManager(data_root, EventBus())

    async def scenario():
        await manager.load()
        await manager.create("fast", driver_opts=TMPFS)
        data = await manager.mount("fast", "c1")
        await manager.mount("fast", "c2")
        mounted = [os.path.ismount(data)]
        await manager.unmount("fast", "c1")
        mounted.append(os.path.ismount(data))
        await manager.unmount("fast", "c2")
        mounted.append(os.path.ismount(data))
        return mounted

    assert run(scenario()) == [True, True, False]


def test_bad_options_leave_nothing(data_root):
    manager = VolumeManager(data_root, EventBus())

    async def scenario():
        await manager.load()
        with pytest.raises(InvalidArgument, match='create half: missing required option: '
                                                  '"type"'):
            await manager.create("half", driver_opts={"device": "tmpfs"})

    run(scenario())
    assert not (data_root / "volumes" / "half").exists()


def test_load_collects_half_made_volumes_and_unused_mounts(data_root):
    first = VolumeManager(data_root, EventBus())

    async def before_crash():
        await first.load()
        await first.create("kept", driver_opts=TMPFS)
        await first.mount("kept", "gone-container")
        await first.create("half")

    run(before_crash())
    # A crash mid-create: the directory, a mount even, but no record yet.
    half = data_root / "volumes" / "half"
    (half / RECORD_FILE).unlink()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(half / "_data")], check=True)
    second = VolumeManager(data_root, EventBus())

    async def after_crash():
        await second.load()
        await second.unmount_unused()  # no running container holds "kept" any more
        return [v.name for v in second.list({})]

    assert run(after_crash()) == ["kept"]
    assert not half.exists()
    assert not os.path.ismount(data_root / "volumes" / "kept" / "_data")
