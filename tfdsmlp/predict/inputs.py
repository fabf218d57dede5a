"""Reading the input of `predict` in batches: CSV rows or tf.Examples.

* CSV (`read_csv_batches`): a header, then raw rows; the model's input
  columns become `serving_default` arguments, categorical cells as they are,
  numeric cells read as the converter reads them (`parse_number`).
* TFRecord (`read_tfrecord_batches`): batches of serialized tf.Examples for
  `predict_examples`.

Each `Batch` says how far into the file it ends, for the progress line.
`prefetched` parses the next batches on a background thread while one is
scored; `open_csv` opens a CSV file (`.gz` = GZIP) or standard input, and
`guess_format` picks the format from a file name.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import gzip
import io
import itertools
import math
import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from tfdsmlp.predict.model import PredictError

import tensorflow as tf

FORMATS = ("csv", "tfrecord")
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrec")
_TFRECORD_OVERHEAD = 16   # length (8) + 2 CRCs (4 each) around a record


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


def prefetched(batches: Iterator[Batch], depth: int = 2) -> Iterator[Batch]:
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


def guess_format(path: str) -> str:
    """"tfrecord" for .tfrecord / .tfrecords / .tfrec (+ .gz), else "csv"."""
    base = path.removesuffix(".gz")
    return "tfrecord" if base.endswith(TFRECORD_SUFFIXES) else "csv"


def open_csv(path: str, stack: contextlib.ExitStack
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
