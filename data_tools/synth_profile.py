"""`synth --profile criteo|avazu`: big Criteo/Avazu-shaped data with a
planted teacher, so benchmarks have a known ground truth.

Rows are generated in chunks of `chunk_rows` (a multiple of
planted.BLOCK) from counter-based streams, written as raw text (Criteo
TSV / Avazu CSV, one file per split) with the teacher's logits
(`<split>_logit.npy`, float32) and the Bayes metrics of each split;
memory does not grow with the rows, and the output does not depend on the
chunk size. `output="dataset"` then converts the text files with
`data_tools.convert` (splits and row order kept) and records the truth in
dataset.json["synthetic"] and synthetic/. See docs/DATA_FORMAT.md.
"""

from __future__ import annotations

import gzip as gzip_module
import json
import math
import os
import shutil
import sys
import time
from typing import Any, BinaryIO

import numpy as np

from data_tools import outputs, profiles, staging
from data_tools.outputs import ConvertError
from data_tools.planted import BLOCK, BayesMeter, shares_for
from data_tools.synth_rows import ChunkSource

CHUNK_ROWS = 1 << 16
EXACT_AUC_ROWS = 1 << 23  # larger splits: AUC from the logit histogram
GZIP_LEVEL = 1


def _open_text(path: str, gzip: bool) -> BinaryIO:
    if gzip:  # mtime=0: the same bytes on every run
        return gzip_module.GzipFile(path, "wb", GZIP_LEVEL, mtime=0)
    return open(path, "wb")


def write_split(source: ChunkSource, profile: profiles.Profile, split: str,
                n: int, text_path: str,
                logit_path: str, gzip: bool, chunk_rows: int,
                progress: Any) -> dict[str, Any]:
    """Writes one split's text file and logits; returns its metrics."""
    meter = BayesMeter()
    labels = np.empty(n, np.int8) if n <= EXACT_AUC_ROWS else None
    logits = np.lib.format.open_memmap(logit_path, mode="w+",
                                       dtype=np.float32, shape=(n,))
    with _open_text(text_path, gzip) as f:
        if profile.header:
            f.write(profile.header_line())
        for c in source.chunks(split, n, chunk_rows):
            hi = c.lo + len(c.y)
            f.write(c.text)
            logits[c.lo:hi] = c.z
            if labels is not None:
                labels[c.lo:hi] = c.y
            meter.add(c.z, c.y)
            progress.update(len(c.y))
    logits.flush()
    m: dict[str, Any] = {
        "rows": n, "positives": meter.positives,
        "positive_rate": round(meter.positives / max(n, 1), 6),
        "logloss": meter.logloss}
    if labels is not None:
        from tfdsmlp.metrics import roc_auc
        m["auc"] = roc_auc(labels, np.asarray(logits))
        m["auc_method"] = "exact: ranks of the stored float32 logits"
    else:
        m["auc"], m["auc_max_error"] = meter.histogram_auc()
        width = 2 * meter.HIST_RANGE / meter.HIST_BINS
        m["auc_method"] = (
            f"histogram of the float64 logits: {meter.HIST_BINS} bins of "
            f"width {width:.3g} over [-{meter.HIST_RANGE:g}, "
            f"{meter.HIST_RANGE:g}], pairs in one bin count 1/2")
    del logits
    return m


