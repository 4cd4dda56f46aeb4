import re

import pytest

from servin.containers.names import generate_name, validate_name
from servin.errors import InvalidArgument


def test_generated_names_follow_dockers_scheme():
    for attempt in range(50):
        name = generate_name()
        assert re.fullmatch(r"[a-z]+_[a-z]+", name)
        assert validate_name(name) == name


def test_retry_names_get_a_digit():
    assert re.fullmatch(r"[a-z]+_[a-z]+\d", generate_name(attempt=3))


def test_leading_slash_is_dropped():
    assert validate_name("/web-1.a_b") == "web-1.a_b"


@pytest.mark.parametrize("bad", ["", "a", "-x", "has space", "a/b", "ünï", "_x"])
def test_invalid_names_are_400_with_dockers_message(bad):
    with pytest.raises(InvalidArgument, match=r"only \[a-zA-Z0-9\]\[a-zA-Z0-9_.-\] are allowed"):
        validate_name(bad)
