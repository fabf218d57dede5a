"""Vectorized text rows: numpy columns -> the bytes of TSV/CSV lines.

Each column becomes a right-aligned byte matrix (rows x width) and the
length of each cell (0 = empty, a missing value); `join_rows` lays the
columns side by side with separators and keeps only each cell's bytes.
No Python loop over rows: about 10x faster than "\\t".join per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Cells = tuple[np.ndarray, np.ndarray]  # (uint8 rows x width, int64 lengths)

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_POW10 = [np.uint64(10 ** k) for k in range(1, 20)]


def decimal(values: np.ndarray, missing: np.ndarray | None = None) -> Cells:
    """Integers (int64 or uint64) as decimal text; `missing` cells empty."""
    values = np.asarray(values)
    n = values.shape[0]
    if values.dtype == np.uint64:
        neg = np.zeros(n, dtype=bool)
        mag = values.copy()
    else:
        neg = values < 0
        # -(-2^63) does not fit int64; no generator makes it
        mag = np.abs(values).astype(np.uint64)
    digits = np.ones(n, dtype=np.int64)
    for p in _POW10:
        digits += mag >= p
    width = int(digits.max(initial=1)) + int(neg.any())
    chars = np.empty((n, width), dtype=np.uint8)
    ten = np.uint64(10)
    for k in range(width - 1, -1, -1):
        chars[:, k] = (mag % ten).astype(np.uint8) + 48
        mag //= ten
    lens = digits + neg
    if neg.any():
        rows = np.nonzero(neg)[0]
        chars[rows, width - lens[rows]] = ord("-")
    if missing is not None:
        lens = np.where(missing, 0, lens)
    return chars, lens


def hex8(codes: np.ndarray, missing: np.ndarray | None = None) -> Cells:
    """32-bit codes as 8 lowercase hex digits (Criteo's token form)."""
    codes = np.asarray(codes, dtype=np.uint64)
    shifts = np.arange(28, -1, -4, dtype=np.uint64)
    chars = _HEX[((codes[:, None] >> shifts) & np.uint64(15)).astype(
        np.intp)]
    lens = np.full(codes.shape[0], 8, dtype=np.int64)
    if missing is not None:
        lens[missing] = 0
    return chars, lens


def join_rows(columns: Sequence[Cells], sep: bytes) -> bytes:
    """Rows of `columns` joined by `sep` (one byte), each ending in '\\n'."""
    n = columns[0][0].shape[0]
    widths = [c.shape[1] for c, _ in columns]
    total = sum(widths) + len(columns)  # a separator or '\n' after each
    out = np.empty((n, total), dtype=np.uint8)
    keep = np.empty((n, total), dtype=bool)
    at = 0
    for i, ((chars, lens), w) in enumerate(zip(columns, widths)):
        out[:, at:at + w] = chars
        keep[:, at:at + w] = np.arange(w) >= (w - lens)[:, None]
        at += w
        out[:, at] = ord(sep) if i + 1 < len(columns) else ord("\n")
        keep[:, at] = True
        at += 1
    return out[keep].tobytes()
