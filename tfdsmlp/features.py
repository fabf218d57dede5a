"""Feature specification of a converted dataset (`DIR/dataset.json`).

One `FeatureSpec` object describes the fields of a dataset written by
`python -m data_tools convert`. The TFRecord parser uses it now and the
SavedModel export uses it to rebuild raw-value lookups, so training and serving
read the same schema.

On-disk layout of a dataset directory::

    DIR/dataset.json              schema, counts, provenance (see below)
    DIR/vocab/<field>.txt         one raw token per line, most frequent first;
                                  line i (0-based) has id i + NUM_RESERVED_IDS
    DIR/<split>/part-NNNNN.tfrecord[.gz]
                                  tf.train.Example records with
                                    ids   int64[num_categorical]
                                    dense float[num_numeric]  (only if > 0)
                                    label float[1]

Categorical ids: 0 = padding / missing (empty raw value), 1 = OOV (value not
in the training vocabulary), 2.. = vocabulary entries.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfdsmlp.schema import (  # noqa: F401
    FIELD_KINDS,
    FORMAT_VERSION,
    NUM_RESERVED_IDS,
    OOV_ID,
    PADDING_ID,
)


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One input field.

    Attributes:
      name: field name (also the raw source column name used at serving).
      kind: "categorical" (looked up in a vocabulary) or "numeric" (float).
      vocab_size: number of ids including the reserved ones (categorical only).
      transform: how the raw value becomes a token or number, e.g. "none",
        "log_square_bucket" (Criteo integers -> categorical tokens), "log1p",
        "hour_of_day", "weekday" (Avazu `hour`). Serving repeats it.
      source: name of the raw column the value is read from.
    """

    name: str
    kind: str
    vocab_size: int = 0
    transform: str = "none"
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise ValueError(
                f"Field `{self.name}`: `kind` should be one of {FIELD_KINDS}. "
                f"Received: kind={self.kind!r}")
        if self.kind == "categorical" and self.vocab_size < NUM_RESERVED_IDS:
            raise ValueError(
                f"Field `{self.name}`: categorical `vocab_size` should be >= "
                f"{NUM_RESERVED_IDS} (padding + OOV). Received: "
                f"vocab_size={self.vocab_size}")


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Ordered fields of a dataset plus the label name.

    `categorical` fields are packed, in order, into the `ids` feature and
    `numeric` fields, in order, into the `dense` feature.
    """

    fields: tuple[FieldSpec, ...]
    label: str = "label"
    compression: str = ""

    def __post_init__(self) -> None:
        if not self.fields:
            raise ValueError("FeatureSpec needs at least one field. Received: 0")
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"Duplicate field names: {dupes}")

    @property
    def categorical(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.kind == "categorical")

    @property
    def numeric(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.kind == "numeric")

    @property
    def num_categorical(self) -> int:
        return len(self.categorical)

    @property
    def num_numeric(self) -> int:
        return len(self.numeric)

    @property
    def num_fields(self) -> int:
        return len(self.fields)

    @property
    def vocab_sizes(self) -> list[int]:
        return [f.vocab_size for f in self.categorical]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "compression": self.compression,
            "fields": [dataclasses.asdict(f) for f in self.fields],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        known = {f.name for f in dataclasses.fields(FieldSpec)}
        fields = []
        for i, raw in enumerate(d["fields"]):
            extra = set(raw) - known - {"vocab_file", "padding_id", "oov_id"}
            if extra:
                raise ValueError(
                    f"fields[{i}] has unknown keys {sorted(extra)}; "
                    f"expected a subset of {sorted(known)}")
            fields.append(FieldSpec(**{k: v for k, v in raw.items()
                                       if k in known}))
        return cls(fields=tuple(fields), label=d.get("label", "label"),
                   compression=d.get("compression", ""))

    @classmethod
    def from_dataset_dir(cls, data_dir) -> FeatureSpec:
        """The spec of a dataset directory (see `DatasetDir`)."""
        from tfdsmlp.dataset_dir import DatasetDir

        return DatasetDir.open(data_dir).spec

