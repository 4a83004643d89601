"""NumPy ↔ Arrow for numbers, through buffers.

``pa.array(ndarray)`` and ``Array.to_numpy()`` import pandas when it is installed (about
0.4 s, holding the GIL, in every fresh process); building arrays from their buffers does
not, and never copies. Anything these do not cover (text, booleans, empty cells) goes
through pyarrow's own conversion.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["from_numpy", "strings", "to_numpy"]


_NUMPY = {
    kind: np.dtype(name)
    for kind, name in (
        (pa.int8(), "int8"),
        (pa.int16(), "int16"),
        (pa.int32(), "int32"),
        (pa.int64(), "int64"),
        (pa.uint8(), "uint8"),
        (pa.uint16(), "uint16"),
        (pa.uint32(), "uint32"),
        (pa.uint64(), "uint64"),
        (pa.float16(), "float16"),
        (pa.float32(), "float32"),
        (pa.float64(), "float64"),
    )
}


def to_numpy(array: pa.Array) -> np.ndarray:
    """A read-only view of a numeric array without empty cells; a converted copy of any
    other array."""
    dtype = _NUMPY.get(array.type)
    if dtype is not None and not array.null_count:
        data = array.buffers()[1]
        if data is not None:
            offset = array.offset * dtype.itemsize
            return np.frombuffer(data, dtype=dtype, count=len(array), offset=offset)
    converted: np.ndarray = array.to_numpy(zero_copy_only=False)
    return converted


def from_numpy(values: np.ndarray, kind: pa.DataType | None = None) -> pa.Array:
    """An Arrow array over a 1-D numeric array's memory (no copy); other arrays (text,
    booleans, objects) are converted by pyarrow."""
    if values.dtype.kind in "iuf" and values.dtype.isnative and values.ndim == 1:
        contiguous = np.ascontiguousarray(values)
        target = pa.from_numpy_dtype(contiguous.dtype)
        array = pa.Array.from_buffers(target, len(contiguous), [None, pa.py_buffer(contiguous)])
        return array if kind is None or kind == target else array.cast(kind)
    return pa.array(values, type=kind)


def strings(values: list[str]) -> pa.Array:
    """A string array of a few Python strings (split names), built from buffers."""
    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )
