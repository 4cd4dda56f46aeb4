import time

import pytest

from servin.containers.humanize import human_duration, seconds_since


@pytest.mark.parametrize("seconds, text", [
    (0.2, "Less than a second"), (1, "1 second"), (42, "42 seconds"), (61, "About a minute"),
    (600, "10 minutes"), (3600, "About an hour"), (5 * 3600, "5 hours"),
    (3 * 86400, "3 days"), (20 * 86400, "2 weeks"), (90 * 86400, "3 months"),
    (800 * 86400, "2 years")])
def test_human_duration_matches_go_units(seconds, text):
    assert human_duration(seconds) == text


def test_seconds_since():
    assert 9.9 < seconds_since(time.time_ns() - 10_000_000_000) < 11
    assert seconds_since(time.time_ns() + 10**12) == 0.0
