"""iptables rules of one daemon instance, in chains of its own.

The rules follow dockerd's bridge driver: masquerade of each network's subnet,
DNAT of published ports from the host's addresses, isolation between the
networks, no way out of an Internal network, and enable_icc. All of them live
in chains named after the instance (``SERVIN-<instance>``...), jumped to from
the built-in chains, so two daemons side by side never touch each other's
rules. The whole rule set is rendered from the engine's state and swapped in
one ``iptables-restore --noflush``, where declaring a chain flushes it: a
daemon restart therefore drops every stale rule of the instance at once.

Only the jumps from the built-in chains are not ours to flush: the first apply
looks for them (``iptables-save``), later ones know they are there. An apply of
the rules already in place does nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import attrs
import structlog

from servin.errors import SystemFailure

log = structlog.get_logger("servin.net")

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


@attrs.frozen
class BridgeRules:
    bridge: str
    subnets: tuple[str, ...]  # IPv4 subnets (dockerd 20.10 leaves ip6tables alone)
    internal: bool = False
    icc: bool = True
    masquerade: bool = True


@attrs.frozen
class PortRule:
    """One published port reached through NAT from the host's addresses."""

    bridge: str
    proto: str
    host_ip: str      # "" for every address
    host_port: int
    container_ip: str
    container_port: int


@attrs.frozen
class Chains:
    dnat: str
    postrouting: str
    forward: str
    isolation: str

    @classmethod
    def of(cls, instance: str) -> "Chains":
        base = f"SERVIN-{instance}"
        return cls(base, f"{base}-POST", f"{base}-FWD", f"{base}-ISO")

    def jumps(self) -> list[tuple[str, str, str]]:
        """(table, built-in chain, rule spec) of the jumps into our chains."""
        return [
            ("nat", "PREROUTING", f"-m addrtype --dst-type LOCAL -j {self.dnat}"),
            ("nat", "OUTPUT", f"! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j {self.dnat}"),
            ("nat", "POSTROUTING", f"-j {self.postrouting}"),
            ("filter", "FORWARD", f"-j {self.forward}"),
        ]


def render(chains: Chains, bridges: list[BridgeRules], ports: list[PortRule],
           present_jumps: set[str]) -> str:
    """The iptables-restore input that makes our chains hold exactly these rules."""
    nat = [f":{chains.dnat} - [0:0]", f":{chains.postrouting} - [0:0]"]
    filt = [f":{chains.forward} - [0:0]", f":{chains.isolation} - [0:0]"]
    for table, builtin, spec in chains.jumps():
        if f"-A {builtin} {spec}" not in present_jumps:
            (nat if table == "nat" else filt).append(f"-I {builtin} 1 {spec}")
    by_bridge = {b.bridge: b for b in bridges}
    for b in bridges:
        if not b.internal:
            # Hairpin traffic goes to the userland proxy, as with dockerd's default.
            nat.append(f"-A {chains.dnat} -i {b.bridge} -j RETURN")
            if b.masquerade:
                nat += [f"-A {chains.postrouting} -s {subnet} ! -o {b.bridge} -j MASQUERADE"
                        for subnet in b.subnets]
        filt.append(f"-A {chains.isolation} -o {b.bridge} -j DROP")
    for p in ports:
        if by_bridge.get(p.bridge) is None or by_bridge[p.bridge].internal:
            continue
        dest = f"-d {p.host_ip}/32 " if p.host_ip else ""
        nat.append(f"-A {chains.dnat} {dest}! -i {p.bridge} -p {p.proto} -m {p.proto} "
                   f"--dport {p.host_port} -j DNAT --to-destination "
                   f"{p.container_ip}:{p.container_port}")
        filt.append(f"-A {chains.forward} -d {p.container_ip}/32 ! -i {p.bridge} -o {p.bridge} "
                    f"-p {p.proto} -m {p.proto} --dport {p.container_port} -j ACCEPT")
    for b in bridges:
        br = b.bridge
        filt.append(f"-A {chains.forward} -i {br} ! -o {br} -j {chains.isolation}")
        if b.internal:
            filt += [f"-A {chains.forward} -i {br} ! -o {br} -j DROP",
                     f"-A {chains.forward} -o {br} ! -i {br} -j DROP"]
        else:
            filt += [f"-A {chains.forward} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED "
                     f"-j ACCEPT",
                     f"-A {chains.forward} -i {br} ! -o {br} -j ACCEPT",
                     f"-A {chains.forward} -o {br} ! -i {br} -j DROP"]
        filt.append(f"-A {chains.forward} -i {br} -o {br} -j {'ACCEPT' if b.icc else 'DROP'}")
    return "\n".join(["*nat", *nat, "COMMIT", "*filter", *filt, "COMMIT", ""])


def render_removal(chains: Chains, present_jumps: set[str]) -> str:
    nat, filt = [], []
    for table, builtin, spec in chains.jumps():
        if f"-A {builtin} {spec}" in present_jumps:
            (nat if table == "nat" else filt).append(f"-D {builtin} {spec}")
    for name in (chains.dnat, chains.postrouting):
        nat += [f":{name} - [0:0]", f"-X {name}"]
    for name in (chains.forward, chains.isolation):
        filt += [f":{name} - [0:0]", f"-X {name}"]
    return "\n".join(["*nat", *nat, "COMMIT", "*filter", *filt, "COMMIT", ""])


async def _run(*argv: str, stdin: str | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    if process.returncode != 0:
        raise SystemFailure(f"{argv[0]} failed: {err.decode(errors='replace').strip()}")
    return out.decode()


def present_jumps(chains: Chains, saved: str) -> set[str]:
    """The rules of ``iptables-save`` output that name our chains, as it prints them."""
    return {line for line in saved.splitlines()
            if line.startswith("-A ") and chains.dnat in line}


class Firewall:
    """Applies the instance's rule set; one apply at a time."""

    def __init__(self, instance: str) -> None:
        self.chains = Chains.of(instance)
        self._lock = asyncio.Lock()
        # The rules of the last apply (None: none yet, or removed since).
        self._applied: tuple[list[BridgeRules], list[PortRule]] | None = None

    async def apply(self, bridges: list[BridgeRules], ports: list[PortRule]) -> None:
        async with self._lock:
            if self._applied == (bridges, ports):
                return
            if self._applied is None:
                present = present_jumps(self.chains, await _run("iptables-save"))
            else:
                present = {f"-A {builtin} {spec}" for _, builtin, spec in self.chains.jumps()}
            text = render(self.chains, bridges, ports, present)
            await _run("iptables-restore", "-w", "--noflush", stdin=text)
            self._applied = (list(bridges), list(ports))
            log.debug("firewall_applied", bridges=len(bridges), ports=len(ports))

    async def remove(self) -> None:
        """Every rule and chain of the instance gone."""
        async with self._lock:
            self._applied = None
            saved = await _run("iptables-save")
            if self.chains.dnat not in saved:
                return
            await _run("iptables-restore", "-w", "--noflush",
                       stdin=render_removal(self.chains, present_jumps(self.chains, saved)))
            log.info("firewall_removed", chain=self.chains.dnat)


async def enable_forwarding() -> None:
    """dockerd's --ip-forward: routing on, and when it was off, a FORWARD policy of DROP so
    the host does not start routing anything else than the containers' traffic."""
    if (await asyncio.to_thread(IP_FORWARD.read_text)).strip() == "1":
        return
    await asyncio.to_thread(IP_FORWARD.write_text, "1\n")
    await _run("iptables", "-w", "-P", "FORWARD", "DROP")
    log.info("ip_forward_enabled")
