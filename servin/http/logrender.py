"""What `docker logs` (and an attach's log replay) sends of a block of log lines.

Runs in the log reader's thread, a block at a time: the chosen streams, within
since/until, with timestamps and details when asked, framed as Docker's multiplexed
stream unless the container has a TTY. One frame per line of output, as dockerd sends:
the docker SDK's streaming reads hand each frame to the caller as a line.
"""

from __future__ import annotations

from urllib.parse import quote_plus

import attrs

from servin.http.framing import HEADER, STREAM_IDS
from servin.oci.logfile import log_fields, parse_timestamp_ns
from servin.timefmt import rfc3339_nano

_STREAM_IDS = {name.encode(): number for name, number in STREAM_IDS.items()}


@attrs.frozen
class RenderedLog:
    data: bytes
    ended: bool  # a line after `until` was met: the log ends here


@attrs.frozen
class LogRenderer:
    streams: frozenset[bytes]  # b"stdout", b"stderr"
    framed: bool
    timestamps: bool = False
    since_ns: int | None = None
    until_ns: int | None = None
    details: bytes | None = None  # the prefix `docker logs --details` gives each line

    @staticmethod
    def details_prefix(attributes: dict[str, str]) -> bytes:
        """dockerd's: the attributes sorted, ``key=value`` query-escaped, comma-separated,
        then a space (a space alone when there are none)."""
        return ",".join(f"{quote_plus(k)}={quote_plus(v)}"
                        for k, v in sorted(attributes.items())).encode() + b" "

    @property
    def _needs_times(self) -> bool:
        return self.timestamps or self.since_ns is not None or self.until_ns is not None

    def __call__(self, block: bytes) -> RenderedLog:
        parts: list[bytes] = []
        append = parts.append
        pack = HEADER.pack
        streams, framed, needs_times = self.streams, self.framed, self._needs_times
        details = self.details
        for stamp, stream, data in log_fields(block):
            if details is not None and data:
                data = details + data
            if needs_times:
                try:
                    time_ns = parse_timestamp_ns(stamp.decode("ascii"))
                except (ValueError, UnicodeDecodeError):
                    continue
                if self.until_ns is not None and time_ns > self.until_ns:
                    return RenderedLog(b"".join(parts), ended=True)
                if self.since_ns is not None and time_ns < self.since_ns:
                    continue
                if self.timestamps:
                    data = rfc3339_nano(time_ns).encode() + b" " + data
            if stream not in streams or not data:
                continue
            append(pack(_STREAM_IDS[stream], len(data)) + data if framed else data)
        return RenderedLog(b"".join(parts), ended=False)
