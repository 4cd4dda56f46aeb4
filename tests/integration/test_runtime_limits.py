"""Cgroup limits of real containers: OOM kills detected, limits changed while running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from servin.oci.cgroups import detect_cgroup_facts
from servin.oci.spec import Resources

TIMEOUT = 60
MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
pytestmark = pytest.mark.skipif(detect_cgroup_facts().version != 1,
                                reason="reads cgroup v1 memory files")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def test_oom_kill_is_detected_and_reported_as_sigkill(env):
    async def scenario():
        rt = env.runtime()
        bundle = env.bundle("oom", ["tail", "/dev/zero"],
                            resources=Resources(memory=8 << 20, memory_swap=8 << 20))
        await env.create(rt, "oom", bundle)
        await rt.start("oom")
        status = await rt.wait_exit("oom")
        assert status.exit_code == 137
        assert status.oom_killed
        await rt.delete("oom")
    run(scenario())


def test_plain_exit_is_not_an_oom_kill(env):
    async def scenario():
        rt = env.runtime()
        bundle = env.bundle("fine", ["true"], resources=Resources(memory=8 << 20))
        await env.create(rt, "fine", bundle)
        await rt.start("fine")
        status = await rt.wait_exit("fine")
        assert (status.exit_code, status.oom_killed) == (0, False)
        await rt.delete("fine")
    run(scenario())


def test_update_changes_limits_of_a_running_container(env):
    async def scenario():
        rt = env.runtime()
        bundle = env.bundle("upd", ["sleep", "30"], resources=Resources(memory=64 << 20,
                                                                        pids_limit=20))
        await env.create(rt, "upd", bundle)
        await rt.start("upd")
        cgroup = MEMORY_ROOT / env.cgroup_parent() / "upd"
        assert (cgroup / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        await rt.update("upd", Resources(memory=32 << 20, memory_swap=64 << 20, pids_limit=10))
        assert (cgroup / "memory.limit_in_bytes").read_text().strip() == str(32 << 20)
        pids = Path("/sys/fs/cgroup/pids") / env.cgroup_parent() / "upd" / "pids.max"
        assert pids.read_text().strip() == "10"
        await rt.kill("upd")
        assert (await rt.wait_exit("upd")).exit_code == 137
        await rt.delete("upd")
    run(scenario())
