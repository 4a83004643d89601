"""Bad requests get a 4xx whose message names what was expected; never a 500, never a
crash, nothing recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hone.models.workspace import opened
from hone.predictions import count_predictions
from tests.serve.conftest import Served, Server

ROW = [0.0] * 64

# (name, body bytes, content type, status, words the message must hold)
PREDICT_CASES = [
    ("not json", b"nope", "application/json", 400, "not JSON"),
    ("empty body", b"", "application/json", 400, "empty"),
    ("truncated json", b'{"instances": [[1, 2', "application/json", 400, "not JSON"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "not JSON"),
    ("a list, not an object", b"[[0]]", "application/json", 422, "instances"),
    ("missing field", b'{"inputs": [[0]]}', "application/json", 422, "no 'instances'"),
    ("extra field", json.dumps({"instances": [ROW], "x": 1}).encode(), "", 422, "unknown field"),
    ("instances not a list", b'{"instances": 3}', "", 422, "non-empty list"),
    ("no instances", b'{"instances": []}', "", 422, "non-empty list"),
    ("short row", json.dumps({"instances": [[1.0] * 63]}).encode(), "", 422, "64"),
    ("one flat row", json.dumps({"instances": ROW}).encode(), "", 422, "64"),
    ("ragged rows", json.dumps({"instances": [ROW, ROW[:5]]}).encode(), "", 422, "64"),
    ("text", json.dumps({"instances": [["a"] * 64]}).encode(), "", 422, "text"),
    ("numbers as text", json.dumps({"instances": [["1"] * 64]}).encode(), "", 422, "text"),
    ("null", json.dumps({"instances": [[None] * 64]}).encode(), "", 422, "null"),
    ("booleans", json.dumps({"instances": [[True, *ROW[1:]]]}).encode(), "", 422, "true"),
    ("NaN", b'{"instances": [[NaN' + b", 0" * 63 + b"]]}", "", 400, "NaN and Infinity"),
    ("Infinity", b'{"instances": [[Infinity' + b", 0" * 63 + b"]]}", "", 400, "NaN and Infinity"),
    ("huge integer", b'{"instances": [[1' + b"0" * 400 + b", 0" * 63 + b"]]}", "", 400, "infinity"),
    ("1e999", b'{"instances": [[1e999' + b", 0" * 63 + b"]]}", "", 400, "infinity"),
    ("objects", json.dumps({"instances": [{"a": 1}]}).encode(), "", 422, "64"),
    ("too many", json.dumps({"instances": [ROW] * 1025}).encode(), "", 413, "1,024"),
    ("not utf-8", b'{"instances": "\xff\xfe"}', "", 400, "not JSON"),
]


@pytest.fixture(scope="module")
def server(served: Served) -> Iterator[Server]:
    from tests.serve.conftest import start_server

    server = start_server(served.ws, "digits@champion", "--max-instances", "1024")
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("name", "body", "content_type", "status", "words"),
    PREDICT_CASES,
    ids=[c[0] for c in PREDICT_CASES],
)
def test_a_bad_predict_request_is_refused_by_name(
    server: Server, name: str, body: bytes, content_type: str, status: int, words: str
) -> None:
    headers = {"Content-Type": content_type or "application/json"}
    reply = server.client.post("/v1/models/digits/predict", content=body, headers=headers)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert words in error, error
    if status == 422:  # names what the model takes
        assert "64" in error and "float64" in error
    assert server.client.get("/healthz").status_code == 200


def test_a_body_over_the_limit_is_refused_before_it_is_read(served: Served) -> None:
    from tests.serve.conftest import start_server

    server = start_server(served.ws, "digits@champion")
    try:
        big = b'{"instances": [' + b"[" + b"0," * 8_500_000 + b"0]]}"
        reply = server.client.post("/v1/models/digits/predict", content=big)
        assert reply.status_code == 413 and "at most" in reply.json()["error"]

        def chunks() -> Iterator[bytes]:
            yield b'{"instances": ['
            for _ in range(20):
                yield b"0," * 500_000
            yield b"0]}"

        reply = server.client.post("/v1/models/digits/predict", content=chunks())
        assert reply.status_code == 413, reply.text
        assert server.predict([[0.0] * 64]).status_code == 200
    finally:
        server.stop()


def test_paths_and_methods(server: Server) -> None:
    assert (
        server.client.post("/v1/models/other/predict", json={"instances": [ROW]}).status_code == 404
    )
    assert "serves 'digits'" in server.client.get("/v1/models/other").json()["error"]
    assert server.client.get("/v1/models/digits/predict").status_code == 405
    assert server.client.get("/nothing").status_code == 404


def test_nothing_refused_is_recorded_and_errors_are_counted(served: Served, server: Server) -> None:
    db = opened(served.ws).db
    before = count_predictions(db, "digits")
    refused_before = server.metric("hone_errors_total")
    for case in PREDICT_CASES[:6]:
        server.client.post("/v1/models/digits/predict", content=case[1])
    assert server.metric("hone_errors_total") == refused_before + 6
    server.client.post("/v1/feedback", json={"request_id": "x", "label": 1})  # flushes
    assert count_predictions(db, "digits") == before


FEEDBACK_CASES = [
    ("not json", b"{", 400, "not JSON"),
    ("no label", b'{"request_id": "abc"}', 422, "request_id"),
    ("extra field", b'{"request_id": "abc", "label": 1, "x": 2}', 422, "request_id"),
    ("a number id", b'{"request_id": 5, "label": 1}', 422, "request id"),
    ("a long id", json.dumps({"request_id": "a" * 40, "label": 1}).encode(), 422, "request id"),
    ("empty list", b"[]", 422, "empty"),
    (
        "unknown id",
        b'{"request_id": "0123456789abcdef0123456789abcdef", "label": 1}',
        404,
        "no prediction",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "status", "words"), FEEDBACK_CASES, ids=[c[0] for c in FEEDBACK_CASES]
)
def test_bad_feedback_is_refused_by_name(
    server: Server, name: str, body: bytes, status: int, words: str
) -> None:
    reply = server.client.post("/v1/feedback", content=body)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["error"]
