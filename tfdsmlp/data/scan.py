"""Scanning TFRecord files: readable records and damaged files.

TensorFlow's own `DataLossError` ("truncated record at 6722") does not say
which file; `find_corrupt_files` does, and `corrupt_data_error` turns the
error into a `CorruptRecordError` naming the file(s) (training and
evaluation in `tfdsmlp.training` raise it). With `skip_corrupt=True` the
readers of `tfdsmlp.data.reader` read each file up to its first unreadable
record (the rest of that file is lost), after one cheap scan
(`scan_file`) that counts the records skipped (`skipped_records`) and logs
each damaged file (`warn_skipped`). The same scans count the rows of each
input pipeline (`tfdsmlp.data.epochs.pipeline_rows`).
"""

from __future__ import annotations

import logging
import os

from tfdsmlp.dataset_dir import DataDir, DatasetDir

import tensorflow as tf

SPLITS = ("train", "valid", "test")

_log = logging.getLogger("tfdsmlp")


class CorruptRecordError(ValueError):
    """A TFRecord file of the dataset is truncated or corrupted."""


_SCANS: dict[tuple, tuple[int, str | None]] = {}


def scan_file(path: str, compression: str | None = None
              ) -> tuple[int, str | None]:
    """(readable records, error message or None) of one TFRecord file.

    Reads raw records (no parsing), so it is about as fast as the disk;
    results are cached per (path, size, mtime)."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns,
           compression)
    if key not in _SCANS:
        count, error = 0, None
        ds = tf.data.TFRecordDataset(path, compression_type=compression)
        try:
            for batch in ds.batch(8192):
                count += int(batch.shape[0])
        except tf.errors.DataLossError as e:
            error = _short_error(e)
            # The batch holding the bad record was lost: count exactly.
            count = int(ds.ignore_errors().reduce(
                tf.constant(0, tf.int64), lambda n, _: n + 1))
        _SCANS[key] = (count, error)
    return _SCANS[key]


def _short_error(e: Exception) -> str:
    msg = getattr(e, "message", str(e))
    msg = msg.split("}}")[-1].split("[Op:")[0].strip()
    return msg or type(e).__name__


def find_corrupt_files(data_dir: DataDir, splits=SPLITS
                       ) -> list[tuple[str, int, str]]:
    """[(file, readable records, error)] for each damaged file of `splits`
    (splits missing from dataset.json are ignored)."""
    data = DatasetDir.open(data_dir)
    compression = data.spec.compression or None
    bad = []
    for split in splits:
        if split not in data.splits:
            continue
        for path in data.files(split):
            count, error = scan_file(path, compression)
            if error:
                bad.append((path, count, error))
    return bad


def corrupt_data_error(data_dir: DataDir, splits=SPLITS,
                       cause: Exception | None = None) -> Exception:
    """A `CorruptRecordError` naming the damaged files of `splits` (scans
    them: call it after a `tf.errors.DataLossError`)."""
    data = DatasetDir.open(data_dir)
    bad = find_corrupt_files(data, splits)
    if not bad:
        return CorruptRecordError(
            f"Unreadable data in {data} ({_short_error(cause)}), but no "
            f"damaged file found in splits {list(splits)} on a second read.")
    files = "; ".join(f"{path} ({error} after {count} good records)"
                      for path, count, error in bad)
    return CorruptRecordError(
        f"Truncated or corrupted TFRecord file(s): {files}. Re-create the "
        "dataset (python -m data_tools convert ...), or pass --skip-corrupt "
        "(TrainConfig.skip_corrupt) to skip the unreadable records; the "
        "number skipped is then logged and written to metrics.json.")


def skipped_records(data_dir: DataDir, split: str) -> int:
    """Records of `split` that `skip_corrupt=True` skips (dataset.json's row
    count minus the readable records; scans the split once, cached)."""
    data = DatasetDir.open(data_dir)
    compression = data.spec.compression or None
    scans = [scan_file(f, compression) for f in data.files(split)]
    rows = data.rows(split)
    if rows is None:
        return sum(1 for _, error in scans if error)
    return max(0, rows - sum(count for count, _ in scans))


_WARNED: set = set()


def warn_skipped(data: DatasetDir, split: str) -> None:
    """Logs, once per process, each damaged file of `split` and the records
    `skip_corrupt` skips."""
    compression = data.spec.compression or None
    for path in data.files(split):
        count, error = scan_file(path, compression)
        if error and (path, count) not in _WARNED:
            _WARNED.add((path, count))
            _log.warning("skip_corrupt: %s is damaged (%s): only its first "
                         "%d records are read.", path, error, count)
    skipped = skipped_records(data, split)
    if skipped and (data.path, split, skipped) not in _WARNED:
        _WARNED.add((data.path, split, skipped))
        _log.warning("skip_corrupt: skipping %d unreadable records of split "
                     "%r of %s.", skipped, split, data)
