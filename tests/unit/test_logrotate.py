"""LogRotator against a writer that behaves as conmon does with its k8s-file log.

conmon appends to the file it opened; on a reopen request it closes it, creates
``<log>.tmp`` and renames that over the log path (containers/conmon ctr_logging.c).
The e2e tests run the same rotation with real conmon.
"""

import asyncio
import os
from pathlib import Path

from servin.containers.logconfig import LogPolicy
from servin.containers.logrotate import LogRotator, split_log
from servin.errors import NotFound
from servin.oci.logfile import rotated_numbers, rotated_path
from tests.support.logs import read_lines


class ConmonLikeWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.reopens = 0
        self.gone = False

    def write_line(self, number: int) -> None:
        second, nano = divmod(number, 1000)
        os.write(self.fd, f"2024-05-06T07:08:{second:02d}.{nano:09d}Z stdout F line{number}\n".encode())

    def reopen_log(self, container_id: str) -> None:
        if self.gone:
            raise NotFound(f"container {container_id} has no running monitor to reopen its log")
        os.close(self.fd)
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600)
        tmp.rename(self.path)
        self.reopens += 1

    def close(self) -> None:
        os.close(self.fd)


async def settle() -> None:
    await asyncio.sleep(0.05)


async def all_lines(path: Path) -> list[bytes]:
    return [line.data for line in await read_lines(path)]


def test_rotates_at_max_size_and_keeps_max_file_files(tmp_path):
    log = tmp_path / "container.log"

    async def run():
        writer = ConmonLikeWriter(log)
        rotator = LogRotator(writer)
        rotator.start("c1", log, LogPolicy(driver="json-file", max_size=500, max_file=3))
        try:
            for number in range(200):
                writer.write_line(number)
                if number % 5 == 0:
                    await settle()
            await settle()
        finally:
            await rotator.stop("c1")
            writer.close()
        return writer.reopens

    reopens = asyncio.run(run())
    assert reopens >= 5
    assert rotated_numbers(log) == [1, 2]
    # What is kept is the end of the output, whole and in order.
    lines = asyncio.run(all_lines(log))
    numbers = [int(data[4:-1]) for data in lines]
    assert numbers == list(range(numbers[0], 200))
    assert len(numbers) < 200
    for path in (log, rotated_path(log, 1), rotated_path(log, 2)):
        assert path.stat().st_size < 500 + 5 * 50  # overshoot: what came before the rotation


def test_no_line_lost_while_conmon_has_not_reopened_yet(tmp_path):
    log = tmp_path / "container.log"

    class SlowWriter(ConmonLikeWriter):
        """Writes a line to the renamed file between the rename and the reopen."""

        def reopen_log(self, container_id: str) -> None:
            self.write_line(999)
            super().reopen_log(container_id)

    async def run():
        writer = SlowWriter(log)
        rotator = LogRotator(writer)
        rotator.start("c1", log, LogPolicy(driver="local", max_size=100, max_file=5))
        try:
            for number in range(3):
                writer.write_line(number)
            await settle()
            writer.write_line(3)
            await settle()
        finally:
            await rotator.stop("c1")
            writer.close()

    asyncio.run(run())
    numbers = [int(data[4:-1]) for data in asyncio.run(all_lines(log))]
    assert sorted(numbers) == [0, 1, 2, 3, 999]
    assert numbers.index(999) < numbers.index(3)


def test_max_file_one_keeps_only_the_live_file(tmp_path):
    log = tmp_path / "container.log"

    async def run():
        writer = ConmonLikeWriter(log)
        rotator = LogRotator(writer)
        rotator.start("c1", log, LogPolicy(driver="local", max_size=100, max_file=1))
        try:
            for number in range(10):
                writer.write_line(number)
                await settle()
        finally:
            await rotator.stop("c1")
            writer.close()

    asyncio.run(run())
    assert rotated_numbers(log) == []
    assert log.stat().st_size < 200


def test_restart_mid_rotation_asks_conmon_to_reopen(tmp_path):
    """A daemon that died after linking the live file as .1: the next one has conmon reopen."""
    log = tmp_path / "container.log"

    async def run():
        writer = ConmonLikeWriter(log)
        for number in range(3):
            writer.write_line(number)
        rotated_path(log, 1).write_text("older\n")
        rotated_path(log, 1).rename(rotated_path(log, 2))
        os.link(log, rotated_path(log, 1))
        rotator = LogRotator(writer)
        rotator.start("c1", log, LogPolicy(driver="json-file", max_size=50, max_file=3))
        await settle()
        writer.write_line(3)
        await rotator.stop("c1")
        writer.close()
        return writer.reopens

    assert asyncio.run(run()) == 1
    assert rotated_path(log, 2).read_text() == "older\n"
    assert rotated_path(log, 1).read_text().endswith("line2\n")
    assert log.read_text().endswith("line3\n")


