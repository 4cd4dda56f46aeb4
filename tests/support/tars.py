"""Small tar archives for tests, in a compact notation."""

from __future__ import annotations

import tarfile

from tests.support.registry import Entry, layer_tar

KINDS = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
         "link": tarfile.LNKTYPE}


def make_tar(*entries: tuple) -> bytes:
    """A tar from (name, kind, data-or-target[, mode][, (uid, gid)]) entries; kind is
    file, dir, sym or link."""
    out = []
    for name, kind, value, *rest in entries:
        modes = [item for item in rest if isinstance(item, int)]
        owners = [item for item in rest if isinstance(item, tuple)]
        uid, gid = owners[0] if owners else (0, 0)
        out.append(Entry(name, data=value if kind == "file" else b"", type=KINDS[kind],
                         mode=modes[0] if modes else (0o755 if kind == "dir" else 0o644),
                         linkname=value if kind in ("sym", "link") else "", uid=uid, gid=gid))
    return layer_tar(out)
