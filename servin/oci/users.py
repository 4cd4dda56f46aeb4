"""Resolve a Docker ``User`` string against the container's /etc/passwd and /etc/group.

Follows Docker 20.10 (runc's libcontainer/user GetExecUser plus the daemon's
GroupAdd handling), including its error wording.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from servin.errors import InvalidArgument
from servin.oci.rootpath import read_text_in_root

# Docker refuses ids beyond the kernel's 32-bit id space (minus the invalid -1).
MAX_ID = 2**31 - 1


@attrs.frozen
class ResolvedUser:
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = attrs.field(factory=list)
    name: str = ""
    home: str = "/"


@attrs.frozen
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@attrs.frozen
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def _int_or_zero(text: str) -> int:
    # libcontainer treats unparsable numeric fields as 0.
    try:
        return int(text)
    except ValueError:
        return 0


def _fields(text: str | None) -> list[list[str]]:
    if not text:
        return []
    return [line.strip().split(":") for line in text.splitlines() if line.strip()]


def parse_passwd(text: str | None) -> list[PasswdEntry]:
    entries = []
    for f in _fields(text):
        f += [""] * (7 - len(f))
        entries.append(PasswdEntry(name=f[0], uid=_int_or_zero(f[2]), gid=_int_or_zero(f[3]), home=f[5]))
    return entries


def parse_group(text: str | None) -> list[GroupEntry]:
    entries = []
    for f in _fields(text):
        f += [""] * (4 - len(f))
        members = tuple(m for m in f[3].split(",") if m)
        entries.append(GroupEntry(name=f[0], gid=_int_or_zero(f[2]), members=members))
    return entries


def _numeric(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _check_range(kind: str, value: int) -> int:
    if value > MAX_ID:
        raise InvalidArgument(f"{kind} {value} is out of range")
    return value


def resolve_user_from(passwd: list[PasswdEntry], groups: list[GroupEntry], user: str,
                      group_add: list[str] | None = None) -> ResolvedUser:
    """Pure resolution of ``user`` ("", name, uid, name:group, uid:gid) and ``group_add``."""
    user_arg, _, group_arg = user.partition(":")
    uid_arg = _numeric(user_arg)
    gid_arg = _numeric(group_arg)

    uid, gid, name, home = 0, 0, "", "/"
    if user_arg == "":
        match = next((p for p in passwd if p.uid == 0), None)
    elif uid_arg is not None:
        match = next((p for p in passwd if p.uid == uid_arg), None)
    else:
        match = next((p for p in passwd if p.name == user_arg), None)
    if match is not None:
        uid, gid, name, home = match.uid, match.gid, match.name, match.home
    elif user_arg:
        if uid_arg is None:
            raise InvalidArgument(f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = _check_range("uid", uid_arg)

    additional: list[int] = []
    if group_arg:
        if gid_arg is not None:
            group = next((g for g in groups if g.gid == gid_arg), None)
        else:
            group = next((g for g in groups if g.name == group_arg), None)
        if group is not None:
            gid = group.gid
        elif gid_arg is None:
            raise InvalidArgument(f"unable to find group {group_arg}: no matching entries in group file")
        else:
            gid = _check_range("gid", gid_arg)
    elif name:
        additional = [g.gid for g in groups if name in g.members]

    added = [_resolve_added_group(groups, wanted) for wanted in group_add or []]
    # As dockerd: the primary group leads the supplementary ones (`id` lists it in groups=).
    return ResolvedUser(uid=uid, gid=gid, additional_gids=[gid, *additional, *added], name=name,
                        home=home)


def _resolve_added_group(groups: list[GroupEntry], wanted: str) -> int:
    number = _numeric(wanted)
    for g in groups:
        if g.name == wanted or (number is not None and g.gid == number):
            return g.gid
    if number is None:
        raise InvalidArgument(f"Unable to find group {wanted}")
    return _check_range("gid", number)


def resolve_user(rootfs: Path, user: str, group_add: list[str] | None = None) -> ResolvedUser:
    """Resolve ``user`` against the files of ``rootfs`` (symlinks kept inside the rootfs)."""
    passwd = parse_passwd(read_text_in_root(rootfs, "/etc/passwd"))
    groups = parse_group(read_text_in_root(rootfs, "/etc/group"))
    return resolve_user_from(passwd, groups, user, group_add)
