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

import collections
import functools
import os
import sys
import time

from tfdsmlp.schema import (FIELD_SPEC_KEYS, FORMAT_VERSION,
                            NUM_RESERVED_IDS, OOV_ID, PADDING_ID)

from data_tools import chunks, formats, native, outputs, tfrecord, vocab
from data_tools.outputs import ConvertError

SPLITS = ("train", "valid", "test")
ENGINES = ("auto", "native", "python")
AUTO_SHARD_BYTES = 256 << 20  # --shards default: one shard per 256 MiB


def _check_input(path: str | None, flag: str) -> None:
    if path is None:
        return
    if not os.path.exists(path):
        raise ConvertError(f"input file {path} ({flag}) does not exist")
    if not os.path.isfile(path):
        raise ConvertError(f"input file {path} ({flag}) is not a file")
    if os.path.getsize(path) == 0:
        raise ConvertError(f"input file {path} ({flag}) is empty")


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
    strings. Raises `ConvertError` with a user-facing message on bad input.
    """
    t0 = time.time()
    compression = (compression or "").upper()
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
    est = [_estimate_rows(p, sz) for p, sz in zip(paths, sizes)]

    tmp = outputs.make_temp_dir(out)
    plan = _Plan(paths=paths, layouts=layouts, file_splits=file_splits,
                 split_names=split_names, fractions=fractions, seed=seed,
                 plans=plans, sizes=sizes, est=est, out_splits=out_splits,
                 num_shards=num_shards, compression=compression,
                 min_count=min_count, max_reject_fraction=max_reject_fraction,
                 split_files=split_files, workers=workers, quiet=quiet,
                 tmp=tmp)
    try:
        result = None
        if engine != "python":
            result = _run_native(plan, engine)
        if result is None:
            result = _run_python(plan)
        if sum(result.train_file_rows) == 0:
            raise ConvertError(f"training file {paths[0]} has no data rows")
        result.check_rejects(split_files, max_reject_fraction)
        cat_sizes = iter(result.vocab_sizes)
        field_meta = []
        for f in layout.fields:
            size = (next(cat_sizes) + NUM_RESERVED_IDS
                    if f.kind == "categorical" else 0)
            meta = dict(zip(FIELD_SPEC_KEYS, (f.name, f.kind, size,
                                              f.transform, f.source)))
            if f.kind == "categorical":
                meta.update(vocab_file=vocab.vocab_filename(f.name),
                            padding_id=PADDING_ID, oov_id=OOV_ID)
            field_meta.append(meta)
        split_meta, rejected_meta = {}, {}
        for s in out_splits:
            n_rej = sum(result.rejected[s].values())
            if result.read[s] != result.written[s] + n_rej:
                raise RuntimeError(
                    f"internal error: split {s}: rows read {result.read[s]} "
                    f"!= written {result.written[s]} + rejected {n_rej}")
            split_meta[s] = {"rows": result.written[s],
                             "files": result.files[s]}
            rejected_meta[s] = dict(sorted(result.rejected[s].items()))
        outputs.write_rejected(os.path.join(tmp, "rejected.txt"),
                               result.samples,
                               sum(sum(c.values()) for c in
                                   result.rejected.values()))
        sources = [{"split": "all" if fractions else s, "path": p,
                    "bytes": sz, "crc32c": result.checksums[p],
                    "rows_read": (sum(result.read.values()) if fractions
                                  else result.read[s])}
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
        if "data_tools.worker" in sys.modules:
            sys.modules["data_tools.worker"].STATE = None
        if os.path.exists(tmp):
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.time() - t0
    return {"out": out, "engine": result.engine,
            "rows": {s: result.written[s] for s in out_splits},
            "rows_read": {s: result.read[s] for s in out_splits},
            "rejected": rejected_meta,
            "vocab_sizes": {m["name"]: m["vocab_size"] for m in field_meta
                            if m["kind"] == "categorical"},
            "num_shards": num_shards, "seconds": round(seconds, 3),
            "rows_per_sec": round(sum(result.read.values())
                                  / max(seconds, 1e-9), 1)}


class _Plan(collections.namedtuple(
        "_Plan", "paths layouts file_splits split_names fractions seed plans "
        "sizes est out_splits num_shards compression min_count "
        "max_reject_fraction split_files workers quiet tmp")):
    """The conversion job both engines run (chunks, shards, temp dir).

    file_splits: per input file its split, or None for rows split by hash
    into split_names by fractions and seed; plans: per file, its chunks'
    byte ranges; sizes, est: per file, bytes and estimated rows;
    out_splits, num_shards; split_files: split -> input file, for messages.
    """

    __slots__ = ()

    def shard_of(self, split: str, file_idx: int, chunk_idx: int) -> int:
        """Chunk c of a file with C chunks -> shard floor(c * shards / C)."""
        return chunk_idx * self.num_shards[split] // len(self.plans[file_idx])

    def shard_files(self, split: str) -> list[str]:
        ext = ".tfrecord.gz" if self.compression == "GZIP" else ".tfrecord"
        return [f"{split}/part-{k:05d}{ext}"
                for k in range(self.num_shards[split])]


class _Result(collections.namedtuple(
        "_Result", "engine train_file_rows read written rejected samples "
        "vocab_sizes files checksums")):
    """What an engine produced; the files are already in the temp dir.

    train_file_rows: rows read from the training file; read, written:
    per split; rejected: split -> reason -> count; samples: the first
    rejected lines; vocab_sizes: per categorical field; files: split ->
    shard paths (relative); checksums: input path -> CRC-32C hex.
    """

    __slots__ = ()

    def check_rejects(self, split_files: dict[str, str],
                      max_fraction: float) -> None:
        outputs.check_rejects(self.read, self.rejected, self.samples,
                              split_files, max_fraction)


def _run_native(plan: _Plan, engine: str) -> _Result | None:
    """The C converter's result, or None to fall back to Python."""
    layout = plan.layouts[0]
    reason = native.unsupported_reason(layout, plan.compression)
    binary = None
    if reason is None:
        binary, why = native.available()
        if binary is None:
            reason = f"cannot build the native converter: {why}"
    failed = False
    if reason is None:
        try:
            return _native_result(plan, binary)
        except (native.Unsupported, native.NativeError) as e:
            failed = isinstance(e, native.NativeError)
            reason = (f"the native converter failed ({e})" if failed
                      else str(e))
            import shutil
            shutil.rmtree(plan.tmp)  # start the Python run clean
            os.makedirs(plan.tmp)
    if engine == "native":
        raise ConvertError(f"--engine native cannot convert this input: "
                           f"{reason}")
    if failed or not plan.quiet:  # a failure is reported even when quiet
        print(f"data_tools convert: using the Python converter (slower): "
              f"{reason}", file=sys.stderr)
    return None


