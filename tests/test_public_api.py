"""The public surface is deliberate: this list changes only on purpose."""

from __future__ import annotations

import subprocess
import sys

import hone
import hone.errors

EXPECTED = {
    "ActiveRun",
    "Artifact",
    "Experiment",
    "Metric",
    "Run",
    "RunStatus",
    "SyncReport",
    "Workspace",
    "__version__",
    "active_run",
    "data",
    "end_run",
    "get_metric_history",
    "get_run",
    "init",
    "list_experiments",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "search_runs",
    "set_tag",
    "set_tags",
    "start_run",
    "sync",
}


def test_exported_members() -> None:
    assert set(hone.__all__) == EXPECTED
    for name in hone.__all__:
        assert hasattr(hone, name), name


def test_importing_hone_is_light_and_has_no_side_effects(tmp_path: object) -> None:
    code = (
        "import sys, os, hone; "
        "heavy = [m for m in ('torch', 'sklearn', 'pandas') if m in sys.modules]; "
        "print(heavy, os.listdir('.'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(tmp_path)
    ).stdout.strip()
    assert out == "[] []"


def test_error_table_maps_every_error() -> None:
    for cls in (
        hone.errors.ValidationError,
        hone.errors.FilterError,
        hone.errors.ConflictError,
        hone.errors.NotFoundError,
        hone.errors.WorkspaceError,
        hone.errors.StoreUnavailableError,
        hone.errors.BlobError,
    ):
        assert hone.errors.exit_code_for(cls("x")) not in (0, 1)
        assert hone.errors.http_status_for(cls("x")) >= 400
    assert hone.errors.http_status_for(hone.errors.NotFoundError("x")) == 404
    assert hone.errors.exit_code_for(hone.errors.HoneError("x")) == 1


def test_data_api_surface() -> None:
    assert set(hone.data.__all__) == {
        "DatasetInfo",
        "DatasetVersion",
        "SplitWarning",
        "VersionDiff",
        "VersionRow",
        "append",
        "append_arrays",
        "diff",
        "export",
        "filter",
        "get",
        "history",
        "import_dataset",
        "list_datasets",
        "loader",
        "normalize",
        "relabel",
        "resplit",
        "versions",
    }
