"""`convert`: raw CTR data (Criteo, Avazu, libfm, CSV) -> a dataset directory.

Two streaming passes over byte-range chunks, spread over threads (native
engine) or worker processes (Python engine; both in engines.py):

1. count the tokens of every categorical field on the training rows only and
   build the vocabularies (`--min-count`);
2. write every row as a tf.train.Example into per-chunk part files, which are
   then concatenated into `--shards` files per split.

Everything is written into a temporary directory next to the output, which
is renamed into place at the end, so a failed run never leaves a half-written
dataset (see staging.py). Compressed inputs are decompressed there first
(see inputs.py). Bad options, an input that would give an empty split or an
evaluation split with one label, and too many rejected rows are errors
(`ConvertError`) that name the cause and its fix. See docs/DATA_FORMAT.md for
the layout and tfdsmlp/features.py for the schema.
"""

from __future__ import annotations

import os
import sys
import time

from tfdsmlp.schema import (
    FIELD_SPEC_KEYS,
    FORMAT_VERSION,
    NUM_RESERVED_IDS,
    OOV_ID,
    PADDING_ID,
)

from data_tools import chunks, engines, formats, inputs, outputs, staging, vocab
from data_tools.engines import ENGINES, Plan, Result
from data_tools.outputs import ConvertError

SPLITS = ("train", "valid", "test")
AUTO_SHARD_BYTES = 256 << 20  # --shards default: one shard per 256 MiB
# Fewest rows of any split; valid and test also need both labels (for AUC).
MIN_SPLIT_ROWS = 2


def _check_input(path: str | None, flag: str) -> None:
    if path is None:
        return
    if not os.path.exists(path):
        raise ConvertError(f"input file {path} ({flag}) does not exist")
    if not os.path.isfile(path):
        raise ConvertError(f"input file {path} ({flag}) is not a file")
    if os.path.getsize(path) == 0:
        raise ConvertError(
            f"input file {path} ({flag}) is empty: give a file with data "
            f"rows" + ("" if flag == "--train" else f", or leave out {flag}"))


def _split_list(value) -> list[str] | None:
    if value is None or isinstance(value, (list, tuple)):
        return None if value is None else list(value)
    return [v.strip() for v in value.split(",") if v.strip()]


def _estimate_rows(path: str, size: int) -> int:
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    lines = max(1, head.count(b"\n"))
    return int(size * lines / max(1, len(head)))


def convert(format: str, train: str, out: str, *, valid: str | None = None,
            test: str | None = None, split: str | None = None,
            seed: int = 0, fields=None, label: str | None = None,
            categorical=None, numeric=None, criteo_numeric: str = "bucketize",
            min_count: int = 1, shards: int | None = None,
            compression: str = "", max_reject_fraction: float = 0.01,
            overwrite: bool = False, workers: int | None = None,
            engine: str = "auto", quiet: bool = False) -> dict[str, object]:
    """Converts raw files into a dataset directory; returns a summary dict.

    Args mirror the CLI flags (see `python -m data_tools convert --help`).
    `fields`, `categorical` and `numeric` take lists or comma-separated
    strings. Raises `ConvertError` with a user-facing message on bad input;
    it then leaves no output directory behind.
    """
    t0 = time.time()
    compression = (compression or "").upper()
    fractions = _check_options(format, train, valid, test, split, compression,
                               engine, min_count, shards)
    files = [(s, p) for s, p in zip(SPLITS, (train, valid, test)) if p]
    for s, p in files:
        _check_input(p, f"--{s}")
    opts = {"criteo_numeric": criteo_numeric, "fields": _split_list(fields),
            "label": label, "categorical": _split_list(categorical),
            "numeric": _split_list(numeric)}
    layouts = _layouts(format, files, opts)
    staging.check_output_dir(out, overwrite)
    try:
        with staging.TempOutput(out, overwrite, quiet) as tmp:
            sources = inputs.stage([os.path.abspath(p) for _, p in files],
                                   tmp.path, quiet)
            plan = _make_plan(
                files, sources, layouts, fractions, shards, tmp.path,
                seed=seed, compression=compression, min_count=min_count,
                max_reject_fraction=max_reject_fraction, quiet=quiet,
                workers=workers or len(os.sched_getaffinity(0)))
            result = engines.run(plan, engine)
            inputs.remove_copies(tmp.path)
            _check_result(result, plan, split)
            meta = _metadata(result, plan, files, {
                "format": format, **opts, "min_count": min_count,
                "shards": plan.num_shards, "compression": compression,
                "split": split, "seed": seed if fractions else None,
                "max_reject_fraction": max_reject_fraction})
            outputs.write_rejected(
                os.path.join(tmp.path, "rejected.txt"), result.samples,
                sum(sum(c.values()) for c in result.rejected.values()))
            outputs.write_json(os.path.join(tmp.path, "dataset.json"), meta)
            tmp.commit()
    finally:
        if "data_tools.worker" in sys.modules:
            sys.modules["data_tools.worker"].STATE = None
    seconds = time.time() - t0
    return {"out": out, "engine": result.engine,
            "rows": {s: result.written[s] for s in plan.out_splits},
            "rows_read": {s: result.read[s] for s in plan.out_splits},
            "rejected": meta["rejected"],
            "vocab_sizes": {m["name"]: m["vocab_size"] for m in meta["fields"]
                            if m["kind"] == "categorical"},
            "num_shards": plan.num_shards, "seconds": round(seconds, 3),
            "rows_per_sec": round(sum(result.read.values())
                                  / max(seconds, 1e-9), 1)}


