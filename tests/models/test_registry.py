"""The registry's records on both backends: numbering, references, aliases and their audit
trail, conditional moves, deletion rules, blobs kept while a version needs them."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from hone.config import Workspace
from hone.errors import ConflictError, NotFoundError, ValidationError
from hone.registry import (
    ModelRef,
    alias_history,
    aliases_of,
    delete_version,
    get_version,
    list_models,
    list_versions,
    move_alias,
    parse_model_ref,
)
from hone.tracking.checkpoints import retain
from tests.models.helpers import fake_version, stores


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("digits", ModelRef("digits")),
        ("digits@latest", ModelRef("digits")),
        ("digits@3", ModelRef("digits", version=3)),
        ("digits@champion", ModelRef("digits", alias="champion")),
        ("my.model-2@prod-eu", ModelRef("my.model-2", alias="prod-eu")),
    ],
)
def test_references_parse(text: str, expected: ModelRef) -> None:
    assert parse_model_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("digits@", "nothing after '@'"),
        ("digits@0", "numbered from 1"),
        ("digits@99999999999", "numbered from 1"),
        ("@3", "give NAME@VERSION"),
        ("dig its@3", "give NAME@VERSION"),
        ("digits@x y", "alias 'x y'"),
        ("digits@3a", None),  # an alias named 3a? no: aliases start with a letter
        ("digits@٣", "alias '٣'"),
        ("digits\n", "give NAME@VERSION"),
        ("", "give NAME@VERSION"),
    ],
)
def test_bad_references_are_refused_naming_what_is_wrong(text: str, says: str | None) -> None:
    with pytest.raises(ValidationError) as info:
        parse_model_ref(text)
    assert says is None or says in str(info.value)


def test_a_non_text_reference_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be text"):
        parse_model_ref(3)


def test_versions_are_numbered_per_model_and_resolved(workspace: Workspace) -> None:
    db, _ = stores(workspace)
    first = fake_version(workspace, "a")
    second = fake_version(workspace, "a")
    other = fake_version(workspace, "b")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert get_version(db, ModelRef("a")).version == 2  # latest
    assert get_version(db, ModelRef("a", version=1)).run_id == first.run_id
    assert [v.version for v in list_versions(db, "a")] == [1, 2]
    infos = {m.name: m for m in list_models(db)}
    assert (infos["a"].versions, infos["a"].latest, infos["b"].versions) == (2, 2, 1)


def test_unknown_models_versions_and_aliases_say_what_exists(workspace: Workspace) -> None:
    db, _ = stores(workspace)
    fake_version(workspace, "a")
    fake_version(workspace, "a")
    with pytest.raises(NotFoundError, match="no model 'zz'"):
        get_version(db, ModelRef("zz"))
    with pytest.raises(NotFoundError, match=r"no version 7; its versions: 1-2"):
        get_version(db, ModelRef("a", version=7))
    with pytest.raises(NotFoundError, match="no alias 'champion'; it has no aliases yet"):
        get_version(db, ModelRef("a", alias="champion"))
    move_alias(db, "a", "prod", 1)
    with pytest.raises(NotFoundError, match="its aliases: prod"):
        get_version(db, ModelRef("a", alias="champion"))


def test_every_alias_move_is_recorded_and_resolves(workspace: Workspace) -> None:
    db, _ = stores(workspace)
    fake_version(workspace, "a")
    fake_version(workspace, "a")
    set_ = move_alias(db, "a", "champion", 1, why="first one")
    moved = move_alias(db, "a", "champion", 2, why="better", run_id="f" * 32)
    assert move_alias(db, "a", "champion", 2) is None  # already there: nothing recorded
    removed = move_alias(db, "a", "champion", None, why="retired")
    assert set_ is not None and moved is not None and removed is not None
    history = alias_history(db, "a")
    assert [(e.from_version, e.to_version, e.why) for e in history] == [
        (None, 1, "first one"),
        (1, 2, "better"),
        (2, None, "retired"),
    ]
    assert history[1].run_id == "f" * 32 and "@" in history[1].who
    assert history[0].at <= history[1].at <= history[2].at
    assert aliases_of(db, "a") == {}
    move_alias(db, "a", "champion", 1)
    assert get_version(db, ModelRef("a", alias="champion")).aliases == ("champion",)


def test_a_conditional_move_refuses_when_the_alias_moved_meanwhile(workspace: Workspace) -> None:
    db, _ = stores(workspace)
    for _ in range(3):
        fake_version(workspace, "a")
    move_alias(db, "a", "champion", 1)
    move_alias(db, "a", "champion", 2)  # another process, while the first decided
    with pytest.raises(ConflictError, match=r"it was a@1, it is a@2 now"):
        move_alias(db, "a", "champion", 3, expect=1)
    assert aliases_of(db, "a") == {"champion": 2}
    assert len(alias_history(db, "a")) == 2  # the refused move left no entry


@pytest.mark.parametrize("alias", ["", "1st", "latest", "LATEST", "a b", "x" * 64, "é", "a\n"])
def test_invalid_alias_names_are_refused(workspace: Workspace, alias: str) -> None:
    db, _ = stores(workspace)
    fake_version(workspace, "a")
    with pytest.raises(ValidationError, match="alias"):
        move_alias(db, "a", alias, 1)
    assert aliases_of(db, "a") == {}


def test_moving_an_alias_to_a_version_that_does_not_exist_is_refused(
    workspace: Workspace,
) -> None:
    db, _ = stores(workspace)
    fake_version(workspace, "a")
    with pytest.raises(NotFoundError, match="no version 5"):
        move_alias(db, "a", "champion", 5)
    with pytest.raises(NotFoundError, match="no model 'b'"):
        move_alias(db, "b", "champion", 1)


def test_a_version_an_alias_points_to_cannot_be_deleted(workspace: Workspace) -> None:
    db, _ = stores(workspace)
    fake_version(workspace, "a")
    fake_version(workspace, "a")
    move_alias(db, "a", "champion", 2)
    with pytest.raises(ConflictError, match="a@2 is champion"):
        delete_version(db, ModelRef("a", version=2))
    assert [v.version for v in list_versions(db, "a")] == [1, 2]
    with pytest.raises(ValidationError, match="by its number"):
        delete_version(db, ModelRef("a", alias="champion"))
    deleted, _ = delete_version(db, ModelRef("a", version=1))
    assert deleted.version == 1
    # Numbers are never given twice: the next version is 3, even after deleting.
    assert fake_version(workspace, "a").version == 3
    move_alias(db, "a", "champion", None)
    delete_version(db, ModelRef("a", version=3))
    assert fake_version(workspace, "a").version == 4


def test_a_registered_checkpoints_weights_outlive_its_runs_retention(
    workspace: Workspace,
) -> None:
    db, blobs = stores(workspace)
    version = fake_version(workspace, "a")
    # The run's retention drops the checkpoint: the registered version keeps its weights.
    dropped = retain(db, blobs, version.run_id, keep_last=0, keep_best=0, metric="x", mode="min")
    assert [c.step for c in dropped] == [version.step]
    assert blobs.exists(version.weights)
    assert not blobs.exists(dropped[0].state)  # what no version needs still goes


def _register_many(home: str, count: int) -> None:
    from hone.config import Workspace as W

    ws = W.discover(Path(home))
    for _ in range(count):
        fake_version(ws, "shared")


def test_processes_registering_at_once_never_share_a_number(workspace: Workspace) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_register_many, args=(str(workspace.home), 6)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    db, _ = stores(workspace)
    assert [v.version for v in list_versions(db, "shared")] == list(range(1, 19))
