"""The server's Prometheus metrics, with the official client.

One worker keeps them in a registry of its own; with several workers (``PROMETHEUS_
MULTIPROC_DIR`` set by ``hone serve`` before they start) every worker writes its values to
that folder and ``/metrics`` adds them up, so any worker answers for all.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

from hone.predictions.recorder import RecorderStats

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Metrics:
    def __init__(self, model: str) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # Several workers: values go to the folder's files whatever the registry.
        registry = None if self.multiprocess else CollectorRegistry()
        self.registry = registry
        self.requests = Counter(
            "hone_requests",
            "Requests answered, by endpoint and status",
            ["endpoint", "status"],
            registry=registry,
        )
        self.errors = Counter(
            "hone_errors",
            "Requests refused or failed, by endpoint and reason",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "hone_request_latency_seconds",
            "Time from a predict request's arrival to its answer",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "hone_batch_size",
            "Rows per model call (dynamic batching)",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.instances = Counter("hone_instances", "Instances predicted", registry=registry)
        self.version = Gauge(
            "hone_model_version",
            "The model version being served",
            ["model"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.queued = Gauge(
            "hone_predictions_queued",
            "Answered predictions waiting in memory to be written to the store",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.spilled = Gauge(
            "hone_predictions_waiting_in_journal",
            "1 while the memory queue is full or the store is unreachable: records then wait "
            "in the local journal only",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.recorded = Counter(
            "hone_predictions_recorded", "Predictions journaled", registry=registry
        )
        self.written = Counter(
            "hone_predictions_written", "Predictions written to the store", registry=registry
        )
        self.write_failures = Counter(
            "hone_prediction_write_failures",
            "Failed writes of predictions to the store",
            registry=registry,
        )
        self.record_failures = Counter(
            "hone_prediction_record_failures",
            "Batches answered but not recorded (the journal's disk full)",
            registry=registry,
        )
        self.reloads = Counter(
            "hone_model_reloads",
            "Switches to a new version, by outcome",
            ["outcome"],
            registry=registry,
        )
        self._model = model
        self._seen = {
            "recorded": 0,
            "written": 0,
            "failures": 0,
            "reloads": 0,
            "reload_failures": 0,
        }
        self._predict_ok = self.requests.labels("predict", "200")

    def answered(self, seconds: float, instances: int) -> None:
        self._predict_ok.inc()
        self.latency.observe(seconds)
        self.instances.inc(instances)

    def refused(self, endpoint: str, status: int, reason: str) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.errors.labels(endpoint, reason).inc()

    def ok(self, endpoint: str) -> None:
        self.requests.labels(endpoint, "200").inc()

    def batch(self, rows: int) -> None:
        self.batch_size.observe(rows)

    def record_failed(self) -> None:
        self.record_failures.inc()

    def update(
        self, version: int, stats: RecorderStats | None, reloads: int, failures: int
    ) -> None:
        """Copy the recorder's and the reloader's counters into the metrics (every second)."""
        self.version.labels(self._model).set(version)
        if stats is not None:
            self.queued.set(stats.queued)
            self.spilled.set(1 if stats.full_since is not None else 0)
            self._count(self.recorded, "recorded", stats.recorded)
            self._count(self.written, "written", stats.written)
            self._count(self.write_failures, "failures", stats.failures)
        self._count(self.reloads.labels("switched"), "reloads", reloads)
        self._count(self.reloads.labels("failed"), "reload_failures", failures)

    def _count(self, counter: Counter, key: str, now: int) -> None:
        if now > self._seen[key]:
            counter.inc(now - self._seen[key])
            self._seen[key] = now

    def render(self) -> bytes:
        if self.multiprocess:
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        assert self.registry is not None
        return generate_latest(self.registry)
