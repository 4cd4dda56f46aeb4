"""The one JSON encoder of servind's bodies and state files."""

from __future__ import annotations

import json

from servin.jsoncodec import dumps


def test_compact_with_or_without_a_newline():
    assert dumps({"Id": "abc", "Names": ["/x"]}) == b'{"Id":"abc","Names":["/x"]}'
    assert dumps({"StatusCode": 0}, newline=True) == b'{"StatusCode":0}\n'


def test_integer_keys_as_strings():
    assert json.loads(dumps({"percpu": {0: 10, 1: 20}})) == {"percpu": {"0": 10, "1": 20}}


def test_a_lone_surrogate_from_a_clients_json_is_escaped_not_refused():
    value = json.loads('{"Env": ["A=\\ud800"]}')  # what a request body may hold
    encoded = dumps(value, newline=True)
    assert encoded.endswith(b"\n")
    assert json.loads(encoded) == value
