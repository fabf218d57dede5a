"""Rows of a `synth --profile` data set, chunk by chunk, in one process or
a pool of worker processes.

`RowGenerator(profile, seed, rows)` draws the columns of rows [lo, hi) of
a split from counter-based streams, runs the planted teacher over them
(in blocks aligned to the split's start) and draws the labels; `Chunk`
holds the rows' text, logits and labels. `ChunkSource.chunks(...)` yields
a split's chunks in order, generated in `workers` spawned processes that
each hold their own generator (the same, being a function of the seed)
and use one BLAS thread (which also made it faster: on 2 cores shared
with other jobs, one process with two BLAS threads gave 28k Criteo
rows/s, one with one thread 62k, two with one thread each 82k). At most
2 x workers chunks are in flight, so memory stays bounded when the writer
is slower than the workers.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Iterator
from typing import Any, Self

import numpy as np

from data_tools import hashrng, profiles, textrows
from data_tools.planted import CALIBRATION_ROWS, PlantedTeacher, shares_for
from data_tools.synth_columns import Draw

TEXT_ROWS = 1 << 15  # rows formatted at once (bounds the text buffers)


@dataclasses.dataclass
class Chunk:
    """Rows [lo, hi) of a split: their raw text, float64 logits, labels."""

    lo: int
    text: bytes
    z: np.ndarray
    y: np.ndarray


class RowGenerator:
    """Rows of one profile, seed and training size (which caps the
    vocabularies); the teacher (its cross part's variance share
    `cross_share`, None: planted.SHARES) is calibrated on construction."""

    def __init__(self, profile: profiles.Profile, seed: int,
                 rows: int, cross_share: float | None = None) -> None:
        self.profile, self.seed, self.rows = profile, seed, rows
        fields = [f for c in profile.columns
                  for f in c.teacher_fields(rows, seed)]
        self.teacher = PlantedTeacher(
            fields, hashrng.stream_key(seed, profile.name),
            shares_for(cross_share))
        _, parts = self._columns("calibration", 0, CALIBRATION_ROWS)
        self.teacher.calibrate(parts, profile.positive_rate)

    def _columns(self, split: str, lo: int, hi: int
                 ) -> tuple[list[Any], np.ndarray]:
        draw = Draw(self.seed, split, self.rows)
        pos = np.arange(lo, hi, dtype=np.int64)
        data = [c.sample(draw, pos) for c in self.profile.columns]
        idx = np.stack([i for c, d in zip(self.profile.columns, data)
                        for i in c.teacher_indices(d)], axis=1)
        return data, self.teacher.raw_parts(idx)

    def chunk(self, split: str, lo: int, hi: int) -> Chunk:
        """Rows [lo, hi) of `split`; `lo` a multiple of planted.BLOCK."""
        data, parts = self._columns(split, lo, hi)
        z = self.teacher.logits(parts)
        u = hashrng.uniform(hashrng.stream_key(self.seed, split, "label"),
                            np.arange(lo, hi, dtype=np.int64))
        y = (u < 1.0 / (1.0 + np.exp(-z))).astype(np.int8)
        return Chunk(lo, self._text(data, y), z, y)

    def _text(self, data: list[Any], y: np.ndarray) -> bytes:
        p = self.profile
        pieces = []
        for a in range(0, len(y), TEXT_ROWS):
            b = a + TEXT_ROWS
            cells = [c.cells(_rows(d, a, b), self.seed)
                     for c, d in zip(p.columns, data)]
            cells.insert(p.label_index, textrows.decimal(
                y[a:b].astype(np.int64)))
            pieces.append(textrows.join_rows(cells, p.sep))
        return b"".join(pieces)


def _rows(data: Any, a: int, b: int) -> Any:
    if isinstance(data, dict):
        return {k: v[a:b] for k, v in data.items()}
    return data[a:b]


# ------------------------------------------------------------ worker pool
_WORKER: RowGenerator | None = None


def _init_worker(profile: str, seed: int, rows: int,
                 cross_share: float | None) -> None:
    global _WORKER
    _WORKER = RowGenerator(profiles.PROFILES[profile], seed, rows,
                           cross_share)


def _work(split: str, lo: int, hi: int) -> Chunk:
    assert _WORKER is not None
    return _WORKER.chunk(split, lo, hi)


def _describe() -> dict[str, Any]:
    assert _WORKER is not None
    return _WORKER.teacher.describe()


_ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                "MKL_NUM_THREADS")}


class ChunkSource:
    """`with ChunkSource(profile, seed, rows, workers[, cross_share]) as
    src:` then `src.chunks(split, n, chunk_rows)` and `src.describe()`.

    Always a spawned pool, even of one process: the pool's processes start
    with one BLAS thread, and OpenBLAS rounds a matrix product's rows
    differently with one thread and with several (seen: one float32 logit
    in 1500 differed in its last bit), so the output would depend on the
    thread count otherwise. Scripts that call it need the
    `if __name__ == "__main__":` guard of multiprocessing's spawn.
    """

    def __init__(self, profile: str, seed: int, rows: int,
                 workers: int, cross_share: float | None = None) -> None:
        self.profile, self.seed, self.rows = profile, seed, rows
        shares_for(cross_share)  # a bad share fails here, not in a child
        self.cross_share = cross_share
        self.workers = max(1, workers)
        self._pool: Any = None

    def __enter__(self) -> Self:
        import multiprocessing
        saved = {k: os.environ.get(k) for k in _ONE_THREAD}
        os.environ.update(_ONE_THREAD)  # read by the children at start
        try:
            self._pool = multiprocessing.get_context("spawn").Pool(
                self.workers, _init_worker, (self.profile, self.seed,
                                             self.rows, self.cross_share))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.terminate()
        self._pool.join()

    def describe(self) -> dict[str, Any]:
        """The teacher's description (formula, sizes, calibration)."""
        return self._pool.apply(_describe)

    def chunks(self, split: str, n: int, chunk_rows: int
               ) -> Iterator[Chunk]:
        """The chunks of rows [0, n) of `split`, in order."""
        bounds = iter([(lo, min(n, lo + chunk_rows))
                       for lo in range(0, n, chunk_rows)])
        pending: collections.deque = collections.deque()
        for lo, hi in bounds:
            pending.append(self._pool.apply_async(_work, (split, lo, hi)))
            if len(pending) >= 2 * self.workers:
                break
        while pending:
            chunk = pending.popleft().get()
            nxt = next(bounds, None)
            if nxt is not None:
                pending.append(self._pool.apply_async(_work, (split,
                                                              *nxt)))
            yield chunk
