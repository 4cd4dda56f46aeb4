"""JSON bodies as dockerd writes them."""

import json

from servin.http.responses import encode_json, json_response


def test_bodies_are_compact_and_end_with_a_newline():
    body = encode_json({"Id": "abc", "Names": ["/x"], "Labels": {}, "State": None})
    assert body == b'{"Id":"abc","Names":["/x"],"Labels":{},"State":null}\n'


def test_integer_keys_are_encoded_as_strings():
    assert json.loads(encode_json({0: 1, "a": {2: "b"}})) == {"0": 1, "a": {"2": "b"}}


def test_response_carries_the_json_content_type_and_status():
    response = json_response([1, 2], status=201)
    assert response.status == 201 and response.content_type == "application/json"
    assert response.body == b"[1,2]\n"
