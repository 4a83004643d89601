"""The UI's JSON API over a real ``hone ui``: what each endpoint answers, what bad input
gets (a 4xx naming the problem), and the guard: Host, token, cross-site requests."""

from __future__ import annotations

import math
import subprocess
from typing import Any

import httpx
import pytest

import hone
import hone.data
from hone.models.workspace import opened
from hone.predictions.queries import list_predictions
from tests.serve.conftest import HONE
from tests.ui.conftest import XSS_NAME, StartUi, Ui, UiWorkspace

pytestmark = pytest.mark.slow


def test_runs_pages_count_and_order(ui: Ui, ui_workspace: UiWorkspace) -> None:
    body = ui.client.get(
        "/api/runs", params={"experiment": "sweep", "order_by": "name asc", "limit": 2}
    ).json()
    assert body["total"] == 3 and [r["name"] for r in body["runs"]] == [XSS_NAME, "sweep-0"]
    later = ui.client.get(
        "/api/runs", params={"experiment": "sweep", "order_by": "name asc", "offset": 2}
    ).json()
    assert [r["name"] for r in later["runs"]] == ["sweep-1"]
    count = ui.client.get(
        "/api/runs/count", params={"experiment": "sweep", "filter": "params.lr = '0.1'"}
    ).json()
    assert count == {"total": 1}
    rows_only = ui.client.get("/api/runs", params={"experiment": "sweep", "total": False}).json()
    assert rows_only["total"] is None and len(rows_only["runs"]) == 3
    keys = ui.client.get("/api/runs/keys", params={"experiment": "sweep"}).json()
    assert keys["params"] == ["lr", "note", "opt"] and keys["metrics"] == ["acc", "loss"]
    experiments = {e["name"]: e["runs"] for e in ui.client.get("/api/experiments").json()}
    assert experiments["sweep"] == 3


def test_a_runs_metric_comes_as_columns(ui: Ui, ui_workspace: UiWorkspace) -> None:
    run_id = ui_workspace.sweep[1]
    body = ui.client.get(f"/api/runs/{run_id}/metric", params={"key": "loss"}).json()
    assert body["step"] == list(range(50))
    assert body["value"][:2] == [2.0, 1.0] and len(body["time"]) == 50
    tail = ui.client.get(
        f"/api/runs/{run_id}/metric", params={"key": "loss", "after_step": 47}
    ).json()
    assert tail["step"] == [48, 49] and tail["value"] == body["value"][48:]
    none = ui.client.get(f"/api/runs/{run_id}/metric", params={"key": "loss", "after_step": 49})
    assert none.status_code == 200 and none.json()["step"] == []
    with hone.start_run("odd", name="nan", workspace=ui_workspace.ws) as run:
        run.log_metric("x", math.nan, step=0)
        run.log_metric("x", 1.0, step=1)
    assert ui.client.get(f"/api/runs/{run.id}/metric", params={"key": "x"}).json()["value"] == [
        None,
        1.0,
    ]


def test_a_run_carries_its_checkpoints_inputs_and_artifacts(
    ui: Ui, ui_workspace: UiWorkspace
) -> None:
    run = ui.client.get(f"/api/runs/{ui_workspace.trained[:10]}").json()
    assert run["id"] == ui_workspace.trained and run["status"] == "finished"
    assert run["checkpoints"] and all(c["blobs_present"] for c in run["checkpoints"])
    assert {i["dataset"] for i in run["inputs"]} == {"digits"}
    assert run["metrics"]["val/acc"]["value"] > 0.5


def test_artifacts_download_and_never_render(
    ui: Ui, ui_workspace: UiWorkspace, tmp_path: Any
) -> None:
    page = tmp_path / "report.html"
    page.write_text("<script>alert(1)</script>")
    with hone.start_run("odd", name="with artifact", workspace=ui_workspace.ws) as run:
        run.log_artifact(page, "reports/report.html")
    got = ui.client.get(f"/api/runs/{run.id}/artifacts/reports/report.html")
    assert got.status_code == 200 and got.content == page.read_bytes()
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment;")
    missing = ui.client.get(f"/api/runs/{run.id}/artifacts/reports/../report.html")
    assert missing.status_code == 404 and "no artifact" in missing.json()["error"]


