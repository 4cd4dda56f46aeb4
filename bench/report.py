"""The table of medians and ratios, and the machine it was measured on."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

from bench.rows import ROWS, Results


def machine() -> str:
    model = next((line.split(":", 1)[1].strip()
                  for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    return (f"{os.cpu_count()} cores ({model}), {mem_kib / 2**20:.1f} GiB RAM, "
            f"Linux {platform.release()}")


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"


def table(results: Results, engines: list[str], versions: dict[str, str]) -> str:
    both = "dockerd" in engines
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Measured {now} on {machine()}.",
             "Engines: " + ", ".join(f"{name} {versions.get(name, '?')}" for name in engines)
             + ". Figures are medians (n = samples per engine).", ""]
    if not both:
        lines += ["dockerd was not measured (see the note below): servind's figures alone, "
                  "no ratios.", ""]
    lines += ["| row | servind | dockerd | servin/dockerd | target | met |",
              "|---|---:|---:|---:|---:|:---:|"]
    for row in ROWS:
        if row.key not in results.samples:
            continue
        servind = results.median(row.key, "servind")
        dockerd = results.median(row.key, "dockerd")
        n = results.count(row.key, "servind")
        ratio = servind / dockerd if servind is not None and dockerd else None
        lines.append(f"| {row.title} (n={n}) | {_figure(servind, row.unit)} | "
                     f"{_figure(dockerd, row.unit)} | "
                     f"{'–' if ratio is None else f'{ratio:.3g}'} | {row.target_text} | "
                     f"{'–' if ratio is None else ('yes' if row.met(ratio) else 'no')} |")
    return "\n".join(lines)


def floor_table(results: Results) -> str:
    """The run rows' floor (bench/floor.py) against dockerd: the least ratio any engine
    on runc could reach on this machine."""
    lines = ["The floor: the docker CLI and runc alone, no engine (bench/floor.py).", "",
             "| row | floor | dockerd | floor/dockerd | target |", "|---|---:|---:|---:|---:|"]
    for row in ROWS:
        floor = results.median(row.key, "floor")
        if floor is None:
            continue
        dockerd = results.median(row.key, "dockerd")
        ratio = f"{floor / dockerd:.3g}" if dockerd else "–"
        lines.append(f"| {row.title} (n={results.count(row.key, 'floor')}) | "
                     f"{_figure(floor, row.unit)} | {_figure(dockerd, row.unit)} | {ratio} | "
                     f"{row.target_text} |")
    return "\n".join(lines)
