"""Docker's human-readable durations ("Up 3 minutes", "Exited (0) 2 hours ago")."""

from __future__ import annotations

from datetime import datetime, timezone


def parse_rfc3339(text: str) -> datetime:
    """Parse Docker's RFC 3339 times, nanoseconds included (truncated to microseconds)."""
    head, _, frac = text.rstrip("Z").partition(".")
    moment = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    if frac:
        moment = moment.replace(microsecond=int(frac[:6].ljust(6, "0")))
    return moment


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def since(moment: str, now: datetime | None = None) -> float:
    now = now or datetime.now(timezone.utc)
    return max(0.0, (now - parse_rfc3339(moment)).total_seconds())