def test_datasets_models_and_predictions(ui: Ui, ui_workspace: UiWorkspace) -> None:
    (digits,) = ui.client.get("/api/datasets").json()
    assert digits["name"] == "digits" and digits["versions"] >= 2
    tree = ui.client.get("/api/datasets/versions", params={"name": "digits"}).json()
    assert [v["depth"] for v in tree][:2] == [0, 1]
    version = ui.client.get("/api/datasets/version", params={"ref": tree[0]["ref"]}).json()
    assert version["picture"] is True and set(version["summary"]["splits"]) == {
        "train",
        "validation",
        "test",
    }
    histogram = ui.client.get(
        "/api/datasets/histogram",
        params={"ref": tree[0]["ref"], "feature": "pixel_0_2", "split": "train", "bins": 5},
    ).json()
    assert sum(histogram["counts"]) == histogram["rows"] == version["summary"]["splits"]["train"]
    thumbs = ui.client.get(
        "/api/datasets/thumbnails", params={"ref": tree[0]["ref"], "split": "test", "n": 3}
    ).json()
    assert len(thumbs["items"]) == 3
    assert thumbs["items"][0]["src"].startswith("data:image/png;base64,")
    diff = ui.client.get(
        "/api/datasets/diff", params={"old": tree[0]["ref"], "new": tree[1]["ref"]}
    ).json()
    assert diff["transforms_changed"] is True and diff["added"] == {}

    model = ui.client.get("/api/models/digits").json()
    assert [v["version"] for v in model["versions"]] == [1, 2]
    assert model["history"][0]["alias"] == "champion"
    one = ui.client.get("/api/models/digits/1").json()
    assert one["exports"][0]["format"] == "onnx" and one["lineage"]["kind"] == "model"

    stats = ui.client.get("/api/predictions/digits/stats").json()
    assert stats["predictions"] >= len(ui_workspace.request_ids)
    queue = ui.client.get("/api/predictions/digits/queue", params={"limit": 5}).json()
    assert len(queue["items"]) == 5
    item = queue["items"][0]
    assert item["picture"].startswith("data:image/png") and len(item["values"]) == 64
    assert item["classes"] == list(range(10))


def test_labels_are_recorded_as_post_v1_feedback_does(ui: Ui, ui_workspace: UiWorkspace) -> None:
    ws = opened(ui_workspace.ws)
    # One that no other test labeled (the browser tests label the newest ones).
    request_id = list_predictions(ws.db, "digits", labeled=False, limit=1000)[-1].request_id
    headers = ui.csrf()
    first = ui.client.post(
        "/api/feedback", json={"request_id": request_id, "label": 4}, headers=headers
    )
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "recorded" and first.json()["label"] == 4
    same = ui.client.post(
        "/api/feedback", json={"request_id": request_id, "label": 4}, headers=headers
    )
    assert same.json()["outcome"] == "unchanged"
    again = ui.client.post(
        "/api/feedback", json=[{"request_id": request_id, "label": 5}], headers=headers
    )
    assert again.json()["feedback"][0]["outcome"] == "corrected"
    (record,) = [
        p
        for p in list_predictions(ws.db, "digits", labeled=True, limit=1000)
        if p.request_id == request_id
    ]
    assert record.label == 5
    # All or nothing: a bad item refuses the whole list, naming it.
    refused = ui.client.post(
        "/api/feedback",
        json=[{"request_id": request_id, "label": 6}, {"request_id": request_id, "label": 11}],
        headers=headers,
    )
    assert refused.status_code == 422 and "item 1" in refused.json()["error"]
    assert [
        p.label
        for p in list_predictions(ws.db, "digits", labeled=True, limit=1000)
        if p.request_id == request_id
    ] == [5]


