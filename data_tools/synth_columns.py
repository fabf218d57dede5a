"""Column generators of the Criteo- and Avazu-shaped synthetic profiles.

A column draws its values for rows `pos` (positions within a split) from
counter-based streams (hashrng), so any slice of rows is generated alone,
formats them as text, and hands the planted teacher the fields it sees:
`TeacherField`s with a small integer index per row (-1 = missing) and a
function from index to the 64-bit code that keys the hidden parameters.
The code is that of the token the converter will read: two indices with
one token (an 8-hex-digit collision) share it, so the true logit is a
function of the converted row.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from data_tools import hashrng, textrows

Missing = tuple[str, float, float]  # (group, lo, hi): missing if lo <= u < hi


@dataclasses.dataclass(frozen=True)
class Draw:
    """Where rows come from: the seed, the split's stream and the training
    row count (which caps the vocabularies)."""

    seed: int
    split: str
    rows: int

    def key(self, *tags: object) -> int:
        return hashrng.stream_key(self.seed, self.split, *tags)

    def missing(self, spec: Missing | None, pos: np.ndarray) -> np.ndarray:
        if spec is None:
            return np.zeros(pos.shape[0], dtype=bool)
        group, lo, hi = spec
        u = hashrng.uniform(self.key("missing", group), pos)
        return (u >= lo) & (u < hi)


def hex_code(token: bytes) -> int:
    return int(token, 16)


def int_code(token: bytes) -> int:
    return int(token) & 0xFFFFFFFFFFFFFFFF  # -1 -> 2^64 - 1, as uint64


@dataclasses.dataclass(frozen=True)
class TeacherField:
    """A field as the teacher sees it: indices in [0, domain), -1 missing;
    `code` maps indices to the codes that key the hidden parameters, and
    `token_code` a converted dataset's token (bytes) to the same code."""

    name: str
    domain: int
    code: Callable[[np.ndarray], np.ndarray]
    token_code: Callable[[bytes], int] = int_code


@functools.cache
def zipf_exponent(vocab: int, top_share: float) -> float:
    """Exponent a of p(rank r) ~ integral over [r+1, r+2) of x^-a, with
    ranks 0..vocab-1, that gives rank 0 the share `top_share` (0 if
    the share is at most uniform's 1/vocab)."""
    if vocab <= 1 or top_share <= 1.0 / vocab:
        return 0.0
    lo, hi = 0.0, 60.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _top(vocab, mid) < top_share else (lo, mid)
    return 0.5 * (lo + hi)


def _top(vocab: int, a: float) -> float:
    b = 1.0 - a
    if abs(b) < 1e-12:
        return math.log(2.0) / math.log(vocab + 1.0)
    return math.expm1(b * math.log(2.0)) / math.expm1(
        b * math.log(vocab + 1.0))


def zipf_ranks(u: np.ndarray, vocab: int, a: float) -> np.ndarray:
    """Inverse CDF of the bounded power law: uniforms -> ranks."""
    b = 1.0 - a
    lv = math.log(vocab + 1.0)
    if abs(b) < 1e-12:
        x = np.exp(u * lv)
    else:
        x = np.exp(np.log1p(u * math.expm1(b * lv)) / b)
    return np.clip(np.floor(x).astype(np.int64) - 1, 0, vocab - 1)


@dataclasses.dataclass(frozen=True)
class Categorical:
    """Zipf-distributed tokens. `full_vocab`: distinct values in the real
    data set; the vocabulary is min(full_vocab, training rows) and the
    exponent gives the most frequent token `top_share` of the present
    cells. Tokens are 8 hex digits (a 32-bit hash of seed, column, rank)
    or, with `ints`, the integers ints(rank)."""

    name: str
    full_vocab: int
    top_share: float
    missing: Missing | None = None
    ints: Callable[[np.ndarray], np.ndarray] | None = None

    def vocab(self, rows: int) -> int:
        return max(1, min(self.full_vocab, rows))

    def sample(self, draw: Draw, pos: np.ndarray) -> np.ndarray:
        v = self.vocab(draw.rows)
        u = hashrng.uniform(draw.key(self.name, "rank"), pos)
        rank = zipf_ranks(u, v, zipf_exponent(v, self.top_share))
        rank[draw.missing(self.missing, pos)] = -1
        return rank

    def code_fn(self, seed: int) -> Callable[[np.ndarray], np.ndarray]:
        """rank -> the token's code: its 32-bit value (hex tokens) or
        the integer itself (as uint64)."""
        if self.ints is not None:
            ints = self.ints
            return lambda rank: ints(rank).astype(np.uint64)
        key = hashrng.stream_key(seed, self.name, "token")
        return lambda rank: hashrng.code32(key, rank)

    def cells(self, rank: np.ndarray, seed: int) -> textrows.Cells:
        miss = rank < 0
        safe = np.maximum(rank, 0)
        if self.ints is not None:
            return textrows.decimal(self.ints(safe), miss)
        return textrows.hex8(self.code_fn(seed)(safe), miss)

    def teacher_fields(self, rows: int, seed: int) -> list[TeacherField]:
        return [TeacherField(self.name, self.vocab(rows), self.code_fn(seed),
                             int_code if self.ints else hex_code)]

    def teacher_indices(self, rank: np.ndarray) -> list[np.ndarray]:
        return [rank]


def linear_ints(base: int, step: int = 1, first: int | None = None
                ) -> Callable[[np.ndarray], np.ndarray]:
    """rank -> base + step * rank (or `first` for rank 0, then base +
    step * (rank - 1)): distinct integers per rank."""
    def f(rank: np.ndarray) -> np.ndarray:
        rank = np.asarray(rank, dtype=np.int64)
        if first is None:
            return base + step * rank
        return np.where(rank == 0, first, base + step * (rank - 1))
    return f


