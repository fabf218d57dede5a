"""`synth`: a small synthetic CTR dataset whose true logit is known.

Every categorical field f has `vocab_size` tokens "c{f}_{t}" drawn with Zipf
popularity p(t) ~ (t + 1)^-1.1; each token has a first-order weight
w_f[t] ~ N(0, 0.5^2) and a latent value u_f[t] ~ N(0, 1) (a missing value,
1% of cells, has w = u = 0). Numeric fields are x_k ~ N(0, 1). The label is
y ~ Bernoulli(sigmoid(z)) with, for fields c0..c{F-1} (F = num_categorical)::

    z = -1.0 + sum_f w_f[t_f]                       first order
        + 1.2 u_0 u_1 + 1.2 u_2 u_3                 explicit pairwise
        + 1.0 u_3 u_4 u_5                           explicit 3rd order
        + 1.0 v . tanh(A [u_0..u_{F-1}] + a)        implicit (random MLP,
                                                    16 hidden units)
        + sum_k beta_k x_k                          numeric, beta = +-0.5
        + 0.8 x_0 u_{F-1}                           numeric x categorical

The products have no marginal effect (the u are centered), so a model that is
linear in one-hot features cannot see them: interactions matter. Everything
is a function of `seed`, so the same seed gives byte-identical files. The
same description, the coefficients and the AUC of the true logit on each
split are stored in dataset.json under "synthetic"; the true logits are in
`synthetic/<split>_logit.npy`.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from typing import Any

from tfdsmlp.features import (
    FORMAT_VERSION,
    NUM_RESERVED_IDS,
    OOV_ID,
    PADDING_ID,
    FieldSpec,
)
from tfdsmlp.metrics import roc_auc

import numpy as np

from data_tools import outputs, staging, vocab
from data_tools.tfrecord import ExampleEncoder, RecordFileWriter, varint

FORMULA = ("z = -1.0 + sum_f w_f[c_f] + 1.2*u0*u1 + 1.2*u2*u3 + 1.0*u3*u4*u5 "
           "+ 1.0*v.tanh(A u + a) + sum_k beta_k*x_k + 0.8*x0*u{F-1}; "
           "y ~ Bernoulli(sigmoid(z))")
MISSING_RATE = 0.01
HIDDEN = 16


def _generate(n: int, num_cat: int, num_num: int, vocab_size: int,
              rng: np.random.Generator) -> dict[str, Any]:
    """Draws the generator's parameters and `n` rows (token idx, -1 missing)."""
    w = rng.normal(0.0, 0.5, size=(num_cat, vocab_size))
    u = rng.normal(0.0, 1.0, size=(num_cat, vocab_size))
    A = rng.normal(0.0, 1.0 / np.sqrt(num_cat), size=(HIDDEN, num_cat))
    a = rng.normal(0.0, 0.5, size=HIDDEN)
    v = rng.normal(0.0, 1.0 / np.sqrt(HIDDEN), size=HIDDEN)
    beta = np.array([0.5 if k % 2 == 0 else -0.5 for k in range(num_num)])
    pop = 1.0 / np.arange(1, vocab_size + 1) ** 1.1
    pop /= pop.sum()
    tok = np.stack([rng.choice(vocab_size, size=n, p=pop)
                    for _ in range(num_cat)], axis=1)
    tok[rng.random(tok.shape) < MISSING_RATE] = -1
    x = rng.normal(0.0, 1.0, size=(n, num_num)).astype(np.float32)
    present = tok >= 0
    cols = np.arange(num_cat)
    W = np.where(present, w[cols, np.maximum(tok, 0)], 0.0)
    U = np.where(present, u[cols, np.maximum(tok, 0)], 0.0)
    z = (-1.0 + W.sum(1) + 1.2 * U[:, 0] * U[:, 1] + 1.2 * U[:, 2] * U[:, 3]
         + 1.0 * U[:, 3] * U[:, 4] * U[:, 5]
         + np.tanh(U @ A.T + a) @ v)
    if num_num:
        xd = x.astype(np.float64)
        z += xd @ beta + 0.8 * xd[:, 0] * U[:, num_cat - 1]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    return {"tok": tok, "x": x, "z": z, "y": y,
            "params": {"beta": beta.tolist(), "hidden": HIDDEN}}


