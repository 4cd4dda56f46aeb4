"""``python -m bench.profile ROW``: a row's workload on servind alone, under py-spy.

Starts a registry and servind as ``make bench`` does, sets up the row's state,
samples servind with ``py-spy record`` while the workload runs, and prints the
functions that held most samples, inclusive and self. The raw (collapsed)
stacks stay in the file given with ``--raw`` for flame graphs.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from bench.engines import SERVIND_BIP, ServindEngine
from bench.images import SMALL_IMAGE, pull_image_name, push_bench_images
from bench.measure import (DETACHED, DETACHED_PARALLEL, LOG_LINES, LOGS_CONTAINER, cli_env,
                           docker, shut_down, wrk)
from tests.support.registry import free_port, start_registry, stop_registry

PY_SPY = Path(sys.executable).parent / "py-spy"
IDLE_WORKER = "_worker (concurrent/futures/thread.py"


def _run_detached(engine: ServindEngine, rounds: int) -> None:
    for _ in range(rounds):
        subprocess.run(f"seq {DETACHED} | xargs -P {DETACHED_PARALLEL} -I N "
                       f"docker run -d --name bench-N {SMALL_IMAGE} sleep 1000000 >/dev/null",
                       shell=True, check=True, env=cli_env(engine))
        docker(engine, "rm", "-f", *(f"bench-{n}" for n in range(1, DETACHED + 1)))


def _setup_detached(engine: ServindEngine) -> None:
    for n in range(1, DETACHED + 1):
        docker(engine, "run", "-d", "--name", f"bench-{n}", SMALL_IMAGE, "sleep", "1000000")


def _setup_logs(engine: ServindEngine) -> None:
    docker(engine, "run", "-d", "--name", LOGS_CONTAINER, SMALL_IMAGE, "seq", "1", str(LOG_LINES))
    docker(engine, "wait", LOGS_CONTAINER)


# row -> (set-up, workload), each given the engine.
WORKLOADS: dict[str, tuple[Callable[[ServindEngine], None], Callable[[ServindEngine], None]]] = {
    "run": (lambda e: None,
            lambda e: [docker(e, "run", "--rm", SMALL_IMAGE, "true") for _ in range(15)]),
    "run-none": (lambda e: None,
                 lambda e: [docker(e, "run", "--rm", "--network", "none", SMALL_IMAGE, "true")
                            for _ in range(15)]),
    "run-20": (lambda e: None, lambda e: _run_detached(e, 2)),
    "list": (_setup_detached,
             lambda e: wrk(e.tcp_url + "/v1.41/containers/json?all=1", 10)),
    "logs": (_setup_logs, lambda e: [docker(e, "logs", LOGS_CONTAINER) for _ in range(3)]),
    "pull": (lambda e: None, lambda e: docker(e, "pull", "-q", pull_image_name(0))),
}


def summarise(raw: Path, top: int) -> str:
    """Functions by share of samples: inclusive (anywhere on the stack) and self (on top)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        # py-spy counts a thread-pool worker waiting for work as busy: not servind's time.
        if frames[-1].startswith(IDLE_WORKER):
            idle += count
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples, {idle} of idle thread-pool workers left out"]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        lines.append(f"-- {title} --")
        lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in counter.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("row", choices=sorted(WORKLOADS))
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    if not PY_SPY.exists():
        print(f"bench.profile: {PY_SPY} is missing; `make bench` installs it", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    setup, workload = WORKLOADS[args.row]
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="servin-profile-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        (workdir / "registry").mkdir()
        registry = start_registry(workdir / "registry", workdir)
        stack.callback(stop_registry, registry)
        push_bench_images(registry, workdir, pull_samples=1 if args.row == "pull" else 0)
        engine = ServindEngine(workdir, free_port(), registry, SERVIND_BIP)
        stack.callback(shut_down, engine)
        engine.start()
        docker(engine, "pull", "-q", SMALL_IMAGE)
        setup(engine)
        raw = args.raw or workdir / "profile.txt"
        assert engine.process is not None
        sampler = subprocess.Popen([str(PY_SPY), "record", "--pid", str(engine.process.pid),
                                    "--format", "raw", "--rate", "200", "--output", str(raw)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            workload(engine)
        finally:
            sampler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            sampler.wait(60)
        print(summarise(raw, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
