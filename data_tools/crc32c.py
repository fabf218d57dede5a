"""CRC-32C (Castagnoli): TFRecord framing and the source-file checksum.

`masked_crc32c_batch` frames the converter's records (vectorized over a
batch with numpy); `crc32c_file` is dataset.json's `sources[].crc32c`, the
same value the native converter computes with the CPU's crc32 instruction
(data_tools/native/ctrconvert.c). `crc32c_combine` joins the CRCs of
consecutive pieces, as zlib's crc32_combine does for CRC-32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _crc32c_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table[i] = crc
    return table


_TABLE = _crc32c_table()
MASK_DELTA = 0xA282EAD8


def mask(crc):
    """TFRecord's masked CRC: rotated right by 15 bits, plus MASK_DELTA,
    modulo 2^32. Works on a Python int and on a numpy uint32 array."""
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def _word_tables() -> tuple[np.ndarray, np.ndarray]:
    """Tables for 4 CRC bytes at a time: state s -> TA[s & 0xFFFF] ^ TB[s >> 16]."""
    def four_bytes(state: np.ndarray) -> np.ndarray:
        for _ in range(4):
            state = _TABLE[state & 0xFF] ^ (state >> 8)
        return state

    x = np.arange(65536, dtype=np.uint32)
    return four_bytes(x), four_bytes(x << np.uint32(16))


_TABLE_LO, _TABLE_HI = _word_tables()


def masked_crc32c_batch(records: Sequence[bytes]) -> np.ndarray:
    """Masked CRC-32C of each record, vectorized over the batch (uint32[n])."""
    return mask(crc32c_batch(records))


def crc32c_batch(records: Sequence[bytes]) -> np.ndarray:
    """CRC-32C of each record, vectorized over the batch (uint32[n]).

    Records are sorted longest first so that, at each 4-byte step, the records
    still running form a prefix; each record's last `len % 4` bytes are then
    processed one at a time.
    """
    n = len(records)
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    lens = np.fromiter(map(len, records), dtype=np.int64, count=n)
    order = np.argsort(-lens, kind="stable")
    sorted_lens = lens[order]
    num_words = -(-int(sorted_lens[0]) // 4)
    width = 4 * num_words
    padded = b"".join([rec.ljust(width, b"\0") for rec in records])
    mat = np.frombuffer(padded, dtype=np.uint8).reshape(n, width)[order]
    words = np.ascontiguousarray(mat.view("<u4").T)  # [word, sorted record]
    full_words = sorted_lens // 4
    # active[k] = number of records with more than k full words.
    active = n - np.searchsorted(full_words[::-1], np.arange(num_words),
                                 side="right")
    crc = np.full(n, 0xFFFFFFFF, dtype=np.uint32)
    lo, hi = _TABLE_LO, _TABLE_HI
    for k in range(num_words):
        a = int(active[k])
        if a == 0:
            break
        c = crc[:a] ^ words[k, :a]
        crc[:a] = lo[c & 0xFFFF] ^ hi[c >> 16]
    rem = sorted_lens % 4
    for t in range(3):
        sel = np.nonzero(rem > t)[0]
        if sel.size == 0:
            break
        b = mat[sel, full_words[sel] * 4 + t]
        c = crc[sel]
        crc[sel] = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    crc ^= np.uint32(0xFFFFFFFF)
    out = np.empty(n, dtype=np.uint32)
    out[order] = crc
    return out


def crc32c(data: bytes) -> int:
    """Unmasked CRC-32C of one byte string (slow path, for checks)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = int(_TABLE[(crc ^ b) & 0xFF]) ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _gf2_times(mat: Sequence[int], vec: int) -> int:
    out, i = 0, 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def crc32c_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32C of A + B from crc(A), crc(B) and len(B) (zlib's method).

    crc1 is multiplied by x^(8 * len2) modulo the polynomial: the 32x32
    GF(2) matrix of one zero byte is applied for each set bit of len2 and
    squared between bits.
    """
    op = [0x82F63B78] + [1 << (n - 1) for n in range(1, 32)]  # a zero bit
    for _ in range(3):
        op = [_gf2_times(op, op[n]) for n in range(32)]  # ... then a byte
    while len2:
        if len2 & 1:
            crc1 = _gf2_times(op, crc1)
        len2 >>= 1
        if len2:
            op = [_gf2_times(op, op[n]) for n in range(32)]
    return crc1 ^ crc2


def crc32c_file(path: str, block: int = 1 << 14,
                blocks_per_read: int = 4096) -> str:
    """CRC-32C of a whole file as 8 hex digits (dataset.json `crc32c`).

    Reads `blocks_per_read` blocks at a time, computes every block's CRC at
    once with `crc32c_batch`, then folds them in order: crc(A + B) =
    shift(crc(A)) ^ crc(B), where shift (times x^(8 * block)) is linear and
    applied through four 256-entry tables.
    """
    basis = [crc32c_combine(1 << i, 0, block) for i in range(32)]
    shift = [[_gf2_times(basis, b << (8 * k)) for b in range(256)]
             for k in range(4)]
    t0, t1, t2, t3 = shift
    crc = 0  # the CRC of nothing; shift(0) = 0, so folding onto it is exact
    with open(path, "rb") as f:
        while data := f.read(block * blocks_per_read):
            full = len(data) // block
            parts = [data[i * block:(i + 1) * block] for i in range(full)]
            for c in (crc32c_batch(parts).tolist() if parts else []):
                crc = (t0[crc & 0xFF] ^ t1[(crc >> 8) & 0xFF]
                       ^ t2[(crc >> 16) & 0xFF] ^ t3[crc >> 24]) ^ c
            tail = data[full * block:]  # only at the end of the file
            if tail:
                crc = crc32c_combine(crc, int(crc32c_batch([tail])[0]),
                                     len(tail))
    return f"{crc:08x}"
