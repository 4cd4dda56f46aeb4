"""Atomic writes: durable ones wait for the disk, the others only rename."""

from __future__ import annotations

import os

from servin.store import atomic_write


def test_durable_writes_sync_the_file_and_its_directory(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    atomic_write(tmp_path / "record", b"one")
    assert (tmp_path / "record").read_bytes() == b"one" and len(synced) == 2


def test_non_durable_writes_replace_the_file_without_syncing(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(os, "fsync", synced.append)
    (tmp_path / "hosts").write_bytes(b"old")
    atomic_write(tmp_path / "hosts", b"new", mode=0o644, durable=False)
    assert (tmp_path / "hosts").read_bytes() == b"new" and synced == []
    assert oct((tmp_path / "hosts").stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["hosts"]  # no temp file left
