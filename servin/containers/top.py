"""docker top: the host's ps, limited to the processes in the container's cgroup.

As dockerd 20.10: ps runs with the client's arguments (``-ef`` by default, split
on single spaces) and ``-q<pids>``, and again without ``-q`` when an option does
not go with it; the header gives the titles, and the rows whose PID belongs to
the container are kept (with the thread rows, PID "-", that follow them).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from servin.containers.record import Container
from servin.containers.specparams import CGROUP_PARENT
from servin.errors import Conflict, InvalidArgument, SystemFailure
from servin.oci.cgroups import CGROUP_ROOT, is_cgroup_v2
from servin.oci.spec import cgroups_path

DEFAULT_PS_ARGS = "-ef"
# v1 hierarchies that every runc container joins; the first one present is read.
V1_CONTROLLERS = ("pids", "memory", "cpu", "devices", "freezer", "systemd")
_PID_FORMAT = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")
_ASCII_SPACE = re.compile(r"[\t\n\f\r ]+")


def ps_arguments(ps_args: str) -> list[str]:
    """The ps arguments of a request, refused when they would rename the PID column."""
    ps_args = ps_args or DEFAULT_PS_ARGS
    for key, value in _PID_FORMAT.findall(ps_args):
        if key != "pid":
            raise InvalidArgument(f'specifying "{key}={value}" is not allowed')
    return ps_args.split(" ")


def cgroup_pids(path: str, root: Path = CGROUP_ROOT) -> list[int]:
    """Every process in the cgroup ``path`` and its children, read from cgroup.procs."""
    relative = path.strip("/")
    if is_cgroup_v2(root):
        candidates = [root / relative]
    else:
        candidates = [root / controller / relative for controller in V1_CONTROLLERS]
    directory = next((c for c in candidates if c.is_dir()), None)
    if directory is None:
        return []
    pids: list[int] = []
    for procs in sorted(directory.rglob("cgroup.procs")):
        try:
            pids.extend(int(line) for line in procs.read_text().split())
        except FileNotFoundError:
            continue  # a child cgroup went away
    return pids


def _fields(line: str) -> list[str]:
    return [field for field in _ASCII_SPACE.split(line) if field]


def parse_ps_output(output: str, pids: set[int]) -> dict[str, Any]:
    """ps output as Docker's {"Titles", "Processes"}, keeping the container's rows."""
    lines = output.split("\n")
    titles = _fields(lines[0])
    if "PID" not in titles:
        raise SystemFailure("Couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    processes: list[list[str]] = []
    previous_kept = False
    for line in lines[1:]:
        fields = _fields(line)
        if len(fields) <= pid_index:
            continue
        if fields[pid_index] == "-":
            # A thread row (ps -L or m): it belongs to the process row above.
            if previous_kept:
                processes.append(_merge_overhang(fields, len(titles)))
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            raise SystemFailure(f"Unexpected pid '{fields[pid_index]}': invalid syntax") from None
        previous_kept = pid in pids
        if previous_kept:
            processes.append(_merge_overhang(fields, len(titles)))
    return {"Titles": titles, "Processes": processes}


def _merge_overhang(fields: list[str], columns: int) -> list[str]:
    """The last column (a command line) takes the fields beyond the titles."""
    return fields[:columns - 1] + [" ".join(fields[columns - 1:])]


async def _ps(args: list[str]) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        "ps", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await proc.communicate()
    assert proc.returncode is not None  # communicate() waits for the exit
    return proc.returncode, stdout, stderr


async def container_top(container: Container, args: list[str]) -> dict[str, Any]:
    """GET /containers/{id}/top with ps arguments from :func:`ps_arguments`."""
    if container.state.status == "restarting":
        raise Conflict(f"Container {container.id} is restarting, "
                       f"wait until the container is running")
    if not container.state.running:
        raise Conflict(f"Container {container.id} is not running")
    pids = await asyncio.to_thread(cgroup_pids, cgroups_path(CGROUP_PARENT, container.id))
    code, stdout, stderr = await _ps([*args, "-q" + ",".join(map(str, pids))])
    if code != 0:
        # Some options (f, for one) do not go with -q.
        code, stdout, stderr = await _ps(args)
        if code != 0:
            reason = stderr.split(b"\n", 1)[0].decode(errors="replace") or f"exit status {code}"
            raise SystemFailure(f"ps: {reason}")
    return parse_ps_output(stdout.decode(errors="replace"), set(pids))