def write_profile(out_dir: str, profile: str = "criteo",
                  num_rows: int = 100_000, seed: int = 0,
                  valid_rows: int | None = None,
                  test_rows: int | None = None, output: str = "dataset",
                  gzip: bool = False, compression: str = "",
                  overwrite: bool = False, chunk_rows: int = CHUNK_ROWS,
                  engine: str = "auto", workers: int | None = None,
                  quiet: bool = False,
                  cross_share: float | None = None) -> dict[str, Any]:
    """Writes a `profile` ("criteo" or "avazu") data set with a planted
    teacher; returns a summary dict.

    `num_rows` training rows, `valid_rows`/`test_rows` (default
    num_rows // 10 each; 0 leaves the split out). `output`: "dataset" (a
    converted dataset directory; `compression` and `engine` go to the
    converter) or "tsv" (the raw files: train.txt ... for criteo,
    train.csv ... for avazu, `.gz` with `gzip`, plus planted.json and
    <split>_logit.npy). `workers` (default: the usable CPUs) generating
    processes (spawned: a script calling this needs the `if __name__ ==
    "__main__":` guard), also passed to the converter. The output does not
    depend on `chunk_rows` nor `workers`. `cross_share`: the planted
    cross network's share of the logit variance (default 0.4,
    `planted.SHARES`; `planted.shares_for`), the lever of the "where
    distillation pays" study.
    """
    prof = _check(profile, num_rows, valid_rows, test_rows, output, gzip,
                  compression, chunk_rows)
    shares_for(cross_share)  # a bad share fails before anything is written
    rows = {"train": num_rows,
            "valid": num_rows // 10 if valid_rows is None else valid_rows,
            "test": num_rows // 10 if test_rows is None else test_rows}
    rows = {s: n for s, n in rows.items() if n > 0}
    t0 = time.time()
    _check_out(out_dir, overwrite, output)
    with staging.TempOutput(out_dir, False, quiet) as tmp:
        raw = os.path.join(tmp.path, "raw") if output == "dataset" \
            else tmp.path
        truth = (os.path.join(tmp.path, "synthetic") if output == "dataset"
                 else tmp.path)
        os.makedirs(raw, exist_ok=True)
        os.makedirs(truth, exist_ok=True)
        files, bayes = {}, {}
        from tqdm import tqdm
        n_chunks = sum(-(-n // chunk_rows) for n in rows.values())
        procs = min(workers or len(os.sched_getaffinity(0)), n_chunks)
        with tqdm(total=sum(rows.values()), unit=" rows", unit_scale=True,
                  desc=f"synth {profile}", disable=quiet,
                  file=sys.stderr) as bar, \
                ChunkSource(profile, seed, num_rows, procs,
                            cross_share) as source:
            teacher = source.describe()
            for split, n in rows.items():
                files[split] = os.path.join(raw, prof.file_name(
                    split, gzip))
                bayes[split] = write_split(
                    source, prof, split, n, files[split],
                    os.path.join(truth, f"{split}_logit.npy"), gzip,
                    chunk_rows, bar)
        gen_seconds = time.time() - t0
        truth_meta = _truth(prof, teacher, seed, rows, bayes, output)
        if output == "tsv":
            outputs.write_json(os.path.join(tmp.path, "planted.json"),
                               truth_meta)
        else:
            _convert(prof, files, tmp.path, truth_meta, compression, engine,
                     workers, quiet)
        _commit(tmp, out_dir, overwrite)
    seconds = time.time() - t0
    return {"out": out_dir, "profile": profile, "output": output,
            "rows": rows, "positive_rate": truth_meta["positive_rate"],
            "bayes_auc": {s: _round(m["auc"]) for s, m in bayes.items()},
            "bayes_logloss": {s: round(m["logloss"], 6)
                              for s, m in bayes.items()},
            "seconds": round(seconds, 2),
            "generate_rows_per_sec": round(sum(rows.values())
                                           / max(gen_seconds, 1e-9))}


def _round(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else round(x, 6)


def _check(profile: str, num_rows: int, valid_rows: int | None,
           test_rows: int | None, output: str, gzip: bool,
           compression: str, chunk_rows: int) -> profiles.Profile:
    if profile not in profiles.PROFILES:
        raise ValueError(f"`profile` should be one of "
                         f"{sorted(profiles.PROFILES)}. Received: "
                         f"profile={profile!r}")
    if num_rows < 1 or any(n is not None and n < 0
                           for n in (valid_rows, test_rows)):
        raise ValueError(f"need rows >= 1 and valid/test rows >= 0. "
                         f"Received: {num_rows}, {valid_rows}, {test_rows}")
    if output not in ("dataset", "tsv"):
        raise ValueError(f"`output` should be 'dataset' or 'tsv'. "
                         f"Received: output={output!r}")
    if gzip and output != "tsv":
        raise ValueError("--gzip compresses the raw files of --output tsv; "
                         "for a dataset use --compression GZIP")
    if compression and output != "dataset":
        raise ValueError("--compression applies to --output dataset; for "
                         "raw files use --gzip")
    if chunk_rows < BLOCK or chunk_rows % BLOCK:
        raise ValueError(f"`chunk_rows` should be a positive multiple of "
                         f"{BLOCK}. Received: chunk_rows={chunk_rows}")
    return profiles.PROFILES[profile]


def _check_out(out_dir: str, overwrite: bool, output: str) -> None:
    """Like staging.check_output_dir; a tsv output is known by its
    planted.json."""
    marker = "dataset.json" if output == "dataset" else "planted.json"
    if not os.path.lexists(out_dir):
        return
    if not overwrite:
        raise ConvertError(f"output directory {out_dir} already exists; "
                           f"pass --overwrite (overwrite=True) to replace it")
    if not os.path.isdir(out_dir) or (os.listdir(out_dir) and not any(
            os.path.exists(os.path.join(out_dir, m))
            for m in (marker, "dataset.json", "planted.json"))):
        raise ConvertError(
            f"output path {out_dir} is not a directory holding "
            f"{marker} (or empty); refusing to replace it")


def _commit(tmp: staging.TempOutput, out_dir: str, overwrite: bool) -> None:
    old = None
    if overwrite and os.path.lexists(out_dir):
        old = tmp.path + ".old"  # removed by staging if we die before
        os.replace(out_dir, old)
    tmp.commit()
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _truth(prof: profiles.Profile, teacher: dict[str, Any], seed: int,
           rows: dict[str, int], bayes: dict[str, dict[str, Any]],
           output: str) -> dict[str, Any]:
    positives = sum(m["positives"] for m in bayes.values())
    where = "synthetic/" if output == "dataset" else ""
    return {
        "generator": f"data_tools.synth --profile {prof.name}",
        "profile": prof.name, "seed": seed,
        "num_rows": rows.get("train", 0), "valid_rows": rows.get("valid", 0),
        "test_rows": rows.get("test", 0),
        **teacher,
        "target_positive_rate": prof.positive_rate,
        "positive_rate": round(positives / sum(rows.values()), 6),
        "true_logit_auc": {s: _round(m["auc"]) for s, m in bayes.items()},
        "true_logit_logloss": {s: m["logloss"] for s, m in bayes.items()},
        "bayes": {s: {**m, "auc": _round(m["auc"])}
                  for s, m in bayes.items()},
        "true_logits": f"{where}<split>_logit.npy",
        "columns": profiles.vocab_table(prof, rows.get("train", 0)),
    }


def _convert(prof: profiles.Profile, files: dict[str, str], tmp: str,
             truth: dict[str, Any], compression: str, engine: str,
             workers: int | None, quiet: bool) -> None:
    """Converts the raw files into `tmp` (beside synthetic/) and records
    the truth in dataset.json."""
    from data_tools.convert import convert
    converted = os.path.join(tmp, "converted")
    convert(prof.convert_format, files["train"], converted,
            valid=files.get("valid"), test=files.get("test"),
            compression=compression, engine=engine, workers=workers,
            quiet=quiet)
    shutil.rmtree(os.path.join(tmp, "raw"))
    for name in os.listdir(converted):
        os.replace(os.path.join(converted, name), os.path.join(tmp, name))
    os.rmdir(converted)
    meta_path = os.path.join(tmp, "dataset.json")
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    for src in meta["sources"]:  # the raw files were temporary
        src["path"] = f"synth:{prof.name}/{os.path.basename(src['path'])}"
    meta["options"]["generator"] = "data_tools.synth"
    meta["options"]["synth"] = {k: truth[k] for k in (
        "profile", "seed", "num_rows", "valid_rows", "test_rows")}
    meta["created_by"] = (f"data_tools.synth --profile {prof.name} via "
                          f"{meta['created_by']}")
    meta["synthetic"] = truth
    outputs.write_json(meta_path, meta)