def _check_options(format: str, train: str, valid: str | None,
                   test: str | None, split: str | None, compression: str,
                   engine: str, min_count: int, shards: int | None
                   ) -> list[float] | None:
    """Checks the options that need no file; returns the split fractions."""
    if compression not in ("", "GZIP"):
        raise ConvertError(f"--compression should be '' or GZIP. Received: "
                           f"{compression!r}")
    if engine not in ENGINES:
        raise ConvertError(f"--engine should be one of {ENGINES}. Received: "
                           f"{engine!r}")
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
    if not train:
        raise ConvertError("--train FILE is required")
    return fractions


def _layouts(format: str, files: list[tuple[str, str]], opts: dict
             ) -> list[formats.Layout]:
    """Each input's layout (from its first line); all must agree."""
    try:
        layouts = [formats.make_layout(format, chunks.read_first_line(p), p,
                                       **opts) for _, p in files]
    except formats.FormatError as e:
        raise ConvertError(str(e)) from None
    for (s, p), lay in zip(files[1:], layouts[1:]):
        if lay.describe() != layouts[0].describe():
            raise ConvertError(f"{p} (--{s}) has different columns than "
                               f"the training file {files[0][1]}")
    return layouts


def _make_plan(files: list[tuple[str, str]], sources: list[inputs.Source],
               layouts: list[formats.Layout], fractions: list[float] | None,
               shards: int | None, tmp: str, **settings) -> Plan:
    """Splits, shards and chunks of the job; `settings` are Plan fields
    (seed, compression, min_count, max_reject_fraction, workers, quiet)."""
    paths = [src.read_path for src in sources]
    split_names = list(SPLITS[:len(fractions)]) if fractions else []
    out_splits = split_names or [s for s, _ in files]
    sizes = [os.path.getsize(p) for p in paths]
    frac = dict(zip(split_names, fractions or []))
    split_bytes = {s: (sizes[0] * frac[s] if fractions else sizes[i])
                   for i, s in enumerate(out_splits)}
    num_shards = {s: shards or max(1, -(-int(split_bytes[s])
                                         // AUTO_SHARD_BYTES))
                  for s in out_splits}
    file_shards = ([max(num_shards.values())] if fractions
                   else [num_shards[s] for s in out_splits])
    return Plan(
        paths=paths, sources=sources, layouts=layouts,
        file_splits=[None] if fractions else [s for s, _ in files],
        split_names=split_names, fractions=fractions,
        plans=[chunks.plan_chunks(p, chunks.chunk_count(sz, k))
               for p, sz, k in zip(paths, sizes, file_shards)],
        sizes=sizes, est=[_estimate_rows(p, sz)
                          for p, sz in zip(paths, sizes)],
        out_splits=out_splits, num_shards=num_shards,
        split_files={s: sources[0 if fractions else i].path
                     for i, s in enumerate(out_splits)},
        tmp=tmp, **settings)


def _check_result(result: Result, plan: Plan, split: str | None) -> None:
    """Raises ConvertError if the rows read cannot make a usable dataset."""
    if sum(result.train_file_rows) == 0:
        raise ConvertError(f"training file {plan.sources[0].path} has no "
                           f"data rows")
    result.check_rejects(plan.split_files, plan.max_reject_fraction)
    for s in plan.out_splits:
        n_rej = sum(result.rejected[s].values())
        if result.read[s] != result.written[s] + n_rej:
            raise RuntimeError(
                f"internal error: split {s}: rows read {result.read[s]} "
                f"!= written {result.written[s]} + rejected {n_rej}")
    for s in plan.out_splits:
        _check_split_size(s, result.written[s], result.positives[s], plan,
                          split)


def _check_split_size(name: str, rows: int, positives: int, plan: Plan,
                      split: str | None) -> None:
    """A split needs MIN_SPLIT_ROWS rows; valid/test need both labels."""
    if rows < MIN_SPLIT_ROWS:
        problem = (f"{rows} row{'s' * (rows != 1)}, and at least "
                   f"{MIN_SPLIT_ROWS} are needed to train or evaluate")
        wanted = "rows"
    elif name != "train" and positives in (0, rows):
        label = int(positives > 0)
        problem = (f"only label {label} in its {rows} rows, and AUC is "
                   f"undefined without both labels")
        wanted = f"rows with label {1 - label}"
    else:
        return
    if plan.fractions:
        where = (f"the rows --split {split} sends to it from "
                 f"{plan.split_files[name]}")
        fix = (f"give it a bigger share in --split (e.g. 8:1:1), or convert "
               f"a file with more {wanted}")
    else:
        where = f"{plan.split_files[name]} (--{name})"
        fix = f"add {wanted} to the file" + (
            f", or leave out --{name}" if name != "train" else "")
    raise ConvertError(f"split {name!r} would have {problem} ({where}). "
                       f"To fix it, {fix}")


def _metadata(result: Result, plan: Plan, files: list[tuple[str, str]],
              options: dict) -> dict[str, object]:
    """dataset.json's content."""
    cat_sizes = iter(result.vocab_sizes)
    field_meta = []
    for f in plan.layouts[0].fields:
        size = (next(cat_sizes) + NUM_RESERVED_IDS
                if f.kind == "categorical" else 0)
        meta = dict(zip(FIELD_SPEC_KEYS, (f.name, f.kind, size,
                                          f.transform, f.source)))
        if f.kind == "categorical":
            meta.update(vocab_file=vocab.vocab_filename(f.name),
                        padding_id=PADDING_ID, oov_id=OOV_ID)
        field_meta.append(meta)
    if options["format"] != "criteo":
        options.pop("criteo_numeric")
    return {
        "format_version": FORMAT_VERSION, "label": "label",
        "compression": plan.compression, "fields": field_meta,
        "splits": {s: {"rows": result.written[s], "files": result.files[s]}
                   for s in plan.out_splits},
        "rejected": {s: dict(sorted(result.rejected[s].items()))
                     for s in plan.out_splits},
        "sources": [_source_meta(src, "all" if plan.fractions else s,
                                 result) for (s, _), src in
                    zip(files, plan.sources)],
        "options": options, "created_by": _created_by()}


def _source_meta(src: inputs.Source, split: str, result: Result
                 ) -> dict[str, object]:
    """Provenance of an input file as given (compressed or not)."""
    meta = {"split": split, "path": src.path,
            "bytes": os.path.getsize(src.path),
            "crc32c": src.crc32c or result.checksums[src.read_path],
            "rows_read": (sum(result.read.values()) if split == "all"
                          else result.read[split])}
    if src.compression:
        meta["compression"] = src.compression
    return meta


def _created_by() -> str:
    import tfdsmlp
    return f"data_tools.convert (tfdsmlp {tfdsmlp.__version__})"