def _native_result(plan: _Plan, binary: str) -> _Result:
    tmp, layout = plan.tmp, plan.layouts[0]
    split_idx = {s: i for i, s in enumerate(plan.out_splits)}
    files = [(-1 if fs is None else split_idx[fs], p)
             for fs, p in zip(plan.file_splits, plan.paths)]
    chunk_list = []
    for fi, chunk_plan in enumerate(plan.plans):
        names = ([plan.file_splits[fi]] if plan.file_splits[fi]
                 else plan.split_names)
        for ci, (a, b) in enumerate(chunk_plan):
            shards = [plan.shard_of(s, fi, ci) if s in names else 0
                      for s in plan.out_splits]
            chunk_list.append((fi, a, b, shards))
    for s in plan.out_splits:
        os.makedirs(os.path.join(tmp, s), exist_ok=True)
    os.makedirs(os.path.join(tmp, "vocab"), exist_ok=True)
    fractions = plan.fractions or [1.0]
    encoder = tfrecord.ExampleEncoder(len(layout.categorical),
                                      len(layout.numeric))
    job = native.Job(
        layout=layout, files=files, num_splits=len(plan.out_splits),
        cum=chunks.cumulative_fractions(fractions),
        seed_key=chunks.seed_key(plan.seed), chunks=chunk_list,
        shard_paths=[[os.path.join(tmp, r) for r in plan.shard_files(s)]
                     for s in plan.out_splits],
        vocab_paths=[os.path.join(tmp, vocab.vocab_filename(f.name))
                     for f in layout.categorical],
        # ids are uint32 in the C program: at most 5 varint bytes each
        heads=[encoder.head(n)
               for n in range(5 * len(layout.categorical) + 1)],
        dense_prefix=encoder.dense_prefix,
        label_entries=[encoder.label_bytes(0), encoder.label_bytes(1)],
        threads=plan.workers, min_count=plan.min_count, quiet=plan.quiet)
    res = native.run(binary, job, tmp, sum(plan.est))
    read = dict(zip(plan.out_splits, res.read))
    train_rows = (res.read if plan.fractions else [res.read[0]])
    return _Result(
        engine="native", train_file_rows=train_rows, read=read,
        written=dict(read), rejected={s: {} for s in plan.out_splits},
        samples=[], vocab_sizes=res.vocab_sizes,
        files={s: plan.shard_files(s) for s in plan.out_splits},
        checksums=dict(zip(plan.paths, res.crc32c)))


