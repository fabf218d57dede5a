"""`DatasetDir`: a dataset directory, opened once and passed down.

A dataset directory is what `python -m data_tools convert` or `synth`
writes::

    DIR/dataset.json                 schema, counts, provenance
    DIR/vocab/<field>.txt            one raw token per line, most frequent
                                     first; line i has id i + NUM_RESERVED_IDS
    DIR/<split>/part-NNNNN.tfrecord  tf.train.Example records

`DatasetDir` is the only reader of `dataset.json`: it checks the file once
(present, valid JSON, a mapping, a supported `format_version`, a valid
schema) and owns everything derived from it: the `FeatureSpec`, the splits,
their row counts and files, the vocabulary files and the dataset's
fingerprint (the hash that run directories record, so that a run never
mixes phases trained on different data). It is an `os.PathLike`, so it can
stand wherever a directory path is expected.

    data = DatasetDir.open("data/frappe")
    data.spec.vocab_sizes, data.rows("train"), data.files("valid")
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

from tfdsmlp.features import FeatureSpec
from tfdsmlp.schema import FORMAT_VERSION

META_FILE = "dataset.json"
# What the readers take for a dataset directory: a path, or an opened
# `DatasetDir` (an `os.PathLike` too).
DataDir = str | os.PathLike
# Keys of dataset.json that do not change what a model learns from the data
# (who wrote it and when): left out of the fingerprint.
_UNFINGERPRINTED = ("created_by",)


class DatasetError(ValueError):
    """A dataset directory or its dataset.json is missing or invalid."""


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetDir(os.PathLike):
    """An opened dataset directory (see the module docstring).

    Attributes:
      path: absolute path of the directory.
      meta: the parsed dataset.json (treat as read-only).
      spec: `FeatureSpec` of its fields.
    """

    path: str
    meta: dict[str, Any]
    spec: FeatureSpec

    @staticmethod
    def exists(path: str | os.PathLike) -> bool:
        """Whether `path` holds a dataset.json (without checking it)."""
        return os.path.exists(os.path.join(os.fspath(path), META_FILE))

    @classmethod
    def open(cls, path: str | os.PathLike) -> DatasetDir:
        """Opens `path` (returned as is when already a `DatasetDir`).

        Raises `FileNotFoundError` when there is no dataset.json and
        `DatasetError` naming the file when it is not valid."""
        if isinstance(path, DatasetDir):
            return path
        path = os.path.abspath(os.fspath(path))
        meta_path = os.path.join(path, META_FILE)
        if not os.path.exists(meta_path):
            raise FileNotFoundError(
                f"{meta_path} not found: {path!r} is not a dataset "
                "directory. Create one with `python -m data_tools convert` "
                "or `python -m data_tools synth`.")
        try:
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DatasetError(
                f"{meta_path} is not valid JSON ({e}); the file is truncated "
                "or damaged. Convert the data again (`python -m data_tools "
                "convert ... --overwrite`).") from None
        if not isinstance(meta, dict):
            raise DatasetError(
                f"{meta_path}: the top level should be a JSON object. "
                f"Received: {type(meta).__name__}. Convert the data again.")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise DatasetError(
                f"{meta_path}: unsupported format_version {version!r}; this "
                f"tfdsmlp reads format_version {FORMAT_VERSION}. Convert the "
                "raw data again with this version's `python -m data_tools "
                "convert`.")
        try:
            spec = FeatureSpec.from_dict(meta)
            splits = meta.get("splits", {})
            if not isinstance(splits, dict):
                raise ValueError("`splits` should be a mapping")
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"{meta_path}: invalid schema: {e}. Convert "
                               "the data again.") from None
        return cls(path=path, meta=meta, spec=spec)

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    @property
    def meta_path(self) -> str:
        return os.path.join(self.path, META_FILE)

    @property
    def splits(self) -> tuple[str, ...]:
        """Split names in dataset.json ("train", "valid", "test", ...)."""
        return tuple(self.meta.get("splits", {}))

    def _split(self, split: str) -> dict[str, Any]:
        splits = self.meta.get("splits", {})
        if split not in splits:
            raise ValueError(f"Split {split!r} not in {self.meta_path}. "
                             f"Available splits: {sorted(splits)}")
        return splits[split]

    def rows(self, split: str) -> int | None:
        """Rows of `split` (None when dataset.json does not count them)."""
        rows = self._split(split).get("rows")
        return None if rows is None else int(rows)

    def files(self, split: str) -> list[str]:
        """The TFRecord files of `split`, in a stable order; checks that
        they exist."""
        names = self._split(split).get("files") or []
        files = [os.path.join(self.path, f) for f in names]
        missing = [f for f in files if not os.path.exists(f)]
        if missing:
            raise FileNotFoundError(
                f"Split {split!r} of {self.path}: files listed in "
                f"{META_FILE} are missing: {missing[:5]}")
        if not files:
            raise FileNotFoundError(
                f"Split {split!r} of {self.path} has no files in "
                f"{META_FILE}.")
        return files

    def vocab_file(self, field: str) -> str:
        """Path of categorical field `field`'s vocabulary file."""
        for raw in self.meta.get("fields", []):
            if raw.get("name") == field:
                return os.path.join(self.path, raw.get(
                    "vocab_file", os.path.join("vocab", f"{field}.txt")))
        raise ValueError(f"{self.meta_path} has no field {field!r}. Fields: "
                         f"{[f.name for f in self.spec.fields]}")

    @property
    def fingerprint(self) -> str:
        """Hash of the schema, splits, sources and options in dataset.json:
        equal for the same converted data wherever it is stored."""
        content = {k: v for k, v in self.meta.items()
                   if k not in _UNFINGERPRINTED}
        text = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
