"""Raw rows of a dataset split, with the ids the converter gives them.

`read_raw_rows(data_dir, "test")` returns the split's rows as a client would
send them to the serving signature (one value per raw source column) plus
the reference `ids` / `dense` computed by the converter's own code
(`data_tools.formats` layouts and transforms, `data_tools.parsing.Parser`,
the dataset's vocabulary files), so `serve-check` and the tests can compare
the serving graph with the converter row by row.

Where the rows come from:
  1. the raw source file recorded in `dataset.json["sources"]` (for
     `--split` datasets, the rows the seeded hash sends to the split), when
     it still exists; rows the converter rejects are skipped, as it does;
  2. otherwise the split's TFRecords decoded through the vocabularies, which
     is exact for fields whose transform is `none` (synthetic datasets; an
     OOV id becomes a token that is not in the vocabulary).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.export.raw_features import RawInput, raw_inputs
from tfdsmlp.features import NUM_RESERVED_IDS, OOV_ID, PADDING_ID, FeatureSpec

import numpy as np


@dataclasses.dataclass
class RawRows:
    """Rows of raw values and their converter ids.

    `columns[input]` is a list of bytes (string inputs) or a float32 array
    (float inputs); `ids` int64 [n, C], `dense` float32 [n, N], `labels`
    float32 [n].
    """

    inputs: list[RawInput]
    columns: dict[str, Any]
    ids: np.ndarray
    dense: np.ndarray
    labels: np.ndarray
    origin: str

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, n: int | None = None) -> list[dict[str, Any]]:
        """[{input: str | bytes | float}] (strings decoded when UTF-8)."""
        n = len(self) if n is None else min(n, len(self))
        out = []
        for r in range(n):
            row = {}
            for i in self.inputs:
                v = self.columns[i.name][r]
                if i.dtype == "string":
                    try:
                        v = v.decode("utf-8")
                    except UnicodeDecodeError:
                        pass
                else:
                    v = float(v)
                row[i.name] = v
            out.append(row)
        return out

    def take(self, idx) -> RawRows:
        idx = np.asarray(idx, dtype=np.int64)
        cols = {}
        for i in self.inputs:
            col = self.columns[i.name]
            cols[i.name] = ([col[k] for k in idx] if i.dtype == "string"
                            else np.asarray(col)[idx])
        return RawRows(self.inputs, cols, self.ids[idx], self.dense[idx],
                       self.labels[idx], self.origin)

    def arrays(self) -> dict[str, np.ndarray]:
        """{input: [n] array}: object arrays of bytes, or float32."""
        return {i.name: (np.array(self.columns[i.name], dtype=object)
                         if i.dtype == "string" else
                         np.asarray(self.columns[i.name], np.float32))
                for i in self.inputs}


def _vocab_index(data: DatasetDir) -> dict[str, dict[bytes, int]]:
    from data_tools import vocab

    out = {}
    for f in data.spec.categorical:
        tokens = vocab.read_vocab(data.vocab_file(f.name))
        out[f.name] = {t: i + NUM_RESERVED_IDS for i, t in enumerate(tokens)}
    return out


def _source_file(meta: dict, split: str) -> tuple[str, bool] | None:
    """(path, hashed split?) of the raw file holding `split`, if present."""
    for src in meta.get("sources", []):
        if src.get("split") in (split, "all") and os.path.isfile(
                src.get("path", "")):
            if src.get("bytes") is not None and os.path.getsize(
                    src["path"]) != src["bytes"]:
                continue   # the file changed since the conversion
            return src["path"], src["split"] == "all"
    return None


def read_raw_rows(data_dir: str | os.PathLike, split: str = "test",
                  limit: int | None = None) -> RawRows:
    """The first `limit` (all if None) rows of `split` of dataset directory
    `data_dir` (a path or a `DatasetDir`); see module doc."""
    data = DatasetDir.open(data_dir)
    if split not in data.splits:
        raise ValueError(f"{data.path} has no split {split!r}; it has "
                         f"{sorted(data.splits)}")
    found = _source_file(data.meta, split)
    if found and (data.meta.get("options") or {}).get("format"):
        return _from_source(data, split, found[0], found[1], limit)
    return _from_records(data, split, limit)


def _from_source(data: DatasetDir, split: str, path: str, hashed: bool,
                 limit: int | None) -> RawRows:
    from data_tools import chunks, formats, parsing

    spec = data.spec
    opts = data.meta["options"]
    layout = formats.make_layout(
        opts["format"], chunks.read_first_line(path), path,
        criteo_numeric=opts.get("criteo_numeric") or "bucketize",
        fields=opts.get("fields"), label=opts.get("label"),
        categorical=opts.get("categorical"), numeric=opts.get("numeric"))
    got = [(f.name, f.kind, f.transform) for f in layout.fields]
    want = [(f.name, f.kind, f.transform) for f in spec.fields]
    if got != want:
        raise ValueError(f"{path} does not give the fields of {data.path} "
                         f"(layout {got} vs dataset {want})")
    vocabs = _vocab_index(data)
    inputs = raw_inputs(spec)
    parser = parsing.Parser(layout)
    fractions = chunks.parse_split_spec(opts.get("split")) if hashed else None
    split_idx = (["train", "valid", "test"].index(split) if hashed else None)
    first_def = {}
    for fd in layout.fields:
        first_def.setdefault(fd.source or fd.name, fd)
    cols: dict[str, list] = {i.name: [] for i in inputs}
    ids, dense, labels = [], [], []
    skip_header = layout.has_header
    # to the end of the data (a compressed source is longer decompressed)
    for base, lines, stripped in chunks.read_lines(path, 0):
        if hashed:
            sids = chunks.assign_splits(chunks.line_offsets(base, lines,
                                                            stripped),
                                        int(opts.get("seed") or 0), fractions)
        if skip_header:
            lines = lines[1:]
            if hashed:
                sids = sids[1:]
            skip_header = False
        if hashed:
            lines = [ln for ln, s in zip(lines, sids) if s == split_idx]
        split_cols, labs, _, _ = parser.split_columns(lines)
        for r in range(len(labs)):
            try:
                row_ids, row_dense = [], []
                for fd in layout.fields:
                    raw = split_cols[fd.column][r]
                    if fd.kind == "categorical":
                        tok = fd.fn(raw) if fd.fn else raw
                        row_ids.append(PADDING_ID if tok == b"" else
                                       vocabs[fd.name].get(tok, OOV_ID))
                    else:
                        row_dense.append(fd.fn(raw))
                values = {}
                for i in inputs:
                    fd = first_def[i.name]
                    raw = split_cols[fd.column][r]
                    # a client sends the cell text, or the number (an
                    # empty numeric cell is 0, as the converter reads it)
                    values[i.name] = (raw if i.dtype == "string"
                                      else formats.plain_number(raw))
            except formats.RowError:
                continue            # the converter rejects this row
            for k, v in values.items():
                cols[k].append(v)
            ids.append(row_ids)
            dense.append(row_dense)
            labels.append(labs[r])
            if limit is not None and len(labels) >= limit:
                break
        if limit is not None and len(labels) >= limit:
            break
    return _make(inputs, cols, ids, dense, labels, spec,
                 f"raw file {path}" + (f" (rows hashed to {split})"
                                       if hashed else ""))


def _make(inputs, cols, ids, dense, labels, spec: FeatureSpec, origin: str
          ) -> RawRows:
    n = len(labels)
    for i in inputs:
        if i.dtype == "float32":
            cols[i.name] = np.asarray(cols[i.name], np.float32).reshape(n)
    return RawRows(
        inputs, cols,
        np.asarray(ids, np.int64).reshape(n, spec.num_categorical),
        np.asarray(dense, np.float32).reshape(n, spec.num_numeric),
        np.asarray(labels, np.float32).reshape(n), origin)


def _from_records(data: DatasetDir, split: str, limit: int | None
                  ) -> RawRows:
    from data_tools.inspect_dataset import load_examples

    spec = data.spec
    bad = [f"{f.name} ({f.transform})" for f in spec.fields
           if f.transform != "none"]
    if bad:
        raise ValueError(
            f"Raw rows of {data.path} split {split!r} are not available: the "
            "source file in dataset.json['sources'] is missing (or changed) "
            f"and fields {bad} cannot be rebuilt from their tokens. Put the "
            "raw file back at its recorded path.")
    ex = load_examples(data.path, split, limit)
    vocabs = _vocab_index(data)
    tokens = {name: {v: k for k, v in idx.items()}
              for name, idx in vocabs.items()}
    inputs = raw_inputs(spec)
    by_field = {f.name: j for j, f in enumerate(spec.categorical)}
    by_num = {f.name: j for j, f in enumerate(spec.numeric)}
    cols: dict[str, list] = {}
    for i in inputs:
        name = i.fields[0]
        if i.dtype == "string":
            unseen = b"<unseen>"
            while unseen in vocabs[name]:
                unseen += b"_"
            table = tokens[name]
            cols[i.name] = [b"" if v == PADDING_ID else
                            unseen if v == OOV_ID else table[int(v)]
                            for v in ex["ids"][:, by_field[name]]]
        else:
            cols[i.name] = ex["dense"][:, by_num[name]]
    return _make(inputs, cols, ex["ids"], ex["dense"], ex["label"], spec,
                 f"{split} TFRecords of {data.path} decoded through the "
                 "vocabularies")
