"""Each row's measurement, taken on every engine in alternation.

Rounds alternate the engines' order (servind first, then dockerd first, ...),
so a slow phase of the shared machine falls on both. Times come from
hyperfine (its JSON export), throughput from wrk, memory from /proc.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import attrs
import requests

from bench.engines import Engine, rss_bytes
from bench.images import SMALL_IMAGE, pull_image_name
from bench.rows import Results

if TYPE_CHECKING:
    from bench.floor import RuncFloor

DOCKER = "/usr/local/bin/docker"
DETACHED = 20
DETACHED_PARALLEL = 10
LOG_LINES = 200_000
LOGS_CONTAINER = "bench-logs"
WRK_CONNECTIONS = 32


class Participant(Protocol):
    """What a row's rounds need of who takes part: an engine, or the runc floor."""

    name: str

    def env(self) -> dict[str, str]: ...


class BenchFailed(Exception):
    """A measured command failed: its figure would mean nothing."""


@attrs.frozen
class Sizes:
    """Repetitions per row; ``rounds`` alternate the engines, ``per_round`` run back to back."""

    run_rounds: int = 3
    run_per_round: int = 3
    detached_rounds: int = 4
    rss_samples: int = 3
    wrk_rounds: int = 4
    wrk_seconds: int = 6
    logs_rounds: int = 4
    logs_per_round: int = 2
    pull_samples: int = 4
    start_rounds: int = 4

    @classmethod
    def quick(cls) -> "Sizes":
        return cls(run_rounds=1, run_per_round=2, detached_rounds=1, rss_samples=1,
                   wrk_rounds=1, wrk_seconds=3, logs_rounds=1, logs_per_round=1,
                   pull_samples=1, start_rounds=1)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def docker(engine: Engine, *args: str, timeout: float = 600) -> str:
    result = subprocess.run([DOCKER, *args], env=engine.env(), capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise BenchFailed(f"{engine.name}: docker {' '.join(args)} exited "
                          f"{result.returncode}: {result.stderr.strip()}")
    return result.stdout


def hyperfine(engine: Participant, command: str, runs: int, *, warmup: int = 0,
              prepare: str | None = None) -> list[float]:
    """Wall-clock seconds of each run of a shell command, the engine's CLI set up."""
    with tempfile.TemporaryDirectory(prefix="bench-hyperfine-") as tmp:
        export = Path(tmp) / "times.json"
        argv = ["hyperfine", "--style", "none", "--runs", str(runs), "--warmup", str(warmup),
                "--export-json", str(export)]
        if prepare is not None:
            argv += ["--prepare", prepare]
        result = subprocess.run([*argv, command], env=cli_env(engine), capture_output=True,
                                text=True, timeout=1800)
        if result.returncode != 0:
            raise BenchFailed(f"{engine.name}: hyperfine {command!r} failed: "
                              f"{result.stderr.strip()}")
        return json.loads(export.read_text())["results"][0]["times"]


def cli_env(engine: Participant) -> dict[str, str]:
    """For shell commands naming `docker`: the CLI under test comes first on PATH."""
    return {**engine.env(), "PATH": f"{Path(DOCKER).parent}:/usr/sbin:/usr/bin:/sbin:/bin"}


def shut_down(engine: Engine) -> None:
    """Remove the engine's containers while it runs, then stop it and clean up after it."""
    if engine.running:
        with contextlib.suppress(BenchFailed):
            ids = docker(engine, "ps", "-aq").split()
            if ids:
                docker(engine, "rm", "-f", *ids)
    for leak in engine.teardown():
        progress(f"warning: {engine.name} left {leak}")


def wrk(url: str, seconds: int) -> float:
    """Requests per second over the whole run; non-2xx answers are a failure."""
    result = subprocess.run(["wrk", "-t", "1", "-c", str(WRK_CONNECTIONS), "-d", f"{seconds}s",
                             url], capture_output=True, text=True, timeout=seconds + 60)
    if result.returncode != 0:
        raise BenchFailed(f"wrk {url} failed: {result.stderr.strip()}")
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        raise BenchFailed(f"wrk {url} saw errors:\n{result.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if match is None:
        raise BenchFailed(f"wrk printed no rate:\n{result.stdout}")
    return float(match.group(1))


class Bench:
    """Runs the rows on the engines; samples land in ``results``."""

    def __init__(self, engines: list[Engine], sizes: Sizes, floor: RuncFloor | None = None) -> None:
        self.engines = engines
        self.sizes = sizes
        self.floor = floor
        self.results = Results()

    def alternate(self, row: str, rounds: int, measure: Callable[[Engine, int], list[float]],
                  *, floor: Callable[[RuncFloor, int], list[float]] | None = None) -> None:
        """``rounds`` of ``measure`` on each engine, and of ``floor`` on the runc floor."""
        participants: list[Engine | RuncFloor] = list(self.engines)
        if floor is not None and self.floor is not None:
            participants.append(self.floor)
        for index in range(rounds):
            order = participants if index % 2 == 0 else participants[::-1]
            for who in order:
                if who is self.floor:
                    assert floor is not None and self.floor is not None
                    values = floor(self.floor, index)
                else:
                    assert isinstance(who, Engine)
                    values = measure(who, index)
                self.results.add(row, who.name, values)
                progress(f"{row} round {index + 1}/{rounds} {who.name}: "
                         + ", ".join(f"{v:.3f}" for v in values))

    def pull_small_image(self) -> None:
        for engine in self.engines:
            docker(engine, "pull", "-q", SMALL_IMAGE)

    def run_once(self, row: str, network: str | None) -> None:
        """``docker run --rm``; with ``--network none`` the runc floor runs beside it."""
        option = f"--network {network} " if network else ""
        floor = self.floor.run_commands() if network == "none" and self.floor else None

        def runs(command: str, prepare: str | None = None
                 ) -> Callable[[Participant, int], list[float]]:
            return lambda who, index: hyperfine(who, command, self.sizes.run_per_round,
                                                warmup=1 if index == 0 else 0, prepare=prepare)
        self.alternate(row, self.sizes.run_rounds,
                       runs(f"docker run --rm {option}{SMALL_IMAGE} true"),
                       floor=runs(*floor) if floor else None)

    def run_detached(self, *, measured: bool = True) -> None:
        """Leaves DETACHED containers running on each engine, for the rows after it
        (started once, unmeasured, when the run-20 row itself is left out)."""
        names = " ".join(f"bench-{n}" for n in range(1, DETACHED + 1))
        prepare = f"docker rm -f {names} >/dev/null 2>&1 || true"
        command = (f"seq {DETACHED} | xargs -P {DETACHED_PARALLEL} -I N "
                   f"docker run -d --name bench-N {SMALL_IMAGE} sleep 1000000")
        if measured:
            def once(command: str, prepare: str) -> Callable[[Participant, int], list[float]]:
                return lambda who, _: hyperfine(who, command, 1, prepare=prepare)
            floor = (self.floor.detached_commands(DETACHED, DETACHED_PARALLEL)
                     if self.floor else None)
            self.alternate("run-20", self.sizes.detached_rounds, once(command, prepare),
                           floor=once(*floor) if floor else None)
            if floor:  # the floor's containers go; the engines' stay for the next rows
                subprocess.run(floor[1], shell=True, check=True)
        else:
            for engine in self.engines:
                subprocess.run(command, shell=True, check=True, env=cli_env(engine),
                               stdout=subprocess.DEVNULL)
        for engine in self.engines:
            self.check_running(engine, DETACHED)

    def check_running(self, engine: Engine, expected: int) -> None:
        running = docker(engine, "ps", "-q").split()
        if len(running) != expected:
            raise BenchFailed(f"{engine.name}: {len(running)} containers running, "
                              f"expected {expected}")

    def memory(self) -> None:
        def sample(engine: Engine, _: int) -> list[float]:
            time.sleep(1)
            daemon, monitors = engine.memory_pids()
            daemon_mib, monitors_mib = rss_bytes(daemon) / 2**20, rss_bytes(monitors) / 2**20
            progress(f"rss {engine.name}: daemon {daemon_mib:.1f} MiB in {len(daemon)} "
                     f"processes, {len(monitors)} monitors {monitors_mib:.1f} MiB")
            return [daemon_mib + monitors_mib]
        self.alternate("rss", self.sizes.rss_samples, sample)

    def list_rate(self) -> None:
        path = "/v1.41/containers/json?all=1"
        for engine in self.engines:  # one answer of each engine is checked before the load
            response = requests.get(engine.tcp_url + path, timeout=30)
            response.raise_for_status()
            listed = response.json()
            if len(listed) < DETACHED:
                raise BenchFailed(f"{engine.name} lists {len(listed)} containers")
        self.alternate("list", self.sizes.wrk_rounds,
                       lambda engine, _: [wrk(engine.tcp_url + path, self.sizes.wrk_seconds)])

    def restart(self) -> None:
        def measure(engine: Engine, _: int) -> list[float]:
            engine.stop()
            seconds = engine.start()
            self.check_running(engine, DETACHED)
            return [seconds]
        self.alternate("start", self.sizes.start_rounds, measure)

    def remove_detached(self) -> None:
        for engine in self.engines:
            docker(engine, "rm", "-f", *(f"bench-{n}" for n in range(1, DETACHED + 1)))

    def logs(self) -> None:
        for engine in self.engines:
            docker(engine, "run", "-d", "--name", LOGS_CONTAINER, SMALL_IMAGE,
                   "seq", "1", str(LOG_LINES))
            docker(engine, "wait", LOGS_CONTAINER)
            lines = docker(engine, "logs", LOGS_CONTAINER).count("\n")
            if lines != LOG_LINES:
                raise BenchFailed(f"{engine.name}: docker logs gave {lines} lines, "
                                  f"expected {LOG_LINES}")
        command = f"docker logs {LOGS_CONTAINER}"
        self.alternate("logs", self.sizes.logs_rounds,
                       lambda engine, _: hyperfine(engine, command, self.sizes.logs_per_round))
        for engine in self.engines:
            docker(engine, "rm", LOGS_CONTAINER)

    def pull(self) -> None:
        """Each sample pulls an image of its own: layers neither engine has yet."""
        self.alternate("pull", self.sizes.pull_samples,
                       lambda engine, index: hyperfine(
                           engine, f"docker pull -q {pull_image_name(index)}", 1))
