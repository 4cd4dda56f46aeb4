"""exec sessions through ExecRuntime: runc exec under conmon, in real busybox containers."""

from __future__ import annotations

import asyncio

import pytest

from servin.oci.exec import ExecProcess, ExecRuntime
from servin.oci.runc import OCIRuntimeError
from servin.oci.users import ResolvedUser

TIMEOUT = 20
ENV = ["PATH=/bin:/usr/bin"]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def running_container(env, name: str):
    rt = env.runtime()
    bundle = env.bundle(name, ["sleep", "1000"])
    await env.create(rt, name, bundle)
    await rt.start(name)
    return rt


async def output_of(socket) -> dict[str, bytes]:
    out = {"stdout": b"", "stderr": b""}
    while (chunk := await socket.read()) is not None:
        out[chunk[0]] += chunk[1]
    socket.close()
    return out


def test_attached_exec_streams_output_and_reports_its_exit(env):
    async def scenario():
        rt = await running_container(env, "ex1")
        execs = ExecRuntime(rt)
        started = await execs.start("ex1", "e1", ExecProcess(
            ["sh", "-c", "echo out; echo err >&2; id -u; exit 3"], ENV,
            user=ResolvedUser(uid=1000, gid=1000)), stdin=False, attach=True)
        assert started.pid > 0
        out = await output_of(started.attach)
        assert out == {"stdout": b"out\n1000\n", "stderr": b"err\n"}
        assert (await execs.wait("e1")).exit_code == 3
        assert not execs.alive("e1")
        await execs.remove("e1")
        assert not execs.files("e1").directory.exists()
        assert not execs.files("e1").attach_link.exists()
        await rt.kill("ex1")
        await rt.wait_exit("ex1")
    run(scenario())


def test_stdin_reaches_the_process_and_its_end_closes_it(env):
    async def scenario():
        rt = await running_container(env, "ex2")
        execs = ExecRuntime(rt)
        started = await execs.start("ex2", "e2", ExecProcess(["cat"], ENV), stdin=True,
                                    attach=True)
        await started.attach.write(b"hello\n")
        await started.attach.close_stdin()
        assert (await output_of(started.attach))["stdout"] == b"hello\n"
        assert (await execs.wait("e2")).exit_code == 0
        await execs.remove("e2")
        await rt.kill("ex2")
        await rt.wait_exit("ex2")
    run(scenario())


def test_missing_executable_is_runcs_error_and_leaves_nothing(env):
    async def scenario():
        rt = await running_container(env, "ex3")
        execs = ExecRuntime(rt)
        with pytest.raises(OCIRuntimeError) as info:
            await execs.start("ex3", "e3", ExecProcess(["nosuchcmd"], ENV), stdin=False,
                              attach=True)
        assert "executable file not found" in info.value.message, info.value.message
        assert not execs.files("e3").directory.exists()
        await rt.kill("ex3")
        await rt.wait_exit("ex3")
    run(scenario())


def test_detached_exec_with_terminal_is_killed_and_resized(env):
    async def scenario():
        rt = await running_container(env, "ex4")
        execs = ExecRuntime(rt)
        started = await execs.start("ex4", "e4", ExecProcess(["sleep", "100"], ENV,
                                                             terminal=True),
                                    stdin=False, attach=False)
        assert started.attach is None and execs.alive("e4")
        execs.resize("e4", 30, 100)
        execs.kill("e4")
        assert (await execs.wait("e4")).exit_code == 137
        await execs.remove("e4")
        await rt.kill("ex4")
        await rt.wait_exit("ex4")
    run(scenario())
