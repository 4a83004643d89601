"""Reading a request's body: bounded in size, JSON, and (for predict) instances that fit the
model's signature. Every refusal is a ``Refusal`` with the HTTP status and a message that
names what was expected."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import orjson
from starlette.requests import ClientDisconnect, Request

from hone.errors import ValidationError
from hone.export.predictor import Predictor

__all__ = ["Refusal", "instances_of", "read_json"]


class Refusal(Exception):
    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


#: A body must arrive within this (a client that declares one and stalls holds nothing).
BODY_TIMEOUT_S = 30.0


async def read_json(request: Request, limit: int) -> tuple[Any, bytes]:
    """The request's JSON body, at most ``limit`` bytes: (the value, its text)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise Refusal(400, "Content-Length is not a number", "bad_request") from None
        if size > limit:
            raise Refusal(
                413, f"the body is {size:,} bytes; this server takes at most {limit:,}", "too_large"
            )
    try:
        body = await asyncio.wait_for(_read(request, limit), BODY_TIMEOUT_S)
    except ClientDisconnect:
        raise Refusal(
            400, "the client went away before sending the whole body", "bad_request"
        ) from None
    except TimeoutError:
        raise Refusal(
            408, f"the body did not arrive within {BODY_TIMEOUT_S:g} s", "bad_request"
        ) from None
    if not body:
        raise Refusal(400, "the body is empty; send JSON", "not_json")
    try:
        return orjson.loads(body), body
    except orjson.JSONDecodeError as exc:
        hint = ""
        if b"NaN" in body or b"Infinity" in body:
            hint = " (NaN and Infinity are not JSON numbers, nor features a model can use)"
        raise Refusal(400, f"the body is not JSON: {str(exc)[:200]}{hint}", "not_json") from None


async def _read(request: Request, limit: int) -> bytes:
    parts, size = [], 0
    async for part in request.stream():  # counted as it comes (a chunked body has no length)
        size += len(part)
        if size > limit:
            raise Refusal(
                413, f"the body is over {limit:,} bytes, the most this server takes", "too_large"
            )
        parts.append(part)
    return b"".join(parts)


def instances_of(body: Any, text: bytes, predictor: Predictor, max_instances: int) -> np.ndarray:
    """The ``instances`` of a predict body (``text`` is the body as sent) as the model's
    input rows."""
    signature = predictor.signature
    expected = (
        f'send {{"instances": [...]}}: a list of 1 to {max_instances:,} instances, each '
        f"{_one(signature.dtype, signature.shape)} (the model's input is {signature})"
    )
    if not isinstance(body, dict) or "instances" not in body:
        raise Refusal(422, f"no 'instances' field: {expected}", "bad_request")
    extra = sorted(set(body) - {"instances"})
    if extra:
        raise Refusal(
            422, f"unknown field(s) {', '.join(map(repr, extra[:5]))}: {expected}", "bad_request"
        )
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise Refusal(422, f"'instances' must be a non-empty list: {expected}", "bad_request")
    if len(instances) > max_instances:
        raise Refusal(
            413,
            f"{len(instances):,} instances in one request; this server takes at most "
            f"{max_instances:,}",
            "too_large",
        )
    if b"true" in text or b"false" in text:  # NumPy would silently read true as 1.0
        _no_booleans(instances, expected)
    try:
        x = np.asarray(instances)
    except (ValueError, TypeError, OverflowError) as exc:
        raise Refusal(
            422,
            f"the instances do not make one array ({str(exc)[:120]}): {expected}",
            "bad_request",
        ) from None
    if x.dtype == object:
        raise Refusal(
            422,
            "the instances hold nulls, values that are not numbers, or numbers too large for "
            f"{signature.dtype}: {expected}",
            "bad_request",
        )
    if x.dtype.kind in "USV":
        raise Refusal(422, f"the instances hold text, not numbers: {expected}", "bad_request")
    try:
        return predictor.check(x)
    except ValidationError as exc:
        message = str(exc).split(": ", 1)[-1]
        raise Refusal(422, f"{message}; {expected}", "bad_request") from None
    except OverflowError:
        raise Refusal(
            422, f"a number is too large for {signature.dtype}: {expected}", "bad_request"
        ) from None


def _one(dtype: str, shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return f"a list of {shape[0]} {dtype} numbers"
    return f"nested lists shaped {list(shape)} of {dtype} numbers"


def _no_booleans(instances: list[Any], expected: str) -> None:
    stack: list[Any] = [instances]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool):
            raise Refusal(422, f"{str(item).lower()} is not a number: {expected}", "bad_request")
