"""Byte-range chunks of input files, streamed line reading, and split hashing.

Input files are cut into chunks at line starts so that worker processes can
read them in parallel without ever holding a whole file in memory. When a
single file is split into train/valid/test (`--split 8:1:1 --seed N`), each
row's split is a seeded hash of the row's byte offset in the file: like a row
index it identifies the row, but it is known without counting earlier lines,
so every chunk can assign its rows independently and deterministically.
"""

from __future__ import annotations

import os
from typing import Iterator, Optional, Sequence

import numpy as np

MiB = 1 << 20
READ_BLOCK = 4 * MiB


def read_first_line(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.readline(1 << 24)


def plan_chunks(path: str, num_chunks: int) -> list[tuple[int, int]]:
    """Cuts `path` into about `num_chunks` (start, end) byte ranges at line starts."""
    size = os.path.getsize(path)
    bounds = [0]
    with open(path, "rb") as f:
        for k in range(1, num_chunks):
            target = size * k // num_chunks
            if target <= bounds[-1]:
                continue
            f.seek(target - 1)
            f.readline()  # to the start of the next line
            pos = min(f.tell(), size)
            if pos > bounds[-1] and pos < size:
                bounds.append(pos)
    bounds.append(size)
    return list(zip(bounds[:-1], bounds[1:]))


def chunk_count(size: int, shards: int, max_chunk_bytes: int = 32 * MiB,
                min_chunk_bytes: int = 1 * MiB, min_chunks: int = 8) -> int:
    """Chunks for a file of `size` bytes, a multiple of `shards`.

    Chunks are at most `max_chunk_bytes`, and files over `min_chunk_bytes`
    get up to `min_chunks` chunks so that several workers share them. The
    count does not depend on the number of workers, so neither does the
    output (rows go to shard floor(chunk * shards / chunks)).
    """
    wanted = max(1, -(-size // max_chunk_bytes),
                 min(min_chunks, size // min_chunk_bytes))
    return shards * -(-wanted // shards)


def read_lines(path: str, start: int, end: int
               ) -> Iterator[tuple[int, list[bytes]]]:
    """Yields (byte offset of the first line, lines) for [start, end).

    `start` and `end` must be line starts (or the file end). Lines have their
    trailing newline (and carriage return) removed.
    """
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        base = start
        carry = b""
        while pos < end:
            data = f.read(min(READ_BLOCK, end - pos))
            if not data:
                break
            pos += len(data)
            if carry:
                data = carry + data
            lines = data.split(b"\n")
            carry = lines.pop()
            if lines:
                consumed = len(data) - len(carry)
                if b"\r" in data:
                    lines = [ln[:-1] if ln.endswith(b"\r") else ln
                             for ln in lines]
                yield base, lines
                base += consumed
        if carry:
            yield base, [carry[:-1] if carry.endswith(b"\r") else carry]


def line_offsets(base: int, lines: Sequence[bytes]) -> np.ndarray:
    """Byte offset of each line, given the first one's (lines had a newline)."""
    lens = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)) + 1
    return base + np.cumsum(lens) - lens


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def assign_splits(offsets: np.ndarray, seed: int,
                  fractions: Sequence[float]) -> np.ndarray:
    """Split index of each row: seeded hash of its byte offset vs cumulative fractions."""
    with np.errstate(over="ignore"):
        key = _splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
                          + np.zeros(1, np.uint64))
        h = _splitmix64(offsets.astype(np.uint64) ^ key)
    u = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    cum = np.cumsum(np.asarray(fractions, dtype=np.float64))
    cum /= cum[-1]
    return np.minimum(np.searchsorted(cum, u, side="right"),
                      len(fractions) - 1)


def parse_split_spec(spec: Optional[str]) -> Optional[list[float]]:
    """'8:1:1' -> [0.8, 0.1, 0.1] (2 or 3 positive parts)."""
    if spec is None:
        return None
    try:
        parts = [float(p) for p in spec.split(":")]
    except ValueError:
        parts = []
    if len(parts) not in (2, 3) or any(p <= 0 for p in parts):
        raise ValueError(
            f"--split should be 2 or 3 positive numbers like 8:1:1 "
            f"(train:valid[:test]). Received: {spec!r}")
    total = sum(parts)
    return [p / total for p in parts]
