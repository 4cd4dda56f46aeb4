"""The rows of the table: what each measures, its unit and its target ratio."""

from __future__ import annotations

import statistics

import attrs


@attrs.frozen
class Row:
    key: str
    title: str
    unit: str
    target: float  # the servin/dockerd ratio to reach
    higher_is_better: bool = False

    def met(self, ratio: float) -> bool:
        return ratio >= self.target if self.higher_is_better else ratio <= self.target

    @property
    def target_text(self) -> str:
        return f"{'≥' if self.higher_is_better else '≤'} {self.target:g}"


ROWS = (
    Row("run", "`docker run --rm alpine true`, default network", "s", 0.4),
    Row("run-none", "the same with `--network none`", "s", 0.3),
    Row("run-20", "20 `docker run -d`, 10 at a time, until all run", "s", 0.3),
    Row("rss", "engine RSS (daemon + per-container monitors), 20 running", "MiB", 0.25),
    Row("list", "`GET /containers/json?all=1`, 20 containers, wrk -c 32", "req/s", 4.0,
        higher_is_better=True),
    Row("logs", "`docker logs` of 200,000 lines", "s", 0.25),
    Row("pull", "`docker pull` of a 210 MB image in 6 layers", "s", 0.6),
    Row("start", "daemon start until `/_ping`, 20 containers to restore", "s", 0.5),
)


@attrs.define
class Results:
    """Samples per row and engine, in the order they were taken."""

    samples: dict[str, dict[str, list[float]]] = attrs.field(factory=dict)

    def add(self, row: str, engine: str, values: list[float]) -> None:
        self.samples.setdefault(row, {}).setdefault(engine, []).extend(values)

    def median(self, row: str, engine: str) -> float | None:
        values = self.samples.get(row, {}).get(engine)
        return statistics.median(values) if values else None

    def count(self, row: str, engine: str) -> int:
        return len(self.samples.get(row, {}).get(engine, []))
