"""The firewall's iptables round trips: rules applied once, jumps looked for once."""

from __future__ import annotations

import asyncio

import pytest

from servin.net import firewall
from servin.net.firewall import BridgeRules, Firewall, PortRule

BRIDGE = BridgeRules("br-test", ("172.30.0.0/16",))
PORT = PortRule("br-test", "tcp", "", 8080, "172.30.0.2", 80)


class FakeIptables:
    """Stands in for the iptables processes: records each and keeps the jumps made."""

    def __init__(self) -> None:
        self.saved = ""  # what iptables-save prints
        self.calls: list[tuple[str, str | None]] = []

    async def run(self, *argv: str, stdin: str | None = None) -> str:
        self.calls.append((argv[0], stdin))
        if argv[0] == "iptables-restore":
            jumps = [line.replace("-I ", "-A ", 1).replace(" 1 ", " ", 1)
                     for line in stdin.splitlines() if line.startswith("-I ")]
            self.saved += "".join(f"{jump}\n" for jump in jumps)
        return self.saved

    def programs(self) -> list[str]:
        return [program for program, _ in self.calls]


@pytest.fixture
def iptables(monkeypatch):
    fake = FakeIptables()
    monkeypatch.setattr(firewall, "_run", fake.run)
    return fake


def test_the_first_apply_looks_for_the_jumps_later_ones_know_them(iptables):
    wall = Firewall("test")
    asyncio.run(wall.apply([BRIDGE], []))
    assert iptables.programs() == ["iptables-save", "iptables-restore"]
    first = iptables.calls[-1][1]
    assert f"-I FORWARD 1 -j {wall.chains.forward}" in first
    iptables.calls.clear()
    asyncio.run(wall.apply([BRIDGE], [PORT]))
    assert iptables.programs() == ["iptables-restore"]
    second = iptables.calls[-1][1]
    assert "-I " not in second
    assert "--dport 8080 -j DNAT --to-destination 172.30.0.2:80" in second


def test_jumps_left_by_an_earlier_daemon_are_not_made_twice(iptables):
    chains = firewall.Chains.of("test")
    iptables.saved = "".join(f"-A {builtin} {spec}\n" for _, builtin, spec in chains.jumps())
    asyncio.run(Firewall("test").apply([BRIDGE], []))
    assert "-I " not in iptables.calls[-1][1]


def test_the_rules_in_place_are_not_applied_again(iptables):
    wall = Firewall("test")
    asyncio.run(wall.apply([BRIDGE], [PORT]))
    iptables.calls.clear()
    asyncio.run(wall.apply([BRIDGE], [PORT]))
    assert iptables.calls == []


def test_after_a_removal_the_next_apply_starts_over(iptables):
    wall = Firewall("test")
    asyncio.run(wall.apply([BRIDGE], []))
    iptables.saved += f":{wall.chains.dnat} - [0:0]\n"
    asyncio.run(wall.remove())
    removal = iptables.calls[-1][1]
    assert f"-D FORWARD -j {wall.chains.forward}" in removal
    iptables.saved = ""
    iptables.calls.clear()
    asyncio.run(wall.apply([BRIDGE], []))
    assert iptables.programs() == ["iptables-save", "iptables-restore"]
    assert f"-I FORWARD 1 -j {wall.chains.forward}" in iptables.calls[-1][1]
