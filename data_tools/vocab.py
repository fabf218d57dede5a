"""Vocabularies: training-split token counts -> ordered token lists -> id maps.

Vocab file format (`DIR/vocab/<field>.txt`): one raw token per line, most
frequent first, ties broken by the token's bytes; line i (0-based) has id
i + NUM_RESERVED_IDS. Id 0 (PADDING_ID) is the empty / missing value and is
never in a vocabulary; id 1 (OOV_ID) is every token that is not in it
(unseen in training, or seen fewer than `--min-count` times).
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Iterable, Sequence

from tfdsmlp.schema import NUM_RESERVED_IDS, OOV_ID, PADDING_ID

from data_tools.tfrecord import varint

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def merge_counts(total: list[collections.Counter],
                 part: Sequence[collections.Counter]) -> None:
    """Adds per-field counters `part` into `total` (same field order)."""
    for tot, cnt in zip(total, part):
        if not tot:
            tot.update(cnt)  # fast path (C) on an empty counter
        else:
            get = tot.get
            for token, c in cnt.items():
                tot[token] = get(token, 0) + c


def build_vocab(counts: collections.Counter, min_count: int = 1
                ) -> list[bytes]:
    """Tokens with count >= min_count, by decreasing count then token bytes."""
    items = [(tok, c) for tok, c in counts.items()
             if c >= min_count and tok != b""]
    items.sort(key=lambda tc: (-tc[1], tc[0]))
    return [tok for tok, _ in items]


def vocab_filename(field_name: str) -> str:
    """Relative path of a field's vocabulary file (name made filesystem-safe)."""
    return f"vocab/{_SAFE.sub('_', field_name)}.txt"


def write_vocab(path: str, tokens: Iterable[bytes]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        for tok in tokens:
            f.write(tok)
            f.write(b"\n")


def read_vocab(path: str) -> list[bytes]:
    """Tokens of a vocab file, in id order (line i -> id i + 2)."""
    with open(path, "rb") as f:
        return f.read().split(b"\n")[:-1]


def encoding_map(tokens: Sequence[bytes]) -> dict[bytes, bytes]:
    """token -> varint bytes of its id; b'' (missing) -> padding id."""
    enc = {tok: varint(i + NUM_RESERVED_IDS) for i, tok in enumerate(tokens)}
    enc[b""] = varint(PADDING_ID)
    return enc


OOV_BYTES = varint(OOV_ID)


def id_to_token(tokens: Sequence[bytes], idx: int) -> str:
    """Readable token for an id: '' for missing, '<OOV>' for out-of-vocab."""
    if idx == PADDING_ID:
        return ""
    if idx == OOV_ID:
        return "<OOV>"
    return tokens[idx - NUM_RESERVED_IDS].decode("utf-8", "replace")