def listed_ints(values: tuple[int, ...]) -> Callable[[np.ndarray],
                                                     np.ndarray]:
    table = np.asarray(values, dtype=np.int64)
    return lambda rank: table[np.asarray(rank)]


def _bucket_thresholds() -> np.ndarray:
    """t[b-1] = the smallest v > 2 with floor(ln(v)^2) >= b, with
    Python's math.log, as the converter's log_square_bucket."""
    out = []
    for b in range(1, 470):
        v = max(3, math.ceil(math.exp(math.sqrt(b))) - 2)
        while math.floor(math.log(v) ** 2) < b:
            v += 1
        out.append(v)
    return np.asarray(out, dtype=np.int64)


BUCKET_THRESHOLDS = _bucket_thresholds()
MAX_COUNT = 2 ** 31 - 1
NEGATIVE_VALUES = np.array([-1, -2, -3])
NEGATIVE_CDF = np.array([0.85, 0.95, 1.0])


def log_square_bucket(v: np.ndarray) -> np.ndarray:
    """The converter's criteo bucket: v > 2 -> floor(ln(v)^2), else v."""
    return np.where(v > 2, np.searchsorted(BUCKET_THRESHOLDS, v, "right"), v)


@dataclasses.dataclass(frozen=True)
class Count:
    """A Criteo integer column: with probability p_negative a value in
    -1..-3 (85/10/5%), else 0 with probability p_zero, else
    max(1, round(exp(N(mu, sigma^2)))), at most 2^31 - 1. The teacher sees
    the converter's bucket floor(ln(v)^2) (v > 2) or v."""

    name: str
    p_zero: float
    mu: float
    sigma: float
    p_negative: float = 0.0
    missing: Missing | None = None

    def sample(self, draw: Draw, pos: np.ndarray) -> dict[str, np.ndarray]:
        kind = hashrng.uniform(draw.key(self.name, "kind"), pos)
        z, _ = hashrng.normal_pair(draw.key(self.name, "size"), pos)
        mag = np.minimum(np.rint(np.exp(self.mu + self.sigma * z)),
                         MAX_COUNT)
        v = np.maximum(mag, 1).astype(np.int64)
        v[kind < self.p_negative + self.p_zero] = 0
        neg = kind < self.p_negative
        if neg.any():
            u = hashrng.uniform(draw.key(self.name, "neg"), pos[neg])
            v[neg] = NEGATIVE_VALUES[np.searchsorted(NEGATIVE_CDF, u)]
        return {"value": v, "missing": draw.missing(self.missing, pos)}

    def cells(self, data: dict[str, np.ndarray], seed: int) -> textrows.Cells:
        return textrows.decimal(data["value"], data["missing"])

    def teacher_fields(self, rows: int, seed: int) -> list[TeacherField]:
        return [TeacherField(self.name, 3 + len(BUCKET_THRESHOLDS) + 3,
                             _identity_code, _bucket_code)]

    def teacher_indices(self, data: dict[str, np.ndarray]
                        ) -> list[np.ndarray]:
        idx = log_square_bucket(data["value"]) + 3
        return [np.where(data["missing"], -1, idx)]


def _identity_code(idx: np.ndarray) -> np.ndarray:
    return np.asarray(idx).astype(np.uint64)


def _bucket_code(token: bytes) -> int:
    return int(token) + 3  # the bucket's index, as teacher_indices


@dataclasses.dataclass(frozen=True)
class Hour:
    """Avazu's `hour` YYMMDDHH: a day of 2014-10-21..30 (uniform) and an
    hour with traffic ~ 1 + 0.6 sin(2 pi (h - 8) / 24) (busy afternoons).
    The converter turns it into hour_of_day and weekday; the teacher sees
    those two."""

    name: str = "hour"
    first_day: int = 21  # 2014-10-21, a Tuesday
    days: int = 10

    def sample(self, draw: Draw, pos: np.ndarray) -> dict[str, np.ndarray]:
        h = np.arange(24)
        w = 1.0 + 0.6 * np.sin(2 * np.pi * (h - 8) / 24)
        cdf = np.cumsum(w) / w.sum()
        u = hashrng.uniform(draw.key(self.name, "hour"), pos)
        hour = np.minimum(np.searchsorted(cdf, u, "right"), 23)
        day = np.minimum(
            (hashrng.uniform(draw.key(self.name, "day"), pos)
             * self.days).astype(np.int64), self.days - 1)
        return {"day": day, "hour": hour.astype(np.int64)}

    def cells(self, data: dict[str, np.ndarray], seed: int) -> textrows.Cells:
        return textrows.decimal(14100000 + 100 * (self.first_day
                                                  + data["day"])
                                + data["hour"])

    def teacher_fields(self, rows: int, seed: int) -> list[TeacherField]:
        return [TeacherField("hour_of_day", 24, _identity_code),
                TeacherField("weekday", 7, _identity_code)]

    def teacher_indices(self, data: dict[str, np.ndarray]
                        ) -> list[np.ndarray]:
        return [data["hour"], (1 + data["day"]) % 7]  # 2014-10-21: Tue = 1


@dataclasses.dataclass(frozen=True)
class RowId:
    """Avazu's `id`: a 64-bit hash of (seed, split, row), in decimal."""

    name: str = "id"

    def sample(self, draw: Draw, pos: np.ndarray) -> np.ndarray:
        return hashrng.bits(draw.key(self.name), pos)

    def cells(self, data: np.ndarray, seed: int) -> textrows.Cells:
        return textrows.decimal(data)

    def teacher_fields(self, rows: int, seed: int) -> list[TeacherField]:
        return []

    def teacher_indices(self, data: Any) -> list[np.ndarray]:
        return []