def _run_python(plan: _Plan) -> _Result:
    """Both passes in Python worker processes (see data_tools/worker.py)."""
    import shutil

    from data_tools import passes, worker  # numpy, tqdm: not on native's path
    tmp, layout, workers = plan.tmp, plan.layouts[0], plan.workers
    paths, sizes, est, quiet = plan.paths, plan.sizes, plan.est, plan.quiet
    crc = outputs.ChecksumThread(paths)
    crc.start()
    worker.STATE = worker.JobState(
        paths=paths, layouts=plan.layouts, file_splits=plan.file_splits,
        split_names=plan.split_names, fractions=plan.fractions,
        seed=plan.seed, parts_dir=os.path.join(tmp, "_parts"),
        compression=plan.compression)
    os.makedirs(worker.STATE.parts_dir)

    # Pass 1: vocabulary counts on the training rows.
    pass1 = passes.Collector(len(layout.categorical))
    tasks = [("count", 0, c, a, b) for c, (a, b) in enumerate(plan.plans[0])]
    passes.run_pass("count vocab", tasks, workers, sizes[0], est[0],
                    quiet, pass1)
    train_rows = list(pass1.read.values())
    if not sum(train_rows):  # convert() reports it
        crc.join()
        return _Result("python", train_rows, {}, {}, {}, [], [], {}, {})
    pass1.check_rejects(plan.split_files, plan.max_reject_fraction, paths)
    vocab_sizes, encodings = [], []
    for counts, f in zip(pass1.counts, layout.categorical):
        tokens = vocab.build_vocab(counts, plan.min_count)
        counts.clear()
        vocab.write_vocab(os.path.join(tmp, vocab.vocab_filename(f.name)),
                          tokens)
        encodings.append(vocab.encoding_map(tokens))
        vocab_sizes.append(len(tokens))
    del pass1
    worker.STATE.encodings = encodings

    # Pass 2: write the records of every split.
    res = passes.Collector(0)
    tasks = [("write", i, c, a, b) for i, chunk_plan in enumerate(plan.plans)
             for c, (a, b) in enumerate(chunk_plan)]
    passes.run_pass("write records", tasks, workers, sum(sizes), sum(est),
                    quiet, res)
    worker.STATE = None
    encodings.clear()
    shard_files = {s: plan.shard_files(s) for s in plan.out_splits}
    for s in plan.out_splits:
        outputs.assemble_shards(res.parts[s],
                                functools.partial(plan.shard_of, s),
                                shard_files[s], tmp, plan.compression)
    shutil.rmtree(os.path.join(tmp, "_parts"))
    crc.join()
    return _Result(
        engine="python", train_file_rows=train_rows,
        read={s: res.read[s] for s in plan.out_splits},
        written={s: res.written[s] for s in plan.out_splits},
        rejected={s: dict(res.rejected[s]) for s in plan.out_splits},
        samples=res.samples(paths), vocab_sizes=vocab_sizes,
        files=shard_files, checksums=crc.digests)


def _created_by() -> str:
    import tfdsmlp
    return f"data_tools.convert (tfdsmlp {tfdsmlp.__version__})"
