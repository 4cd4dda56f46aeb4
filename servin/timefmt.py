"""Docker's time formats: Go's RFC3339Nano, and the zero time for "never"."""

from __future__ import annotations

import re
import time
from datetime import datetime

ZERO_TIME = "0001-01-01T00:00:00Z"
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)$")


def rfc3339_nano(time_ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros.

    0 stands for "never" and gives Go's zero time, as dockerd shows it.
    """
    if time_ns == 0:
        return ZERO_TIME
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    fraction = f".{nanos:09d}".rstrip("0").rstrip(".")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + fraction + "Z"


def parse_rfc3339_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time; 0 for the zero time or junk."""
    match = _RFC3339.match(text)
    if match is None or text == ZERO_TIME:
        return 0
    base, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(base + ("+00:00" if zone in ("Z", "z") else zone))
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    return int(stamp.timestamp()) * 1_000_000_000 + nanos