def test_an_alias_moves_with_its_reason_kept(ui: Ui, ui_workspace: UiWorkspace) -> None:
    headers = ui.csrf()
    moved = ui.client.post(
        "/api/models/digits/aliases",
        json={"alias": "staging", "version": 2, "why": "<b>try</b> it"},
        headers=headers,
    )
    assert moved.status_code == 200 and moved.json()["moved"] is True
    history = ui.client.get("/api/models/digits").json()["history"]
    assert history[-1]["alias"] == "staging" and history[-1]["why"] == "<b>try</b> it"
    same = ui.client.post(
        "/api/models/digits/aliases", json={"alias": "staging", "version": 2}, headers=headers
    )
    assert same.json()["moved"] is False


BAD_GETS = [
    ("/api/runs", {"filter": "metrics.acc >"}, 400, "ends too early"),
    ("/api/runs", {"order_by": "metrics.acc sideways"}, 400, "expected FIELD"),
    ("/api/runs/count", {"filter": "metrics.acc >"}, 400, "ends too early"),
    ("/api/runs", {"limit": 0}, 422, "limit"),
    ("/api/runs", {"limit": 100000}, 422, "limit"),
    ("/api/runs", {"offset": -1}, 422, "offset"),
    ("/api/runs", {"offset": "x"}, 422, "offset"),
    ("/api/runs", {"experiment": "a\x00b"}, 400, "not valid text"),
    ("/api/runs/zzzz", {}, 400, "is not a run id"),
    ("/api/runs/0123456789abcdef0123456789abcdef", {}, 404, "no run"),
    ("/api/runs/{trained}/metric", {}, 422, "key"),
    ("/api/runs/{trained}/metric", {"key": "nope"}, 404, "has no metric 'nope'"),
    ("/api/runs/{trained}/metric", {"key": "a\x00"}, 400, "metric"),
    ("/api/runs/{trained}/metric", {"key": "val/acc", "after_step": "x"}, 422, "after_step"),
    ("/api/runs/{trained}/metric", {"key": "val/acc", "after_step": 2**64}, 400, "after_step"),
    ("/api/runs/{trained}/artifacts/nope.txt", {}, 404, "no artifact"),
    ("/api/compare", {"run": "{trained}"}, 400, "2 to 20 runs"),
    ("/api/studies/nope", {}, 404, "nope"),
    ("/api/datasets/versions", {"name": "nope"}, 404, "nope"),
    ("/api/datasets/version", {"ref": "digits@ffffff"}, 404, "ffffff"),
    ("/api/datasets/version", {"ref": ""}, 400, "dataset"),
    ("/api/datasets/histogram", {"ref": "digits", "feature": "nope"}, 400, "no feature 'nope'"),
    ("/api/datasets/histogram", {"ref": "digits", "feature": "pixel_0_0", "bins": 0}, 422, "bins"),
    ("/api/datasets/histogram", {"ref": "digits", "feature": "pixel_0_0", "split": "x"}, 400, "x"),
    ("/api/datasets/thumbnails", {"ref": "digits", "n": 1000}, 422, "n"),
    ("/api/datasets/diff", {"old": "digits", "new": "nope"}, 404, "nope"),
    ("/api/models/nope", {}, 404, "nope"),
    ("/api/models/digits/99", {}, 404, "99"),
    ("/api/models/digits/abc", {}, 400, "version 'abc'"),
    ("/api/models/digits/1_0", {}, 400, "version '1_0'"),
    ("/api/models/digits/0", {}, 400, "version '0'"),
    ("/api/models/digits/99999999999999999999", {}, 400, "version"),
    ("/api/models/bad name!", {}, 400, "name"),
    ("/api/predictions/digits/stats", {"by": "week"}, 400, "hour or day"),
    ("/api/predictions/digits/stats", {"since": "soon"}, 422, "since"),
    ("/api/predictions/digits/queue", {"limit": 0}, 422, "limit"),
    ("/api/predictions/digits/queue", {"version": "0"}, 400, "version '0'"),
    ("/api/predictions/digits/queue", {"version": "9" * 30}, 400, "version"),
    ("/api/predictions/nope/queue", {}, 404, "no model 'nope'"),
    ("/api/predictions/nope/stats", {}, 404, "no model 'nope'"),
    ("/api/predictions/digits/stats", {"since": "nan"}, 400, "since"),
    ("/api/predictions/digits/stats", {"since": "inf"}, 400, "since"),
    ("/api/nowhere", {}, 404, "no API endpoint"),
]


