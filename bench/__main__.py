"""``python -m bench`` (``make bench``): servind and dockerd side by side.

Starts a registry on 127.0.0.1 with the benchmark's images, servind and dockerd
with roots, sockets and bridges of their own, runs every row on both in
alternation, prints the table of medians and ratios, and removes everything
it made. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench import hostnet
from bench.engines import (DOCKERD, DOCKERD_BIP, SERVIND_BIP, DockerdEngine, Engine,
                           EngineFailed, ServindEngine, other_dockerd_running, process_table)
from bench.floor import RuncFloor
from bench.images import SMALL_IMAGE, push_bench_images
from bench.measure import DOCKER, Bench, BenchFailed, Sizes, docker, progress, shut_down
from bench.report import floor_table, table
from bench.rows import ROWS
from tests.support.registry import free_port, start_registry, stop_registry

def dockerd_unavailable() -> str | None:
    if shutil.which(DOCKERD) is None:
        return "dockerd is not installed (Debian's docker.io; `make bench` installs it)"
    return None


def stray_processes(workdir: Path) -> list[str]:
    return [f"{pid} {' '.join(argv)[:120]}" for pid, (_, argv) in process_table().items()
            if any(str(workdir) in arg for arg in argv) and pid != os.getpid()]


# Rows measured with the DETACHED containers that the run-20 row leaves running.
NEED_DETACHED = {"run-20", "rss", "list", "start"}
# Rows measured beside the runc floor (bench/floor.py).
WITH_FLOOR = {"run-none", "run-20"}


def run_rows(bench: Bench, rows: set[str]) -> None:
    bench.pull_small_image()
    if "run" in rows:
        bench.run_once("run", network=None)
    if "run-none" in rows:
        bench.run_once("run-none", network="none")
    if rows & NEED_DETACHED:
        bench.run_detached(measured="run-20" in rows)
        if "rss" in rows:
            bench.memory()
        if "list" in rows:
            bench.list_rate()
        if "start" in rows:
            bench.restart()
        bench.remove_detached()
    if "logs" in rows:
        bench.logs()
    if "pull" in rows:
        bench.pull()


def row_keys(text: str) -> set[str]:
    keys = {key.strip() for key in text.split(",") if key.strip()}
    unknown = keys - {row.key for row in ROWS}
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown rows {', '.join(sorted(unknown))}; rows: {', '.join(r.key for r in ROWS)}")
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one round per row: a smoke test of the suite, not a measurement")
    parser.add_argument("--no-dockerd", action="store_true", help="measure servind alone")
    parser.add_argument("--rows", type=row_keys, default={row.key for row in ROWS},
                        help="comma-separated rows to measure (default: all): "
                             + ",".join(row.key for row in ROWS))
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    for tool in (DOCKER, "hyperfine", "wrk"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is missing; `make bench` installs what the suite needs",
                  file=sys.stderr)
            return 2
    # SIGTERM unwinds like Ctrl-C, so the daemons are still stopped and cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    notes: list[str] = []
    status = 0
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="servin-bench-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        stack.callback(lambda: [progress(f"warning: process left: {p}")
                                for p in stray_processes(workdir)])
        registry = start_registry(_mkdir(workdir / "registry"), workdir)
        stack.callback(stop_registry, registry)
        progress("building the images and pushing them to the registry")
        push_bench_images(registry, workdir, sizes.pull_samples if "pull" in args.rows else 0)

        servind = ServindEngine(workdir, free_port(), registry, SERVIND_BIP)
        stack.callback(shut_down, servind)
        servind.start()
        engines: list[Engine] = [servind]
        reason = "left out (--no-dockerd)" if args.no_dockerd else dockerd_unavailable()
        if reason is None:
            # Another dockerd owns the DOCKER chains; ours must not touch them.
            shared_host = (other_dockerd_running()
                           or hostnet.docker_chains_present(hostnet.iptables_snapshot()))
            if shared_host:
                notes.append("another dockerd runs on this host: the benchmark's dockerd "
                             "ran with --iptables=false")
            dockerd = DockerdEngine(workdir, free_port(), registry, DOCKERD_BIP,
                                    iptables=not shared_host)
            stack.callback(shut_down, dockerd)
            try:
                dockerd.prepare()
                dockerd.start()
                engines.append(dockerd)
            except (EngineFailed, RuntimeError) as error:
                reason = f"failed to start: {error}"
        if reason is not None:
            notes.append(f"dockerd {reason}; servind's figures alone")
            progress(notes[-1])
        versions = {engine.name: docker(engine, "version", "--format",
                                        "{{.Server.Version}}").strip() for engine in engines}
        floor = None
        if args.rows & WITH_FLOOR:
            stack.callback(RuncFloor.remove, workdir / "floor")
            try:
                docker(servind, "pull", "-q", SMALL_IMAGE)
                floor = RuncFloor(servind, workdir / "floor")
            except (BenchFailed, OSError, KeyError) as error:
                notes.append(f"the runc floor was left out: {error}")
                progress(notes[-1])
        bench = Bench(engines, sizes, floor)
        try:
            run_rows(bench, args.rows)
        except BenchFailed as error:
            notes.append(f"stopped early: {error}")
            status = 1
        print(table(bench.results, [engine.name for engine in engines], versions))
        if floor is not None:
            print("\n" + floor_table(bench.results))
        for note in notes:
            print(f"\nNote: {note}")
        progress("cleaning up")
    progress(f"done in {time.monotonic() - started:.0f} s")
    return status


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


if __name__ == "__main__":
    sys.exit(main())
