"""The hone command: every list/show command's JSON, and errors as one line + exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hone
from hone.cli.main import main
from hone.cli.state import state
from hone.config import Workspace
from tests.tracking.helpers import kill_mid_run


def hone_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    state.synced = False
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace on each backend, which every command finds through HONE_HOME."""
    monkeypatch.setenv("HONE_HOME", str(workspace.home))
    return workspace


def _two_runs(ws: Workspace) -> tuple[str, str]:
    ids = []
    for lr, acc in (("0.1", 0.8), ("0.01", 0.95)):
        with hone.start_run("cli", params={"lr": lr}, workspace=ws) as run:
            for step in range(3):
                run.log_metric("acc", acc - 0.1 * (2 - step), step=step)
        ids.append(run.id)
    return ids[0], ids[1]


def test_init_creates_a_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = hone_cli(capsys, "init", str(tmp_path / "new"))
    assert code == 0 and "workspace" in out
    assert (tmp_path / "new" / "hone.toml").is_file() and (tmp_path / "new" / "hone.db").is_file()
    code, out, _ = hone_cli(capsys, "--workspace", str(tmp_path / "new"), "db", "current", "--json")
    assert code == 0 and json.loads(out)["up_to_date"] is True
    code, out, _ = hone_cli(capsys, "--workspace", str(tmp_path / "new"), "db", "upgrade")
    assert code == 0 and "already at" in out


def test_runs_list_filter_order_json(home: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    low, high = _two_runs(home)
    code, out, _ = hone_cli(capsys, "runs", "list", "--json", "-o", "metrics.acc desc")
    assert code == 0
    assert [r["id"] for r in json.loads(out)] == [high, low]
    code, out, _ = hone_cli(capsys, "runs", "list", "--json", "-f", "metrics.acc > 0.9")
    assert [r["id"] for r in json.loads(out)] == [high]
    code, out, _ = hone_cli(capsys, "runs", "list", "-e", "cli")
    assert code == 0 and "2 run(s)" in out and high[:8] in out


def test_runs_show_metrics_compare(home: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    low, high = _two_runs(home)
    code, out, _ = hone_cli(capsys, "runs", "show", high[:8], "--json")
    shown = json.loads(out)
    assert code == 0 and shown["id"] == high and shown["params"] == {"lr": "0.01"}
    code, out, _ = hone_cli(capsys, "runs", "show", high[:8])
    assert code == 0 and "lr = 0.01" in out and "finished" in out
    code, out, _ = hone_cli(capsys, "runs", "metrics", high, "acc", "--json")
    assert [p["step"] for p in json.loads(out)] == [0, 1, 2]
    code, out, _ = hone_cli(capsys, "runs", "metrics", high, "acc")
    assert code == 0 and "3 point(s)" in out
    code, out, _ = hone_cli(capsys, "runs", "compare", low, high, "--json")
    assert [r["params"]["lr"] for r in json.loads(out)] == ["0.1", "0.01"]
    code, out, _ = hone_cli(capsys, "runs", "compare", low, high)
    assert code == 0 and "params.lr" in out and "metrics.acc" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["runs", "show", "ffffffffffffffffffffffffffffffff"], 3, "no run"),
        (["runs", "show", "xyz"], 2, "not a run id"),
        (["runs", "list", "-f", "metrics.acc >"], 2, "ends too early"),
        (["runs", "list", "-o", "bogus"], 2, "unknown field"),
    ],
)
def test_errors_are_one_line_and_an_exit_code(
    home: Workspace, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    got, out, err = hone_cli(capsys, *args)
    assert got == code
    assert message in err and "Traceback" not in err + out


def test_commands_on_a_missing_workspace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = hone_cli(capsys, "--workspace", str(tmp_path / "none"), "runs", "list")
    assert code == 4 and "hone init" in err
    assert not (tmp_path / "none").exists()


def test_an_unreachable_store_is_exit_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hone.init(tmp_path / "ws")
    monkeypatch.setenv("HONE_STORE_URI", "postgresql://hone:pw@127.0.0.1:1/none")
    code, _, err = hone_cli(capsys, "--workspace", str(tmp_path / "ws"), "runs", "list")
    assert code == 5 and "did not answer" in err and "pw" not in err


LOGGER = """
import hone
run = hone.start_run("dead")
print(run.id, flush=True)
i = 0
while True:
    run.log_metric("x", float(i), step=i)
    i += 1
    if i == 1000:
        print("going", flush=True)
"""


def test_sync_and_any_later_command_replay_dead_runs(
    home: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = kill_mid_run(LOGGER, home.home)
    # Any command replays what the store lacks first; `runs show` sees the killed run.
    code, out, _ = hone_cli(capsys, "runs", "show", run_id, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["status"] == "killed" and shown["metrics"]["x"]["step"] >= 999
    code, out, _ = hone_cli(capsys, "sync", "--json")
    assert code == 0 and json.loads(out)["records"] == 0


def test_the_cli_does_not_import_torch() -> None:
    """`hone --help` must not pay for PyTorch (its start-up time is a benchmark figure)."""
    import subprocess
    import sys

    code = "import hone.cli.main, sys; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False"


def test_messages_with_brackets_are_printed_verbatim(
    home: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = hone_cli(capsys, "runs", "list", "-f", "metrics.[bold]x > 1")
    assert code == 2 and "[bold]" in err
