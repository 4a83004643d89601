"""The one metadata schema, as SQLAlchemy Core tables.

Domain layers own repositories over these tables; migrations in ``migrations/`` create and
evolve them. Times are seconds since the epoch (UTC) as doubles. A metric value of NULL is
NaN: SQLite cannot store NaN, so NULL is how both backends record it faithfully.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

__all__ = [
    "PARAM_INDEX_PREFIX",
    "alias_events",
    "artifacts",
    "checkpoints",
    "dataset_versions",
    "datasets",
    "experiments",
    "latest_metrics",
    "loop_leases",
    "metadata",
    "metric_series",
    "metrics",
    "model_aliases",
    "model_exports",
    "model_versions",
    "params",
    "prediction_feedback",
    "prediction_harvests",
    "predictions",
    "quarantine",
    "registered_models",
    "run_inputs",
    "runs",
    "tags",
    "tune_journal",
    "tune_studies",
    "tune_workers",
]

ID = String(32)
KEY = String(250)
DOUBLE = Float(precision=53)
# 64-bit on PostgreSQL; INTEGER on SQLite, where only that spelling aliases the rowid.
SERIAL = BigInteger().with_variant(Integer, "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("created_at", DOUBLE, nullable=False),
)

# Rows keyed by run carry no foreign key to runs: each process journals on its own, and a
# DDP rank's points may reach the store before rank 0 has written the run row.
runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("experiment_id", ID, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", DOUBLE, nullable=False),
    Column("end_time", DOUBLE, nullable=True),
    Column("parent_run_id", ID, nullable=True),
    Column("git_commit", String(64), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("host", String(250), nullable=True),
    Column("user", String(250), nullable=True),
    Column("source", Text, nullable=True),
    Column("environment", Text, nullable=True),  # JSON: python, platform, packages
    # The time of the record that set the status: a write with an older time loses, so a
    # late replay of an old journal cannot turn a resumed run back to finished.
    Column("status_time", DOUBLE, nullable=False, server_default="0"),
    # Covers the id too, so filters never read the (wide) run rows they reject.
    Index(None, "experiment_id", "start_time", "id"),
    Index(None, "parent_run_id"),
)

#: Characters of a param value that its index holds: PostgreSQL's B-tree takes rows of at
#: most ~2.7 kB, and values may be 8,000 characters. Filters compare this prefix too.
PARAM_INDEX_PREFIX = 100

params = Table(
    "params",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)
Index(
    "ix_params_key_value_prefix",
    params.c.key,
    func.substr(params.c.value, 1, PARAM_INDEX_PREFIX),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    # The time of the record that set the value: the newest write wins, in any replay order.
    Column("updated_at", DOUBLE, nullable=False, server_default="0"),
)

# One row per (run, key): points refer to it by a small integer, so each point's key in
# the metrics B-tree is two integers rather than two strings (faster writes, ~half the size).
metric_series = Table(
    "metric_series",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("run_id", ID, nullable=False),
    Column("key", KEY, nullable=False),
    UniqueConstraint("run_id", "key"),
)

metrics = Table(
    "metrics",
    metadata,
    Column("series_id", SERIAL, primary_key=True, autoincrement=False),
    Column("step", BigInteger, primary_key=True, autoincrement=False),
    Column("value", DOUBLE, nullable=True),
    Column("timestamp", DOUBLE, nullable=False),
    # On SQLite the table *is* its primary-key B-tree: half the writes per point.
    sqlite_with_rowid=False,
)

# The value at the highest step of each (run, key): what filters and tables show.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("value", DOUBLE, nullable=True),
    Column("timestamp", DOUBLE, nullable=False),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DOUBLE, nullable=False),
    Index(None, "digest"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("created_at", DOUBLE, nullable=False),
)

# One row per immutable version; its id is the sha256 of its manifest (a blob). The
# summary (schema, counts, statistics, lineage) is kept here too, so that listing and
# showing versions never reads blobs.
dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("dataset_id", ID, ForeignKey("datasets.id"), nullable=False),
    Column("created_at", DOUBLE, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("operation", String(32), nullable=False),
    Column("parents", Text, nullable=False),  # JSON list of version ids
    Column("summary", Text, nullable=False),  # JSON
    Column("source", Text, nullable=True),  # where it came from, for people (not hashed)
    Index(None, "dataset_id", "created_at"),
)

# The dataset versions a run read (recorded through its journal, like everything a run logs).
run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("split", String(250), primary_key=True),  # "" when the run read every split
    Column("dataset", String(250), nullable=False),
)

# Journal records the store refused (or that were malformed), kept with the reason instead
# of blocking the rest of their journal. The id digests (run, record), so replaying the same
# journal twice sets a record aside once. ``record`` is ASCII JSON (NUL bytes and lone
# surrogates escaped), truncated, so that it is storable whatever made the original fail.
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("run_id", ID, nullable=True),
    Column("kind", String(32), nullable=False),
    Column("record", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("record_time", DOUBLE, nullable=True),
    Column("quarantined_at", DOUBLE, nullable=False),
    Column("host", String(250), nullable=True),
    Column("segment", String(250), nullable=True),
    Index(None, "run_id"),
)

# The parameter library's index: a run's saved training states (blobs) by optimizer step.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column("step", BigInteger, primary_key=True, autoincrement=False),
    Column("epoch", Integer, nullable=False),
    Column("weights", String(64), nullable=False),  # safetensors
    Column("state", String(64), nullable=False),  # optimizer, scheduler, RNG, position
    Column("size", BigInteger, nullable=False),
    Column("metrics", Text, nullable=False),  # JSON: the metrics at that step
    Column("created_at", DOUBLE, nullable=False),
    Index(None, "weights"),
    Index(None, "state"),
)

# Tuning studies: what hone knows of a study beside Optuna's own record of it (the journal).
# ``budget`` is the number of trials wanted; ``claimed`` how many have been handed out: a
# process claims one (a conditional UPDATE) before it asks Optuna for a trial, so processes
# on any number of machines never run more trials than the budget.
tune_studies = Table(
    "tune_studies",
    metadata,
    Column("name", KEY, primary_key=True),
    Column("run_id", ID, nullable=False),  # the study's run: its trials are child runs
    Column("config", Text, nullable=False),  # JSON: recipe, data, space, metric, sampler, ...
    Column("budget", Integer, nullable=False),
    Column("claimed", Integer, nullable=False),
    Column("created_at", DOUBLE, nullable=False),
    Column("result", Text, nullable=True),  # JSON: the best trial and its best checkpoint
)

# Optuna's journal of each study (its JournalStorage's log): one row per operation, numbered
# from 0 without gaps in the order every process replays them.
tune_journal = Table(
    "tune_journal",
    metadata,
    Column("study", KEY, primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("body", Text, nullable=False),
)

# The processes working on a study, each seen every few seconds: a running trial whose
# process is no longer seen was interrupted, and ``--resume`` gives its budget back.
tune_workers = Table(
    "tune_workers",
    metadata,
    Column("study", KEY, primary_key=True),
    Column("worker", String(64), primary_key=True),
    Column("host", String(250), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DOUBLE, nullable=False),
    Column("seen_at", DOUBLE, nullable=False),
)

# The model registry: a registered model is a name; its versions are numbered from 1 (a
# deleted version's number is not given again) and never change (``body`` is JSON: recipe,
# params, signature, preprocessing, metrics, commit, where it came from); a version's
# weights are a checkpoint's blob, kept while it is here.
registered_models = Table(
    "registered_models",
    metadata,
    Column("name", KEY, primary_key=True),
    Column("created_at", DOUBLE, nullable=False),
    Column("last_version", Integer, nullable=False),  # numbers are never given twice
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("model", KEY, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("run_id", ID, nullable=False),
    Column("step", BigInteger, nullable=False),  # the checkpoint's
    Column("weights", String(64), nullable=False),  # the checkpoint's safetensors blob
    Column("dataset_version", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DOUBLE, nullable=False),
    Column("created_by", String(250), nullable=False),
    Index(None, "weights"),
    Index(None, "run_id"),
)

# Where each alias of a model points now; ``alias_events`` is every move, kept for ever
# (from NULL: set; to NULL: removed), citing the evaluation run of a promotion.
model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model", KEY, primary_key=True),
    Column("alias", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DOUBLE, nullable=False),
)

alias_events = Table(
    "alias_events",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("model", KEY, nullable=False),
    Column("alias", String(100), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("at", DOUBLE, nullable=False),
    Column("who", String(250), nullable=False),
    Column("why", Text, nullable=True),
    Column("run_id", ID, nullable=True),
    Index(None, "model", "id"),
)

# A version's exported files (blobs), one per format, with how each was verified against
# the eager model and what made it (``body`` JSON: max abs difference, rows, opset,
# package versions).
model_exports = Table(
    "model_exports",
    metadata,
    Column("model", KEY, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("format", String(32), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DOUBLE, nullable=False),
    Index(None, "digest"),
)

# What served models were asked and answered (the application data). An input is kept
# inline when small, else as a blob (input_digest); prediction and label are JSON values in
# the dataset's own terms, so live accuracy is a comparison of two columns.
predictions = Table(
    "predictions",
    metadata,
    Column("request_id", ID, primary_key=True),
    Column("model", KEY, nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", DOUBLE, nullable=False),
    Column("input", LargeBinary, nullable=True),
    Column("input_digest", String(64), nullable=True),
    Column("prediction", Text, nullable=False),
    Column("probabilities", LargeBinary, nullable=True),
    Column("latency_ms", DOUBLE, nullable=False),
    Column("label", Text, nullable=True),
    Column("labeled_at", DOUBLE, nullable=True),
    Index(None, "model", "at"),
)
# Partial indexes: a prediction's row is written with neither a label nor (mostly) a blob,
# so the serving path pays for neither index.
Index(
    "ix_predictions_model_labeled_at",
    predictions.c.model,
    predictions.c.labeled_at,
    sqlite_where=predictions.c.label.is_not(None),
    postgresql_where=predictions.c.label.is_not(None),
)
Index(
    "ix_predictions_input_digest",
    predictions.c.input_digest,
    sqlite_where=predictions.c.input_digest.is_not(None),
    postgresql_where=predictions.c.input_digest.is_not(None),
)

# Every label given for a prediction, corrections included (the prediction's row holds the
# latest).
prediction_feedback = Table(
    "prediction_feedback",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("request_id", ID, nullable=False),
    Column("label", Text, nullable=False),
    Column("previous", Text, nullable=True),
    Column("at", DOUBLE, nullable=False),
    Column("who", String(250), nullable=False),
    Column("source", String(32), nullable=False),
    Index(None, "request_id"),
)

# Which dataset versions took a labeled prediction in (harvest), as which sample and split.
prediction_harvests = Table(
    "prediction_harvests",
    metadata,
    Column("request_id", ID, primary_key=True),
    Column("dataset_version", String(64), primary_key=True),
    Column("sample_id", BigInteger, nullable=False),
    Column("split", String(100), nullable=False),
    Column("label", Text, nullable=False),
    Index(None, "dataset_version"),
)

# Who is running the feedback loop of a model now: one loop run at a time per model, on any
# number of machines (a lease, renewed while the run lives; a stale one may be taken over).
loop_leases = Table(
    "loop_leases",
    metadata,
    Column("model", KEY, primary_key=True),
    Column("holder", ID, nullable=False),
    Column("run_id", ID, nullable=True),
    Column("who", String(250), nullable=False),
    Column("started_at", DOUBLE, nullable=False),
    Column("renewed_at", DOUBLE, nullable=False),
)