def test_json_file_without_max_size_never_rotates(tmp_path):
    log = tmp_path / "container.log"

    async def run():
        writer = ConmonLikeWriter(log)
        rotator = LogRotator(writer)
        rotator.start("c1", log, LogPolicy(driver="json-file", max_size=None, max_file=1))
        for number in range(100):
            writer.write_line(number)
        await settle()
        await rotator.stop("c1")
        writer.close()
        return writer.reopens

    assert asyncio.run(run()) == 0
    assert rotated_numbers(log) == []


def test_a_vanished_conmon_ends_the_watch_and_leaves_the_log_whole(tmp_path):
    log = tmp_path / "container.log"

    async def run():
        writer = ConmonLikeWriter(log)
        writer.gone = True
        rotator = LogRotator(writer)
        rotator.start("c1", log, LogPolicy(driver="json-file", max_size=10, max_file=2))
        writer.write_line(1)
        await settle()
        writer.write_line(2)
        await settle()
        await asyncio.wait_for(rotator.close(), 5)
        writer.close()

    asyncio.run(run())
    assert rotated_numbers(log) == []
    assert log.read_text().count("\n") == 2


def entries_text(number: int) -> str:
    return f"2024-05-06T07:08:09.{number:09d}Z stdout F line{number:03d}\n"


def test_split_log_cuts_the_live_file_into_max_size_pieces(tmp_path):
    log = tmp_path / "container.log"
    rotated_path(log, 1).write_text("r1\n")
    rotated_path(log, 2).write_text("r2\n")
    line_size = len(entries_text(0))
    log.write_text("".join(entries_text(n) for n in range(100)))
    split_log(log, max_size=line_size * 10, max_file=4)
    assert rotated_numbers(log) == [1, 2, 3]
    for path in (log, rotated_path(log, 1), rotated_path(log, 2), rotated_path(log, 3)):
        assert path.stat().st_size == line_size * 10
    # The newest 40 lines, in order, in the live file and the three before it.
    lines = asyncio.run(all_lines(log))
    assert [int(data[4:-1]) for data in lines] == list(range(60, 100))


def test_split_log_moves_earlier_files_up(tmp_path):
    log = tmp_path / "container.log"
    rotated_path(log, 1).write_text(entries_text(0))
    rotated_path(log, 2).write_text("dropped\n")
    log.write_text(entries_text(1) + entries_text(2))
    split_log(log, max_size=len(entries_text(1)), max_file=3)
    assert rotated_numbers(log) == [1, 2]
    assert rotated_path(log, 2).read_text() == entries_text(0)
    assert rotated_path(log, 1).read_text() == entries_text(1)
    assert log.read_text() == entries_text(2)


def test_split_log_cuts_a_rotated_file_that_a_burst_overfilled(tmp_path):
    # The watcher rotated mid-burst: .1 holds most of the burst, the live file its end.
    log = tmp_path / "container.log"
    line_size = len(entries_text(0))
    rotated_path(log, 1).write_text("".join(entries_text(n) for n in range(95)))
    log.write_text("".join(entries_text(n) for n in range(95, 100)))
    split_log(log, max_size=line_size * 10, max_file=3)
    assert rotated_numbers(log) == [1, 2]
    assert log.read_text() == "".join(entries_text(n) for n in range(95, 100))
    # Cut from its start at line ends: 0-9, ..., 80-89, 90-94; the newest two stay.
    assert rotated_path(log, 1).read_text() == "".join(entries_text(n) for n in range(90, 95))
    assert rotated_path(log, 2).read_text() == "".join(entries_text(n) for n in range(80, 90))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_split_log_leaves_small_files_and_long_lines_whole(tmp_path):
    log = tmp_path / "container.log"
    log.write_text("short\n")
    split_log(log, max_size=100, max_file=2)
    assert log.read_text() == "short\n" and rotated_numbers(log) == []
    log.write_text("x" * 300 + "\n" + "tail\n")
    split_log(log, max_size=100, max_file=2)
    assert rotated_path(log, 1).read_text() == "x" * 300 + "\n"
    assert log.read_text() == "tail\n"
    split_log(tmp_path / "missing.log", max_size=10, max_file=2)
