"""`python -m tfdsmlp predict`: score a file of raw rows with an export.

    predict_file("saved_models/dsmlp/1", "rows.csv", "scores.csv")

reads the input in batches and writes one `probability,logit` line per
input row, in order, to a CSV file with that header. The input is

* **csv**: a header naming the columns, then one row per example, the
  values as the raw data has them. The columns the model needs are its raw
  source columns, the inputs of its `serving_default` signature (listed in
  `assets.extra/tfdsmlp_export.json` under `raw_inputs`, see
  docs/SERVING.md); other columns (a label, an id) are ignored, blank lines
  are skipped. Categorical cells are sent as they are (`""` = missing);
  numeric cells are read as the converter reads them (an empty cell is 0).
* **tfrecord**: tf.Example records with the raw named features, fed to the
  `predict_examples` signature.

A `.gz` suffix means GZIP. Memory is bounded by the batch size: the file
is streamed (CSV rows by the `csv` module, records by `tf.data`), at most
two parsed batches wait while one is scored, and each batch's scores are
written before the next is read. Only TensorFlow and the SavedModel are
needed; the export's transforms and vocabulary lookup run in its graph. The
output appears under its name only when complete.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import gzip
import io
import itertools
import json
import math
import os
import queue
import re
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import tensorflow as tf

FORMATS = ("csv", "tfrecord")
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrec")
DEFAULT_BATCH_SIZE = 4096
OUTPUT_COLUMNS = ("probability", "logit")
RAW_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "predict_examples"
METADATA_FILE = "tfdsmlp_export.json"   # tfdsmlp.export.saved_model's
_TFRECORD_OVERHEAD = 16   # length (8) + 2 CRCs (4 each) around a record


class PredictError(ValueError):
    """The export, the input or an option cannot be used; says why."""


@dataclasses.dataclass(frozen=True)
class ExportedModel:
    """A loaded version directory: its raw-value and tf.Example signatures
    and the raw inputs {name: "string" | "float32"} the first one takes
    (`loaded`, the restored object, keeps their variables alive)."""

    path: str
    inputs: dict[str, str]
    predict_raw: Any
    predict_examples: Any
    loaded: Any = dataclasses.field(default=None, repr=False)


def load_model(export_dir: str | os.PathLike) -> ExportedModel:
    """Loads a version directory written by `python -m tfdsmlp export`
    (tags {"serve"}); raises a `PredictError` that says what to pass
    instead when `export_dir` is not one."""
    path = os.path.abspath(os.fspath(export_dir))
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: pass a version directory written by "
            "`python -m tfdsmlp export`, e.g. saved_models/NAME/1.")
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        versions = sorted(int(d) for d in os.listdir(path) if d.isdigit()
                          and os.path.isfile(os.path.join(path, d,
                                                          "saved_model.pb")))
        if versions:
            latest = os.path.join(path, str(versions[-1]))
            raise PredictError(
                f"{path} is a model directory with versions {versions}; "
                f"pass one version, e.g. {latest}")
        raise PredictError(
            f"{path} is not a SavedModel version directory (it has no "
            "saved_model.pb); pass saved_models/NAME/<version> as written by "
            "`python -m tfdsmlp export`.")
    try:
        loaded = tf.saved_model.load(path, tags=["serve"])
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise PredictError(f"{path}: cannot load the SavedModel: {e}") from None
    sigs = loaded.signatures
    missing = [s for s in (RAW_SIGNATURE, EXAMPLES_SIGNATURE)
               if s not in sigs]
    specs = (sigs[RAW_SIGNATURE].structured_input_signature[1]
             if RAW_SIGNATURE in sigs else {})
    if missing or set(specs) <= {"ids", "dense"}:
        raise PredictError(
            f"{path} has no raw-value signatures (it was exported without "
            "the dataset directory, or by another tool): `predict` needs "
            f"{RAW_SIGNATURE} with raw inputs and {EXAMPLES_SIGNATURE}. "
            "Export again with `python -m tfdsmlp export`.")
    order = [i["name"] for i in _metadata(path).get("raw_inputs", [])]
    names = [n for n in order if n in specs] + sorted(set(specs) - set(order))
    inputs = {n: "string" if specs[n].dtype == tf.string else "float32"
              for n in names}
    return ExportedModel(path, inputs, sigs[RAW_SIGNATURE],
                         sigs[EXAMPLES_SIGNATURE], loaded)


def _metadata(path: str) -> dict[str, Any]:
    """assets.extra/tfdsmlp_export.json ({} when absent or unreadable)."""
    try:
        with open(os.path.join(path, "assets.extra", METADATA_FILE),
                  encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


# ------------------------------------------------------------------ reading
@dataclasses.dataclass
class Batch:
    """One batch to score: signature arguments, its number of rows, and how
    far into the input file it ends (bytes; None when unknown)."""

    feed: dict[str, Any]
    rows: int
    position: int | None = None


def parse_number(text: str | bytes) -> float:
    """A numeric cell as the converter reads it (`plain_number` in
    tfdsmlp.transforms_contract): Python's float() of the cell's bytes, an
    empty or blank cell is 0; not a finite number -> ValueError."""
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogateescape")
    if not text.strip():
        return 0.0
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"not finite: {text!r}")
    return v


def read_csv_batches(lines: Iterable[str], inputs: dict[str, str],
                     batch_size: int, *, name: str = "input",
                     delimiter: str = ",",
                     position=None) -> Iterator[Batch]:
    """Batches of `serving_default` arguments from CSV text lines (an open
    file or any iterable: nothing is read ahead of the batch being built).

    `position()` (optional) tells how many input bytes were read so far."""
    reader = csv.reader(lines, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise PredictError(f"{name} is empty: the first line should be a "
                           f"header naming the columns {sorted(inputs)}")
    header = [h.strip() for h in header]
    missing = sorted(set(inputs) - set(header))
    if missing:
        raise PredictError(
            f"{name} lacks the model's input column(s) {missing}. Expected a "
            f"header line with the columns {sorted(inputs)} (the raw source "
            f"columns of the export, other columns are ignored); got "
            f"{header[:50]}")
    doubled = sorted(n for n in inputs if header.count(n) > 1)
    if doubled:
        raise PredictError(f"{name}: column(s) {doubled} appear more than "
                           "once in the header")
    names = list(inputs)
    index = [header.index(n) for n in names]
    width = len(header)
    done = 0
    while True:
        rows = [r for r in itertools.islice(reader, batch_size) if r]
        while len(rows) < batch_size:    # blank lines were dropped
            more = [r for r in itertools.islice(reader, batch_size - len(rows))
                    if r]
            if not more:
                break
            rows += more
        if not rows:
            return
        for i, row in enumerate(rows):
            if len(row) != width:
                raise PredictError(
                    f"{name}, data row {done + i + 1}: {len(row)} columns, "
                    f"the header has {width}")
        feed = {}
        for n, j in zip(names, index):
            cells = [row[j] for row in rows]
            if inputs[n] == "string":
                feed[n] = tf.constant([c.encode("utf-8", "surrogateescape")
                                       for c in cells], tf.string)
            else:
                feed[n] = tf.constant(_numbers(cells, n, name, done),
                                      tf.float32)
        done += len(rows)
        yield Batch(feed, len(rows), position() if position else None)


def _numbers(cells: list[str], column: str, name: str, done: int
             ) -> list[float]:
    try:
        return [parse_number(c) for c in cells]
    except ValueError:
        for i, c in enumerate(cells):
            try:
                parse_number(c)
            except ValueError:
                raise PredictError(
                    f"{name}, data row {done + i + 1}, column `{column}`: "
                    f"expected a number (an empty cell = 0); got {c!r}"
                ) from None
        raise


def read_tfrecord_batches(path: str, batch_size: int, compression: str = ""
                          ) -> Iterator[Batch]:
    """Batches of serialized tf.Examples ({"examples": [n] strings})."""
    ds = tf.data.TFRecordDataset(path, compression_type=compression,
                                 buffer_size=1 << 20)
    ds = ds.batch(batch_size).prefetch(2)
    position = 0
    for batch in ds:
        n = int(batch.shape[0])
        position += int(tf.reduce_sum(tf.strings.length(batch))) \
            + _TFRECORD_OVERHEAD * n
        yield Batch({"examples": batch}, n,
                    None if compression else position)


def _prefetched(batches: Iterator[Batch], depth: int = 2) -> Iterator[Batch]:
    """`batches` read by a background thread, at most `depth` ahead (CSV
    parsing holds the GIL, scoring releases it: the two overlap)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def work() -> None:
        try:
            for b in batches:
                if not put(b):
                    return
            put(end)
        except BaseException as e:  # noqa: BLE001 (raised by the consumer)
            put(e)

    threading.Thread(target=work, daemon=True,
                     name="tfdsmlp-predict-reader").start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


# ----------------------------------------------------------------- progress
class Progress:
    """Rows done, rate and (when the input size is known) the share done
    and the time left, written to `stream`: rewritten in place on a
    terminal (every `interval` s, default 0.5), one line every `interval` s
    (default 10) otherwise."""

    def __init__(self, total_bytes: int | None = None,
                 stream: TextIO | None = None,
                 interval: float | None = None, label: str = "predict"):
        self.total_bytes = total_bytes or None
        self.stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = (interval if interval is not None
                         else 0.5 if self._tty else 10.0)
        self.label = label
        self._start = self._last = time.perf_counter()
        self._open = False

    def update(self, rows: int, position: int | None = None) -> None:
        now = time.perf_counter()
        if now - self._last < self.interval:
            return
        self._last = now
        elapsed = max(now - self._start, 1e-9)
        text = f"{self.label}: {rows:,} rows, {rows / elapsed:,.0f} rows/s"
        if self.total_bytes and position:
            share = min(1.0, position / self.total_bytes)
            left = elapsed * (1.0 - share) / share
            text += (f", {100 * share:.0f}% of {_size(self.total_bytes)}, "
                     f"ETA {_duration(left)}")
        self._write(text)

    def done(self, rows: int, output: str) -> None:
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        self._write(f"{self.label}: {rows:,} rows in {elapsed:.1f} s "
                    f"({rows / elapsed:,.0f} rows/s) -> {output}")
        self.close()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False

    def _write(self, text: str) -> None:
        if self._tty:
            self.stream.write("\r\033[K" + text)
            self._open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} bytes"


def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


# ------------------------------------------------------------------ scoring
def guess_format(path: str) -> str:
    """"tfrecord" for .tfrecord / .tfrecords / .tfrec (+ .gz), else "csv"."""
    base = path.removesuffix(".gz")
    return "tfrecord" if base.endswith(TFRECORD_SUFFIXES) else "csv"


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


def _open_csv(path: str, stack: contextlib.ExitStack
              ) -> tuple[Iterable[str], Any]:
    """(text lines, position function or None) of a CSV file or stdin."""
    if path == "-":
        text = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig",
                                errors="surrogateescape", newline="")
        stack.callback(text.detach)      # leaves sys.stdin open
        return text, None
    raw = stack.enter_context(open(path, "rb"))  # noqa: SIM115
    binary = raw
    if path.endswith(".gz"):
        binary = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
    text = stack.enter_context(io.TextIOWrapper(
        binary, encoding="utf-8-sig", errors="surrogateescape", newline=""))
    return text, raw.tell


def predict_file(model: ExportedModel | str | os.PathLike,
                 input_path: str | os.PathLike,
                 output_path: str | os.PathLike, *,
                 input_format: str | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, delimiter: str = ",",
                 progress: Progress | bool = False) -> dict[str, Any]:
    """Scores `input_path` with an export; see the module docstring.

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
                lines, position = _open_csv(input_path, stack)
                batches = _prefetched(read_csv_batches(
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
