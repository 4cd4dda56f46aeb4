"""Restart policies: which exits restart a container, and after how long.

The rules of dockerd's restartmanager: the delay starts at 100 ms and doubles with
each restart up to a minute, and falls back to 100 ms once a run lasted 10 s.
"""

from __future__ import annotations

from typing import Any

from servin.errors import InvalidArgument

POLICIES = ("no", "always", "unless-stopped", "on-failure")
FIRST_DELAY = 0.1
MAX_DELAY = 60.0
STEADY_RUN = 10.0


def normalize_policy(raw: dict[str, Any] | None) -> dict[str, Any]:
    """RestartPolicy as inspect shows it, or Docker's 400 for a bad one."""
    raw = raw or {}
    name = raw.get("Name") or "no"
    count = raw.get("MaximumRetryCount") or 0
    if name not in POLICIES:
        raise InvalidArgument(f"invalid restart policy '{name}'")
    if not isinstance(count, int) or count < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if count and name != "on-failure":
        raise InvalidArgument("invalid restart policy: maximum retry count can only be used "
                              "with 'on-failure'")
    return {"Name": name, "MaximumRetryCount": count}


class RestartTracker:
    """One container's restarts since it was last started by hand."""

    def __init__(self) -> None:
        self.delay = 0.0

    def next_delay(self, policy: dict[str, Any], *, exit_code: int, manually_stopped: bool,
                   ran_for: float, restart_count: int) -> float | None:
        """Seconds to wait before restarting, or None when the policy says no restart."""
        if ran_for >= STEADY_RUN:
            self.delay = 0.0
        self.delay = FIRST_DELAY if self.delay == 0 else min(self.delay * 2, MAX_DELAY)
        name, maximum = policy["Name"], policy["MaximumRetryCount"]
        if name == "always":
            restart = True
        elif name == "unless-stopped":
            restart = not manually_stopped
        elif name == "on-failure":
            restart = exit_code != 0 and (maximum == 0 or restart_count < maximum)
        else:
            restart = False
        return self.delay if restart else None


def restarts_at_daemon_start(policy: dict[str, Any], *, exit_code: int,
                             manually_stopped: bool, restart_count: int) -> bool:
    """dockerd brings back, when it starts, the containers whose policy still holds."""
    return RestartTracker().next_delay(policy, exit_code=exit_code,
                                       manually_stopped=manually_stopped, ran_for=0,
                                       restart_count=restart_count) is not None
