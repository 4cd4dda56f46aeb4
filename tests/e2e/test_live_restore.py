"""kill -9 of servind: running containers keep running and the next daemon adopts them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time

import docker.errors
import pytest

from servin.containers.record import RECORD_FILE
from servin.containers.specparams import CGROUP_PARENT
from servin.oci.runtime import Runtime
from servin.timefmt import parse_rfc3339_ns
from tests.support.rootfs import write_busybox_bundle
from tests.support.waiting import wait_until


@pytest.fixture
def crashed_daemon(make_servind, test_images):
    """A daemon with a running, a soon-exiting and a created container, then kill -9."""
    daemon = make_servind()
    client = daemon.client()
    client.images.pull("alpine", tag="latest")
    running = client.containers.run("alpine", ["sh", "-c", "echo before; sleep 300"],
                                    detach=True, name="keeps-running")
    exiting = client.containers.run("alpine", ["sh", "-c", "sleep 2; exit 4"], detach=True,
                                    name="exits-meanwhile")
    created = client.containers.create("alpine", ["true"], name="only-created")
    pid = client.api.inspect_container(running.id)["State"]["Pid"]
    daemon.kill9()
    yield daemon, {"running": running.id, "exiting": exiting.id, "created": created.id}, pid


def test_containers_survive_and_are_adopted(crashed_daemon):
    daemon, ids, pid = crashed_daemon
    assert os.path.exists(f"/proc/{pid}"), "the container died with the daemon"
    time.sleep(3)  # the second container exits while no daemon runs
    daemon.start()
    client = daemon.client()

    running = client.api.inspect_container(ids["running"])
    assert running["State"]["Status"] == "running" and running["State"]["Pid"] == pid
    exited = client.api.inspect_container(ids["exiting"])
    assert exited["State"]["Status"] == "exited" and exited["State"]["ExitCode"] == 4
    finished = parse_rfc3339_ns(exited["State"]["FinishedAt"])
    assert finished - parse_rfc3339_ns(exited["State"]["StartedAt"]) >= 2_000_000_000
    assert client.api.inspect_container(ids["created"])["State"]["Status"] == "created"

    # the new daemon manages the adopted container: logs, wait, kill, remove
    assert client.api.logs(ids["running"]) == b"before\n"
    client.api.kill(ids["running"])
    assert client.api.wait(ids["running"])["StatusCode"] == 137
    for container_id in ids.values():
        client.api.remove_container(container_id, force=True)
    assert client.api.containers(all=True) == []


def test_restore_asks_runc_once_and_leaves_the_records_of_running_containers(
        crashed_daemon, tmp_path, monkeypatch):
    daemon, ids, pid = crashed_daemon
    calls = tmp_path / "runc-calls"
    wrapper = tmp_path / "bin" / "runc"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {shutil.which("runc")} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
    exit_file = daemon.exec_root / "exits" / ids["exiting"]
    # conmon writes it when the container has exited
    wait_until(exit_file.exists, timeout=30, what="exit of the container")
    record = daemon.data_root / "containers" / ids["running"] / RECORD_FILE
    written = (record.stat().st_ino, record.stat().st_mtime_ns)  # each write: a new file
    daemon.start()
    client = daemon.client()

    assert (record.stat().st_ino, record.stat().st_mtime_ns) == written
    # runc's arguments: --root=..., --log-format=json, then the action
    actions = [line.split()[2] for line in calls.read_text().splitlines()]
    assert actions.count("list") == 1 and "state" not in actions
    running = client.api.inspect_container(ids["running"])["State"]
    assert (running["Status"], running["Pid"]) == ("running", pid)
    exited = client.api.inspect_container(ids["exiting"])["State"]
    assert (exited["Status"], exited["ExitCode"]) == ("exited", 4)
    for container_id in ids.values():
        client.api.remove_container(container_id, force=True)


def test_half_made_container_is_collected_at_start(crashed_daemon):
    daemon, ids, _ = crashed_daemon
    orphan = daemon.data_root / "containers" / ("f" * 64)
    orphan.mkdir()
    (orphan / "hosts").write_text("left by a crash before the record was written\n")
    daemon.start()
    client = daemon.client()
    assert not orphan.exists()
    listed = {c["Id"] for c in client.api.containers(all=True)}
    assert listed == set(ids.values())
    with pytest.raises(docker.errors.NotFound):
        client.api.inspect_container("f" * 12)
    for container_id in ids.values():
        client.api.remove_container(container_id, force=True)


def test_runc_leftovers_of_a_removed_container_are_deleted_at_start(crashed_daemon, tmp_path):
    daemon, ids, _ = crashed_daemon
    # What a daemon leaves when it dies while deleting a removed container in the
    # background: runc's stopped container and conmon's files, but no record.
    runtime = Runtime(daemon.exec_root)
    leftover = "e" * 64
    bundle = write_busybox_bundle(tmp_path / "bundle", leftover, ["true"],
                                  cgroup_parent=CGROUP_PARENT)

    async def run_to_exit() -> None:
        await runtime.create(leftover, bundle, log_path=None)
        await runtime.start(leftover)
        await runtime.wait_exit(leftover)
    asyncio.run(run_to_exit())
    assert (daemon.exec_root / "conmon" / leftover).is_dir()

    daemon.start()
    client = daemon.client()
    assert asyncio.run(runtime.state(leftover)) is None
    assert not (daemon.exec_root / "conmon" / leftover).exists()
    assert not (daemon.exec_root / "exits" / leftover).exists()
    # The containers with records are left as they were.
    assert client.api.inspect_container(ids["running"])["State"]["Status"] == "running"
    for container_id in ids.values():
        client.api.remove_container(container_id, force=True)


def test_an_exit_recorded_before_a_crash_is_not_recorded_again(make_servind, test_images,
                                                               tmp_path, monkeypatch):
    # The first daemon's runc delete, which follows a recorded exit in the background,
    # never finishes: the daemon dies with the deletion pending.
    wrapper = tmp_path / "bin" / "runc"
    wrapper.parent.mkdir()
    stuck = tmp_path / "stuck-deletes"  # their pids, to end them with the first daemon
    wrapper.write_text('#!/bin/sh\n'
                       f'case " $* " in *" delete "*) echo $$ >> {stuck}; exec sleep 120;; esac\n'
                       f'exec {shutil.which("runc")} "$@"\n')
    wrapper.chmod(0o755)
    real_path = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{real_path}")
    daemon = make_servind()
    client = daemon.client()
    client.images.pull("alpine", tag="latest")
    container = client.containers.run("alpine", ["sh", "-c", "exit 3"], detach=True)
    assert container.wait()["StatusCode"] == 3
    runtime = Runtime(daemon.exec_root)
    assert asyncio.run(runtime.state(container.id))["status"] == "stopped"
    record = daemon.data_root / "containers" / container.id / RECORD_FILE
    written = (record.stat().st_ino, record.stat().st_mtime_ns)  # each write: a new file
    daemon.kill9()
    for pid in stuck.read_text().split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    monkeypatch.setenv("PATH", real_path)

    daemon.start()
    client = daemon.client()
    state = client.api.inspect_container(container.id)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 3)
    assert (record.stat().st_ino, record.stat().st_mtime_ns) == written
    assert asyncio.run(runtime.state(container.id)) is None
    assert not (daemon.exec_root / "exits" / container.id).exists()
    client.api.remove_container(container.id)


def test_auto_remove_containers_that_exited_meanwhile_are_removed_at_start(make_servind,
                                                                           test_images):
    daemon = make_servind()
    client = daemon.client()
    client.images.pull("alpine", tag="latest")
    exits = client.containers.run("alpine", ["sleep", "1"], detach=True, auto_remove=True)
    runs = client.containers.run("alpine", ["sleep", "300"], detach=True, auto_remove=True)
    never_started = client.api.create_container(
        "alpine", ["true"], host_config=client.api.create_host_config(auto_remove=True))["Id"]
    daemon.kill9()
    exit_file = daemon.exec_root / "exits" / exits.id
    # conmon writes it when the container has exited
    wait_until(exit_file.exists, timeout=30, what="exit of the container")

    daemon.start()
    client = daemon.client()
    # As dockerd: what was to be removed at its exit and no longer runs is gone; the
    # container that still runs is adopted, and removed when it exits.
    assert {c["Id"] for c in client.api.containers(all=True)} == {runs.id}
    for gone in (exits.id, never_started):
        assert not (daemon.data_root / "containers" / gone).exists()
    client.api.kill(runs.id)
    wait_until(lambda: client.api.containers(all=True) == [], timeout=30,
               what="removal of the adopted container at its exit")
