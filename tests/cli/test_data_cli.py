"""`hone data import / list / show`: JSON output and one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
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


def _stored(ws: Workspace) -> tuple[set[str], int]:
    """Blob digests and dataset-version rows: what a refused command must not change."""
    from sqlalchemy import func, select

    from hone.blobs import open_blob_store
    from hone.store.database import database_for
    from hone.store.schema import dataset_versions

    with database_for(ws.store_uri).read() as conn:
        rows = conn.execute(select(func.count()).select_from(dataset_versions)).scalar_one()
    return set(open_blob_store(ws.blob_uri).digests()), rows


def _files(tmp: Path) -> dict[str, str]:
    """Bad sources for the CLI corpus, by name."""
    from PIL import Image

    tmp.mkdir()
    (tmp / "dup.csv").write_text("a,a,y\n1,2,0\n")
    (tmp / "latin.csv").write_bytes(b"a,y\n1,caf\xe9\n")
    (tmp / "bool.csv").write_text("a,b,y\n1,true,0\n2,,1\n")
    (tmp / "good.csv").write_text("a,y\n1,0\n2,1\n3,0\n4,1\n")
    (tmp / "empty.csv").write_text("")
    np.save(tmp / "a.npy", np.zeros((3, 2)))
    (tmp / "a.npy").rename(tmp / "a.npz")
    np.savez(tmp / "complex.npz", x=np.ones((3, 2), complex))
    (tmp / "imgs" / "a").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp / "imgs" / "a" / "0.png")
    return {p.name: str(p) for p in tmp.iterdir()}


CLI_CASES: list[tuple[list[str], int, str]] = [
    (["data", "import", "d", "{dup.csv}"], 2, "appear more than once"),
    (["data", "import", "d", "{latin.csv}", "-l", "y"], 2, "not UTF-8 text"),
    (["data", "import", "d", "{bool.csv}", "-l", "y"], 2, "empty cells count as NaN"),
    (["data", "import", "d", "{empty.csv}"], 2, "the file is empty"),
    (["data", "import", "d", "{a.npz}"], 2, "single .npy array renamed"),
    (["data", "import", "d", "{complex.npz}"], 2, "complex128, not numeric"),
    (["data", "import", "d", "{good.csv}", "--seed", "-1"], 2, "seed -1"),
    (["data", "import", "d", "{good.csv}", "-s", "train=abc"], 2, "'abc' is not a number"),
    (["data", "import", "d", "{good.csv}", "-s", "train=0.5,test=0.6"], 2, "sum to 1"),
    (["data", "import", "d", "{good.csv}", "--stratify", "-s", "a=1"], 2, "needs a label"),
    (["data", "import", "d", "{good.csv}", "-l", "nope"], 2, "no label column 'nope'"),
    (["data", "import", "d", "{good.csv}", "-f", "a,a"], 2, "named twice"),
    (["data", "import", "d", "{imgs}", "--image-size", "0x5"], 2, "--image-size '0x5'"),
    (["data", "import", "d", "{imgs}", "--image-size", "-1x5"], 2, "--image-size '-1x5'"),
    (["data", "import", "d", "{imgs}", "--image-size", "5"], 2, "expected WIDTHxHEIGHT"),
    (["data", "import", "d", "{imgs}", "--image-size", "²x5"], 2, "expected WIDTHxHEIGHT"),
    (["data", "import", "d", "{imgs}", "--image-size", "99999x99999"], 2, "Pillow's limit"),
    (["data", "import", "d", "{imgs}", "--image-mode", "CMYK"], 2, "use 'RGB' or 'L'"),
    (["data", "import", "d", "{imgs}", "-l", "y"], 2, "class folder"),
    (["data", "import", "d", "missing.csv"], 3, "no file missing.csv"),
    (["data", "import", "bad/name", "{good.csv}"], 2, "dataset name"),
    (["data", "show", "@abc"], 2, "dataset name"),
    (["data", "show", "w@latest@x"], 2, "'latest' or hex digits"),
    (["data", "show", "w@" + "0" * 20], 3, "no version"),
    (["data", "diff", "w@zz", "w"], 2, "'latest' or hex digits"),
    (["data", "diff", "w", "nope"], 3, "no dataset 'nope'"),
    (["data", "log", "bad name"], 2, "dataset name"),
    (["data", "log", "nope"], 3, "no dataset 'nope'"),
    (["data", "export", "nope", "{tmp}/x.csv"], 3, "no dataset 'nope'"),
    (["data", "export", "w", "{tmp}"], 2, "is a folder"),
    (["data", "export", "w", "{tmp}/x.csv", "--split", "valid"], 2, "no split 'valid'"),
    (["data", "export", "w", "{tmp}/x.csv", "--format", "xls"], 2, "export format 'xls'"),
    (["data", "export", "w", "{tmp}/no/such/x.csv"], 2, "cannot write"),
]


@pytest.mark.parametrize(
    ("argv", "code", "message"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES]
)
def test_bad_input_corpus(
    home: Workspace,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    code: int,
    message: str,
) -> None:
    """Every bad command: one line on stderr with the fix, the exit code of its kind,
    nothing stored."""
    import hone.data

    hone.data.import_dataset("w", "sklearn:wine", split="train=0.8,test=0.2", workspace=home)
    names = {**_files(tmp_path / "src"), "tmp": str(tmp_path / "out")}
    (tmp_path / "out").mkdir()
    args = list(argv)
    for name, path in names.items():
        args = [a.replace("{" + name + "}", path) for a in args]
    before = _stored(home)
    got, out, err = run(capsys, *args)
    assert got == code and message in err, err
    assert "Traceback" not in out + err and len(err.strip().splitlines()) == 1
    assert _stored(home) == before


def test_warnings_and_latin1_file_names(
    home: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A class too small for every split: imported, with a warning line (and the warning
    kept with the version); a file name that is not UTF-8: imported, shown escaped."""
    source = tmp_path / "small.csv"
    source.write_text("a,y\n" + "".join(f"{i},{i % 10}\n" for i in range(30)))
    code, out, err = run(
        capsys,
        "data",
        "import",
        "s",
        str(source),
        "-l",
        "y",
        "-s",
        "a=0.8,b=0.1,c=0.1",
        "--stratify",
    )
    assert code == 0 and "warning: stratified split: 10 of 10 class(es) are too small" in err
    code, out, _ = run(capsys, "data", "show", "s")
    assert code == 0 and "warning" in out and "too small" in out
    latin = os.fsencode(tmp_path) + b"/caf\xe9.csv"
    with open(latin, "wb") as fh:
        fh.write(b"a,y\n1,0\n2,1\n")
    code, out, err = run(capsys, "data", "import", "latin", os.fsdecode(latin), "-l", "y")
    assert code == 0 and "Traceback" not in err
    code, out, _ = run(capsys, "data", "show", "latin")
    assert code == 0 and "caf\\xe9.csv" in out


def test_markup_in_names_is_printed_as_text(
    home: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Column names and labels are data: '[/red]' is printed, not read as Rich markup."""
    source = tmp_path / "m.csv"
    source.write_text("a,[/red],[bold]x,y\n1,2,3,[/]\n4,5,6,b\n")
    code, _, err = run(capsys, "data", "import", "m", str(source), "-l", "y")
    assert code == 0, err
    code, out, err = run(capsys, "data", "show", "m")
    assert code == 0 and "[/red]" in out and "[bold]x" in out and "[/]:1" in out, err
