"""JSON answers written by orjson (NaN and infinities as null, NumPy values directly)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

__all__ = ["json_response"]


def json_response(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )
