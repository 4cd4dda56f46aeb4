import asyncio
from datetime import datetime, timezone
from pathlib import Path

from servin.http.logrender import LogRenderer
from servin.oci.logfile import (log_fields, parse_timestamp_ns, read_log, rotated_numbers,
                               rotated_path, tail_start)
from tests.support.logs import Line, lines_of, read_lines, rendered


def line(second: int, stream: str, tag: str, text: str) -> str:
    return f"2024-05-06T07:08:{second:02d}.123456789+02:00 {stream} {tag} {text}\n"


def collect(path: Path, **kwargs) -> list[Line]:
    return asyncio.run(read_lines(path, **kwargs))


def between(path: Path, since_ns: int, until_ns: int) -> bytes:
    both = LogRenderer(frozenset({b"stdout", b"stderr"}), framed=False, since_ns=since_ns,
                       until_ns=until_ns)
    return asyncio.run(rendered(path, both))


def follow(path, **kwargs) -> tuple[list[bytes], asyncio.Task]:
    """Follow the log in a task; the list fills with the data of the entries read."""
    got: list[bytes] = []

    async def consume():
        async for block in read_log(path, lines_of, **kwargs):
            got.extend(entry.data for entry in block)

    return got, asyncio.create_task(consume())


def test_timestamp_with_offset_and_nanoseconds():
    base = int(datetime(2024, 5, 6, 5, 8, 9, tzinfo=timezone.utc).timestamp()) * 10**9
    assert parse_timestamp_ns("2024-05-06T07:08:09.123456789+02:00") == base + 123456789
    assert parse_timestamp_ns("2024-05-06T05:08:09.5Z") == base + 500000000
    assert parse_timestamp_ns("2024-05-06T05:08:09Z") == base


def test_fields_of_full_partial_and_empty_lines():
    block = (b"2024-05-06T05:08:09.000000001Z stdout F hello world\n"
             b"2024-05-06T05:08:09.000000002Z stderr P abc\n"
             b"garbage\n"
             b"2024-05-06T05:08:09.000000003Z stdin F not a stream\n"
             b"2024-05-06T05:08:09.000000004Z stdout F \n"
             b"2024-05-06T05:08:09.000000005Z stdout F")
    assert list(log_fields(block)) == [
        (b"2024-05-06T05:08:09.000000001Z", b"stdout", b"hello world\n"),
        (b"2024-05-06T05:08:09.000000002Z", b"stderr", b"abc"),
        (b"2024-05-06T05:08:09.000000004Z", b"stdout", b"\n"),
        (b"2024-05-06T05:08:09.000000005Z", b"stdout", b"\n")]


def test_read_all_and_tail(tmp_path):
    log = tmp_path / "log"
    log.write_text("".join(line(i, "stdout" if i % 2 else "stderr", "F", f"l{i}") for i in range(10)))
    entries = collect(log)
    assert [e.data for e in entries] == [f"l{i}\n".encode() for i in range(10)]
    assert entries[1].stream == "stdout" and entries[0].stream == "stderr"
    assert [e.data for e in collect(log, tail=3)] == [b"l7\n", b"l8\n", b"l9\n"]
    assert collect(log, tail=0) == []
    assert len(collect(log, tail=100)) == 10


def test_tail_crosses_read_blocks(tmp_path):
    log = tmp_path / "log"
    text = "x" * 5000
    log.write_text("".join(line(i % 60, "stdout", "F", f"{i}{text}") for i in range(100)))
    entries = collect(log, tail=30)
    assert len(entries) == 30
    assert entries[0].data.startswith(b"70x")


def test_since_and_until(tmp_path):
    log = tmp_path / "log"
    log.write_text("".join(line(i, "stdout", "F", f"l{i}") for i in range(10)))
    second = parse_timestamp_ns("2024-05-06T07:08:00.123456789+02:00")
    assert between(log, second + 3 * 10**9, second + 5 * 10**9) == b"l3\nl4\nl5\n"


def test_missing_file_is_empty(tmp_path):
    assert collect(tmp_path / "nope") == []


def test_follow_sees_appends_and_ends_when_stopped(tmp_path):
    log = tmp_path / "log"
    log.write_text(line(1, "stdout", "F", "first"))

    async def run():
        stop = asyncio.Event()
        got, task = follow(log, follow=True, stop=stop)
        await asyncio.sleep(0.1)
        assert got == [b"first\n"]
        with log.open("a") as f:
            f.write(line(2, "stdout", "P", "sec"))
            f.flush()
            await asyncio.sleep(0.1)
            f.write(line(2, "stdout", "F", "ond"))
        await asyncio.sleep(0.1)
        assert got == [b"first\n", b"sec", b"ond\n"]
        # Written just before stop: still delivered, then the stream ends.
        with log.open("a") as f:
            f.write(line(3, "stderr", "F", "last"))
        stop.set()
        await asyncio.wait_for(task, 5)
        return got

    assert asyncio.run(run())[-1] == b"last\n"


