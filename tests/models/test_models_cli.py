"""``hone models`` from the command line: the whole flow with --json, what people read,
and every kind of bad input: one clear line, the exit code of its kind, nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hone.registry import alias_history, aliases_of, list_models
from tests.cli.test_cli import hone_cli
from tests.models.conftest import Trained
from tests.models.helpers import stores

pytestmark = pytest.mark.slow
ON = ("--on", "digits@latest")


@pytest.fixture
def home(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> Trained:
    monkeypatch.setenv("HONE_HOME", str(trained.ws.home))
    return trained


def test_the_registry_flow_from_the_command_line(
    home: Trained, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = hone_cli(capsys, "models", "register", "cli", "--run", home.weak, "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["ref"] == "cli@1" and [e["format"] for e in first["exports"]] == ["onnx"]
    code, out, err = hone_cli(
        capsys, "models", "register", "cli", "--run", home.strong[:12], "--description", "4 epochs"
    )
    assert code == 0, err
    assert "registered cli@2" in out and "verified on" in out and "max |diff|" in out
    code, out, err = hone_cli(capsys, "models", "alias", "cli@1", "champion", "--why", "baseline")
    assert code == 0 and "cli@champion → @1" in out, err
    on = f"digits@{home.raw.id[:12]}:validation"
    code, out, err = hone_cli(
        capsys, "models", "promote", "cli@2", "--to", "champion", "--gate",
        "accuracy >= champion + 0.01", "--on", on, "--json",
    )  # fmt: skip
    assert code == 0, err
    promoted = json.loads(out)
    assert promoted["moved"] and promoted["previous"] == 1
    code, out, err = hone_cli(
        capsys, "models", "promote", "cli@1", "--to", "champion", "--gate",
        "accuracy >= champion", "--on", on,
    )  # fmt: skip
    assert code == 1 and "not promoted" in out and "fails" in out, err
    code, out, err = hone_cli(capsys, "models", "history", "cli", "--json")
    events = json.loads(out)
    assert [(e["from"], e["to"]) for e in events] == [(None, 1), (1, 2)]
    assert events[1]["run_id"] == promoted["run_id"] and events[0]["why"] == "baseline"
    code, out, _ = hone_cli(capsys, "models", "history", "cli")
    assert "baseline" in out and promoted["run_id"][:8] in out
    code, out, _ = hone_cli(capsys, "models", "list", "--json")
    listed = {m["name"]: m for m in json.loads(out)}
    assert listed["cli"]["aliases"] == {"champion": 2} and listed["cli"]["latest"] == 2
    code, out, _ = hone_cli(capsys, "models", "show", "cli@champion")
    assert code == 0
    for expected in ("cli@2", "champion", "float64[batch, 64]", "run ", "checkpoint step",
                     "dataset digits@", "source sklearn:digits", "4 epochs"):  # fmt: skip
        assert expected in out, expected
    code, out, _ = hone_cli(capsys, "models", "show", "cli@2", "--json")
    shown = json.loads(out)
    assert shown["lineage"]["children"][0]["id"] == home.strong
    code, out, _ = hone_cli(capsys, "models", "versions", "cli")
    assert "@1" in out and "@2" in out and "champion" in out
    target = tmp_path / "cli.onnx"
    code, out, err = hone_cli(
        capsys, "models", "export", "cli@2", "--format", "onnx", "--out", str(target)
    )
    assert code == 0 and target.stat().st_size > 1000, err
    code, out, err = hone_cli(capsys, "models", "evaluate", "cli@champion", "--on", on, "--json")
    assert code == 0, err
    evaluation = json.loads(out)
    assert evaluation["metrics"]["accuracy"] == pytest.approx(
        promoted["metrics"]["candidate"]["accuracy"]
    )
    code, out, _ = hone_cli(capsys, "models", "evaluate", "cli@1", "--on", on)
    assert "confusion" in out and "recall" in out
    code, out, err = hone_cli(capsys, "models", "delete", "cli@1")
    assert code == 0 and "deleted cli@1" in out, err


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["register", "bad name", "--run", "RUN"], 2, "model name 'bad name'"),
        (["register", "m", "--run", "ffff"], 3, "no run 'ffff'"),
        (["register", "m", "--run", "xyz"], 2, "is not a run id"),
        (["register", "m"], 2, "--run RUN"),
        (["register", "m", "--run", "RUN", "--study", "s"], 2, "--run RUN"),
        (["register", "m", "--run", "RUN", "--checkpoint", "first"], 2, "give best, latest"),
        (["register", "m", "--run", "RUN", "--checkpoint", "99999"], 3, "no checkpoint at step"),
        (["register", "m", "--run", "RUN", "--format", "tflite"], 2, "format 'tflite'"),
        (["register", "m", "--run", "RUN", "--format", ""], 2, "format ''"),
        (["register", "m", "--study", "nope"], 3, "no study named 'nope'"),
        (["show", "nope@1"], 3, "no model 'nope'"),
        (["show", "known@5"], 3, "no version 5; its versions: 1"),
        (["show", "known@champion"], 3, "no alias 'champion'"),
        (["show", "known@"], 2, "nothing after '@'"),
        (["show", "known@-1"], 2, "alias '-1'"),
        (["alias", "known@1", "latest"], 2, "alias 'latest' is taken"),
        (["alias", "known@1", "9lives"], 2, "alias '9lives'"),
        (["alias", "known@1", "a" * 70], 2, "at most 63"),
        (["alias", "known@1", "champion", "--remove"], 3, "no alias 'champion' to remove"),
        (["alias", "known@9", "champion"], 3, "no version 9"),
        (["history", "nope"], 3, "no model 'nope'"),
        (["history", "bad/name"], 2, "model name"),
        (["export", "known@1", "--format", "tflite"], 2, "format 'tflite'"),
        (["export", "known@1", "--out", "/nonexistent/dir/m.onnx"], 2, "does not exist"),
        (["evaluate", "known@1", "--on", "nope@latest"], 3, "no dataset 'nope'"),
        (["evaluate", "known@1", "--on", "digits@latest:nope"], 2, "no split 'nope'"),
        (["promote", "known@1", "--to", "champion", "--gate", "accuracy >=", *ON], 2,
         "at the end of gate"),
        (["promote", "known@1", "--to", "champion", "--gate", "accuracy => 1", *ON], 2,
         "position 9"),
        (["promote", "known@1", "--to", "la test", "--gate", "accuracy >= 0", *ON], 2,
         "alias 'la test'"),
        (["delete", "known@latest"], 2, "by its number"),
        (["delete", "known@1"], 2, "known@1 is guard"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line_and_changes_nothing(
    home: Trained,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    says: str,
) -> None:
    db, _ = stores(home.ws)
    if "known" not in {m.name for m in list_models(db)}:
        assert hone_cli(capsys, "models", "register", "known", "--run", home.weak)[0] == 0
        assert hone_cli(capsys, "models", "alias", "known@1", "guard")[0] == 0
    before = (list_models(db), alias_history(db, "known"), aliases_of(db, "known"))
    args = [a.replace("RUN", home.weak) for a in args]
    got, out, err = hone_cli(capsys, "models", *args)
    assert got == code, (out, err)
    assert says in err and "Traceback" not in err, err
    assert err.count("\n") <= 3, err
    assert (list_models(db), alias_history(db, "known"), aliases_of(db, "known")) == before


def test_text_that_looks_like_markup_is_printed_as_it_is(
    home: Trained, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hone_cli(capsys, "models", "register", "markup", "--run", home.weak)[0] == 0
    code, _, err = hone_cli(capsys, "models", "alias", "markup@1", "champion", "--why", "[/]")
    assert code == 0, err
    code, out, err = hone_cli(capsys, "models", "history", "markup")
    assert code == 0 and "[/]" in out, err
    code, _, err = hone_cli(capsys, "models", "export", "markup@1", "--format", "[/]")
    assert code == 2 and "format '[/]'" in err
    code, out, _ = hone_cli(capsys, "models", "history", "markup", "--alias", "challenger")
    assert code == 0 and "alias challenger was never set" in out
