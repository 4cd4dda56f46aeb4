import pytest

from servin.containers.detachkeys import EscapeScanner, parse_detach_keys
from servin.errors import InvalidArgument


def test_parse_default_and_custom_keys():
    assert parse_detach_keys(None) == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x,ctrl-@,ctrl-\\") == b"\x01x\x00\x1c"


@pytest.mark.parametrize("bad", ["ctrl-", "ctrl-1", "ctrl-ab", "shift-a", "ab"])
def test_bad_keys_are_400(bad):
    with pytest.raises(InvalidArgument, match=r"Invalid detach keys"):
        parse_detach_keys(bad)


def test_scanner_passes_data_and_detects_the_sequence_across_chunks():
    scanner = EscapeScanner(b"\x10\x11")
    assert scanner.feed(b"hello") == (b"hello", False)
    assert scanner.feed(b"ab\x10") == (b"ab", False)  # held: might start the sequence
    assert scanner.feed(b"\x11rest") == (b"", True)


def test_scanner_releases_a_false_start():
    scanner = EscapeScanner(b"\x10\x11")
    assert scanner.feed(b"\x10x") == (b"\x10x", False)
    assert scanner.feed(b"\x10\x10\x11") == (b"\x10", True)
