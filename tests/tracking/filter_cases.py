r"""The filter corpus: nine runs and the runs each filter must find, on every backend.

Run names are also their ``params.s`` and ``tags.s``, so that each text case is checked on
an attribute, on params (an ``IN`` subquery) and on tags (an ``EXISTS`` probe). A filter
may name a run's id as ``{NAME}`` (e.g. ``{Alpha}``). Filters are raw strings: what a user
types, backslashes included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

INF = math.inf
NAN = math.nan


@dataclass(frozen=True)
class Spec:
    name: str
    experiment: str
    status: str
    start: float
    end: float | None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    host: str | None = None
    user: str | None = None
    git_commit: str | None = None
    parent: str | None = None  # a run name
    inputs: tuple[tuple[str, str, str], ...] = ()  # (dataset, version id, split)


RUNS = [
    Spec(
        "Alpha", "vision", "finished", 1000, 1100,
        params={"lr": "0.01", "opt": "adam", "path": "C:\\data", "q": "it's"},
        tags={"team": "cv", "note": "100%"},
        metrics={"acc": 0.95, "loss": 0.1},
        host="gpu-1", user="ann", git_commit="abc123",
        inputs=(("digits", "a" * 64, "train"),),
    ),
    Spec(
        "alpha", "vision", "failed", 2000, 2050,
        params={"lr": "0.1", "opt": "sgd", "path": "C:data", "q": 'say "hi"'},
        tags={"team": "CV", "note": "100 percent"},
        metrics={"acc": 0.80, "loss": 0.5},
        host="gpu-2", user="bob",
        inputs=(("digits", "b" * 64, "test"),),
    ),
    Spec(
        "ALPHA_2", "vision", "finished", 3000, 3300,
        params={"lr": "1e-2", "opt": "Adam"},
        tags={"note": "a_b"},
        metrics={"acc": 0.91},
        host="gpu-1", user="ann", git_commit="abc124",
        inputs=(("Digits-v2", "c" * 64, ""),),
    ),
    Spec(
        "alphaX2", "nlp", "killed", 4000, 4100,
        params={"lr": "0.001"},
        tags={"note": "axb", "empty": ""},
        metrics={"acc": NAN},
        user="Ann",
    ),
    Spec(
        "café", "nlp", "running", 5000, None,
        tags={"lang": "fr", "empty": ""},
        metrics={"acc": 0.99, "big": INF},
        host="gpu-3", user="bob", git_commit="abc123", parent="Alpha",
        inputs=(("iris", "d" * 64, "train"),),
    ),
    Spec(
        "CAFÉ", "nlp", "finished", 6000, 6060,
        tags={"lang": "FR"},
        metrics={"big": -INF, "val acc": 0.7},
        parent="Alpha",
    ),
    Spec(
        "Café", "nlp", "finished", 7000, 7070,
        tags={"lang": "fr-CA"},
        metrics={"acc": 0.5},
        host="gpu-1", user="ann", parent="café",
    ),
    Spec(
        "star*[x]?", "misc", "finished", 8000, 8001,
        tags={"odd key": "x", "emoji": "🚀"},
        metrics={"val acc": 0.2},
    ),
    Spec("back\\slash", "misc", "failed", 9000, 9500, host="gpu-1"),
]  # fmt: skip
ALL = {spec.name for spec in RUNS}
FINISHED = {"Alpha", "ALPHA_2", "CAFÉ", "Café", "star*[x]?"}
BACK = "back\\slash"
STAR = "star*[x]?"

# Patterns checked with like / ilike on `name`, `params.s` and `tags.s` alike (and their
# `not` forms, which must find the complement).
PATTERNS: list[tuple[str, set[str], set[str]]] = [
    # pattern as typed, like finds, ilike finds
    ("A%", {"Alpha", "ALPHA_2"}, {"Alpha", "alpha", "ALPHA_2", "alphaX2"}),
    ("alpha", {"alpha"}, {"Alpha", "alpha"}),
    ("ALPHA", set(), {"Alpha", "alpha"}),
    ("alpha_2", {"alphaX2"}, {"ALPHA_2", "alphaX2"}),
    (r"alpha\_2", set(), {"ALPHA_2"}),
    (r"%\_%", {"ALPHA_2"}, {"ALPHA_2"}),
    ("%_%", ALL, ALL),
    ("%", ALL, ALL),
    ("", set(), set()),
    ("%a", {"Alpha", "alpha"}, {"Alpha", "alpha"}),
    ("_____", {"Alpha", "alpha"}, {"Alpha", "alpha"}),
    # `_` is one character, é included; ilike folds A-Z only, never É/é
    ("caf_", {"café"}, {"café", "CAFÉ", "Café"}),
    ("café", {"café"}, {"café", "Café"}),
    ("CAFÉ", {"CAFÉ"}, {"CAFÉ"}),
    ("Caf%", {"Café"}, {"café", "CAFÉ", "Café"}),
    ("%É", {"CAFÉ"}, {"CAFÉ"}),
    # GLOB's own wildcards are plain characters in a like pattern
    ("star*%", {STAR}, {STAR}),
    ("s*%", set(), set()),
    ("%[x]%", {STAR}, {STAR}),
    ("%[%", {STAR}, {STAR}),
    ("%]?", {STAR}, {STAR}),
    ("%?", {STAR}, {STAR}),
    ("_tar%", {STAR}, {STAR}),
    ("*", set(), set()),
    # backslashes: \\ in a quoted string is one backslash; in a pattern it escapes
    (r"back\\\\slash", {BACK}, {BACK}),
    (r"back\\slash", set(), set()),
    (r"back\slash", set(), set()),
    ("back%slash", {BACK}, {BACK}),
    ("back_slash", {BACK}, {BACK}),
    (r"%\\\\%", {BACK}, {BACK}),
    (r"\A%", {"Alpha", "ALPHA_2"}, {"Alpha", "alpha", "ALPHA_2", "alphaX2"}),
]

# (filter, the runs it finds)
CASES: list[tuple[str, set[str]]] = [
    # equality is exact and case-sensitive everywhere
    ("name = 'Alpha'", {"Alpha"}),
    ("name = 'ALPHA'", set()),
    ('name = "alpha"', {"alpha"}),
    ("name == 'alpha' or name <> 'alpha' and name = 'Café'", {"alpha", "Café"}),
    ("NAME = 'Alpha'", {"Alpha"}),
    ("PARAMS.s = 'Alpha'", {"Alpha"}),
    ("params.S = 'Alpha'", set()),  # keys are case-sensitive
    ("name in ('Alpha', 'café', 'nobody')", {"Alpha", "café"}),
    ("name not in ('Alpha', 'café')", ALL - {"Alpha", "café"}),
    ("name = 'back\\slash'", {BACK}),
    (r"name = 'back\\slash'", {BACK}),
    # strings: quotes and backslashes
    (r"params.q = 'it\'s'", {"Alpha"}),
    ("params.q = \"it's\"", {"Alpha"}),
    (r'params.q = "say \"hi\""', {"alpha"}),
    (r"params.q like '%\'%'", {"Alpha"}),
    (r"params.path = 'C:\data'", {"Alpha"}),
    (r"params.path = 'C:\\data'", {"Alpha"}),
    (r"params.path like 'C:\\\\%'", {"Alpha"}),
    (r"params.path like 'C:\d%'", {"alpha"}),
    # a literal % or _ needs the escape; without it they are wildcards
    (r"tags.note like '100\%'", {"Alpha"}),
    ("tags.note like '100%'", {"Alpha", "alpha"}),
    ("tags.note = '100%'", {"Alpha"}),
    (r"tags.note like 'a\_b'", {"ALPHA_2"}),
    ("tags.note like 'a_b'", {"ALPHA_2", "alphaX2"}),
    (r"tags.note ilike '%\% '", set()),
    # empty strings are values, not missing
    ("tags.empty = ''", {"alphaX2", "café"}),
    ("tags.empty like ''", {"alphaX2", "café"}),
    ("tags.empty like '%'", {"alphaX2", "café"}),
    ("tags.empty != ''", set()),
    ("tags.empty is null", ALL - {"alphaX2", "café"}),
    # unicode and keys that need quoting
    ("tags.lang ilike 'FR'", {"café", "CAFÉ"}),
    ("tags.lang like 'fr%'", {"café", "Café"}),
    ("tags.lang in ('fr', 'FR')", {"café", "CAFÉ"}),
    ("tags.emoji = '🚀'", {STAR}),
    ("tags.emoji like '_'", {STAR}),
    ("tags.emoji like '__'", set()),
    ("tags.`odd key` = 'x'", {STAR}),
    ("tags.\"odd key\" = 'x'", {STAR}),
    ("tag.'odd key' like 'X'", set()),
    ("tag.'odd key' ilike 'X'", {STAR}),
    # numbers compared with text match the text as typed
    ("params.lr = 0.01", {"Alpha"}),
    ("params.lr = '0.01'", {"Alpha"}),
    ("params.lr = 1e-2", {"ALPHA_2"}),
    ("params.lr in (0.01, 0.1)", {"Alpha", "alpha"}),
    ("params.lr like '0.%'", {"Alpha", "alpha", "alphaX2"}),
    # missing keys: != and not in need the key, `not` is the complement
    ("params.lr != 0.01", {"alpha", "ALPHA_2", "alphaX2"}),
    ("params.lr not in ('0.01')", {"alpha", "ALPHA_2", "alphaX2"}),
    ("not params.lr = 0.01", ALL - {"Alpha"}),
    ("params.lr is null", {"café", "CAFÉ", "Café", STAR, BACK}),
    ("params.lr is not null", {"Alpha", "alpha", "ALPHA_2", "alphaX2"}),
    ("params.missing = 'x' or params.missing != 'x'", set()),
    ("params.opt ilike 'ADAM'", {"Alpha", "ALPHA_2"}),
    ("params.opt like 'adam'", {"Alpha"}),
    # metrics: the latest step; NaN matches no comparison but is not missing
    ("metrics.acc > 0.9", {"Alpha", "ALPHA_2", "café"}),
    ("metrics.acc >= 0.95", {"Alpha", "café"}),
    ("metrics.acc = 0.95", {"Alpha"}),
    ("metrics.acc != 0.95", {"alpha", "ALPHA_2", "café", "Café"}),
    ("not metrics.acc = 0.95", ALL - {"Alpha"}),
    ("metrics.acc < 0.1", set()),  # every run logged 0.0 at step 0 first
    ("metrics.acc in (0.5, 0.8)", {"alpha", "Café"}),
    ("metrics.acc not in (0.5, 0.8)", {"Alpha", "ALPHA_2", "café"}),
    ("metrics.acc is null", {"CAFÉ", STAR, BACK}),
    ("metrics.acc is not null", {"Alpha", "alpha", "ALPHA_2", "alphaX2", "café", "Café"}),
    ("metrics.acc > -1e999", {"Alpha", "alpha", "ALPHA_2", "café", "Café"}),
    ("metrics.acc > .9 and metrics.acc < +9.6E-1", {"Alpha", "ALPHA_2"}),
    ("metrics.big > 1e308", {"café"}),
    ("metrics.big = 1e999", {"café"}),
    ("metrics.big = -1e999", {"CAFÉ"}),
    ("metrics.big != 0", {"café", "CAFÉ"}),
    ("metrics.`val acc` > 0.5", {"CAFÉ"}),
    ('metrics."val acc" < 0.5', {STAR}),
    ("metric.'val acc' >= 0.2", {"CAFÉ", STAR}),
    ("metrics.loss <= 0.1", {"Alpha"}),
    # attributes, with MLflow's names
    ("start_time > 4500", {"café", "CAFÉ", "Café", STAR, BACK}),
    ("start_time >= 1000 and start_time < 3000", {"Alpha", "alpha"}),
    ("start_time in (1000, 2000.0)", {"Alpha", "alpha"}),
    ("attributes.start_time = 1000", {"Alpha"}),
    ("attributes.created > 8000", {BACK}),
    ("attributes.Created < 1500", {"Alpha"}),
    ("end_time is null", {"café"}),
    ("end_time is not null", ALL - {"café"}),
    ("end_time < 2100", {"Alpha", "alpha"}),
    ("not end_time < 2100", ALL - {"Alpha", "alpha"}),
    ("attributes.end_time != 1100", ALL - {"Alpha", "café"}),
    ("status = 'finished'", FINISHED),
    ("attributes.status = 'FINISHED'", FINISHED),
    ("status in ('failed', 'KILLED')", {"alpha", "alphaX2", BACK}),
    ("status != 'finished'", {"alpha", "alphaX2", "café", BACK}),
    ("status not in ('finished', 'failed')", {"alphaX2", "café"}),
    ("status like 'fin%'", FINISHED),
    ("status like 'FIN%'", set()),
    ("status ilike 'FIN%'", FINISHED),
    ("status not like 'FIN%'", ALL),
    ("experiment = 'nlp'", {"alphaX2", "café", "CAFÉ", "Café"}),
    ("experiment like 'vis%'", {"Alpha", "alpha", "ALPHA_2"}),
    ("experiment in ('misc', 'vision')", {"Alpha", "alpha", "ALPHA_2", STAR, BACK}),
    ("parent_run_id = '{Alpha}'", {"café", "CAFÉ"}),
    ("parent_run_id is null", ALL - {"café", "CAFÉ", "Café"}),
    ("parent_run_id != '{Alpha}'", {"Café"}),
    ("not parent_run_id = '{Alpha}'", ALL - {"café", "CAFÉ"}),
    ("id = '{alpha}'", {"alpha"}),
    ("run_id = '{alpha}'", {"alpha"}),
    ("attributes.run_id in ('{alpha}', '{Café}')", {"alpha", "Café"}),
    ("attributes.run_id not in ('{alpha}')", ALL - {"alpha"}),
    ("id like '{Alpha}'", {"Alpha"}),
    ("run_name = 'alpha' and run_id in ('{alpha}')", {"alpha"}),
    ("git_commit = 'abc123'", {"Alpha", "café"}),
    ("git_commit like 'abc%'", {"Alpha", "ALPHA_2", "café"}),
    ("git_commit != 'abc123'", {"ALPHA_2"}),
    ("git_commit is null", ALL - {"Alpha", "ALPHA_2", "café"}),
    ("host = 'gpu-1'", {"Alpha", "ALPHA_2", "Café", BACK}),
    ("host is null", {"alphaX2", "CAFÉ", STAR}),
    ("not host = 'gpu-1'", {"alpha", "alphaX2", "café", "CAFÉ", STAR}),
    ("host not like 'gpu-1'", {"alpha", "café"}),
    ("user = 'ann'", {"Alpha", "ALPHA_2", "Café"}),
    ("user ilike 'ann'", {"Alpha", "ALPHA_2", "alphaX2", "Café"}),
    ("user_id = 'bob'", {"alpha", "café"}),
    ("attributes.user_id like 'A%'", {"alphaX2"}),
    ("run_name = 'alpha'", {"alpha"}),
    ("attributes.run_name like 'A%'", {"Alpha", "ALPHA_2"}),
    ("attributes.`Run name` = 'Café'", {"Café"}),
    ("attribute.`run name` = 'Café'", {"Café"}),
    ("run.name = 'Alpha' or attr.name = 'alpha'", {"Alpha", "alpha"}),
    # a run's inputs (MLflow's datasets.*)
    ("datasets.name = 'digits'", {"Alpha", "alpha"}),
    ("dataset.name ilike 'DIGITS%'", {"Alpha", "alpha", "ALPHA_2"}),
    ("datasets.name like 'D%'", {"ALPHA_2"}),
    ("datasets.digest = '" + "c" * 64 + "'", {"ALPHA_2"}),
    ("datasets.context = 'train'", {"Alpha", "café"}),
    ("datasets.context in ('test', 'train')", {"Alpha", "alpha", "café"}),
    ("datasets.name is null", ALL - {"Alpha", "alpha", "ALPHA_2", "café"}),
    ("datasets.name is not null", {"Alpha", "alpha", "ALPHA_2", "café"}),
    ("not datasets.name = 'digits'", ALL - {"Alpha", "alpha"}),
    # and, or, not, parentheses
    ("(tags.team = 'cv' or tags.team = 'CV') and metrics.acc > 0.9", {"Alpha"}),
    ("tags.team = 'cv' or tags.team = 'CV' and metrics.acc > 0.9", {"Alpha"}),
    ("(tags.team = 'cv' or tags.team = 'CV') and not metrics.acc > 0.9", {"alpha"}),
    ("not (status = 'finished' or status = 'failed')", {"alphaX2", "café"}),
    ("not not status = 'killed'", {"alphaX2"}),
    ("not not not status = 'killed'", ALL - {"alphaX2"}),
    (
        "NOT (experiment = 'nlp') AND (params.opt = 'adam' OR params.opt = 'Adam')",
        {"Alpha", "ALPHA_2"},
    ),
    ("params.opt IN ('adam','sgd') AnD Not params.opt = 'adam'", {"alpha"}),
    ("((((name = 'Alpha'))))", {"Alpha"}),
    ("metrics.acc\n>\t0.9\r\nand  name='Alpha'", {"Alpha"}),
    ("", ALL),
    ("   ", ALL),
]  # fmt: skip


def like_cases() -> list[tuple[str, set[str]]]:
    """Every pattern with like, ilike and their negations, on an attribute, a param, a tag."""
    cases = []
    for pattern, like, ilike in PATTERNS:
        for field_name in ("name", "params.s", "tags.s"):
            cases += [
                (f"{field_name} like '{pattern}'", like),
                (f"{field_name} ilike '{pattern}'", ilike),
                (f"{field_name} not like '{pattern}'", ALL - like),
                (f"not {field_name} ilike '{pattern}'", ALL - ilike),
            ]
    return cases


# order_by → the run names in order (text by code point, missing values last, ties by
# start time, newest first)
ORDERS: list[tuple[list[str] | str, list[str]]] = [
    (["name"], sorted(ALL)),
    ("name desc", sorted(ALL, reverse=True)),
    (["metrics.acc desc"],
     ["café", "Alpha", "ALPHA_2", "alpha", "Café", BACK, STAR, "CAFÉ", "alphaX2"]),
    (["metrics.big"],
     ["CAFÉ", "café", BACK, STAR, "Café", "alphaX2", "ALPHA_2", "alpha", "Alpha"]),
    (["params.lr DESC"],
     ["ALPHA_2", "alpha", "Alpha", "alphaX2", BACK, STAR, "Café", "CAFÉ", "café"]),
    (["end_time"],
     ["Alpha", "alpha", "ALPHA_2", "alphaX2", "CAFÉ", "Café", STAR, BACK, "café"]),
    (["attributes.created asc"], [s.name for s in RUNS]),
    (["tags.lang", "name"],
     ["CAFÉ", "café", "Café", "ALPHA_2", "Alpha", "alpha", "alphaX2", BACK, STAR]),
    (["user", "start_time desc"],
     ["alphaX2", "Café", "ALPHA_2", "Alpha", "café", "alpha", BACK, STAR, "CAFÉ"]),
    (["tags.`odd key` desc", "experiment", "run_name"],
     [STAR, BACK, "CAFÉ", "Café", "alphaX2", "café", "ALPHA_2", "Alpha", "alpha"]),
]  # fmt: skip