@pytest.mark.parametrize(("path", "params", "status", "message"), BAD_GETS)
def test_bad_reads_get_a_clear_4xx(
    ui: Ui, ui_workspace: UiWorkspace, path: str, params: dict[str, Any], status: int, message: str
) -> None:
    path = path.replace("{trained}", ui_workspace.trained)
    params = {
        k: v.replace("{trained}", ui_workspace.trained) if isinstance(v, str) else v
        for k, v in params.items()
    }
    answer = ui.client.get(path, params=params)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


BAD_POSTS = [
    ("/api/feedback", b"not json", 422, "the request body is not valid JSON"),
    ("/api/feedback", b"", 422, "request body: Field required"),
    ("/api/feedback", b"{}", 422, "request body.request_id: Field required"),
    ("/api/feedback", b"[]", 422, "an empty list"),
    ("/api/feedback", b"[" + b'{"request_id": "x", "label": 1},' * 10_000 + b"{}]", 422, "10000"),
    (
        "/api/feedback",
        b"[" + b'{"request_id": "x", "label": 1},' * 10_000 + b'{"request_id": "x", "label": 1}]',
        413,
        "10,001 labels",
    ),
    ("/api/feedback", b'{"request_id": "nope", "label": 1}', 404, "nope"),
    ("/api/feedback", b'{"request_id": 7, "label": 1}', 422, "request_id"),
    ("/api/feedback", b'{"request_id": "{request_id}", "label": 10}', 422, "not one of"),
    ("/api/feedback", b'{"request_id": "x", "label": 1, "extra": 2}', 422, "extra"),
    ("/api/models/digits/aliases", b'{"alias": "champion"}', 422, "version"),
    ("/api/models/digits/aliases", b'{"alias": "x", "version": "1"}', 422, "version"),
    ("/api/models/digits/aliases", b'{"alias": "x", "version": true}', 422, "version"),
    (
        "/api/models/digits/aliases",
        b'{"alias": "champion", "version": 1, "remove": "yes"}',
        422,
        "remove",
    ),
    ("/api/models/digits/aliases", b'[{"alias": "x", "version": 1}]', 422, "request body"),
    ("/api/models/digits/aliases", b'{"alias": "bad alias!", "version": 1}', 400, "alias"),
    ("/api/models/digits/aliases", b'{"alias": "x", "version": 99}', 404, "99"),
    (
        "/api/models/digits/aliases",
        b'{"alias": "champion", "version": 2, "remove": true}',
        409,
        "nothing removed",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), BAD_POSTS)
def test_bad_changes_get_a_clear_4xx_and_change_nothing(
    ui: Ui, ui_workspace: UiWorkspace, path: str, body: bytes, status: int, message: str
) -> None:
    before = ui.client.get("/api/models/digits").json()["history"]
    labeled = ui.client.get("/api/predictions/digits/stats").json()["labeled"]
    headers = {**ui.csrf(), "content-type": "application/json"}
    body = body.replace(b"{request_id}", ui_workspace.request_ids[0].encode())
    answer = ui.client.post(path, content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]
    assert ui.client.get("/api/models/digits").json()["history"] == before
    assert ui.client.get("/api/predictions/digits/stats").json()["labeled"] == labeled


