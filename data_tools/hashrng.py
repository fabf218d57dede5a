"""Counter-based random numbers: splitmix64 of (stream key, counter).

A value is a pure function of a 64-bit stream key and a counter (a row's
position, or a token's code), so any slice of rows can be generated alone
and a token's hidden parameters need no table: the same (key, counter)
always gives the same number. `stream_key(*tags)` turns a seed and names
into a key (BLAKE2b of their repr, so it is the same in every process);
`bits` is splitmix64's output function applied to key + counter * gamma,
the state splitmix64 itself would reach at step `counter`.
"""

from __future__ import annotations

import hashlib

import numpy as np

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_PI = 2.0 * np.pi


def stream_key(*tags: object) -> int:
    """A 64-bit key from a seed and names, e.g. `stream_key(0, "label")`."""
    digest = hashlib.blake2b(repr(tags).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def bits(key: int, counter: np.ndarray) -> np.ndarray:
    """64 random bits (uint64) per counter."""
    z = np.asarray(counter).astype(np.uint64) * GAMMA
    z += np.uint64(key)
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def uniform(key: int, counter: np.ndarray) -> np.ndarray:
    """Uniform float64 in (0, 1) from the top 53 bits."""
    z = bits(key, counter) >> np.uint64(11)
    return (z.astype(np.float64) + 0.5) * 2.0 ** -53


def normal_pair(key: int, counter: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Two independent N(0, 1) float64 per counter (Box-Muller over the
    two 32-bit halves of one hash)."""
    z = bits(key, counter)
    u1 = ((z >> np.uint64(32)).astype(np.float64) + 0.5) * 2.0 ** -32
    u2 = ((z & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) * 2.0 ** -32
    r = np.sqrt(-2.0 * np.log(u1))
    angle = _TWO_PI * u2
    return r * np.cos(angle), r * np.sin(angle)


def normals(key: int, counter: np.ndarray, k: int) -> np.ndarray:
    """`k` independent N(0, 1) per counter: float64 (len(counter), k)."""
    counter = np.asarray(counter)
    out = np.empty((counter.shape[0], k))
    for j in range(0, k, 2):
        a, b = normal_pair(stream_key(key, j), counter)
        out[:, j] = a
        if j + 1 < k:
            out[:, j + 1] = b
    return out


def code32(key: int, counter: np.ndarray) -> np.ndarray:
    """A 32-bit code (uint64 holding 0..2^32-1) per counter: a token's
    raw id, like Criteo's hashed 8-hex-digit values."""
    return bits(key, counter) >> np.uint64(32)
