"""Docker's JSON progress messages, as the docker CLI draws them.

A puller sends :class:`ProgressMessage` records to a :class:`ProgressSink`;
the HTTP layer writes each one as a line of JSON.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

PROGRESS_BAR_WIDTH = 50


@attrs.frozen
class ProgressMessage:
    status: str
    id: str | None = None
    current: int | None = None
    total: int | None = None
    detail: bool = True   # per-layer lines carry a progressDetail, even when empty

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.id is not None:
            if self.detail:
                out["progressDetail"] = ({"current": self.current, "total": self.total}
                                         if self.current is not None else {})
                bar = progress_bar(self.current, self.total)
                if bar:
                    out["progress"] = bar
            out["id"] = self.id
        return out


class ProgressSink(Protocol):
    async def send(self, message: ProgressMessage) -> None: ...


class DiscardProgress:
    """A sink for pulls nobody watches."""

    async def send(self, message: ProgressMessage) -> None:
        return None


def human_size(size: float) -> str:
    """go-units HumanSize: decimal units, four significant digits."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.4g}{units[index]}"


def progress_bar(current: int | None, total: int | None) -> str:
    """jsonmessage.JSONProgress.String() as the daemon renders it (a wide terminal)."""
    if current is None or (current <= 0 and (total or 0) <= 0):
        return ""
    if not total or total <= 0:
        return f"{human_size(current):>8}"
    filled = min(int(current / total * 100) // 2, PROGRESS_BAR_WIDTH)
    bar = "[" + "=" * filled + ">" + " " * (PROGRESS_BAR_WIDTH - filled) + "] "
    if current > total:
        return bar + f"{human_size(current):>8}"
    return bar + f"{human_size(current):>8}/{human_size(total)}"
