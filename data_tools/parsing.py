"""Column-wise parsing of a batch of raw lines (see `formats.Layout`).

`Parser.split_columns` turns lines into per-column lists, checking column
count and label; `resolve` maps a column through a memoized transform.
Rejected rows are reported as (line index, reason).
"""

from __future__ import annotations

import csv
from itertools import compress, repeat
from operator import methodcaller

from data_tools import formats

MAX_MEMO = 2_000_000   # per-field transform cache entries before a reset


def resolve(col, memo: dict, compute, bad: dict) -> list:
    """Maps raw values through a memoized `compute`; bad[row] = reason.

    Only distinct values not seen before are computed; values that fail are
    not memoized and their rows get b"" (they are dropped by the caller).
    """
    if len(memo) > MAX_MEMO:
        memo.clear()
    failed = {}
    for raw in set(col).difference(memo):
        try:
            memo[raw] = compute(raw)
        except formats.RowError as e:
            failed[raw] = e.reason
    if not failed:
        return list(map(memo.__getitem__, col))
    for i, raw in enumerate(col):
        reason = failed.get(raw)
        if reason is not None:
            bad.setdefault(i, reason)
    return list(map(memo.get, col, repeat(b"")))


class Parser:
    """Splits lines into columns and checks column count and label."""

    def __init__(self, layout: formats.Layout) -> None:
        self.layout = layout
        self.label_floats = {float(k): v
                             for k, v in layout.label_values.items()}

    def split_columns(self, lines):
        """-> (columns, labels, kept line indices, [(line index, reason)]).

        Fast path: count separators per line, then split the joined good
        lines once and slice the flat list into columns. Whitespace-separated
        (libfm) batches take it when every line has single spaces; quoted CSV
        and irregular whitespace go row by row.
        """
        lay = self.layout
        sep, ncol = lay.sep or b" ", lay.num_columns
        ok = [c == ncol - 1 for c in map(methodcaller("count", sep), lines)]
        if ((lay.sep is None and not all(ok))
                or (lay.quoted_csv and b'"' in b"".join(lines))):
            rows, keep, rejects = self._split_rows(lines)
            cols = [list(c) for c in zip(*rows)] if rows else [[]] * ncol
        else:
            if all(ok):
                good, keep, rejects = lines, list(range(len(lines))), []
            else:
                good = list(compress(lines, ok))
                keep = list(compress(range(len(lines)), ok))
                rejects = [(i, self._count_reason(lines[i]))
                           for i, o in enumerate(ok) if not o]
            flat = sep.join(good).split(sep) if good else []
            cols = [flat[k::ncol] for k in range(ncol)]
        labels = list(map(lay.label_values.get, cols[lay.label_column]))
        if None in labels:
            for i, lab in enumerate(labels):
                if lab is None:
                    labels[i] = self._label_fallback(cols[lay.label_column][i])
            ok = [lab is not None for lab in labels]
            if not all(ok):
                rejects += [(keep[i], formats.BAD_LABEL)
                            for i, o in enumerate(ok) if not o]
                cols = [list(compress(c, ok)) for c in cols]
                labels = list(compress(labels, ok))
                keep = list(compress(keep, ok))
        return cols, labels, keep, rejects

    @staticmethod
    def _count_reason(line: bytes) -> str:
        return (formats.BLANK_LINE if not line.strip()
                else formats.WRONG_COLUMN_COUNT)

    def _split_rows(self, lines):
        lay = self.layout
        rows, keep, rejects = [], [], []
        for i, line in enumerate(lines):
            parts = line.split(lay.sep)
            if lay.quoted_csv and b'"' in line:
                parts = [p.encode() for p in next(csv.reader(
                    [line.decode("utf-8", "replace")]))]
            if len(parts) != lay.num_columns:
                rejects.append((i, self._count_reason(line)))
                continue
            rows.append(parts)
            keep.append(i)
        return rows, keep, rejects

    def _label_fallback(self, raw: bytes) -> int | None:
        try:
            return self.label_floats.get(float(raw))
        except ValueError:
            return None
