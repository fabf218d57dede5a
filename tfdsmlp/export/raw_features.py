"""Raw values -> model inputs in the serving graph (no training/serving skew).

`RawFeatures` repeats, with TensorFlow ops, what `python -m data_tools
convert` does to a raw row (see docs/DATA_FORMAT.md and
`data_tools/formats.py`):

* one input per raw **source** column (`FieldSpec.source`; Avazu's `hour`
  feeds both `hour_of_day` and `weekday`);
* categorical sources are `tf.string` (the cell text, numbers included),
  numeric sources `tf.float32` (a missing cell is 0, which is what the
  converter makes of an empty cell);
* per field transform: `none` (libfm datasets also drop `:value`),
  `log_square_bucket`, `log1p`, `hour_of_day`, `weekday`, each as defined
  in `tfdsmlp.transforms_contract` (formulas and golden cases that the
  converter, its C engine and this graph are tested against);
* token -> id through the dataset's vocabulary files, which become SavedModel
  assets: id = line index + 2, empty token -> 0 (padding / missing), a token
  not in the vocabulary -> 1 (OOV).

Every input is checked in the graph, so that a bad request fails with a
message naming the feature and what was expected, also under TF Serving
(whose C++ session does not check fed shapes): shape `[batch]` or
`[batch, 1]`, one batch size for all features, numbers that parse, finite
floats, valid `YYMMDDHH` hours.

Only TensorFlow ops are used (no Keras layer), so the exported graph loads
with TensorFlow alone.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.features import (
    NUM_RESERVED_IDS,
    OOV_ID,
    PADDING_ID,
    FeatureSpec,
    FieldSpec,
)

import tensorflow as tf

CATEGORICAL_TRANSFORMS = ("none", "log_square_bucket", "hour_of_day",
                          "weekday")
NUMERIC_TRANSFORMS = ("none", "log1p")
HOUR_TRANSFORMS = ("hour_of_day", "weekday")
# What a raw number may look like: the grammar of Python's float(), which
# the converter uses (surrounding whitespace, digits grouped by single
# underscores), minus inf/nan, which the converter rejects. A value that
# overflows to infinity (1e400) is rejected after parsing, as it is there.
_DIGITS = r"[0-9](?:_?[0-9])*"
_SPACE = r"[ \t\n\r\f\v]*"
NUMBER_PATTERN = (rf"{_SPACE}[+-]?(?:{_DIGITS}\.?(?:{_DIGITS})?|\.{_DIGITS})"
                  rf"(?:[eE][+-]?{_DIGITS})?{_SPACE}")
HOUR_PATTERN = r"[0-9]{8}"


@dataclasses.dataclass(frozen=True)
class RawInput:
    """One serving input: a raw source column.

    `dtype` is "string" (categorical sources) or "float32" (numeric ones);
    `fields` are the dataset fields computed from it.
    """

    name: str
    dtype: str
    fields: tuple[str, ...]
    transforms: tuple[str, ...]

    @property
    def tf_dtype(self) -> tf.DType:
        return tf.string if self.dtype == "string" else tf.float32

    def describe(self) -> str:
        kind = ("string (the raw cell text)" if self.dtype == "string"
                else "float32 (missing -> 0)")
        return kind


def raw_inputs(spec: FeatureSpec) -> list[RawInput]:
    """The serving inputs of `spec`, one per source column, in field order."""
    order: list[str] = []
    by_source: dict[str, list[FieldSpec]] = {}
    for f in spec.fields:
        src = f.source or f.name
        if src not in by_source:
            order.append(src)
            by_source[src] = []
        by_source[src].append(f)
    out = []
    for src in order:
        fields = by_source[src]
        kinds = {f.kind for f in fields}
        if len(kinds) > 1:
            raise ValueError(
                f"Source column {src!r} feeds both categorical and numeric "
                f"fields {[f.name for f in fields]}; the serving export "
                "supports one kind per source column.")
        for f in fields:
            allowed = (CATEGORICAL_TRANSFORMS if f.kind == "categorical"
                       else NUMERIC_TRANSFORMS)
            if f.transform not in allowed:
                raise ValueError(
                    f"Field {f.name!r}: transform {f.transform!r} cannot be "
                    f"exported; {f.kind} fields support {allowed}.")
        out.append(RawInput(
            name=src,
            dtype="string" if "categorical" in kinds else "float32",
            fields=tuple(f.name for f in fields),
            transforms=tuple(f.transform for f in fields)))
    return out


def vocab_files(data: str | os.PathLike) -> dict[str, str]:
    """Field name -> absolute vocabulary path of every categorical field of
    dataset directory `data` (a path or a `DatasetDir`)."""
    data = DatasetDir.open(data)
    out = {}
    for f in data.spec.categorical:
        path = data.vocab_file(f.name)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"vocabulary {path} of field {f.name!r} not found: "
                "raw-value serving needs the vocabularies that `python -m "
                f"data_tools convert` or `synth` wrote into {data.path}.")
        out[f.name] = path
    return out


def count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return f.read().count(b"\n")


def dataset_format(data: str | os.PathLike) -> str:
    """The converter's `--format` ("" for synthetic / unknown)."""
    options = DatasetDir.open(data).meta.get("options") or {}
    return str(options.get("format") or "")


