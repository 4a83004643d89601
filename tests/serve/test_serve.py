"""``hone serve`` as a client meets it: real uvicorn processes on loopback."""

from __future__ import annotations

import concurrent.futures
import signal
from typing import Any

import numpy as np
import pytest

import hone.models
from hone.models.workspace import opened
from hone.predictions import count_predictions, list_predictions
from tests.serve.conftest import Served, StartServer, store_locked

#: uvicorn exits by raising the signal again once it has shut down gracefully.
STOPPED = (0, -signal.SIGTERM)


def test_predict_answers_as_the_registered_model_does(
    served: Served, server_of: StartServer
) -> None:
    server = server_of()
    rows = served.rows[:40]
    reply = server.predict(rows)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == "digits" and body["version"] == 1
    assert body["classes"] == list(range(10))
    expected = hone.models.load("digits@1", workspace=served.ws).predict(rows)
    assert [p["label"] for p in body["predictions"]] == expected.labels.tolist()
    got = np.array([p["probabilities"] for p in body["predictions"]], np.float32)
    np.testing.assert_array_equal(got, expected.probabilities)
    ids = [p["request_id"] for p in body["predictions"]]
    assert len(set(ids)) == 40 and all(len(i) == 32 for i in ids)
    described = server.client.get("/v1/models/digits").json()
    assert described["version"] == 1 and described["serving"] == "digits@champion"
    assert described["signature"]["inputs"][0]["shape"] == [None, 64]
    assert server.client.get("/healthz").json() == {"status": "ok", "model": "digits", "version": 1}
    schema = server.client.get("/openapi.json").json()
    assert {"/v1/models/{model}/predict", "/v1/feedback", "/healthz", "/metrics"} <= set(
        schema["paths"]
    )


def test_concurrent_requests_are_batched_without_changing_an_answer(
    served: Served, server_of: StartServer
) -> None:
    server = server_of("digits@champion", "--max-wait-ms", "20", "--max-batch", "32")
    rows = served.rows[:96]
    alone = np.array([p["probabilities"] for p in server.predict(rows[:1]).json()["predictions"]])
    expected = hone.models.load("digits@1", workspace=served.ws).predict(rows)

    def one(i: int) -> tuple[int, dict[str, Any]]:
        return i, server.predict(rows[i : i + 1]).json()["predictions"][0]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = dict(pool.map(one, range(len(rows))))
    labels = [answers[i]["label"] for i in range(len(rows))]
    assert labels == expected.labels.tolist()
    got = np.array([answers[i]["probabilities"] for i in range(len(rows))], np.float32)
    assert expected.probabilities is not None
    np.testing.assert_allclose(got, expected.probabilities, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got[0], alone[0], rtol=0, atol=1e-6)
    batches = server.metric("hone_batch_size_count")
    assert batches < len(rows) + 1, "no two requests were answered by one model call"
    assert server.metric("hone_batch_size_sum") == len(rows) + 1


def test_every_answered_instance_is_recorded_and_sigterm_writes_them_all(
    served: Served, server_of: StartServer
) -> None:
    model = opened(served.ws)
    before = count_predictions(model.db, "digits")
    server = server_of()
    sent = served.rows[:50]
    ids = []
    for start in range(0, 50, 10):
        body = server.predict(sent[start : start + 10]).json()
        ids += [p["request_id"] for p in body["predictions"]]
    assert server.stop(signal.SIGTERM) in STOPPED, server.output
    assert count_predictions(model.db, "digits") == before + 50
    records = {r.request_id: r for r in list_predictions(model.db, "digits", limit=1000)}
    for i, request_id in enumerate(ids):
        record = records[request_id]
        assert record.version == 1 and record.label is None
        assert record.input is not None
        np.testing.assert_array_equal(np.frombuffer(record.input, np.float64), sent[i])
        assert record.latency_ms > 0
        assert record.probabilities is not None and len(record.probabilities) == 10


def test_sigkill_loses_no_answered_prediction(served: Served, server_of: StartServer) -> None:
    """Records are in the journal (a memory-mapped file) before the answer goes out, so a
    killed server's predictions are written by the next one to start."""
    model = opened(served.ws)
    before = count_predictions(model.db, "digits")
    server = server_of("digits@champion")
    answered = 0
    for start in range(0, 200, 4):
        assert server.predict(served.rows[start % 200 : start % 200 + 4]).status_code == 200
        answered += 4
    server.stop(signal.SIGKILL)
    assert server.proc.returncode == -signal.SIGKILL
    stored_now = count_predictions(model.db, "digits")
    assert stored_now <= before + answered
    server_of("digits@champion")  # the next server writes what the killed one journaled
    assert count_predictions(model.db, "digits") == before + answered


