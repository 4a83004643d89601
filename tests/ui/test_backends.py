"""The UI's runs pages on both stores (SQLite and PostgreSQL): pages, counts, keys, sorting
by a metric, a filter's error with its position, experiments with their counts."""

from __future__ import annotations

import pytest

import hone
from hone.config import Workspace
from tests.ui.conftest import start_ui

pytestmark = pytest.mark.slow


def test_runs_pages_on_each_store(workspace: Workspace) -> None:
    for i in range(7):
        with hone.start_run(
            "grid" if i < 5 else "other",
            name=f"r{i}",
            params={"lr": f"0.{i}", "note": "it's"},
            workspace=workspace,
        ) as run:
            run.log_metric("val/acc", i / 10, step=1)
    ui = start_ui(workspace)
    try:
        page = ui.client.get(
            "/api/runs",
            params={"experiment": "grid", "order_by": "metrics.`val/acc` desc", "limit": 2},
        ).json()
        assert page["total"] == 5 and [r["name"] for r in page["runs"]] == ["r4", "r3"]
        rest = ui.client.get(
            "/api/runs",
            params={
                "experiment": "grid",
                "order_by": "metrics.`val/acc` desc",
                "limit": 2,
                "offset": 4,
            },
        ).json()
        assert [r["name"] for r in rest["runs"]] == ["r0"]
        found = ui.client.get(
            "/api/runs", params={"filter": "params.note = 'it\\'s' and metrics.`val/acc` >= 0.5"}
        ).json()
        assert sorted(r["name"] for r in found["runs"]) == ["r5", "r6"] and found["total"] == 2
        bad = ui.client.get("/api/runs", params={"filter": "metrics.`val/acc` >> 1"})
        assert bad.status_code == 400 and bad.json()["position"] == 19
        keys = ui.client.get("/api/runs/keys", params={"experiment": "other"}).json()
        assert keys == {"params": ["lr", "note"], "metrics": ["val/acc"], "tags": []}
        counts = {e["name"]: e["runs"] for e in ui.client.get("/api/experiments").json()}
        assert counts == {"grid": 5, "other": 2}
    finally:
        ui.stop()
