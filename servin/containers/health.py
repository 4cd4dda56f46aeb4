"""Healthchecks: a container's Config.Healthcheck run as execs, State.Health kept from them.

As dockerd's daemon/health.go: the first probe runs one interval after the start;
a probe exiting 0 makes the container healthy, any other result (a failure, a
timeout, a probe that cannot run) adds to the failing streak, which makes it
unhealthy at ``Retries`` unless it never was healthy and is still in its start
period. The last five results are kept. When the container stops, its monitor
stops and the status reads unhealthy (dockerd's compatibility rule); an unhealthy
container is not restarted for it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import attrs
import structlog

from servin.containers.record import Container, Health, HealthResult
from servin.exec.manager import ExecManager

log = structlog.get_logger("servin.containers")

SECOND_NS = 1_000_000_000
DEFAULT_INTERVAL_NS = 30 * SECOND_NS
DEFAULT_TIMEOUT_NS = 30 * SECOND_NS
DEFAULT_START_PERIOD_NS = 0
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT_LEN = 4096

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
NO_HEALTHCHECK = "none"


@attrs.frozen
class Probe:
    argv: list[str]
    interval_ns: int = DEFAULT_INTERVAL_NS
    timeout_ns: int = DEFAULT_TIMEOUT_NS
    start_period_ns: int = DEFAULT_START_PERIOD_NS
    retries: int = DEFAULT_RETRIES


def probe_of(config: dict[str, Any]) -> Probe | None:
    """The container's probe from its (image-merged) Config, None without a healthcheck."""
    healthcheck = config.get("Healthcheck") or {}
    test = list(healthcheck.get("Test") or [])
    if not test or test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        return None  # none, NONE, or a kind dockerd ignores too
    argv = test[1:]
    if test[0] == "CMD-SHELL":
        argv = list(config.get("Shell") or ["/bin/sh", "-c"]) + argv
    return Probe(argv=argv,
                 interval_ns=healthcheck.get("Interval") or DEFAULT_INTERVAL_NS,
                 timeout_ns=healthcheck.get("Timeout") or DEFAULT_TIMEOUT_NS,
                 start_period_ns=healthcheck.get("StartPeriod") or DEFAULT_START_PERIOD_NS,
                 retries=healthcheck.get("Retries") or DEFAULT_RETRIES)


def health_status(container: Container) -> str:
    """What the ``health`` list filter matches: starting, healthy, unhealthy or none."""
    health = container.state.health
    return health.status if health is not None else NO_HEALTHCHECK


def go_duration(ns: int) -> str:
    """A duration as Go's time.Duration prints it (30s, 1m30s, 1.5s, 500ms)."""
    if ns == 0:
        return "0s"
    if ns < 1000:
        return f"{ns}ns"
    if ns < SECOND_NS:
        unit, scale = ("µs", 1000) if ns < 1_000_000 else ("ms", 1_000_000)
        whole, fraction = divmod(ns, scale)
        digits = len(str(scale)) - 1
        return f"{whole}{'.' + f'{fraction:0{digits}d}'.rstrip('0') if fraction else ''}{unit}"
    hours, rest = divmod(ns, 3600 * SECOND_NS)
    minutes, rest = divmod(rest, 60 * SECOND_NS)
    seconds, fraction = divmod(rest, SECOND_NS)
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    return text + f"{seconds}{'.' + f'{fraction:09d}'.rstrip('0') if fraction else ''}s"


def apply_result(health: Health, result: HealthResult, probe: Probe, started_ns: int) -> bool:
    """Record one probe result; True when the status changed."""
    before = health.status
    health.log = [*health.log, result][-MAX_LOG_ENTRIES:]
    if result.exit_code == 0:
        health.failing_streak = 0
        health.status = HEALTHY
    elif not (health.status == STARTING
              and result.start_ns - started_ns < probe.start_period_ns):
        health.failing_streak += 1
        if health.failing_streak >= probe.retries:
            health.status = UNHEALTHY
    return health.status != before


class HealthMonitor:
    """One probing task per running container that has a healthcheck."""

    def __init__(self, execs: ExecManager, persist: Callable[[Container], Awaitable[None]],
                 publish: Callable[..., None]) -> None:
        self._execs = execs
        self._persist = persist
        self._publish = publish
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, container: Container) -> None:
        """The container runs (started or adopted after a daemon restart): probe it, from
        "starting" with a fresh streak (the log of earlier runs is kept)."""
        probe = probe_of(container.config)
        if probe is None:
            return
        health = container.state.health or Health()
        health.status, health.failing_streak = STARTING, 0
        container.state.health = health
        self._tasks[container.id] = asyncio.create_task(self._monitor(container, probe))

    async def stop(self, container: Container) -> None:
        """The container stopped: no more probes, and it reads unhealthy."""
        task = self._tasks.pop(container.id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if container.state.health is not None:
            container.state.health.status = UNHEALTHY

    async def close(self) -> None:
        """Daemon shutdown: probing stops, the recorded status stays."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _monitor(self, container: Container, probe: Probe) -> None:
        while True:
            await asyncio.sleep(probe.interval_ns / SECOND_NS)
            result = await self._probe(container, probe)
            health = container.state.health
            if health is None:
                return
            changed = apply_result(health, result, probe, container.state.started_ns)
            await self._persist(container)
            if changed:
                self._publish(container, f"health_status: {health.status}")
                log.info("container_health", id=container.short_id, status=health.status)

    async def _probe(self, container: Container, probe: Probe) -> HealthResult:
        start_ns = time.time_ns()
        run = await self._execs.run(container, probe.argv, timeout=probe.timeout_ns / SECOND_NS,
                                    output_limit=MAX_OUTPUT_LEN)
        if run.error:
            exit_code, output = -1, run.error
        elif run.exit_code is None:
            exit_code = -1
            output = f"Health check exceeded timeout ({go_duration(probe.timeout_ns)})"
        else:
            exit_code, output = run.exit_code, run.output.decode(errors="replace")
        return HealthResult(start_ns=start_ns, end_ns=time.time_ns(), exit_code=exit_code,
                            output=output)