def test_follow_survives_rotation(tmp_path):
    log = tmp_path / "log"
    log.write_text(line(1, "stdout", "F", "old"))

    async def run():
        stop = asyncio.Event()
        got, task = follow(log, follow=True, stop=stop)
        await asyncio.sleep(0.1)
        # conmon rotates by writing a new file and renaming it over the log.
        (tmp_path / "log.tmp").write_text(line(2, "stdout", "F", "new"))
        (tmp_path / "log.tmp").rename(log)
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, 5)
        return got

    assert asyncio.run(run()) == [b"old\n", b"new\n"]


def write_rotated(tmp_path, files: list[list[int]]) -> Path:
    """``files`` oldest first; the last one is the live log. Entry i reads "l<i>"."""
    log = tmp_path / "log"
    for age, numbers in enumerate(reversed(files)):
        target = log if age == 0 else rotated_path(log, age)
        target.write_text("".join(line(i, "stdout", "F", f"l{i}") for i in numbers))
    return log


def texts(entries: list[Line]) -> list[bytes]:
    return [e.data for e in entries]


def test_reads_rotated_files_oldest_first(tmp_path):
    log = write_rotated(tmp_path, [[0, 1], [2, 3, 4], [5]])
    (tmp_path / "log.tmp").write_text(line(9, "stdout", "F", "not a rotated file"))
    assert rotated_numbers(log) == [1, 2]
    assert texts(collect(log)) == [f"l{i}\n".encode() for i in range(6)]


def test_tail_spans_rotated_files(tmp_path):
    log = write_rotated(tmp_path, [[0, 1], [2, 3, 4], [5]])
    assert texts(collect(log, tail=1)) == [b"l5\n"]
    assert texts(collect(log, tail=3)) == [b"l3\n", b"l4\n", b"l5\n"]
    assert texts(collect(log, tail=5)) == [f"l{i}\n".encode() for i in range(1, 6)]
    assert len(collect(log, tail=100)) == 6
    assert collect(log, tail=0) == []


def test_tail_start_counts_what_it_found(tmp_path):
    log = tmp_path / "log"
    log.write_text(line(1, "stdout", "F", "a") + line(2, "stdout", "F", "b"))
    with log.open("rb") as f:
        assert tail_start(f, 1)[1] == 1
        assert tail_start(f, 5) == (0, 2)
    (tmp_path / "empty").write_text("")
    with (tmp_path / "empty").open("rb") as f:
        assert tail_start(f, 3) == (0, 0)


def test_since_and_until_span_rotated_files(tmp_path):
    log = write_rotated(tmp_path, [[0, 1], [2, 3, 4], [5, 6]])
    second = parse_timestamp_ns("2024-05-06T07:08:00.123456789+02:00")
    assert between(log, second + 1 * 10**9, second + 5 * 10**9) == \
        b"".join(f"l{i}\n".encode() for i in range(1, 6))


def test_only_rotated_files_left(tmp_path):
    log = write_rotated(tmp_path, [[0], [1], [2]])
    # Mid-rotation: files moved up, no live file until conmon reopens.
    for number in (2, 1):
        rotated_path(log, number).rename(rotated_path(log, number + 1))
    log.rename(rotated_path(log, 1))
    assert texts(collect(log)) == [b"l0\n", b"l1\n", b"l2\n"]


def test_follow_across_a_rename_rotation(tmp_path):
    """The rotator renames the live file to .1; conmon appends to it until it reopens."""
    log = write_rotated(tmp_path, [[0], [1]])

    async def run():
        stop = asyncio.Event()
        got, task = follow(log, follow=True, tail=1, stop=stop)
        await asyncio.sleep(0.1)
        writer = open(log, "a")
        rotated_path(log, 1).rename(rotated_path(log, 2))
        log.rename(rotated_path(log, 1))
        writer.write(line(2, "stdout", "F", "l2"))
        writer.flush()
        await asyncio.sleep(0.1)
        # conmon's reopen: the old file is closed, then a new one takes the name.
        writer.write(line(3, "stdout", "F", "l3"))
        writer.close()
        (tmp_path / "log.tmp").write_text(line(4, "stdout", "F", "l4"))
        (tmp_path / "log.tmp").rename(log)
        await asyncio.sleep(0.1)
        with open(log, "a") as f:
            f.write(line(5, "stdout", "F", "l5"))
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 5)
        return got

    assert asyncio.run(run()) == [f"l{i}\n".encode() for i in range(1, 6)]


def test_follow_waits_for_a_log_that_is_not_there_yet(tmp_path):
    log = tmp_path / "log"

    async def run():
        stop = asyncio.Event()
        got, task = follow(log, follow=True, stop=stop)
        await asyncio.sleep(0.1)
        log.write_text(line(1, "stdout", "F", "hello"))
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 5)
        return got

    assert asyncio.run(run()) == [b"hello\n"]
