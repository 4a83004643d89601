"""The main job: `hone quickstart` trains on the bundled digits and tracks it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hone.cli.main import main


@pytest.mark.slow
def test_quickstart_trains_and_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    ws = tmp_path / "demo"
    assert main(["quickstart", "--workspace", str(ws)]) == 0  # a study, then 15 epochs
    out = capsys.readouterr().out
    assert "finished" in out and "hone runs show" in out and "held-out accuracy" in out
    assert main(["--workspace", str(ws), "runs", "list", "-e", "quickstart-digits", "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["experiment"] == "quickstart-digits" and run["status"] == "finished"
    # It trained with the study's best trial's params, and reports the held-out test split.
    assert main(["--workspace", str(ws), "tune", "list", "--json"]) == 0
    (study,) = json.loads(capsys.readouterr().out)
    assert sum(study["counts"].values()) == 8 and study["counts"]["complete"] >= 1
    for key, value in study["result"]["params"].items():
        assert run["params"][key] == str(value)
    assert run["params"]["val_split"] == "test"
    assert "study quickstart-" in out and "best trial" in out
    assert run["params"]["epochs"] == "15" and run["params"]["data"].startswith("digits@")
    assert run["params"]["recipe"] == "builtin:cnn" and run["params"]["world_size"] == "2"
    # It trained on a normalized version derived from the imported digits.
    assert {(i["dataset"], i["split"]) for i in run["inputs"]} == {
        ("digits", "train"),
        ("digits", "test"),
    }
    assert main(["--workspace", str(ws), "data", "log", "digits", "--json"]) == 0
    tree = json.loads(capsys.readouterr().out)
    # import → normalize (trained on); the loop's harvest appended to the import and
    # normalized again (production drifted far: its preprocessing was re-fitted).
    assert [(v["depth"], v["operation"]) for v in tree] == [
        (0, "import"),
        (1, "normalize"),
        (1, "append"),
        (2, "normalize"),
    ]
    assert tree[1]["id"] == run["inputs"][0]["version_id"]
    assert run["metrics"]["val/acc"]["value"] >= 0.95  # a real model, really trained
    assert run["metrics"]["val/acc"]["step"] == int(run["params"]["total_steps"])
    assert main(["--workspace", str(ws), "runs", "checkpoints", run["id"], "--json"]) == 0
    kept = json.loads(capsys.readouterr().out)
    assert kept and kept[-1]["epoch"] == 15
    # The model is registered as digits@1 from that run's best checkpoint, is champion, its
    # ONNX export verified; it was loaded back and asked; its lineage was drawn.
    assert "digits@1: ONNX" in out and "digits@1 is champion" in out
    assert "hone.models.load('digits@champion') → digits@1" in out and "truth" in out
    assert "source sklearn:digits" in out
    assert main(["--workspace", str(ws), "models", "show", "digits@1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == 1 and shown["run_id"] == run["id"]
    assert shown["checkpoint"]["step"] in [c["step"] for c in kept]
    # Then the loop: digits@1 served, drifted traffic recorded and labeled, a challenger
    # harvested, trained, promoted; the new traffic answered by it, far better.
    assert "live accuracy" in out and "switched without a restart" in out
    assert "harvested 1,150 labeled predictions" in out and "preprocessing refitted" in out
    assert "promoted: digits@2 is the new champion" in out
    assert main(["--workspace", str(ws), "predictions", "stats", "digits", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    by_version = {v["version"]: v for v in stats["versions"]}
    assert by_version[1]["predictions"] == 1438 and by_version[1]["labeled"] == 1150
    assert by_version[2]["predictions"] == 359 and by_version[2]["labeled"] == 359
    assert by_version[2]["live_accuracy"] >= by_version[1]["live_accuracy"] + 0.4
    assert main(["--workspace", str(ws), "runs", "list", "-e", "loop", "--json"]) == 0
    loop_runs = json.loads(capsys.readouterr().out)
    (loop_run,) = [r for r in loop_runs if r["tags"].get("hone.kind") == "loop"]
    assert loop_run["tags"]["hone.loop"] == "promoted" and loop_run["status"] == "finished"
    # Running it again reuses the workspace and adds a second run (here without a study),
    # registered as digits@3 and held to the champion's accuracy by a gate; --json prints
    # only the summary.
    args = ["quickstart", "--workspace", str(ws), "--epochs", "1", "--trials", "0", "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["registered"] == "digits@3" and summary["workspace"] == str(ws)
    assert 0 <= summary["live_accuracy_before"] <= 1 and 0 <= summary["live_accuracy_after"] <= 1
    assert summary["loop"]["outcome"] in ("promoted", "held")
    assert main(["--workspace", str(ws), "runs", "list", "-e", "quickstart-digits", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["--workspace", str(ws), "models", "history", "digits", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [e["to"] for e in history[:2]] == [1, 2]