# ------------------------------------------------------------------ checks
def _label(name: str) -> str:
    # tf.strings.format treats "{}" as a placeholder
    return name.replace("{", "(").replace("}", ")")


def _joined(values: tf.Tensor, limit: int = 5) -> tf.Tensor:
    return tf.strings.reduce_join(values[:limit], separator=", ")


class Checks:
    """Collects checks (a bool scalar + a function building its message) and
    turns them into one guard: a `tf.cond` whose failing branch builds the
    messages of every failed check and raises InvalidArgumentError with them.
    The messages are only computed when a check fails, and a few guards cost
    far less (to build and to run) than one `tf.debugging.Assert` per
    feature."""

    def __init__(self) -> None:
        self._items: list[tuple[tf.Tensor, Callable[[], tf.Tensor]]] = []

    @property
    def items(self) -> list[tuple[tf.Tensor, Callable[[], tf.Tensor]]]:
        return list(self._items)

    def add(self, ok: tf.Tensor, message: Callable[[], tf.Tensor]) -> None:
        self._items.append((ok, message))

    def guard(self) -> list[tf.Tensor]:
        """[] if nothing to check, else [a tensor to depend on]."""
        if not self._items:
            return []
        items = list(self._items)
        oks = tf.stack([ok for ok, _ in items])

        def fail():
            msgs = tf.stack([m() for _, m in items])
            text = tf.strings.reduce_join(
                tf.boolean_mask(msgs, tf.logical_not(oks)), separator="; ")
            check = tf.raw_ops.Assert(condition=tf.constant(False),
                                      data=[text], summarize=1)
            with tf.control_dependencies([check]):
                return tf.constant(False)

        return [tf.cond(tf.reduce_all(oks), lambda: tf.constant(True), fail)]


