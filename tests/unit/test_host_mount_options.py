"""mount(8)'s option words read into mount(2)'s flags and data."""

from __future__ import annotations

from servin.mounts import MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REC, parse_options


def test_flag_words_become_flags_and_the_rest_data():
    assert parse_options("nosuid,nodev,mode=1777,size=65536k") == (
        MS_NOSUID | MS_NODEV, "mode=1777,size=65536k")
    assert parse_options("lowerdir=l/A:l/B,upperdir=x/diff,workdir=x/work") == (
        0, "lowerdir=l/A:l/B,upperdir=x/diff,workdir=x/work")


def test_later_words_override_earlier_ones():
    assert parse_options("ro,rw,rbind") == (MS_BIND | MS_REC, "")
    assert parse_options("bind,ro")[0] == MS_BIND | MS_RDONLY


def test_defaults_and_empty_options_are_no_flags():
    assert parse_options("defaults") == (0, "")
    assert parse_options("") == (0, "")
