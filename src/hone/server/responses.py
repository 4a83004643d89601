"""JSON answers written by orjson (NaN and infinities as null, NumPy values directly)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

from hone.errors import HoneError

__all__ = ["Refused", "json_response"]


class Refused(HoneError):
    """A refusal whose HTTP status the endpoint chooses (to answer as another endpoint
    of hone's does for the same mistake)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def json_response(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )
