"""`predict_file`: score a whole input file with an export, batch by batch.

Checks the options and paths, reads the input in batches
(`tfdsmlp.predict.inputs`), calls the signature that takes it, and writes
one `probability,logit` line per row to a temporary file that is renamed to
the output's name when complete. Errors of the graph (a bad cell, an
unreadable record) become a `PredictError` naming the file and rows.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tfdsmlp.predict.inputs import (
    FORMATS,
    Batch,
    guess_format,
    open_csv,
    prefetched,
    read_csv_batches,
    read_tfrecord_batches,
)
from tfdsmlp.predict.model import (
    EXAMPLES_SIGNATURE,
    RAW_SIGNATURE,
    ExportedModel,
    PredictError,
    load_model,
)
from tfdsmlp.predict.progress import Progress

import tensorflow as tf

DEFAULT_BATCH_SIZE = 4096
OUTPUT_COLUMNS = ("probability", "logit")


def predict_file(model: ExportedModel | str | os.PathLike,
                 input_path: str | os.PathLike,
                 output_path: str | os.PathLike, *,
                 input_format: str | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, delimiter: str = ",",
                 progress: Progress | bool = False) -> dict[str, Any]:
    """Scores `input_path` with an export; see `tfdsmlp.predict`.

    Args:
      model: a version directory (saved_models/NAME/<v>) or `load_model`'s
        result.
      input_path: a CSV file with a header (`-` = standard input) or a
        TFRecord file of tf.Examples; `.gz` = GZIP.
      output_path: the CSV file to write (`probability,logit` per row).
      input_format: "csv" or "tfrecord". Defaults to "tfrecord" for the
        suffixes .tfrecord, .tfrecords, .tfrec (+ .gz), else "csv".
      batch_size: rows per signature call (memory grows with it).
      delimiter: the CSV separator.
      progress: True (on stderr), False, or a `Progress`.

    Returns:
      {"rows", "seconds", "rows_per_second", "input", "output", "format",
      "signature", "batch_size"}.
    """
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    if batch_size < 1:
        raise PredictError(f"`--batch-size` should be >= 1. Received: "
                           f"{batch_size}")
    if input_format is not None and input_format not in FORMATS:
        raise PredictError(f"`--format` should be one of {FORMATS}. "
                           f"Received: {input_format!r}")
    if len(delimiter) != 1:
        raise PredictError(f"`--delimiter` should be one character. "
                           f"Received: {delimiter!r}")
    _check_paths(input_path, output_path)
    fmt = input_format or guess_format(input_path)
    if fmt == "tfrecord" and input_path == "-":
        raise PredictError("TFRecord input must be a file, not `-`")
    if not isinstance(model, ExportedModel):
        model = load_model(model)
    if progress is True:
        size = (os.path.getsize(input_path) if input_path != "-"
                and os.path.isfile(input_path) else None)
        progress = Progress(size)
    name = "standard input" if input_path == "-" else input_path
    folder, base = os.path.split(os.path.abspath(output_path))
    tmp = os.path.join(folder, f".{base}.tmp-{os.getpid()}")
    start = time.perf_counter()
    try:
        with contextlib.ExitStack() as stack:
            if fmt == "csv":
                lines, position = open_csv(input_path, stack)
                batches = prefetched(read_csv_batches(
                    lines, model.inputs, batch_size, name=name,
                    delimiter=delimiter, position=position))
                stack.callback(batches.close)   # stops the reader thread
                fn, signature = model.predict_raw, RAW_SIGNATURE
            else:
                batches = read_tfrecord_batches(
                    input_path, batch_size,
                    "GZIP" if input_path.endswith(".gz") else "")
                fn, signature = model.predict_examples, EXAMPLES_SIGNATURE
            out = stack.enter_context(open(tmp, "w", encoding="utf-8",
                                           newline=""))
            rows = _score(fn, _checked(batches, name, fmt), out, name,
                          progress or None)
        os.replace(tmp, output_path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        if progress:
            progress.close()
        raise
    seconds = time.perf_counter() - start
    if progress:
        progress.done(rows, output_path)
    return {"rows": rows, "seconds": seconds,
            "rows_per_second": rows / max(seconds, 1e-9),
            "input": input_path, "output": output_path, "format": fmt,
            "signature": signature, "batch_size": batch_size}


def _score(fn, batches: Iterable[Batch], out: TextIO, name: str,
           progress: Progress | None) -> int:
    """Runs `fn` on each batch and writes its rows to `out`; returns the
    number of rows."""
    out.write(",".join(OUTPUT_COLUMNS) + "\n")
    rows = 0
    for batch in batches:
        try:
            result = fn(**batch.feed)
        except tf.errors.InvalidArgumentError as e:
            raise PredictError(
                f"{name}, rows {rows + 1}-{rows + batch.rows}: "
                f"{_graph_message(e)}") from None
        prob = result["probability"].numpy().reshape(-1).tolist()
        logit = result["logit"].numpy().reshape(-1).tolist()
        out.write("".join(f"{p:.9g},{v:.9g}\n" for p, v in zip(prob, logit)))
        rows += batch.rows
        if progress is not None:
            progress.update(rows, batch.position)
    return rows


def _checked(batches: Iterator[Batch], name: str, fmt: str
             ) -> Iterator[Batch]:
    """`batches`, with unreadable input turned into a `PredictError`."""
    try:
        yield from batches
    except tf.errors.DataLossError as e:
        raise PredictError(
            f"{name} is not a readable TFRecord file ({_graph_message(e)}); "
            "for a CSV file pass --format csv, for a GZIP-compressed one "
            "name it *.gz") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise PredictError(f"{name}: damaged GZIP data ({e})") from None
    except PredictError as e:
        if fmt == "csv" and "lacks the model's input" in str(e) \
                and not name.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
            raise PredictError(f"{e}. For a TFRecord file of tf.Examples "
                               "pass --format tfrecord.") from None
        raise


def _graph_message(e: tf.errors.OpError) -> str:
    """The message of a graph error without TensorFlow's framing (node
    names, "Graph execution error", stack placeholders)."""
    noise = ("Graph execution error", "Detected at node", "<stack traces",
             "[[", "{{function_node")
    lines = [ln.strip() for ln in e.message.split("\n")]
    lines = [ln for ln in lines if ln and not ln.startswith(noise)]
    text = lines[0] if lines else e.message.strip()
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"^Name: <unknown>, ", "", text)
    text = re.sub(r"\s*\[(\[\{\{node |Op:).*$", "", text)
    m = re.search(r"assertion failed: \[(.*)\]", text)
    return m.group(1) if m else text


def _check_paths(input_path: str, output_path: str) -> None:
    if input_path != "-":
        if not os.path.exists(input_path):
            raise FileNotFoundError(f"input file {input_path} not found")
        if os.path.isdir(input_path):
            raise PredictError(f"input {input_path} is a directory; pass a "
                               "CSV or TFRecord file")
    if output_path == "-":
        raise PredictError("--output should be a file name (scores are "
                           "written to a file, not to stdout)")
    out_dir = os.path.dirname(os.path.abspath(output_path))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"output directory {out_dir} does not exist")
    if os.path.isdir(output_path):
        raise PredictError(f"output {output_path} is a directory; pass a "
                           "file name, e.g. scores.csv")
    if input_path != "-" and os.path.exists(output_path) and \
            os.path.samefile(input_path, output_path):
        raise PredictError("--output must not be the --input file")
