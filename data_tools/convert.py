"""`convert`: raw CTR data (Criteo, Avazu, libfm, CSV) -> a dataset directory.

Two streaming passes over byte-range chunks, spread over worker processes:

1. count the tokens of every categorical field on the training rows only and
   build the vocabularies (`--min-count`);
2. write every row as a tf.train.Example into per-chunk part files, which are
   then concatenated into `--shards` files per split.

Everything is written into a temporary directory next to the output, which
is renamed into place at the end, so a failed run never leaves a half-written
dataset. See docs/DATA_FORMAT.md for the layout and tfdsmlp/features.py for
the schema.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from typing import Any, Optional

from tfdsmlp.features import (FORMAT_VERSION, NUM_RESERVED_IDS, OOV_ID,
                              PADDING_ID, FieldSpec)

from data_tools import chunks, formats, outputs, passes, vocab, worker
from data_tools.outputs import ConvertError

SPLITS = ("train", "valid", "test")
AUTO_SHARD_BYTES = 256 << 20  # --shards default: one shard per 256 MiB


def _check_input(path: Optional[str], flag: str) -> None:
    if path is None:
        return
    if not os.path.exists(path):
        raise ConvertError(f"input file {path} ({flag}) does not exist")
    if not os.path.isfile(path):
        raise ConvertError(f"input file {path} ({flag}) is not a file")
    if os.path.getsize(path) == 0:
        raise ConvertError(f"input file {path} ({flag}) is empty")


def _split_list(value) -> Optional[list[str]]:
    if value is None or isinstance(value, (list, tuple)):
        return None if value is None else list(value)
    return [v.strip() for v in value.split(",") if v.strip()]


def _estimate_rows(path: str, size: int) -> int:
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    lines = max(1, head.count(b"\n"))
    return int(size * lines / max(1, len(head)))


def convert(format: str, train: str, out: str, *, valid: Optional[str] = None,
            test: Optional[str] = None, split: Optional[str] = None,
            seed: int = 0, fields=None, label: Optional[str] = None,
            categorical=None, numeric=None, criteo_numeric: str = "bucketize",
            min_count: int = 1, shards: Optional[int] = None,
            compression: str = "", max_reject_fraction: float = 0.01,
            overwrite: bool = False, workers: Optional[int] = None,
            quiet: bool = False) -> dict[str, Any]:
    """Converts raw files into a dataset directory; returns a summary dict.

    Args mirror the CLI flags (see `python -m data_tools convert --help`).
    `fields`, `categorical` and `numeric` take lists or comma-separated
    strings. Raises `ConvertError` with a user-facing message on bad input.
    """
    t0 = time.time()
    compression = (compression or "").upper()
    if compression not in ("", "GZIP"):
        raise ConvertError(f"--compression should be '' or GZIP. Received: "
                           f"{compression!r}")
    if min_count < 1:
        raise ConvertError(f"--min-count should be >= 1. Received: {min_count}")
    if shards is not None and shards < 1:
        raise ConvertError(f"--shards should be >= 1. Received: {shards}")
    try:
        fractions = chunks.parse_split_spec(split)
    except ValueError as e:
        raise ConvertError(str(e)) from None
    if fractions and (valid or test):
        raise ConvertError("use either --valid/--test files or --split, "
                           "not both")
    if format not in formats.FORMATS:
        raise ConvertError(f"--format should be one of {formats.FORMATS}. "
                           f"Received: {format!r}")
    files = [(s, p) for s, p in zip(SPLITS, (train, valid, test)) if p]
    if not train:
        raise ConvertError("--train FILE is required")
    for s, p in files:
        _check_input(p, f"--{s}")
    outputs.check_output_dir(out, overwrite)
    workers = workers or len(os.sched_getaffinity(0))

    paths = [os.path.abspath(p) for _, p in files]
    opts = dict(criteo_numeric=criteo_numeric, fields=_split_list(fields),
                label=label, categorical=_split_list(categorical),
                numeric=_split_list(numeric))
    try:
        layouts = [formats.make_layout(format, chunks.read_first_line(p), p,
                                       **opts) for p in paths]
    except formats.FormatError as e:
        raise ConvertError(str(e)) from None
    for (s, p), lay in zip(files[1:], layouts[1:]):
        if lay.describe() != layouts[0].describe():
            raise ConvertError(f"{p} (--{s}) has different columns than "
                               f"the training file {paths[0]}")
    layout = layouts[0]
    split_names = list(SPLITS[:len(fractions)]) if fractions else []
    file_splits = [None] if fractions else [s for s, _ in files]
    out_splits = split_names or [s for s, _ in files]
    split_files = {s: paths[0] if fractions else paths[i]
                   for i, s in enumerate(out_splits)}
    sizes = [os.path.getsize(p) for p in paths]
    frac = dict(zip(split_names, fractions or []))
    split_bytes = {s: (sizes[0] * frac[s] if fractions else sizes[i])
                   for i, s in enumerate(out_splits)}
    num_shards = {s: shards or max(1, -(-int(split_bytes[s])
                                         // AUTO_SHARD_BYTES))
                  for s in out_splits}
    file_shards = ([max(num_shards.values())] if fractions
                   else [num_shards[s] for s in out_splits])
    plans = [chunks.plan_chunks(p, chunks.chunk_count(sz, k))
             for p, sz, k in zip(paths, sizes, file_shards)]
    num_chunks = {i: len(plan) for i, plan in enumerate(plans)}
    est = [_estimate_rows(p, sz) for p, sz in zip(paths, sizes)]

    sha = outputs.Sha256Thread(paths)
    sha.start()
    tmp = outputs.make_temp_dir(out)
    try:
        worker.STATE = worker.JobState(
            paths=paths, layouts=layouts, file_splits=file_splits,
            split_names=split_names, fractions=fractions, seed=seed,
            parts_dir=os.path.join(tmp, "_parts"), compression=compression)
        os.makedirs(worker.STATE.parts_dir)

        # Pass 1: vocabulary counts on the training rows.
        pass1 = passes.Collector(len(layout.categorical))
        tasks = [("count", 0, c, a, b) for c, (a, b) in enumerate(plans[0])]
        passes.run_pass("count vocab", tasks, workers, sizes[0], est[0],
                        quiet, pass1)
        if sum(pass1.read.values()) == 0:
            raise ConvertError(f"training file {paths[0]} has no data rows")
        pass1.check_rejects(split_files, max_reject_fraction, paths)
        field_meta, encodings = [], []
        for f in layout.fields:
            size = 0
            if f.kind == "categorical":
                tokens = vocab.build_vocab(pass1.counts[len(encodings)],
                                           min_count)
                pass1.counts[len(encodings)].clear()
                rel = vocab.vocab_filename(f.name)
                vocab.write_vocab(os.path.join(tmp, rel), tokens)
                encodings.append(vocab.encoding_map(tokens))
                size = len(tokens) + NUM_RESERVED_IDS
            meta = dataclasses.asdict(FieldSpec(
                name=f.name, kind=f.kind, vocab_size=size,
                transform=f.transform, source=f.source))
            if f.kind == "categorical":
                meta.update(vocab_file=rel, padding_id=PADDING_ID,
                            oov_id=OOV_ID)
            field_meta.append(meta)
        del pass1
        worker.STATE.encodings = encodings

        # Pass 2: write the records of every split.
        res = passes.Collector(0)
        tasks = [("write", i, c, a, b) for i, plan in enumerate(plans)
                 for c, (a, b) in enumerate(plan)]
        passes.run_pass("write records", tasks, workers, sum(sizes),
                        sum(est), quiet, res)
        worker.STATE = None
        encodings.clear()
        res.check_rejects(split_files, max_reject_fraction, paths)

        split_meta, rejected_meta = {}, {}
        for s in out_splits:
            n_rej = sum(res.rejected[s].values())
            if res.read[s] != res.written[s] + n_rej:
                raise RuntimeError(
                    f"internal error: split {s}: rows read {res.read[s]} != "
                    f"written {res.written[s]} + rejected {n_rej}")
            split_meta[s] = {"rows": res.written[s],
                             "files": outputs.assemble_shards(
                                 res.parts[s], num_shards[s], num_chunks, tmp,
                                 s, compression)}
            rejected_meta[s] = dict(sorted(res.rejected[s].items()))
        shutil.rmtree(os.path.join(tmp, "_parts"))
        outputs.write_rejected(os.path.join(tmp, "rejected.txt"),
                               res.samples(paths),
                               sum(sum(c.values()) for c in
                                   res.rejected.values()))
        sha.join()
        sources = [{"split": "all" if fractions else s, "path": p,
                    "bytes": sz, "sha256": sha.digests[p],
                    "rows_read": (sum(res.read.values()) if fractions
                                  else res.read[s])}
                   for (s, _), p, sz in zip(files, paths, sizes)]
        options = {"format": format, **opts, "min_count": min_count,
                   "shards": num_shards, "compression": compression,
                   "split": split, "seed": seed if fractions else None,
                   "max_reject_fraction": max_reject_fraction}
        if format != "criteo":
            options.pop("criteo_numeric")
        outputs.write_json(os.path.join(tmp, "dataset.json"), {
            "format_version": FORMAT_VERSION, "label": "label",
            "compression": compression, "fields": field_meta,
            "splits": split_meta, "rejected": rejected_meta,
            "sources": sources, "options": options,
            "created_by": _created_by()})
        outputs.finalize_dir(tmp, out, overwrite)
    finally:
        worker.STATE = None
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.time() - t0
    return {"out": out, "rows": {s: res.written[s] for s in out_splits},
            "rows_read": {s: res.read[s] for s in out_splits},
            "rejected": rejected_meta,
            "vocab_sizes": {m["name"]: m["vocab_size"] for m in field_meta
                            if m["kind"] == "categorical"},
            "num_shards": num_shards, "seconds": round(seconds, 3),
            "rows_per_sec": round(sum(res.read.values()) / max(seconds, 1e-9),
                                  1)}


def _created_by() -> str:
    import tfdsmlp
    return f"data_tools.convert (tfdsmlp {tfdsmlp.__version__})"
