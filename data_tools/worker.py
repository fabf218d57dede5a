"""Per-chunk work of the converter, run in worker processes (or in-process).

Two passes over byte-range chunks (see `chunks.py`):

* count: parse the training rows and count each categorical field's tokens;
* write: parse every row, map tokens to ids and write tf.train.Example
  records into one part file per (output split, chunk).

Rows are processed a batch (a few MB of input) at a time and column-wise:
transforms are memoized per raw value and token -> id lookups go through
`dict.get` inside `map`, which keeps the Python work per row small.

The job description lives in the module global `STATE`, set by the parent
before it forks the worker pool; tasks only carry chunk coordinates.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import os
from itertools import compress, repeat
from typing import Any

import numpy as np

from data_tools import chunks, formats, parsing
from data_tools.tfrecord import ExampleEncoder, RecordFileWriter
from data_tools.vocab import OOV_BYTES

MAX_SAMPLES = 100      # rejected lines kept per chunk (and overall)


@dataclasses.dataclass
class JobState:
    """Everything a worker needs; inherited through fork."""

    paths: list[str]
    layouts: list[formats.Layout]
    file_splits: list[str | None]      # None: rows split by hash
    split_names: list[str]             # names for hash-split rows
    fractions: list[float] | None
    seed: int
    parts_dir: str = ""
    compression: str = ""
    encodings: list[dict[bytes, bytes]] | None = None  # write pass


STATE: JobState | None = None


class ChunkProcessor:
    """Processes one chunk in `mode` 'count' or 'write'."""

    def __init__(self, mode: str, file_idx: int, chunk_idx: int) -> None:
        st = STATE
        self.mode, self.file_idx, self.chunk_idx = mode, file_idx, chunk_idx
        self.layout = st.layouts[file_idx]
        self.parser = parsing.Parser(self.layout)
        self.split = st.file_splits[file_idx]
        self.names = [self.split] if self.split else st.split_names
        cats = self.layout.categorical
        self.memos = [{} for _ in self.layout.fields]
        self.counts = [collections.Counter() for _ in cats]
        self.read = collections.Counter()
        self.written = collections.Counter()
        self.positives = collections.Counter()  # rows written with label 1
        self.rejected = {s: collections.Counter() for s in self.names}
        self.samples: list[tuple[str, int, str, bytes]] = []
        self.writers: dict[str, RecordFileWriter] = {}
        if mode == "write":
            self.encoder = ExampleEncoder(len(cats), len(self.layout.numeric))
            self.heads = [self.encoder.head(n)
                          for n in range(10 * len(cats) + 1)]

    # -- columns ----------------------------------------------------------
    def _columns(self, cols, bad):
        enc = STATE.encodings
        cat_out, num_out, ci = [], [], 0
        for k, f in enumerate(self.layout.fields):
            col = cols[f.column]
            if f.kind == "numeric":
                num_out.append(parsing.resolve(col, self.memos[k], f.fn, bad))
                continue
            if self.mode == "count":
                out = col if f.fn is None else parsing.resolve(
                    col, self.memos[k], f.fn, bad)
            else:
                e = enc[ci]
                if f.fn is None:
                    out = list(map(e.get, col, repeat(OOV_BYTES)))
                else:
                    out = parsing.resolve(col, self.memos[k],
                                          _encoded(f.fn, e), bad)
            cat_out.append(out)
            ci += 1
        return cat_out, num_out

    def _records(self, cat_cols, num_cols, labels) -> list[bytes]:
        heads, enc = self.heads, self.encoder
        lab = [enc.label_bytes(0), enc.label_bytes(1)]
        packed = list(map(b"".join, zip(*cat_cols))) if cat_cols else \
            [b""] * len(labels)
        if num_cols:
            pre = enc.dense_prefix
            dense = list(map(enc._dense_fmt.pack, *num_cols))
            return [heads[len(p)] + p + pre + d + lab[y]
                    for p, d, y in zip(packed, dense, labels)]
        return [heads[len(p)] + p + lab[y] for p, y in zip(packed, labels)]

    # -- batches ----------------------------------------------------------
    def batch(self, lines: list[bytes], split_ids: np.ndarray | None,
              first_line_no: int) -> None:
        cols, labels, keep, rejects = self.parser.split_columns(lines)
        bad: dict[int, str] = {}
        cat_cols, num_cols = self._columns(cols, bad)
        if bad:
            good = [i not in bad for i in range(len(labels))]
            rejects += [(keep[i], r) for i, r in bad.items()]
            cat_cols = [list(compress(c, good)) for c in cat_cols]
            num_cols = [list(compress(c, good)) for c in num_cols]
            labels = list(compress(labels, good))
            keep = list(compress(keep, good))
        names = self.names
        for i, reason in sorted(rejects):
            s = names[int(split_ids[i])] if split_ids is not None else names[0]
            self.rejected[s][reason] += 1
            if len(self.samples) < MAX_SAMPLES:
                self.samples.append((s, first_line_no + i, reason, lines[i]))
        if split_ids is None:
            self.read[names[0]] += len(lines)
            groups = {0: None}
        else:
            for s, n in enumerate(np.bincount(split_ids, minlength=len(names))):
                self.read[names[s]] += int(n)
            sids = split_ids[np.asarray(keep, dtype=np.int64)]
            groups = {s: (sids == s).tolist() for s in range(len(names))}
        if self.mode == "count":
            mask = groups.get(0)
            for counter, col in zip(self.counts, cat_cols):
                counter.update(col if mask is None else compress(col, mask))
            return
        records = self._records(cat_cols, num_cols, labels)
        for s, mask in groups.items():
            recs = records if mask is None else list(compress(records, mask))
            if recs:
                self._writer(names[s]).write_batch(recs)
                self.written[names[s]] += len(recs)
                self.positives[names[s]] += sum(
                    labels if mask is None else compress(labels, mask))

    def _writer(self, split: str) -> RecordFileWriter:
        w = self.writers.get(split)
        if w is None:
            path = os.path.join(STATE.parts_dir, f"{split}.{self.file_idx:03d}"
                                f".{self.chunk_idx:05d}.part")
            w = self.writers[split] = RecordFileWriter(path, STATE.compression)
        return w


def _encoded(fn, encoding: dict[bytes, bytes]):
    """raw -> the id bytes of transform `fn`'s token (OOV if unknown)."""
    return lambda raw: encoding.get(fn(raw), OOV_BYTES)


