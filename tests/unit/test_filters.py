import pytest

from servin.errors import InvalidArgument
from servin.filters import (bool_filter, check_keys, label_matches, labels_match, parse_filters,
                            parse_go_duration, timestamp_filter_ns)


def test_both_filter_encodings():
    assert parse_filters({"label": {"a=b": True, "c": False}}) == {"label": ["a=b"]}
    assert parse_filters({"status": ["running", "exited"]}) == {"status": ["running", "exited"]}
    assert parse_filters(None) == {}


@pytest.mark.parametrize("raw", [[1], {"label": "a"}, "x"])
def test_malformed_filters_are_400(raw):
    with pytest.raises(InvalidArgument):
        parse_filters(raw)


def test_unknown_key_is_400():
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        check_keys({"colour": ["red"]}, ("label",))


def test_bool_filter():
    assert bool_filter({}, "dangling") is None
    assert bool_filter({"dangling": ["1"]}, "dangling") is True
    assert bool_filter({"dangling": ["false"]}, "dangling") is False
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling=maybe'"):
        bool_filter({"dangling": ["maybe"]}, "dangling")


def test_labels():
    labels = {"tier": "web", "env": ""}
    assert label_matches(labels, "tier") and label_matches(labels, "tier=web")
    assert not label_matches(labels, "tier=db") and not label_matches(labels, "team")
    assert labels_match(labels, {"label": ["tier=web"], "label!": ["team"]})
    assert not labels_match(labels, {"label!": ["env"]})


def test_go_durations():
    assert parse_go_duration("90s") == 90
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("1.5h") == 5400
    assert parse_go_duration("10") is None and parse_go_duration("h") is None


def test_timestamp_filters():
    now = 1_700_000_000 * 10**9
    assert timestamp_filter_ns("10m", now) == now - 600 * 10**9
    assert timestamp_filter_ns("1500000000.5") == 1_500_000_000_500_000_000
    assert timestamp_filter_ns("2017-07-14T02:40:00Z") == 1_500_000_000 * 10**9
    with pytest.raises(InvalidArgument, match="failed to parse value as time or duration"):
        timestamp_filter_ns("yesterday")
