"""`inspect`: print a dataset's schema and a few examples decoded to raw values.

Records are read back with TensorFlow (`tf.data` + `tf.io.parse_example`), an
independent check of the converter's hand-written Example and TFRecord bytes.
Ids are decoded through the vocab files: 0 -> "" (missing), 1 -> "<OOV>".
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import tfdsmlp  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)
from tfdsmlp.dataset_dir import DatasetDir

import numpy as np

from data_tools import vocab


def load_examples(data_dir: str, split: str = "train",
                  num: int | None = None) -> dict[str, np.ndarray]:
    """Parses the first `num` (all if None) records of a split into arrays.

    Returns {"ids": int64[n, num_categorical], "dense": float32[n, num_numeric],
    "label": float32[n]}.
    """
    import tensorflow as tf

    data = DatasetDir.open(data_dir)
    meta, spec = data.meta, data.spec
    files = data.files(split)
    features = {"label": tf.io.FixedLenFeature([1], tf.float32),
                "ids": tf.io.FixedLenFeature([spec.num_categorical], tf.int64)}
    if spec.num_numeric:
        features["dense"] = tf.io.FixedLenFeature([spec.num_numeric],
                                                  tf.float32)
    ds = tf.data.TFRecordDataset(files, compression_type=meta["compression"])
    if num is not None:
        ds = ds.take(num)
    ds = ds.batch(65536).map(lambda x: tf.io.parse_example(x, features))
    out: dict[str, list] = {k: [] for k in features}
    for batch in ds:
        for k, v in batch.items():
            out[k].append(v.numpy())
    arrays = {k: (np.concatenate(v) if v else
                  np.zeros((0,) + tuple(features[k].shape),
                           features[k].dtype.as_numpy_dtype))
              for k, v in out.items()}
    arrays["label"] = arrays["label"][:, 0]
    if "dense" not in arrays:
        arrays["dense"] = np.zeros((len(arrays["label"]), 0), np.float32)
    return arrays


def load_vocabs(data_dir: str) -> dict[str, list[bytes]]:
    """Field name -> vocabulary tokens (id i + 2 is tokens[i])."""
    data = DatasetDir.open(data_dir)
    return {f.name: vocab.read_vocab(data.vocab_file(f.name))
            for f in data.spec.categorical}


def decode_rows(data_dir: str, examples: dict[str, np.ndarray]
                ) -> list[dict[str, Any]]:
    """Examples -> [{"label": 0/1, field: raw token or float, ...}]."""
    spec = DatasetDir.open(data_dir).spec
    vocabs = load_vocabs(data_dir)
    rows = []
    for i in range(len(examples["label"])):
        row: dict[str, Any] = {"label": int(examples["label"][i])}
        for j, f in enumerate(spec.categorical):
            row[f.name] = vocab.id_to_token(vocabs[f.name],
                                            int(examples["ids"][i, j]))
        for j, f in enumerate(spec.numeric):
            row[f.name] = float(examples["dense"][i, j])
        rows.append(row)
    return rows


def inspect(data_dir: str, split: str = "train", num: int = 5,
            out: TextIO | None = None) -> None:
    """Prints the schema, counts and `num` decoded examples of `split`."""
    out = out or sys.stdout
    data = DatasetDir.open(data_dir)
    meta, spec = data.meta, data.spec
    p = lambda *a: print(*a, file=out)
    p(f"dataset: {data_dir}  (format_version {meta['format_version']}, "
      f"compression {meta['compression'] or 'none'}, "
      f"created by {meta.get('created_by', '?')})")
    p(f"fields: {spec.num_fields} ({spec.num_categorical} categorical -> "
      f"'ids', {spec.num_numeric} numeric -> 'dense'), label: "
      f"{meta['label']}")
    p(f"  {'#':>3}  {'name':<20} {'kind':<12} {'vocab_size':>10}  "
      f"{'transform':<18} source")
    for i, f in enumerate(spec.fields):
        size = f.vocab_size if f.kind == "categorical" else "-"
        p(f"  {i:>3}  {f.name:<20} {f.kind:<12} {size:>10}  "
          f"{f.transform:<18} {f.source}")
    p("splits:")
    for name, s in meta["splits"].items():
        rej = meta.get("rejected", {}).get(name, {})
        p(f"  {name:<6} {s['rows']:>12,} rows in {len(s['files'])} file(s); "
          f"rejected: {sum(rej.values())} {rej or ''}")
    if "synthetic" in meta:
        p(f"synthetic: {meta['synthetic'].get('formula', '')}")
    if num <= 0:
        return
    rows = decode_rows(data_dir, load_examples(data_dir, split, num))
    p(f"first {len(rows)} examples of {split!r} (ids decoded; '' = missing, "
      f"<OOV> = not in vocab):")
    for i, row in enumerate(rows):
        items = " ".join(f"{k}={v:g}" if isinstance(v, float) else
                         f"{k}={v!r}" if k != "label" else f"label={v}"
                         for k, v in row.items())
        p(f"  [{i}] {items}")
