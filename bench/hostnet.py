"""What dockerd adds to the host's network set-up, and taking it away again.

dockerd leaves its bridge and its iptables chains (DOCKER, DOCKER-USER,
DOCKER-ISOLATION-STAGE-*) and the jumps into them in place when it stops. The
benchmark gives it a bridge of its own, notes the rules present before it
starts, and afterwards deletes only the rules that appeared since and name
dockerd's chains or its bridge, so the rules of servind instances running at
the same time are left alone.
"""

from __future__ import annotations

import shlex
import subprocess

TABLES = ("filter", "nat")

Snapshot = dict[str, list[str]]


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def iptables_snapshot() -> Snapshot:
    """Chain declarations and rules of each table, as iptables-save prints them."""
    snapshot = {}
    for table in TABLES:
        lines = _run("iptables-save", "-t", table).stdout.splitlines()
        snapshot[table] = [line for line in lines if line.startswith((":", "-A "))]
    return snapshot


def docker_chains_present(snapshot: Snapshot) -> bool:
    return any(line.startswith(":DOCKER") for lines in snapshot.values() for line in lines)


def remove_added_rules(before: Snapshot, marks: tuple[str, ...]) -> list[str]:
    """Delete what appeared since ``before`` and mentions one of ``marks``; returns it."""
    removed = []
    for table, lines in iptables_snapshot().items():
        known = set(before.get(table, []))
        added = [line for line in lines
                 if line not in known and any(mark in line for mark in marks)]
        chains = [line[1:].split()[0] for line in added if line.startswith(":")]
        # Jumps from the built-in chains go first; the new chains are then flushed whole.
        for rule in reversed([line for line in added if line.startswith("-A ")]):
            argv = shlex.split(rule)
            if argv[1] not in chains:
                _run("iptables", "-t", table, "-D", *argv[1:])
        for chain in chains:
            _run("iptables", "-t", table, "-F", chain)
        for chain in chains:
            _run("iptables", "-t", table, "-X", chain)
        removed += [f"{table}: {line}" for line in added]
    return removed


def add_bridge(name: str, address: str) -> None:
    for argv in (("ip", "link", "add", name, "type", "bridge"),
                 ("ip", "addr", "add", address, "dev", name),
                 ("ip", "link", "set", name, "up")):
        result = _run(*argv)
        if result.returncode != 0:
            delete_link(name)
            raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")


def link_exists(name: str) -> bool:
    return _run("ip", "link", "show", name).returncode == 0


def delete_link(name: str) -> None:
    _run("ip", "link", "del", name)
