"""Docker's detach keys: the key sequence on stdin that ends an attach, not the container."""

from __future__ import annotations

from servin.errors import InvalidArgument

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CTRL_SPECIALS = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(text: str | None) -> bytes:
    """``ctrl-p,ctrl-q`` or ``a,ctrl-x`` into the bytes a terminal sends for them."""
    text = DEFAULT_DETACH_KEYS if not text else text
    out = bytearray()
    for key in text.split(","):
        lowered = key.lower()
        if len(key) == 1:
            out.append(ord(key))
        elif lowered.startswith("ctrl-") and len(key) == 6:
            char = lowered[5]
            if "a" <= char <= "z":
                out.append(ord(char) - ord("a") + 1)
            elif char in _CTRL_SPECIALS:
                out.append(_CTRL_SPECIALS[char])
            else:
                raise InvalidArgument(f"Invalid detach keys ({text}) provided")
        else:
            raise InvalidArgument(f"Invalid detach keys ({text}) provided")
    return bytes(out)


class EscapeScanner:
    """Passes stdin through until the detach sequence appears.

    Bytes that might begin the sequence are held back until it is clear whether
    they do; if not, they go through as typed.
    """

    def __init__(self, sequence: bytes) -> None:
        self._sequence = sequence
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Return the bytes to forward, and whether the sequence was typed."""
        out = bytearray()
        for byte in data:
            candidate = self._held + bytes([byte])
            if self._sequence.startswith(candidate):
                if candidate == self._sequence:
                    self._held = b""
                    return bytes(out), True
                self._held = candidate
                continue
            out += self._held
            self._held = b""
            if self._sequence.startswith(bytes([byte])):
                self._held = bytes([byte])
            else:
                out.append(byte)
        return bytes(out), False
