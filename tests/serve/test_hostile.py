"""The hostile review's corpus: each case a fault found by attacking the server, the
predictions library and the loop, kept so it stays mended."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import hone.data
import hone.models
from hone.config import Workspace
from hone.errors import ConflictError, ValidationError
from hone.loop import run_loop
from hone.models.workspace import opened
from hone.predictions import FeedbackItem, count_new_labels, give_feedback_many, list_predictions
from tests.serve.conftest import Served, StartServer, free_port, make_served
from tests.serve.test_loop import inverted, record_labeled


def _hone(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hone.cli.main", "-w", str(ws.home), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_inputs_the_model_cannot_answer_are_refused_and_not_recorded(
    served: Served, server_of: StartServer
) -> None:
    server = server_of()
    db = opened(served.ws).db
    before = len(list_predictions(db, "digits", limit=1_000_000))
    for value in (1e300, 3e38, -1e39):
        row = [value] + [0.0] * 63
        reply = server.predict([row])
        assert reply.status_code == 422, reply.text
        assert "not a number" in reply.json()["error"]
    # In a batch with good rows, only the request holding the bad row is refused.
    good = server.predict(served.rows[:2])
    assert good.status_code == 200
    server.stop()
    assert len(list_predictions(db, "digits", limit=1_000_000)) == before + 2
    assert "Traceback" not in server.output


def test_a_client_gone_mid_body_is_not_a_traceback(served: Served, server_of: StartServer) -> None:
    server = server_of()
    port = int(server.url.rsplit(":", 1)[1])
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(
                b"POST /v1/models/digits/predict HTTP/1.1\r\nHost: x\r\n"
                b'Content-Length: 100\r\nContent-Type: application/json\r\n\r\n{"inst'
            )
    assert server.predict(served.rows[:1]).status_code == 200
    server.stop()
    assert "Traceback" not in server.output and "Exception in ASGI" not in server.output


def test_feedback_right_after_a_prediction_works_with_several_workers(
    served: Served, server_of: StartServer
) -> None:
    server = server_of("digits@champion", "--workers", "2")
    codes = []
    for i in range(30):
        rid = server.predict(served.rows[i : i + 1]).json()["predictions"][0]["request_id"]
        codes.append(server.feedback({"request_id": rid, "label": 1}).status_code)
    assert codes == [200] * 30


def test_a_killed_supervisor_takes_its_workers_with_it(served: Served) -> None:
    from tests.serve.conftest import start_server

    server = start_server(served.ws, "digits@champion", "--workers", "2")
    server.stop(signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{server.url}/healthz", timeout=1)
        except httpx.HTTPError:
            break
        assert time.monotonic() < deadline, "orphaned workers still serve"
        time.sleep(0.2)
    # The port is free again: a new server starts on it.
    port = int(server.url.rsplit(":", 1)[1])
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_hone_sync_writes_what_a_killed_server_journaled(
    served: Served, server_of: StartServer
) -> None:
    db = opened(served.ws).db
    before = len(list_predictions(db, "digits", limit=1_000_000))
    server = server_of()
    for start in range(0, 60, 6):
        assert server.predict(served.rows[start : start + 6]).status_code == 200
    server.stop(signal.SIGKILL)
    done = _hone(served.ws, "sync")
    assert done.returncode == 0, done.stderr
    assert len(list_predictions(db, "digits", limit=1_000_000)) == before + 60


@pytest.mark.parametrize("token", ["   abcdefghijklmnop1234   ", "abcdefgh ijklmnop1234"])
def test_a_token_with_spaces_is_refused_at_start(served: Served, token: str) -> None:
    done = _hone(served.ws, "serve", "digits", "--token", token, "--port", str(free_port()))
    assert done.returncode == 2 and "no spaces" in done.stderr


def test_feedback_import_reads_what_spreadsheets_write(
    served: Served, server_of: StartServer, tmp_path: Path
) -> None:
    server = server_of()
    ids = [p["request_id"] for p in server.predict(served.rows[:3]).json()["predictions"]]
    server.stop()
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfrequest_id,label\r\n" + f"{ids[0]},5\r\n".encode())
    done = _hone(served.ws, "feedback", "import", str(bom), "--json")
    assert done.returncode == 0, done.stderr
    twice = tmp_path / "twice.csv"
    twice.write_text(f"request_id,label\n{ids[1]},3\n{ids[2]},1\n{ids[1]},4\n")
    done = _hone(served.ws, "feedback", "import", str(twice))
    assert done.returncode == 2 and "lines 2 and 4" in done.stderr
    quote = tmp_path / "quote.csv"
    quote.write_text(f'request_id,label\n{ids[1]},"3\n')
    done = _hone(served.ws, "feedback", "import", str(quote))
    assert done.returncode == 2 and "not a readable CSV" in done.stderr
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    done = _hone(served.ws, "feedback", "import", str(fifo))
    assert done.returncode == 2 and "not a regular file" in done.stderr
    assert _hone(served.ws, "feedback", "import", "/dev/zero").returncode == 2


def test_a_deleted_versions_predictions_take_the_models_classes(tmp_path: Path) -> None:
    served = make_served(tmp_path / "ws")
    ws = served.ws
    from tests.serve.conftest import start_server

    server = start_server(ws, "digits@2")
    answers = server.predict(served.rows[:4]).json()["predictions"]
    server.stop()
    hone.models.delete("digits@2", workspace=ws)
    db = opened(ws).db
    given = give_feedback_many(db, [FeedbackItem(a["request_id"], "7") for a in answers[:2]])
    assert [g.label for g in given] == [7, 7] and all(type(g.label) is int for g in given)
    for bad in ("4.7", "1e300", "-2", "cat"):
        with pytest.raises(ValidationError, match="classes"):
            give_feedback_many(db, [FeedbackItem(answers[3]["request_id"], bad)])
    stats = hone.predictions.prediction_stats(db, "digits", by=None)
    (v2,) = [v for v in stats["versions"] if v["version"] == 2]
    assert v2["labeled"] == 2


def test_a_loop_with_too_few_labels_to_judge_changes_nothing(tmp_path: Path) -> None:
    served = make_served(tmp_path / "ws")
    ws = served.ws
    record_labeled(ws, inverted(served.rows[:2]), served.labels[:2])
    versions = len(hone.data.versions("digits", workspace=ws))
    with pytest.raises(ValidationError, match="hold out none"):
        run_loop("digits", workspace=ws)
    assert len(hone.data.versions("digits", workspace=ws)) == versions
    assert count_new_labels(opened(ws).db, "digits") == 2  # still waiting


def test_append_arrays_refuses_keys_it_holds_already(served: Served) -> None:
    ws = served.ws
    base = hone.data.get(
        f"digits@{hone.models.get('digits@1', workspace=ws).dataset_version}", workspace=ws
    )
    x, y = served.rows[:3], served.labels[:3]
    first, ids = hone.data.append_arrays(
        base, x[:2], y[:2], splits="train", origin="t", keys=["a", "b"]
    )
    assert len(set(ids.tolist())) == 2
    with pytest.raises(ConflictError, match="already in"):
        hone.data.append_arrays(first, x, y, splits="train", origin="t", keys=["a", "b", "c"])
    with pytest.raises(ValidationError, match="twice"):
        hone.data.append_arrays(base, x[:2], y[:2], splits="train", origin="t", keys=["a", "a"])
    with pytest.raises(ValidationError, match="non-empty text"):
        hone.data.append_arrays(base, x[:1], y[:1], splits="train", origin="t", keys=[b"k"])  # type: ignore[list-item]
    # The same key gets the same id whatever else is appended with it.
    _, again = hone.data.append_arrays(
        base, x[1:3], y[1:3], splits="train", origin="t", keys=["b", "c"]
    )
    assert again[0] == ids[1]


def test_harvest_survives_huge_finite_inputs(tmp_path: Path) -> None:
    served = make_served(tmp_path / "ws")
    ws = served.ws
    rows = np.array(served.rows[:20])
    rows[0] = 1e200  # recorded before servers refused what the model cannot answer
    record_labeled(ws, rows, served.labels[:20])
    done = _hone(ws, "loop", "harvest", "digits", "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "RuntimeWarning" not in done.stderr