def check_vectors(features: dict[str, tf.Tensor], whats: dict[str, str]
                  ) -> dict[str, tf.Tensor]:
    """Each feature as shape [batch]; fails unless every one is [batch] or
    [batch, 1] and all have the same batch size."""
    checks = Checks()
    names = list(features)
    shapes = {n: tf.shape(features[n], out_type=tf.int64) for n in names}
    for n in names:
        shape = shapes[n]
        rank = tf.size(shape)
        ok = tf.logical_or(
            tf.equal(rank, 1),
            tf.logical_and(tf.equal(rank, 2),
                           tf.equal(tf.reduce_prod(shape[1:]), 1)))
        checks.add(ok, lambda n=n: tf.strings.format(
            f"feature `{_label(n)}`: expected {whats[n]} of shape [batch] "
            "or [batch, 1]; got shape {}", shapes[n]))
    if len(names) > 1:
        # batch sizes are only compared when every shape is right
        shapes_ok = tf.reduce_all(tf.stack([ok for ok, _ in checks.items]))
        sizes = {n: tf.reduce_prod(shapes[n]) for n in names}
        first = names[0]
        for n in names[1:]:
            checks.add(tf.logical_or(tf.logical_not(shapes_ok),
                                     tf.equal(sizes[n], sizes[first])),
                       lambda n=n: tf.strings.format(
                           f"feature `{_label(n)}`: batch size differs from "
                           f"feature `{_label(first)}` ({{}} vs {{}} values; "
                           "every feature needs one value per example)",
                           (sizes[n], sizes[first])))
    with tf.control_dependencies(checks.guard()):
        return {n: tf.reshape(features[n], [-1]) for n in names}


def check_vector(x: tf.Tensor, name: str, what: str) -> tf.Tensor:
    """`x` as shape [batch]; fails unless it is [batch] or [batch, 1]."""
    return check_vectors({name: x}, {name: what})[name]


def check_matrix(x: tf.Tensor, name: str, width: int, what: str
                 ) -> tf.Tensor:
    """`x` as shape [batch, width]; fails otherwise."""
    shape = tf.shape(x, out_type=tf.int64)
    ok = tf.logical_and(
        tf.equal(tf.size(shape), 2),
        tf.equal(tf.reduce_prod(shape[1:]), width))
    checks = Checks()
    checks.add(ok, lambda: tf.strings.format(
        f"input `{_label(name)}`: expected {what} of shape "
        f"[batch, {width}]; got shape {{}}", shape))
    with tf.control_dependencies(checks.guard()):
        return tf.reshape(x, [-1, width])


def add_finite_check(checks: Checks, x: tf.Tensor, name: str) -> None:
    checks.add(tf.reduce_all(tf.math.is_finite(x)), lambda: tf.constant(
        f"feature `{_label(name)}`: expected finite float32 numbers "
        "(missing -> 0); got a NaN or infinity"))


# -------------------------------------------------------------- transforms
def parse_numbers(raw: tf.Tensor, name: str, checks: Checks) -> tf.Tensor:
    """Strings -> float64, as Python's float() reads them (see
    NUMBER_PATTERN). A string that is not a finite number is reported
    through `checks` and read as 0 meanwhile."""
    fmt = tf.strings.regex_full_match(raw, NUMBER_PATTERN)
    digits = tf.strings.regex_replace(tf.strings.strip(raw), "_", "")
    v = tf.strings.to_number(tf.where(fmt, digits, "0"), tf.float64)
    ok = tf.logical_and(fmt, tf.math.is_finite(v))
    checks.add(tf.reduce_all(ok), lambda: tf.strings.join([
        (f"feature `{name}`: expected a number as a string (e.g. 5 or "
         "2.5; an empty string = missing); got "),
        _joined(tf.boolean_mask(raw, tf.logical_not(ok)))]))
    return tf.where(ok, v, tf.zeros_like(v))


def _integer_text(v: tf.Tensor) -> tf.Tensor:
    """str(int(v)) of float64 values: truncation toward zero, every digit
    of large values (printf's %.0f of an integral double is exact, as
    Python's int is; a cast to int64 would overflow below -2**63)."""
    whole = tf.where(v < 0, tf.math.ceil(v), tf.math.floor(v))
    whole = tf.where(tf.equal(whole, 0.0), tf.zeros_like(whole), whole)
    return tf.strings.as_string(whole, precision=0)   # no "-0"