def process_chunk(task: tuple[str, int, int, int, int]) -> dict[str, Any]:
    """Runs one (mode, file_idx, chunk_idx, start, end) task; returns counts."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # no cycles are made; collections would scan a big heap
    try:
        return _process_chunk(task)
    finally:
        if gc_was_enabled:
            gc.enable()


def _process_chunk(task: tuple[str, int, int, int, int]) -> dict[str, Any]:
    mode, file_idx, chunk_idx, start, end = task
    st = STATE
    proc = ChunkProcessor(mode, file_idx, chunk_idx)
    skip_header = chunk_idx == 0 and st.layouts[file_idx].has_header
    line_no = 1  # physical line number, 1-based, within this chunk
    for base, lines, stripped in chunks.read_lines(st.paths[file_idx], start,
                                                   end):
        split_ids = None
        if proc.split is None:
            offsets = chunks.line_offsets(base, lines, stripped)
            split_ids = chunks.assign_splits(offsets, st.seed, st.fractions)
        if skip_header:
            lines = lines[1:]
            split_ids = None if split_ids is None else split_ids[1:]
            line_no += 1
            skip_header = False
        proc.batch(lines, split_ids, line_no)
        line_no += len(lines)
    parts = {}
    for split, w in proc.writers.items():
        w.close()
        parts[split] = (w.path, w.rows)
    return {"mode": mode, "file_idx": file_idx, "chunk_idx": chunk_idx,
            "lines": line_no - 1, "read": dict(proc.read),
            "written": dict(proc.written),
            "positives": dict(proc.positives),
            "rejected": {s: dict(c) for s, c in proc.rejected.items() if c},
            "samples": proc.samples, "counts": proc.counts, "parts": parts}
