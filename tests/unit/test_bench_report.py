"""The benchmark's tables: medians, ratios and whether each target is met."""

from __future__ import annotations

from bench.report import floor_table, table
from bench.rows import Results


def results() -> Results:
    measured = Results()
    measured.add("run-none", "servind", [0.09, 0.08, 0.10])
    measured.add("run-none", "dockerd", [0.20, 0.22, 0.21])
    measured.add("run-none", "floor", [0.06, 0.07, 0.065])
    measured.add("list", "servind", [6000.0])
    measured.add("list", "dockerd", [1200.0])
    return measured


def test_rows_give_medians_ratios_and_whether_the_target_is_met():
    text = table(results(), ["servind", "dockerd"], {"servind": "0.1.0", "dockerd": "20.10"})
    rows = [line for line in text.splitlines() if line.startswith("| the same")
            or line.startswith("| `GET")]
    assert rows == [
        "| the same with `--network none` (n=3) | 0.090 s | 0.210 s | 0.429 | ≤ 0.3 | no |",
        "| `GET /containers/json?all=1`, 20 containers, wrk -c 32 (n=1) | 6,000 req/s | "
        "1,200 req/s | 5 | ≥ 4 | yes |",
    ]


def test_the_floor_table_has_only_the_rows_measured_with_a_floor():
    rows = [line for line in floor_table(results()).splitlines() if line.startswith("| the")]
    assert rows == ["| the same with `--network none` (n=3) | 0.065 s | 0.210 s | 0.31 | ≤ 0.3 |"]


def test_without_dockerd_there_are_no_ratios():
    alone = Results()
    alone.add("run-none", "servind", [0.09])
    text = table(alone, ["servind"], {"servind": "0.1.0"})
    assert "servind's figures alone" in text
    assert "| the same with `--network none` (n=1) | 0.090 s | – | – | ≤ 0.3 | – |" in text