def log_square_bucket(raw: tf.Tensor, name: str, checks: Checks | None = None
                      ) -> tf.Tensor:
    """v > 2 -> str(floor(ln(v)^2)), else str(int(v)); '' stays ''.

    Without `checks`, invalid numbers fail here."""
    own = checks is None
    checks = Checks() if own else checks
    empty = tf.equal(raw, "")
    v = parse_numbers(tf.where(empty, "0", raw), name, checks)
    big = v > 2.0
    bucket = tf.floor(tf.square(tf.math.log(tf.where(big, v, 3.0))))
    token = tf.where(empty, "", _integer_text(tf.where(big, bucket, v)))
    if own:
        with tf.control_dependencies(checks.guard()):
            token = tf.identity(token)
    return token


def libfm_token(raw: tf.Tensor) -> tf.Tensor:
    """libfm "id:value" -> "id" (everything from the first ':' dropped)."""
    return tf.strings.regex_replace(raw, "(?s):.*", "")


def log1p_number(v: tf.Tensor) -> tf.Tensor:
    """float32 v -> float32 log1p(max(v, 0)), computed in float64 as the
    converter does."""
    v64 = tf.cast(v, tf.float64)
    return tf.cast(tf.math.log1p(tf.maximum(v64, 0.0)), tf.float32)


def _days_from_civil(y, m, d):
    """Days since 1970-01-01 (H. Hinnant's algorithm), int64, y >= 0."""
    y = y - tf.cast(m <= 2, tf.int64)
    era = y // 400
    yoe = y - era * 400
    mp = tf.where(m > 2, m - 3, m + 9)
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_hour(raw: tf.Tensor, name: str, checks: Checks | None = None
               ) -> tuple[tf.Tensor, tf.Tensor]:
    """Avazu YYMMDDHH -> (hour of day, weekday with Monday = 0), int64.

    Without `checks`, invalid hours fail here."""
    own = checks is None
    checks = Checks() if own else checks
    fmt = tf.strings.regex_full_match(raw, HOUR_PATTERN)
    safe = tf.where(fmt, raw, "14102100")

    def part(pos):
        return tf.strings.to_number(tf.strings.substr(safe, pos, 2),
                                    tf.int64)

    y, m, d, h = 2000 + part(0), part(2), part(4), part(6)
    leap = tf.logical_and(tf.equal(y % 4, 0),
                          tf.logical_or(tf.not_equal(y % 100, 0),
                                        tf.equal(y % 400, 0)))
    month_days = tf.constant([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31],
                             tf.int64)
    mi = tf.clip_by_value(m, 1, 12) - 1
    dim = tf.gather(month_days, mi) + tf.cast(
        tf.logical_and(leap, tf.equal(m, 2)), tf.int64)
    ok = fmt & (m >= 1) & (m <= 12) & (d >= 1) & (d <= dim) & (h <= 23)
    checks.add(tf.reduce_all(ok), lambda: tf.strings.join([
        (f"feature `{name}`: expected an hour YYMMDDHH as a string, e.g. "
         "14102100; got "),
        _joined(tf.boolean_mask(raw, tf.logical_not(ok)))]))
    days = _days_from_civil(y, tf.clip_by_value(m, 1, 12),
                            tf.clip_by_value(d, 1, 31))
    out = h, (days + 3) % 7     # 1970-01-01 was a Thursday
    if own:
        with tf.control_dependencies(checks.guard()):
            out = tuple(tf.identity(t) for t in out)
    return out


