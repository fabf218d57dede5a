"""The two engines that run a conversion plan: native (C) and Python.

`convert.py` checks the options, builds a `Plan` (chunks, shards, the
temporary directory) and turns the `Result` into dataset.json; `run`
gives the plan to the native converter (native.py, native/ctrconvert.c)
and falls back to the Python one (passes.py, worker.py) for inputs the
native one does not handle or when it fails. Both write the same bytes.
"""

from __future__ import annotations

import collections
import functools
import os
import sys

from data_tools import chunks, inputs, native, outputs, tfrecord, vocab
from data_tools.outputs import ConvertError

ENGINES = ("auto", "native", "python")


class Plan(collections.namedtuple(
        "Plan", "paths sources layouts file_splits split_names fractions "
        "seed plans sizes est out_splits num_shards compression min_count "
        "max_reject_fraction split_files workers quiet tmp")):
    """The conversion job both engines run (chunks, shards, temp dir).

    paths: the plain files the engines read, one per inputs.Source in
    sources; file_splits: per input file its split, or None for rows split
    by hash into split_names by fractions and seed; plans: per file, its
    chunks' byte ranges; sizes, est: per file, bytes and estimated rows;
    out_splits, num_shards; split_files: split -> input file as given, for
    messages.
    """

    __slots__ = ()

    def shard_of(self, split: str, file_idx: int, chunk_idx: int) -> int:
        """Chunk c of a file with C chunks -> shard floor(c * shards / C)."""
        return chunk_idx * self.num_shards[split] // len(self.plans[file_idx])

    def shard_files(self, split: str) -> list[str]:
        ext = ".tfrecord.gz" if self.compression == "GZIP" else ".tfrecord"
        return [f"{split}/part-{k:05d}{ext}"
                for k in range(self.num_shards[split])]


class Result(collections.namedtuple(
        "Result", "engine train_file_rows read written positives rejected "
        "samples vocab_sizes files checksums")):
    """What an engine produced; the files are already in the temp dir.

    train_file_rows: rows read from the training file; read, written,
    positives (rows written with label 1): per split; rejected: split ->
    reason -> count; samples: the first rejected lines; vocab_sizes: per
    categorical field; files: split -> shard paths (relative); checksums:
    path read -> CRC-32C hex.
    """

    __slots__ = ()

    def check_rejects(self, split_files: dict[str, str],
                      max_fraction: float) -> None:
        outputs.check_rejects(self.read, self.rejected, self.samples,
                              split_files, max_fraction)


def run(plan: Plan, engine: str) -> Result:
    """Runs the native engine unless `engine` is python or it falls back."""
    result = _run_native(plan, engine) if engine != "python" else None
    return _run_python(plan) if result is None else result


def _run_native(plan: Plan, engine: str) -> Result | None:
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
            _remove_outputs(plan.tmp)  # start the Python run clean
    if engine == "native":
        raise ConvertError(f"--engine native cannot convert this input: "
                           f"{reason}")
    if failed or not plan.quiet:  # a failure is reported even when quiet
        print(f"data_tools convert: using the Python converter (slower): "
              f"{reason}", file=sys.stderr)
    return None


def _remove_outputs(tmp: str) -> None:
    """Empties the temporary dir but for the decompressed inputs."""
    import shutil
    for entry in os.scandir(tmp):
        if entry.name == inputs.COPY_DIR:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.remove(entry.path)


def _native_result(plan: Plan, binary: str) -> Result:
    tmp, layout = plan.tmp, plan.layouts[0]
    split_idx = {s: i for i, s in enumerate(plan.out_splits)}
    files = [(-1 if fs is None else split_idx[fs], inputs.data_start(p), p)
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
    return Result(
        engine="native", train_file_rows=train_rows, read=read,
        written=dict(read),
        positives=dict(zip(plan.out_splits, res.positives)),
        rejected={s: {} for s in plan.out_splits},
        samples=[], vocab_sizes=res.vocab_sizes,
        files={s: plan.shard_files(s) for s in plan.out_splits},
        checksums=dict(zip(plan.paths, res.crc32c)))


def _run_python(plan: Plan) -> Result:
    """Both passes in Python worker processes (see data_tools/worker.py)."""
    import shutil

    from data_tools import passes, worker  # numpy, tqdm: not on native's path
    tmp, layout, workers = plan.tmp, plan.layouts[0], plan.workers
    paths, sizes, est, quiet = plan.paths, plan.sizes, plan.est, plan.quiet
    names = [src.path for src in plan.sources]  # for messages
    crc = outputs.ChecksumThread([src.read_path for src in plan.sources
                                  if src.crc32c is None])
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
        return Result("python", train_rows, {}, {}, {}, {}, [], [], {}, {})
    pass1.check_rejects(plan.split_files, plan.max_reject_fraction, names)
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
    return Result(
        engine="python", train_file_rows=train_rows,
        read={s: res.read[s] for s in plan.out_splits},
        written={s: res.written[s] for s in plan.out_splits},
        positives={s: res.positives[s] for s in plan.out_splits},
        rejected={s: dict(res.rejected[s]) for s in plan.out_splits},
        samples=res.samples(names), vocab_sizes=vocab_sizes,
        files=shard_files, checksums=crc.digests)
