"""Direct calls to runc (state, list, start, kill, update, delete) on one daemon's own state root."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import structlog

from servin.errors import SystemFailure

log = structlog.get_logger("servin.oci")


class OCIRuntimeError(SystemFailure):
    """runc refused an operation; ``runtime_message`` is runc's own text.

    ``message`` reads as dockerd's, e.g. ``OCI runtime create failed: runc create
    failed: unable to start container process: exec: "foo": executable file not
    found in $PATH: unknown``.
    """

    def __init__(self, action: str, runtime_message: str) -> None:
        super().__init__(f"OCI runtime {action} failed: {runtime_message}: unknown",
                         action=action, runtime_message=runtime_message)
        self.action = action
        self.runtime_message = runtime_message


def runc_error_text(output: str) -> str:
    """runc's error message from its stderr (JSON log lines, as requested by --log-format=json).

    The last error-level message is the one runc exits with; plain text (from
    an older runc or a crash) is returned as it is.
    """
    errors = []
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            errors.append(str(entry.get("msg", "")))
    return errors[-1] if errors else output.strip()


def parse_states(output: bytes) -> dict[str, dict[str, Any]]:
    """``runc list --format json`` by container id: the objects ``runc state`` prints.

    runc prints ``null`` when it has no container (or no state root yet).
    """
    return {state["id"]: state for state in json.loads(output) or []}


def is_not_exist(error: OCIRuntimeError) -> bool:
    return "does not exist" in error.runtime_message


class Runc:
    """runc invoked with ``--root state_root``, so each daemon sees only its own containers."""

    def __init__(self, binary: str, state_root: Path) -> None:
        self.binary = binary
        self.state_root = state_root

    @property
    def global_args(self) -> list[str]:
        return [f"--root={self.state_root}", "--log-format=json"]

    async def run(self, action: str, *args: str, input: bytes | None = None) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            self.binary, *self.global_args, action, *args,
            stdin=asyncio.subprocess.DEVNULL if input is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(input)
        if proc.returncode != 0:
            raise OCIRuntimeError(action, runc_error_text(err.decode(errors="replace")))
        return out

    async def state(self, container_id: str) -> dict[str, Any] | None:
        try:
            out = await self.run("state", container_id)
        except OCIRuntimeError as e:
            if is_not_exist(e):
                return None
            raise
        return json.loads(out)

    async def states(self) -> dict[str, dict[str, Any]]:
        """The state of every container of the state root, by id, from one process."""
        return parse_states(await self.run("list", "--format", "json"))

    async def start(self, container_id: str) -> None:
        await self.run("start", container_id)

    async def kill(self, container_id: str, signal: int, *, all: bool = False) -> None:
        await self.run("kill", *(["--all"] if all else []), container_id, str(signal))

    async def update(self, container_id: str, resources: dict[str, Any]) -> None:
        """Change a live container's cgroup limits (an OCI ``linux.resources`` object)."""
        await self.run("update", "--resources", "-", container_id,
                       input=json.dumps(resources).encode())

    async def delete(self, container_id: str, *, force: bool = False) -> None:
        try:
            await self.run("delete", *(["--force"] if force else []), container_id)
        except OCIRuntimeError as e:
            if not is_not_exist(e):
                raise
            log.debug("runc_delete_unknown", container_id=container_id)