class RawFeatures(tf.Module):
    """Raw inputs {source: [batch]} -> {"ids": int64 [batch, C], "dense":
    float32 [batch, N]} exactly as the converter computes them."""

    def __init__(self, spec: FeatureSpec, vocab_paths: dict[str, str],
                 data_format: str = "", name: str = "raw_features"):
        super().__init__(name=name)
        self.spec = spec
        self.inputs = raw_inputs(spec)
        self.data_format = data_format
        self.vocab_sizes = {}
        tables = {}
        for f in spec.categorical:
            if f.name not in vocab_paths:
                raise ValueError(f"no vocabulary file for field {f.name!r}")
            path = vocab_paths[f.name]
            lines = count_lines(path)
            if lines + NUM_RESERVED_IDS != f.vocab_size:
                raise ValueError(
                    f"{path} has {lines} tokens but field {f.name!r} has "
                    f"vocab_size {f.vocab_size} (= tokens + "
                    f"{NUM_RESERVED_IDS}): the vocabulary does not belong "
                    "to this dataset.")
            self.vocab_sizes[f.name] = f.vocab_size
            tables[f.name] = tf.lookup.StaticHashTable(
                tf.lookup.TextFileInitializer(
                    path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                    tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
                default_value=OOV_ID - NUM_RESERVED_IDS)
        # A dict of trackables is tracked (the tables and their vocabulary
        # assets are saved with the module).
        self.tables = tables

    @classmethod
    def from_dataset_dir(cls, data: str | os.PathLike,
                         spec: FeatureSpec | None = None) -> RawFeatures:
        """The transform of dataset directory `data` (a path or an opened
        `DatasetDir`); `spec` defaults to the dataset's."""
        data = DatasetDir.open(data)
        return cls(spec or data.spec, vocab_files(data), dataset_format(data))

    # -- signatures' input specs -----------------------------------------
    def input_signature(self) -> dict[str, tf.TensorSpec]:
        """Unknown-rank specs (shapes are checked in the graph)."""
        return {i.name: tf.TensorSpec(None, i.tf_dtype, name=i.name)
                for i in self.inputs}

    def example_features(self) -> dict[str, tf.io.FixedLenFeature]:
        """`tf.io.parse_example` spec of the raw named features."""
        return {i.name: tf.io.FixedLenFeature([], i.tf_dtype)
                for i in self.inputs}

    # -- the transform ---------------------------------------------------
    def columns(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Checked [batch] vectors of every raw input."""
        for i in self.inputs:
            if i.name not in features:
                raise ValueError(f"missing feature {i.name!r}")
        whats = {i.name: ("a string tensor" if i.dtype == "string"
                          else "a float32 tensor") for i in self.inputs}
        return check_vectors({i.name: features[i.name] for i in self.inputs},
                             whats)

    def token(self, f: FieldSpec, raw: tf.Tensor, hours: dict,
              checks: Checks) -> tf.Tensor:
        src = f.source or f.name
        if f.transform == "none":
            if self.data_format == "libfm":   # data_tools.formats.libfm_token
                return libfm_token(raw)
            return raw
        if f.transform == "log_square_bucket":
            return log_square_bucket(raw, src, checks)
        if src not in hours:
            hours[src] = parse_hour(raw, src, checks)
        hour, day = hours[src]
        return tf.strings.as_string(hour if f.transform == "hour_of_day"
                                    else day)

    def lookup(self, f: FieldSpec, token: tf.Tensor) -> tf.Tensor:
        ids = self.tables[f.name].lookup(token) + NUM_RESERVED_IDS
        return tf.where(tf.equal(token, ""), tf.constant(PADDING_ID, tf.int64),
                        ids)

    def __call__(self, features: dict[str, tf.Tensor]
                 ) -> dict[str, tf.Tensor]:
        cols = self.columns(features)
        checks = Checks()     # value checks: numbers, hours, finite floats
        hours: dict[str, Any] = {}
        ids = [self.lookup(f, self.token(f, cols[f.source or f.name], hours,
                                         checks))
               for f in self.spec.categorical]
        if ids:
            ids = tf.stack(ids, axis=1)
        else:
            first = cols[self.inputs[0].name]
            ids = tf.zeros([tf.size(first), 0], tf.int64)
        out = {"ids": ids}
        for i in self.inputs:
            if i.dtype == "float32":
                add_finite_check(checks, cols[i.name], i.name)
        dense = []
        for f in self.spec.numeric:
            v = cols[f.source or f.name]
            if f.transform == "log1p":
                v = log1p_number(v)
            dense.append(v)
        if dense:
            out["dense"] = tf.stack(dense, axis=1)
        with tf.control_dependencies(checks.guard()):
            return {k: tf.identity(v) for k, v in out.items()}
