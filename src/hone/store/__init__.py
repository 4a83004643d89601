"""The metadata store: one schema on SQLite or PostgreSQL, and the contract every
repository over it (tracking today; checkpoints, models and predictions next) relies on.

Contract (tested on both backends by ``tests/store/test_contract.py``):

Transactions
    ``Database.read()`` and ``Database.write()`` are one transaction each: a write commits
    when its block exits cleanly and rolls back otherwise. Any number of threads and
    processes may write at once; on SQLite writers take the lock up front (``BEGIN
    IMMEDIATE``) and queue on the busy timeout, so no write fails with "database is locked".
    Each transaction ends within ``HONE_STORE_TIMEOUT`` seconds (60 by default) or fails.

Who writes what
    Every process writes through its own journal first and applies records later, in
    batches, possibly more than once and in any order across processes (``hone sync`` on
    another machine, a late replay). So repository writes must be:
    - *idempotent* — keyed upserts (``store/upsert.py``): applying a batch twice leaves the
      store as applying it once;
    - *ordered by the record, not by arrival* — a write that replaces a value carries the
      time it was made, and the store keeps the newest (``upsert(..., newer=...)``):
      a run's status by ``runs.status_time``, a tag by ``tags.updated_at``, a metric step
      by its timestamp, ``latest_metrics`` by (step, timestamp);
    - *first-writer-wins where a value is fixed* — a param keeps the first value that
      reached the store; a different value is refused (and set aside), never overwritten;
    - free of cross-row foreign keys where rows come from different processes (a DDP rank's
      points may arrive before rank 0's run row).

What it raises (``store/translate.py`` maps driver errors by meaning)
    ``RejectedError`` — the store refused this value or query (too long for a column, text
    a backend cannot hold, a constraint, a query too large or deep); retrying cannot help.
    ``StoreUnavailableError`` — no answer (in time), or "busy": retrying later can.
    ``DiskFullError`` — the disk under the store is full. ``WorkspaceError`` — no hone
    schema, a schema at another revision, or a damaged database. Anything else is a
    ``HoneError`` with the driver's first line; a raw driver exception never escapes.

Nothing here migrates or creates anything on import or construction: ``hone init`` and
``hone db upgrade`` (``store/setup.py``) are the only writers of schema.
"""
