"""Dynamic batching: concurrent requests answered by one onnxruntime call.

Requests queue their checked rows; one task takes whatever has queued (up to ``max_batch``
rows, after waiting at most ``max_wait_ms`` for more), runs the model once, and hands each
request its own rows' answers. With no wait configured a lone request is answered at once,
and under load the requests that arrived while the previous batch ran make the next one, so
batching costs a lone client nothing. Each row's answer is the model's for that row alone
(the rows of a batch are independent in the graph); the answers name the version that gave
them, and a batch is recorded before any of its requests is answered.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from hone.predictions import Answered, Recorder
from hone.serve.metrics import Metrics
from hone.serve.served import Holder, Served

__all__ = ["Answer", "Batcher"]

log = logging.getLogger("hone.serve")


@dataclass(frozen=True, slots=True)
class Answer:
    served: Served
    request_ids: list[str]
    outputs: list[Any]  # labels in the dataset's values (or numbers, for regression)
    probabilities: np.ndarray | None


@dataclass(slots=True)
class _Pending:
    x: np.ndarray
    arrived: float  # time.perf_counter() when the request came in
    future: asyncio.Future[Answer]
    served: Served  # the version its rows were checked against, and that answers them


class NoAnswer(ValueError):
    """The model's output for a request's rows is not a number (inputs far outside
    anything it was trained on): refused, and not recorded."""


class _Ids:
    """Request ids: 32 hex characters, unique across processes and restarts (a random
    prefix per process and a counter), cheaper than a UUID each."""

    def __init__(self) -> None:
        self.prefix = os.urandom(10).hex()
        self.counter = 0

    def take(self, n: int) -> list[str]:
        start = self.counter
        self.counter += n
        prefix = self.prefix
        return [f"{prefix}{i:012x}" for i in range(start, start + n)]


class Batcher:
    def __init__(
        self,
        holder: Holder,
        recorder: Recorder | None,
        metrics: Metrics,
        *,
        max_batch: int,
        max_wait_ms: float,
    ) -> None:
        self.holder, self.recorder, self.metrics = holder, recorder, metrics
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._wake = asyncio.Event()
        self._ids = _Ids()
        self._closing = False
        self._record_warned_at = -float("inf")

    async def predict(self, x: np.ndarray, arrived: float, served: Served) -> Answer:
        """The answers for ``x`` (rows ``served``'s predictor has checked)."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(x, arrived, future, served))
        self._queued_rows += len(x)
        self._wake.set()
        return await future

    async def run(self) -> None:
        """The batching task: runs until ``close`` and the queue is empty."""
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            # Let requests that are already readable join this batch.
            await asyncio.sleep(0)
            if self.max_wait_s and self._queued_rows < self.max_batch:
                deadline = time.perf_counter() + self.max_wait_s
                while self._queued_rows < self.max_batch and not self._closing:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), left)
                    except TimeoutError:
                        break
            items = self._take()
            try:
                self._answer(items)
            except Exception as exc:  # the batching task must outlive any one batch
                log.exception("hone: answering a batch failed")
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(exc)

    def _take(self) -> list[_Pending]:
        """The next batch: queued requests checked against one version (after a switch,
        the old version's requests finish on it), at most ``max_batch`` rows (a larger
        request alone)."""
        taken = [self._queue.popleft()]
        rows = len(taken[0].x)
        served = taken[0].served
        while (
            self._queue
            and self._queue[0].served is served
            and rows + len(self._queue[0].x) <= self.max_batch
        ):
            item = self._queue.popleft()
            taken.append(item)
            rows += len(item.x)
        self._queued_rows -= rows
        return taken

    def _answer(self, items: list[_Pending]) -> None:
        served = items[0].served
        try:
            x = items[0].x if len(items) == 1 else np.concatenate([item.x for item in items])
            prediction = served.predictor.run_checked(x)
            bad = _not_numbers(prediction.labels, prediction.probabilities)
        except Exception as exc:
            log.error(
                "hone: %s failed on a batch of %d requests: %s", served.version.ref, len(items), exc
            )
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        if bad is not None:  # refuse those requests, answer the others
            keep, start = [], 0
            kept_rows = np.ones(len(x), bool)
            for item in items:
                end = start + len(item.x)
                if bad[start:end].any():
                    kept_rows[start:end] = False
                    which = np.flatnonzero(bad[start:end]).tolist()
                    shown = ", ".join(map(str, which[:10])) + (" ..." if len(which) > 10 else "")
                    if not item.future.done():
                        item.future.set_exception(NoAnswer(f"instance(s) {shown}: {_NO_ANSWER}"))
                else:
                    keep.append(item)
                start = end
            if not keep:
                return
            items, x = keep, x[kept_rows]
            labels = prediction.labels[kept_rows]
            probabilities = (
                None if prediction.probabilities is None else prediction.probabilities[kept_rows]
            )
        else:
            labels, probabilities = prediction.labels, prediction.probabilities
        now = time.perf_counter()
        ids = self._ids.take(len(x))
        outputs = labels.tolist()
        if probabilities is not None:  # answers write rows of it as they are in memory
            probabilities = np.ascontiguousarray(probabilities, np.float32)
        self.metrics.batch(len(x))
        if self.recorder is not None:
            self._record(served, x, ids, outputs, probabilities, items, now)
        start = 0
        for item in items:
            end = start + len(item.x)
            if not item.future.done():  # a client that went away leaves a cancelled one
                item.future.set_result(
                    Answer(
                        served,
                        ids[start:end],
                        outputs[start:end],
                        None if probabilities is None else probabilities[start:end],
                    )
                )
            start = end

    def _record(
        self,
        served: Served,
        x: np.ndarray,
        ids: list[str],
        outputs: list[Any],
        probabilities: np.ndarray | None,
        items: list[_Pending],
        now: float,
    ) -> None:
        assert self.recorder is not None
        latency: list[float] = []
        for item in items:
            latency += [(now - item.arrived) * 1000.0] * len(item.x)
        batch = Answered(
            model=served.version.model,
            version=served.number,
            at=time.time(),
            request_ids=ids,
            inputs=x,
            outputs=outputs,
            probabilities=probabilities,
            latency_ms=latency,
        )
        try:
            self.recorder.record(batch)
        except Exception as exc:  # a full disk: answer anyway, and say so
            self.metrics.record_failed()
            if time.monotonic() - self._record_warned_at > 60:
                self._record_warned_at = time.monotonic()
                log.error("hone: predictions are answered but not recorded: %s", exc)

    async def close(self) -> None:
        """Answer what is queued, then stop."""
        self._closing = True
        self._wake.set()


_NO_ANSWER = (
    "the model's output for these inputs is not a number: values far outside anything it "
    "was trained on (beyond what float32 holds once preprocessed, say)"
)


def _not_numbers(labels: np.ndarray, probabilities: np.ndarray | None) -> np.ndarray | None:
    """Rows whose outputs are not finite, or None when every row's are (the usual case,
    checked with one pass over the batch)."""
    values = probabilities if probabilities is not None else labels
    if values.dtype.kind != "f":
        return None
    finite = np.isfinite(values)
    if finite.all():
        return None
    bad: np.ndarray = ~finite.reshape(len(values), -1).all(axis=1)
    return bad