def write_synthetic(out_dir: str, num_rows: int = 20000, seed: int = 0,
                    num_categorical: int = 8, num_numeric: int = 2,
                    vocab_size: int = 50, valid_rows: int | None = None,
                    test_rows: int | None = None, overwrite: bool = False,
                    compression: str = "") -> dict[str, Any]:
    """Writes a synthetic dataset directory; returns a summary dict."""
    if num_categorical < 6:
        raise ValueError(f"num_categorical should be >= 6 (fields c0..c5 carry "
                         f"the explicit interactions). Received: "
                         f"{num_categorical}")
    if num_numeric < 0 or vocab_size < 2 or num_rows < 1:
        raise ValueError(f"need num_numeric >= 0, vocab_size >= 2, "
                         f"num_rows >= 1. Received: {num_numeric}, "
                         f"{vocab_size}, {num_rows}")
    compression = (compression or "").upper()
    valid_rows = num_rows // 10 if valid_rows is None else valid_rows
    test_rows = num_rows // 10 if test_rows is None else test_rows
    staging.check_output_dir(out_dir, overwrite)
    rng = np.random.default_rng(seed)
    data = _generate(num_rows + valid_rows + test_rows, num_categorical,
                     num_numeric, vocab_size, rng)
    bounds = {"train": (0, num_rows),
              "valid": (num_rows, num_rows + valid_rows),
              "test": (num_rows + valid_rows,
                       num_rows + valid_rows + test_rows)}
    with staging.TempOutput(out_dir, overwrite) as tmp_output:
        tmp = tmp_output.path
        meta = _write(tmp, data, bounds, num_categorical, num_numeric,
                      vocab_size, compression)
        meta["synthetic"].update(seed=seed, num_rows=num_rows,
                                 valid_rows=valid_rows, test_rows=test_rows)
        meta["options"] = {"generator": "data_tools.synth", "seed": seed,
                           "num_rows": num_rows, "valid_rows": valid_rows,
                           "test_rows": test_rows,
                           "num_categorical": num_categorical,
                           "num_numeric": num_numeric,
                           "vocab_size": vocab_size,
                           "compression": compression}
        outputs.write_json(os.path.join(tmp, "dataset.json"), meta)
        tmp_output.commit()
    return {"out": out_dir,
            "rows": {s: b - a for s, (a, b) in bounds.items()},
            "true_auc": meta["synthetic"]["true_logit_auc"],
            "positive_rate": meta["synthetic"]["positive_rate"]}


def _write(tmp: str, data: dict, bounds: dict, num_cat: int, num_num: int,
           vocab_size: int, compression: str) -> dict[str, Any]:
    tok, x, z, y = data["tok"], data["x"], data["z"], data["y"]
    a, b = bounds["train"]
    fields, ids = [], np.zeros(tok.shape, dtype=np.int64)
    for f in range(num_cat):
        counts = np.bincount(tok[a:b, f][tok[a:b, f] >= 0],
                             minlength=vocab_size)
        names = [f"c{f}_{t}".encode() for t in range(vocab_size)]
        tokens = vocab.build_vocab(dict(zip(names, counts.tolist())), 1)
        rel = vocab.vocab_filename(f"c{f}")
        vocab.write_vocab(os.path.join(tmp, rel), tokens)
        id_of = np.full(vocab_size + 1, OOV_ID, dtype=np.int64)  # [-1] = pad
        id_of[-1] = PADDING_ID
        for i, t in enumerate(tokens):
            id_of[int(t.split(b"_")[1])] = i + NUM_RESERVED_IDS
        ids[:, f] = id_of[tok[:, f]]
        fields.append({**dataclasses.asdict(FieldSpec(
            f"c{f}", "categorical", len(tokens) + NUM_RESERVED_IDS, "none",
            f"c{f}")), "vocab_file": rel, "padding_id": PADDING_ID,
            "oov_id": OOV_ID})
    for k in range(num_num):
        fields.append(dataclasses.asdict(FieldSpec(f"x{k}", "numeric", 0,
                                                   "none", f"x{k}")))
    enc = ExampleEncoder(num_cat, num_num)
    table = [varint(i) for i in range(int(ids.max()) + 1)]
    dense = struct.Struct(f"<{num_num}f")
    ext = ".tfrecord.gz" if compression == "GZIP" else ".tfrecord"
    splits, aucs = {}, {}
    os.makedirs(os.path.join(tmp, "synthetic"))
    for split, (lo, hi) in bounds.items():
        os.makedirs(os.path.join(tmp, split))
        rel = f"{split}/part-00000{ext}"
        writer = RecordFileWriter(os.path.join(tmp, rel), compression)
        records = []
        for row, xs, lab in zip(ids[lo:hi].tolist(), x[lo:hi].tolist(),
                                y[lo:hi].tolist()):
            packed = b"".join([table[i] for i in row])
            records.append(enc.head(len(packed)) + packed
                           + (enc.dense_prefix + dense.pack(*xs)
                              if num_num else b"") + enc.label_bytes(lab))
        writer.write_batch(records)
        writer.close()
        splits[split] = {"rows": hi - lo, "files": [rel]}
        np.save(os.path.join(tmp, "synthetic", f"{split}_logit.npy"),
                z[lo:hi].astype(np.float32))
        both = hi > lo and 0 < int(y[lo:hi].sum()) < hi - lo
        aucs[split] = round(roc_auc(y[lo:hi], z[lo:hi]), 4) if both else None
    return {
        "format_version": FORMAT_VERSION, "label": "label",
        "compression": compression, "fields": fields, "splits": splits,
        "rejected": {s: {} for s in splits}, "sources": [],
        "created_by": "data_tools.synth",
        "synthetic": {
            "formula": FORMULA.replace("{F-1}", str(num_cat - 1)),
            "first_order": "w_f[t] ~ N(0, 0.5^2) per token",
            "latents": "u_f[t] ~ N(0, 1) per token; missing -> w = u = 0",
            "pairwise": [["c0", "c1", 1.2], ["c2", "c3", 1.2]],
            "third_order": [["c3", "c4", "c5", 1.0]],
            "implicit": f"1.0 * v.tanh(A u + a), {HIDDEN} hidden units over "
                        f"the latents of all {num_cat} fields",
            "numeric": {"beta": data["params"]["beta"],
                        "x0_times_u": [f"c{num_cat - 1}", 0.8]
                        if num_num else None},
            "token_popularity": "Zipf, p(t) ~ (t+1)^-1.1",
            "missing_rate": MISSING_RATE,
            "positive_rate": round(float(y.mean()), 4),
            "true_logit_auc": aucs,
            "true_logits": "synthetic/<split>_logit.npy",
        },
    }
