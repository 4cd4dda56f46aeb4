"""Real containers through Runtime: runc under conmon, from busybox bundles."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from servin.errors import NotFound
from servin.oci.runc import OCIRuntimeError
from servin.oci.runtime import Runtime
from tests.support.logs import read_lines

TIMEOUT = 20


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def read_all(attach) -> list[tuple[str, bytes]]:
    chunks = []
    while (chunk := await attach.read()) is not None:
        chunks.append(chunk)
    return chunks


def joined(chunks, stream: str) -> bytes:
    return b"".join(data for name, data in chunks if name == stream)


async def log_entries(path):
    return [(line.stream, line.data) for line in await read_lines(path)]


def test_output_goes_to_log_and_exit_code_is_read_back(env):
    async def scenario():
        rt = env.runtime()
        bundle = env.bundle("logs", ["sh", "-c", "echo out; echo err >&2; exit 7"])
        pid = await env.create(rt, "logs", bundle)
        assert pid > 0
        assert (await rt.state("logs"))["status"] == "created"
        assert rt.read_exit("logs") is None
        await rt.start("logs")
        status = await rt.wait_exit("logs")
        assert status.exit_code == 7
        assert rt.read_exit("logs") == status
        assert await log_entries(bundle / "container.log") == [("stdout", b"out\n"),
                                                              ("stderr", b"err\n")]
        assert (await rt.state("logs"))["status"] == "stopped"
        await rt.delete("logs")
        assert await rt.state("logs") is None
        assert rt.read_exit("logs") is None
        assert not (rt.exec_root / "attach" / "logs").exists()
        assert not (rt.exec_root / "conmon" / "logs").exists()
        assert sorted(p.name for p in bundle.iterdir()) == ["config.json", "container.log", "rootfs"]
    run(scenario())


def test_attach_between_create_and_start_gets_first_line(env):
    async def scenario():
        rt = env.runtime()
        bundle = env.bundle("early", ["sh", "-c", "echo first; echo oops >&2; echo last"])
        await env.create(rt, "early", bundle)
        async with await rt.attach("early") as attach:
            await rt.start("early")
            chunks = await read_all(attach)
        assert joined(chunks, "stdout") == b"first\nlast\n"
        assert joined(chunks, "stderr") == b"oops\n"
        assert (await rt.wait_exit("early")).exit_code == 0
    run(scenario())


def test_attach_works_with_a_bundle_path_longer_than_a_socket_address(env):
    async def scenario():
        rt = env.runtime()
        deep = env.root / ("d" * 60) / ("e" * 60)
        bundle = env.bundle("deep", ["echo", "deep"], where=deep)
        assert len(str(bundle / "attach")) > 108
        await env.create(rt, "deep", bundle)
        async with await rt.attach("deep") as attach:
            await rt.start("deep")
            assert joined(await read_all(attach), "stdout") == b"deep\n"
    run(scenario())


def test_attach_and_resize_where_conmon_shortens_its_link(env):
    """An exec root whose link path to a bundle is 107 bytes long: conmon drops the
    id's last character from the link's name."""
    container_id = "c" * 64
    # Short enough a base that the exec root can be padded to the length that does it.
    base = Path(tempfile.mkdtemp(prefix="servin-"))
    padding = 107 - len(f"{base}/") - len(f"/attach/{container_id}")
    rt = Runtime(base / ("x" * padding))
    assert len(str(rt.exec_root / "attach" / container_id)) == 107

    async def scenario():
        bundle = env.bundle(container_id, ["sh", "-c", "sleep 0.2; echo short"], terminal=True)
        await env.create(rt, container_id, bundle, terminal=True)
        assert (rt.exec_root / "attach" / container_id[:-1]).is_symlink()
        async with await rt.attach(container_id) as attach:
            await rt.resize(container_id, 30, 100)
            await rt.start(container_id)
            assert b"short" in b"".join(data for _, data in await read_all(attach))
    try:
        run(scenario())
    finally:
        run(rt.delete(container_id, force=True))  # before its exec root goes
        shutil.rmtree(base)


def test_stdin_reaches_the_container_and_closing_it_ends_cat(env):
    async def scenario():
        rt = env.runtime()
        bundle = env.bundle("stdin", ["sh", "-c", "cat; echo done"])
        await env.create(rt, "stdin", bundle, stdin=True)
        async with await rt.attach("stdin") as attach:
            await rt.start("stdin")
            await attach.write(b"hello\n" + b"x" * 20000 + b"\n")
            await attach.close_stdin()
            chunks = await read_all(attach)
        assert joined(chunks, "stdout") == b"hello\n" + b"x" * 20000 + b"\ndone\n"
        assert (await rt.wait_exit("stdin")).exit_code == 0
    run(scenario())


def test_terminal_mode_and_resize(env):
    async def scenario():
        rt = env.runtime()
        bundle = env.bundle("tty", ["sh", "-c", "tty; stty size"], terminal=True)
        await env.create(rt, "tty", bundle, terminal=True)
        async with await rt.attach("tty") as attach:
            await rt.resize("tty", 33, 111)
            await rt.start("tty")
            chunks = await read_all(attach)
        output = joined(chunks, "stdout")
        assert b"/dev/pts/0\r\n" in output
        assert b"33 111\r\n" in output
        assert joined(chunks, "stderr") == b""
        assert (await rt.wait_exit("tty")).exit_code == 0
    run(scenario())


def test_runc_errors_come_back_with_runcs_message_and_leave_nothing(env):
    async def scenario():
        rt = env.runtime()
        cases = {"nf": (["nosuchcmd"], 'exec: "nosuchcmd": executable file not found in $PATH'),
                 "perm": (["/etc/passwd"], 'exec: "/etc/passwd": permission denied')}
        for container_id, (args, expected) in cases.items():
            bundle = env.bundle(container_id, args)
            with pytest.raises(OCIRuntimeError) as err:
                await env.create(rt, container_id, bundle)
            assert expected in err.value.runtime_message
            assert err.value.message == f"OCI runtime create failed: {err.value.runtime_message}: unknown"
            assert await rt.state(container_id) is None
            assert not (rt.exec_root / "conmon" / container_id).exists()
            assert not (rt.exec_root / "attach" / container_id).exists()
            assert sorted(p.name for p in bundle.iterdir()) == ["config.json", "container.log", "rootfs"]
    run(scenario())


def test_user_and_rlimit_reach_the_process(env):
    async def scenario():
        rt = env.runtime()
        bundle = env.bundle("user", ["sh", "-c", "id; ulimit -n; hostname"], user="daemon")
        await env.create(rt, "user", bundle)
        async with await rt.attach("user") as attach:
            await rt.start("user")
            out = joined(await read_all(attach), "stdout").decode().splitlines()
        assert out[0] == "uid=1(daemon) gid=1(daemon) groups=1(daemon)"
        assert int(out[1]) <= 1048576
        assert out[2] == "user"
    run(scenario())


def test_kill_then_delete(env):
    async def scenario():
        rt = env.runtime()
        bundle = env.bundle("kill", ["sleep", "1000"])
        pid = await env.create(rt, "kill", bundle)
        await rt.start("kill")
        state = await rt.state("kill")
        assert (state["status"], state["pid"]) == ("running", pid)
        with pytest.raises(OCIRuntimeError, match="not stopped"):
            await rt.delete("kill")
        await rt.kill("kill", signal.SIGKILL)
        assert (await rt.wait_exit("kill")).exit_code == 128 + signal.SIGKILL
        await rt.delete("kill")
        assert await rt.state("kill") is None
        with pytest.raises(NotFound):
            await rt.attach("kill")
    run(scenario())


def test_force_delete_of_a_created_container(env):
    async def scenario():
        rt = env.runtime()
        await env.create(rt, "never", env.bundle("never", ["echo", "never"]))
        assert rt.conmon_alive("never")
        await rt.delete("never", force=True)
        assert await rt.state("never") is None
        assert not rt.conmon_alive("never")
        assert not (rt.exec_root / "conmon" / "never").exists()
        assert rt.read_exit("never") is None
    run(scenario())


def test_delete_in_the_background_then_create_the_same_id_again(env):
    async def scenario():
        rt = env.runtime()
        await env.create(rt, "again", env.bundle("again", ["sh", "-c", "exit 5"]))
        await rt.start("again")
        assert (await rt.wait_exit("again")).exit_code == 5
        await rt.monitor_gone("again")
        assert not rt.conmon_alive("again")
        rt.delete_soon("again")
        # The next run of the same container waits for the deletion, then starts afresh.
        await env.create(rt, "again", env.bundle("again", ["sh", "-c", "exit 6"]))
        await rt.start("again")
        assert (await rt.wait_exit("again")).exit_code == 6
        rt.delete_soon("again")
        await rt.drain()
        assert await rt.state("again") is None
        assert not (rt.exec_root / "conmon" / "again").exists()
        assert rt.read_exit("again") is None
    run(scenario())


def test_collect_deletes_what_runc_and_conmon_keep_of_unknown_containers(env):
    async def scenario():
        rt = env.runtime()
        for container_id in ("kept", "gone"):
            await env.create(rt, container_id, env.bundle(container_id, ["true"]))
            await rt.start(container_id)
            await rt.wait_exit(container_id)
        # conmon's files of a container whose runc state went, but not its files.
        leftover = rt.exec_root / "conmon" / "files-only"
        leftover.mkdir()
        (leftover / "exit").write_text("0")
        await rt.collect({"kept"}, await rt.states())
        assert set(await rt.states()) == {"kept"}
        assert sorted(p.name for p in (rt.exec_root / "conmon").iterdir()) == ["kept"]
        assert rt.read_exit("kept").exit_code == 0
        await rt.delete("kept")
    run(scenario())


def test_container_outlives_its_runtime_object_and_is_found_again(env):
    async def first_daemon():
        rt = env.runtime()
        bundle = env.bundle("live", ["sh", "-c", "echo before; read line; echo got $line; exit 3"])
        await env.create(rt, "live", bundle, stdin=True, leave_stdin_open=True)
        await rt.start("live")
        return bundle

    bundle = run(first_daemon())

    async def second_daemon():
        rt = env.runtime()
        assert (await rt.state("live"))["status"] == "running"
        assert rt.read_exit("live") is None
        waiter = asyncio.create_task(rt.wait_exit("live"))
        async with await rt.attach("live") as attach:
            await attach.write(b"again\n")
            chunks = await read_all(attach)
        assert joined(chunks, "stdout") == b"got again\n"
        status = await waiter
        assert status.exit_code == 3
        assert await log_entries(bundle / "container.log") == [("stdout", b"before\n"),
                                                              ("stdout", b"got again\n")]
        await rt.delete("live")
    run(second_daemon())


def test_two_exec_roots_do_not_see_each_others_containers(env):
    async def scenario():
        one, two = env.runtime("exec-one"), env.runtime("exec-two")
        await env.create(one, "same", env.bundle("same", ["sleep", "1000"], cgroup="one"))
        assert await two.state("same") is None
        await env.create(two, "same", env.bundle("same", ["sleep", "1000"], cgroup="two"))
        await one.start("same")
        assert (await one.state("same"))["status"] == "running"
        assert (await two.state("same"))["status"] == "created"
        await one.delete("same", force=True)
        assert await one.state("same") is None
        assert (await two.state("same"))["status"] == "created"
        await two.delete("same", force=True)
    run(scenario())


def test_states_of_every_container_from_one_call(env):
    async def scenario():
        rt = env.runtime()
        assert await rt.states() == {}  # not even a state root yet
        running = await env.create(rt, "up", env.bundle("up", ["sleep", "1000"]))
        await rt.start("up")
        created = await env.create(rt, "new", env.bundle("new", ["true"]))
        states = await rt.states()
        assert {cid: (s["status"], s["pid"]) for cid, s in states.items()} == {
            "up": ("running", running), "new": ("created", created)}
        await rt.kill("up", signal.SIGKILL)
        await rt.wait_exit("up")
        assert (await rt.states())["up"]["status"] == "stopped"
        await rt.delete("up")
        await rt.delete("new", force=True)
        assert await rt.states() == {}
    run(scenario())


def test_closing_an_attach_ends_a_pending_read(env):
    async def scenario():
        rt = env.runtime()
        await env.create(rt, "quiet", env.bundle("quiet", ["sleep", "1000"]))
        await rt.start("quiet")
        attach = await rt.attach("quiet")
        reader = asyncio.create_task(attach.read())
        await asyncio.sleep(0.1)
        attach.close()
        assert await asyncio.wait_for(reader, 5) is None
        assert await attach.read() is None
        # The container does not notice a client going away.
        assert (await rt.state("quiet"))["status"] == "running"
        await rt.delete("quiet", force=True)
    run(scenario())


def test_concurrent_containers(env):
    async def one(rt, n: int) -> bytes:
        container_id = f"many{n}"
        await env.create(rt, container_id, env.bundle(container_id, ["echo", f"n{n}"]))
        async with await rt.attach(container_id) as attach:
            await rt.start(container_id)
            out = joined(await read_all(attach), "stdout")
        assert (await rt.wait_exit(container_id)).exit_code == 0
        await rt.delete(container_id)
        return out

    async def scenario():
        rt = env.runtime()
        return await asyncio.gather(*(one(rt, n) for n in range(6)))

    assert run(scenario()) == [f"n{n}\n".encode() for n in range(6)]
