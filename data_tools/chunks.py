"""Byte-range chunks of input files, streamed line reading, and split hashing.

Input files are cut into chunks at line starts so that worker processes can
read them in parallel without ever holding a whole file in memory. When a
single file is split into train/valid/test (`--split 8:1:1 --seed N`), each
row's split is a seeded hash of the row's byte offset in the file: like a row
index it identifies the row, but it is known without counting earlier lines,
so every chunk can assign its rows independently and deterministically.
Offsets count from the end of a UTF-8 byte-order mark, and compressed files
are read decompressed (see `inputs.py`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence

from data_tools import inputs

MASK64 = (1 << 64) - 1

MiB = 1 << 20
READ_BLOCK = 4 * MiB


def read_first_line(path: str) -> bytes:
    """The first line (header or row), decompressed, without a BOM."""
    f, _origin = inputs.open_data(path)
    with f:
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
    return list(itertools.pairwise(bounds))


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


def read_lines(path: str, start: int, end: int | None = None
               ) -> Iterator[tuple[int, list[bytes], list[int] | None]]:
    """Yields (offset of the first line, lines, stripped) for [start, end).

    `start` and `end` (None: the end of the data) are file positions at
    line starts; a UTF-8 BOM at the start of the file is skipped and the
    offsets yielded count from its end (they are the same as for the file
    without it). Compressed files are read decompressed, positions then
    being in the decompressed bytes. Lines have their trailing newline and
    carriage return removed; `stripped` says, per line, how many bytes
    besides the newline were removed (1 for a carriage return), or is None
    when none were. `line_offsets` takes all three.
    """
    f, origin = inputs.open_data(path)
    with f:
        pos = max(start, origin)
        f.seek(pos)
        base = pos - origin
        carry = b""
        while end is None or pos < end:
            data = f.read(READ_BLOCK if end is None
                          else min(READ_BLOCK, end - pos))
            if not data:
                break
            pos += len(data)
            if carry:
                data = carry + data
            lines = data.split(b"\n")
            carry = lines.pop()
            if lines:
                consumed = len(data) - len(carry)
                yield (base, *_strip_cr(lines, b"\r" in data))
                base += consumed
        if carry:
            yield (base, *_strip_cr([carry], b"\r" in carry))


def _strip_cr(lines: list[bytes], has_cr: bool
              ) -> tuple[list[bytes], list[int] | None]:
    if not has_cr:
        return lines, None
    stripped = [int(ln.endswith(b"\r")) for ln in lines]
    return [ln[:-1] if s else ln for ln, s in zip(lines, stripped)], stripped


def line_offsets(base: int, lines: Sequence[bytes],
                 stripped: Sequence[int] | None = None):
    """Byte offset of each line (int64 array), given the first one's.

    Each line was followed by a newline and `stripped` more bytes (a
    carriage return) that `read_lines` removed.
    """
    import numpy as np  # imported here: the native converter's path skips it
    lens = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)) + 1
    if stripped is not None:
        lens += np.asarray(stripped, dtype=np.int64)
    return base + np.cumsum(lens) - lens


def splitmix64(x):
    """SplitMix64's output function of x + golden gamma, modulo 2^64.

    Works on a Python int and, element-wise, on a numpy uint64 array."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def seed_key(seed: int) -> int:
    """The per-seed key XORed into each row offset before hashing."""
    return splitmix64(seed & MASK64)


def cumulative_fractions(fractions: Sequence[float]) -> list[float]:
    """Split boundaries in [0, 1]: running sums of `fractions` / their total."""
    cum, total = [], 0.0
    for f in fractions:
        total += float(f)
        cum.append(total)
    return [c / total for c in cum]


def assign_splits(offsets, seed: int, fractions: Sequence[float]):
    """Split index of each row: seeded hash of its byte offset vs cumulative fractions.

    u = (splitmix64(offset ^ seed_key(seed)) >> 11) / 2^53; the row goes to
    the first split whose cumulative fraction is above u. The native
    converter (data_tools/native/ctrconvert.c, split_of) computes the same.
    """
    import numpy as np
    h = splitmix64(np.asarray(offsets).astype(np.uint64)
                   ^ np.uint64(seed_key(seed)))
    u = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    cum = np.asarray(cumulative_fractions(fractions))
    return np.minimum(np.searchsorted(cum, u, side="right"),
                      len(fractions) - 1)


def parse_split_spec(spec: str | None) -> list[float] | None:
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
