"""`hone data import / list / show`: JSON output and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hone.cli.main import main
from hone.config import Workspace


@pytest.fixture
def home(sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("HONE_HOME", str(sqlite_workspace.home))
    return sqlite_workspace


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_list_show(
    home: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(
        capsys,
        "data",
        "import",
        "iris",
        "sklearn:iris",
        "--split",
        "train=0.8,test=0.2",
        "--stratify",
        "--json",
    )
    imported = json.loads(out)
    assert code == 0 and imported["rows"] == 150
    assert imported["summary"]["splits"] == {"test": 30, "train": 120}
    code, out, _ = run(
        capsys, "data", "import", "iris", "sklearn:iris", "-s", "train=0.8,test=0.2", "--stratify"
    )
    assert code == 0 and imported["id"][:12] in out  # the same content: the same version
    source = tmp_path / "t.csv"
    source.write_text("a,b,c,y\n1,2,3,0\n4,5,6,1\n4,5,6,1\n")
    code, out, _ = run(
        capsys, "data", "import", "tab", str(source), "-l", "y", "-f", "a,b", "-f", "c"
    )
    assert code == 0 and "1 duplicate row(s)" in out
    code, out, _ = run(capsys, "data", "list", "--json")
    assert code == 0 and [d["name"] for d in json.loads(out)] == ["iris", "tab"]
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and "iris" in out and "tab" in out
    code, out, _ = run(capsys, "data", "show", "iris@latest", "--json")
    assert code == 0 and json.loads(out)["id"] == imported["id"]
    code, out, _ = run(capsys, "data", "show", f"iris@{imported['id'][:8]}")
    assert code == 0 and "rows per split" in out and "petal length (cm)" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["data", "show", "nope"], 3, "no dataset 'nope'"),
        (["data", "show", "iris@zz"], 2, "'latest' or hex digits"),
        (["data", "import", "x", "missing.csv"], 3, "no file missing.csv"),
        (["data", "import", "x", "sklearn:iris", "-s", "train=2"], 2, "must be in (0, 1]"),
        (["data", "import", "bad name", "sklearn:iris"], 2, "dataset name"),
    ],
)
def test_errors(
    home: Workspace, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    got, out, err = run(capsys, *args)
    assert got == code and message in err and "Traceback" not in out + err


def test_diff_log_export(
    home: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import hone.data

    base = hone.data.import_dataset("w", "sklearn:wine", split="train=0.8,test=0.2", workspace=home)
    ids = base.to_arrow().column("__sample_id").to_pylist()
    trimmed = hone.data.filter(base, drop_sample_ids=ids[:5])
    code, out, _ = run(capsys, "data", "diff", f"w@{base.id[:10]}", "w@latest", "--json")
    assert code == 0 and sum(json.loads(out)["removed"].values()) == 5
    code, out, _ = run(capsys, "data", "diff", f"w@{base.id[:10]}", "w@latest")
    assert code == 0 and "removed" in out
    normalized = hone.data.normalize(trimmed)
    code, out, _ = run(capsys, "data", "show", f"w@{normalized.id[:12]}")
    assert code == 0 and "standardize (fitted on train)" in out
    code, out, _ = run(capsys, "data", "log", "w")
    assert code == 0 and base.id[:12] in out and "└─" in out and trimmed.id[:12] in out
    target = tmp_path / "w.csv"
    code, out, _ = run(capsys, "data", "export", "w", str(target), "--split", "test")
    assert code == 0 and target.is_file()
    assert len(target.read_text().splitlines()) == 1 + trimmed.splits["test"]
    code, _, err = run(capsys, "data", "export", "w", str(tmp_path / "w.bin"))
    assert code == 2 and "export format" in err