def test_cross_site_requests_are_refused(ui: Ui, ui_workspace: UiWorkspace) -> None:
    ws = opened(ui_workspace.ws)
    target = list_predictions(ws.db, "digits", labeled=False, limit=1)[0].request_id
    history = ui.client.get("/api/models/digits").json()["history"]
    body = {"request_id": target, "label": 1}
    bare = ui.client.post("/api/feedback", json=body)
    assert bare.status_code == 403 and "x-hone-csrf" in bare.json()["error"]
    wrong = ui.client.post("/api/feedback", json=body, headers={"x-hone-csrf": "guess"})
    assert wrong.status_code == 403
    foreign = ui.client.post(
        "/api/feedback", json=body, headers={**ui.csrf(), "origin": "http://evil.example"}
    )
    assert foreign.status_code == 403 and "evil.example" in foreign.json()["error"]
    form = ui.client.post(
        "/api/models/digits/aliases",
        content=b"alias=champion&version=2",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 403
    labeled = {p.request_id for p in list_predictions(ws.db, "digits", labeled=True, limit=1000)}
    assert target not in labeled
    assert ui.client.get("/api/models/digits").json()["history"] == history


def test_only_loopback_hosts_are_answered_on_loopback(ui: Ui) -> None:
    rebound = ui.client.get("/api/runs", headers={"host": "evil.example:8701"})
    assert rebound.status_code == 421 and "loopback" in rebound.json()["error"]
    assert ui.client.get("/api/health", headers={"host": "localhost:1"}).status_code == 200


def test_every_answer_carries_the_security_headers(ui: Ui) -> None:
    for path in ("/", "/api/runs", "/api/nowhere", "/assets/app.js"):
        headers = ui.client.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    spec = ui.client.get("/api/openapi.json").json()
    assert {"/api/runs", "/api/feedback", "/api/models/{name}/aliases"} <= set(spec["paths"])


def test_off_loopback_every_request_needs_the_token(ui_of: StartUi) -> None:
    token = "a-long-enough-token-0123"
    guarded = ui_of(host="0.0.0.0", token=token)
    assert guarded.client.get("/api/runs").status_code == 401
    assert guarded.client.get("/").status_code == 401
    assert guarded.client.get("/api/health").status_code == 200
    bearer = {"authorization": f"Bearer {token}"}
    assert guarded.client.get("/api/runs", headers=bearer).status_code == 200
    assert (
        guarded.client.get("/api/runs", headers={"authorization": "Bearer nope"}).status_code == 401
    )
    login = guarded.client.get("/login", params={"token": token})
    assert login.status_code == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and token not in cookie
    assert guarded.client.get("/api/runs").status_code == 200  # the cookie, kept by the client
    name, _, digest = cookie.split(";")[0].partition("=")
    assert name.startswith("hone_ui_token_")
    guarded.client.cookies.clear()
    guarded.client.cookies.set(name, token)  # the raw token is not the cookie
    assert guarded.client.get("/api/runs").status_code == 401
    # Another site's odd cookie on the same host does not hide this one.
    guarded.client.cookies.clear()
    odd = f'prefs={{"theme":"dark"}}; other=a b c; {name}={digest}'
    assert guarded.client.get("/api/runs", headers={"cookie": odd}).status_code == 200
    assert guarded.client.get("/login", params={"token": "nope"}).status_code == 401


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "needs a token"),
        (["--token", "short"], "16 to 1024 printable"),
        (["--token", "x" * 1025], "16 to 1024 printable"),
        (["--port", "70000"], "port 70000"),
        (["--public-url", "ftp://hone.example/path"], "public URL"),
        (["--public-url", "https://hone.example/ui"], "no path"),
        (["--workspace", "/nonexistent/ws"], "/nonexistent/ws"),
    ],
)
def test_bad_options_are_one_clear_line(
    ui_workspace: UiWorkspace, args: list[str], message: str
) -> None:
    done = subprocess.run(
        [*HONE, "--workspace", str(ui_workspace.ws.home), "ui", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_taken_port_is_one_clear_line(ui: Ui, ui_workspace: UiWorkspace) -> None:
    port = httpx.URL(ui.url).port
    done = subprocess.run(
        [*HONE, "--workspace", str(ui_workspace.ws.home), "ui", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "is taken" in done.stderr and "Traceback" not in done.stderr


def test_bodies_past_the_limit_are_refused_before_they_are_read(
    ui: Ui, ui_workspace: UiWorkspace
) -> None:
    headers = {**ui.csrf(), "content-type": "application/json"}
    huge = b"[" + b'{"request_id": "x", "label": 1},' * 300_000 + b"{}]"
    assert len(huge) > 8 << 20
    declared = ui.client.post("/api/feedback", content=huge, headers=headers)
    assert declared.status_code == 413 and "at most 8 MiB" in declared.json()["error"]

    def chunks() -> Any:
        for start in range(0, len(huge), 1 << 20):
            yield huge[start : start + (1 << 20)]

    streamed = ui.client.post("/api/feedback", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert ui.client.get("/api/health").status_code == 200


def test_a_method_a_route_does_not_take_is_refused_in_the_apis_shape(ui: Ui) -> None:
    answer = ui.client.post("/api/runs", headers=ui.csrf())
    assert answer.status_code == 405 and "POST /api/runs" in answer.json()["error"]


def test_a_histogram_of_values_a_float_step_apart(
    ui: Ui, ui_workspace: UiWorkspace, tmp_path: Any
) -> None:
    rows = tmp_path / "ulp.csv"
    rows.write_text("a,b,y\n0.3,1,0\n0.30000000000000004,2,1\n0.3,3,0\n1e308,4,1\n")
    version = hone.data.import_dataset("ulp", rows, label="y", workspace=ui_workspace.ws)
    narrow = ui.client.get(
        "/api/datasets/histogram", params={"ref": version.ref, "feature": "a", "split": ""}
    )
    assert narrow.status_code == 200, narrow.text
    assert sum(narrow.json()["counts"]) == 4
    assert ui.client.get("/api/health").status_code == 200


def test_a_damaged_artifact_blob_is_an_error_before_any_byte(
    ui: Ui, ui_workspace: UiWorkspace, tmp_path: Any
) -> None:
    data = tmp_path / "notes.txt"
    data.write_bytes(b"x" * 11_000)
    with hone.start_run("odd", name="damaged artifact", workspace=ui_workspace.ws) as run:
        run.log_artifact(data, "notes.txt")
    (digest,) = [
        a.digest
        for a in hone.get_run(run.id, workspace=ui_workspace.ws).artifacts
        if a.path == "notes.txt"
    ]
    blob = ui_workspace.ws.home / "blobs" / "sha256" / digest[:2] / digest
    blob.chmod(0o644)
    blob.write_bytes(b"x" * 100)
    answer = ui.client.get(f"/api/runs/{run.id}/artifacts/notes.txt")
    assert answer.status_code == 500, answer.text
    assert "not 11,000 bytes long" in answer.json()["error"]
    assert ui.client.get("/api/health").status_code == 200


def test_a_bad_sort_and_a_bad_filter_are_told_apart(ui: Ui) -> None:
    sort = ui.client.get("/api/runs", params={"order_by": "bogus"}).json()
    assert sort["parameter"] == "order_by" and "of order_by clause 'bogus'" in sort["error"]
    bad = ui.client.get("/api/runs", params={"filter": "name = 'a' and"}).json()
    assert bad["parameter"] == "filter" and bad["position"] == 14


def test_the_api_docs_are_served_from_the_package(ui: Ui) -> None:
    page = ui.client.get("/api/docs")
    assert page.status_code == 200 and "/assets/swagger/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text
    assert ui.client.get("/assets/swagger/swagger-ui-bundle.js").status_code == 200