def test_a_moved_alias_is_served_without_a_restart(served: Served, server_of: StartServer) -> None:
    server = server_of("digits@champion", "--reload-every", "0.2")
    assert server.predict(served.rows[:1]).json()["version"] == 1
    versions: list[int] = []
    try:
        hone.models.alias("digits@2", "champion", workspace=served.ws)
        for _ in range(300):
            reply = server.predict(served.rows[:2])
            assert reply.status_code == 200, reply.text
            versions.append(reply.json()["version"])
            if versions[-1] == 2 and len(versions) > 3 and versions[-3:] == [2, 2, 2]:
                break
        assert versions[-1] == 2
        switch = versions.index(2)
        assert set(versions[:switch]) <= {1} and set(versions[switch:]) == {2}
        assert server.client.get("/v1/models/digits").json()["version"] == 2
        assert server.metric('hone_model_version{model="digits"}') == 2
    finally:
        hone.models.alias("digits@1", "champion", workspace=served.ws)


def test_a_pinned_version_stays(served: Served, server_of: StartServer) -> None:
    server = server_of("digits@2")
    assert server.predict(served.rows[:1]).json()["version"] == 2
    assert server.client.get("/v1/models/digits").json()["serving"] == "digits@2"


def test_a_token_guards_every_endpoint_but_healthz(served: Served, server_of: StartServer) -> None:
    token = "s3cret-token-for-tests-0123456789"
    server = server_of("digits@champion", token=token)
    assert server.predict(served.rows[:1]).status_code == 200
    import httpx

    bare = httpx.Client(base_url=server.url)
    assert bare.get("/healthz").status_code == 200
    for method, path in (
        ("POST", "/v1/models/digits/predict"),
        ("POST", "/v1/feedback"),
        ("GET", "/v1/models/digits"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
    ):
        assert bare.request(method, path, json={}).status_code == 401
        wrong = bare.request(method, path, json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "token" in wrong.json()["error"]
    bare.close()


def test_several_workers_share_the_port_and_their_metrics(
    served: Served, server_of: StartServer
) -> None:
    model = opened(served.ws)
    before = count_predictions(model.db, "digits")
    server = server_of("digits@champion", "--workers", "2")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(lambda i: server.predict(served.rows[i : i + 1]).status_code, range(60))
        )
    assert codes == [200] * 60
    # Every worker's counts, whichever worker answers /metrics.
    assert server.metric('hone_requests_total{endpoint="predict",status="200"}') == 60
    assert server.stop(signal.SIGTERM) in STOPPED, server.output
    assert count_predictions(model.db, "digits") == before + 60


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1"])
def test_listening_off_loopback_needs_a_token(served: Served, host: str) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hone.cli.main",
            "-w",
            str(served.ws.home),
            "serve",
            "digits",
            "--host",
            host,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in __import__("os").environ.items() if k != "HONE_SERVE_TOKEN"},
    )
    assert done.returncode == 2
    assert "needs a token" in done.stderr and "Traceback" not in done.stderr


def test_predictions_are_answered_while_the_store_is_away(
    served: Served, server_of: StartServer
) -> None:
    """Another process holds SQLite's write lock, so every write of the server fails (as
    with a store it cannot reach): it answers all the same, and writes the records once
    the store is back."""
    import time

    db = opened(served.ws).db
    before = count_predictions(db, "digits")
    server = server_of("digits@champion", env={"HONE_STORE_TIMEOUT": "0.3"})
    with store_locked(db):
        for start in range(0, 60, 3):
            assert server.predict(served.rows[start : start + 3]).status_code == 200
        deadline = time.monotonic() + 30
        while server.metric("hone_prediction_write_failures_total") == 0:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert server.metric("hone_predictions_waiting_in_journal") == 1
        # Feedback needs the store: refused with 503, not lost silently.
        rid = server.predict(served.rows[:1]).json()["predictions"][0]["request_id"]
        reply = server.feedback({"request_id": rid, "label": 1})
        assert reply.status_code == 503, reply.text
    deadline = time.monotonic() + 30
    while count_predictions(db, "digits") < before + 61:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert server.metric("hone_predictions_waiting_in_journal") == 0
    assert server.feedback({"request_id": rid, "label": 1}).json()["outcome"] == "recorded"
