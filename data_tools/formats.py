"""Input formats: how one raw line becomes a label, tokens and numbers.

Each format builds a `Layout` from a file's first line (its header, or its
first row for header-less formats). A layout lists the output fields in order
and, for each, the column it reads and an optional transform. Everything
works on `bytes` so that no line is decoded: vocabulary tokens are raw bytes
and are written to the vocab files unchanged.

Transforms raise `RowError(reason)` for a value they cannot read; the row is
then rejected and counted under that reason.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

FORMATS = ("criteo", "avazu", "libfm", "csv")
CRITEO_NUMERIC_MODES = ("bucketize", "log1p")

# Reject reasons (keys of dataset.json "rejected").
BLANK_LINE = "blank_line"
WRONG_COLUMN_COUNT = "wrong_column_count"
BAD_LABEL = "bad_label"
BAD_NUMBER = "bad_number"
BAD_HOUR = "bad_hour"


class RowError(ValueError):
    """A raw value that cannot be converted; `reason` names the reject reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FormatError(ValueError):
    """The input does not match the format or options (e.g. missing column)."""


class FieldDef(collections.namedtuple(
        "FieldDef", "name kind column transform source fn",
        defaults=("none", "", None))):
    """One output field and where its value comes from in a split row.

    name, kind ("categorical"/"numeric"), column (index in the split row),
    transform (its name in dataset.json), source (the raw column's name),
    fn: maps the raw column bytes to a token (categorical) or float
    (numeric); None means the raw bytes are the token. Empty tokens mean
    "missing". (A namedtuple rather than a dataclass: `convert` starts
    faster without the dataclasses module.)
    """

    __slots__ = ()


class Layout(collections.namedtuple(
        "Layout", "fields num_columns label_column label_values sep "
        "has_header quoted_csv", defaults=(False,))):
    """How to read the rows of one input file.

    fields: the FieldDefs in output order; num_columns, label_column and
    label_values (raw label bytes -> 0/1) of the split rows; sep: the
    separator byte, or None to split on runs of whitespace; has_header;
    quoted_csv: fall back to the csv module on '"'.
    """

    __slots__ = ()

    @property
    def categorical(self) -> list[FieldDef]:
        return [f for f in self.fields if f.kind == "categorical"]

    @property
    def numeric(self) -> list[FieldDef]:
        return [f for f in self.fields if f.kind == "numeric"]

    def describe(self) -> list[tuple[str, str, str, str]]:
        return [(f.name, f.kind, f.transform, f.source) for f in self.fields]


# --------------------------------------------------------------- transforms
def _number(raw: bytes) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise RowError(BAD_NUMBER) from None
    if not math.isfinite(v):
        raise RowError(BAD_NUMBER)
    return v


def log_square_bucket(raw: bytes) -> bytes:
    """Criteo integer -> token: v > 2 -> floor(ln(v)^2), else int(v); '' stays ''."""
    if not raw:
        return b""
    v = _number(raw)
    if v > 2:
        return str(math.floor(math.log(v) ** 2)).encode()
    return str(int(v)).encode()


def log1p_number(raw: bytes) -> float:
    """Criteo integer -> log1p(max(v, 0)); empty -> 0.0."""
    return math.log1p(max(_number(raw), 0.0)) if raw else 0.0


def plain_number(raw: bytes) -> float:
    """CSV numeric column -> float; empty -> 0.0."""
    return _number(raw) if raw.strip() else 0.0


def _parse_hour(raw: bytes):
    import datetime  # only Avazu needs it; keeps `convert` quick to start
    if len(raw) != 8 or not raw.isdigit():
        raise RowError(BAD_HOUR)
    try:
        return datetime.datetime(2000 + int(raw[0:2]), int(raw[2:4]),
                                 int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        raise RowError(BAD_HOUR) from None


def hour_of_day(raw: bytes) -> bytes:
    """Avazu hour YYMMDDHH -> hour of day '0'..'23'."""
    return str(_parse_hour(raw).hour).encode()


def weekday(raw: bytes) -> bytes:
    """Avazu hour YYMMDDHH -> weekday '0' (Monday) .. '6'."""
    return str(_parse_hour(raw).weekday()).encode()


def libfm_token(raw: bytes) -> bytes:
    """libfm 'id:value' -> 'id' (the value is ignored)."""
    return raw.split(b":", 1)[0]


BINARY_LABELS = {b"0": 0, b"1": 1, b"0.0": 0, b"1.0": 1}
LIBFM_LABELS = {**BINARY_LABELS, b"-1": 0, b"+1": 1, b"-1.0": 0}


# ------------------------------------------------------------------ formats
def _split_header(line: bytes, sep: bytes) -> list[str]:
    return [c.strip().decode("utf-8", "replace")
            for c in line.rstrip(b"\r\n").split(sep)]


def _column_index(header: list[str], name: str, path: str, flag: str) -> int:
    if name not in header:
        raise FormatError(
            f"{path}: column {name!r} (from {flag}) is not in the header "
            f"{header}")
    return header.index(name)


def criteo_layout(first_line: bytes, path: str, criteo_numeric: str
                  ) -> Layout:
    if criteo_numeric not in CRITEO_NUMERIC_MODES:
        raise FormatError(f"--criteo-numeric should be one of "
                          f"{CRITEO_NUMERIC_MODES}. Received: {criteo_numeric!r}")
    fields = []
    for i in range(13):
        name = f"I{i + 1}"
        if criteo_numeric == "bucketize":
            fields.append(FieldDef(name, "categorical", 1 + i,
                                   "log_square_bucket", name, log_square_bucket))
        else:
            fields.append(FieldDef(name, "numeric", 1 + i, "log1p", name,
                                   log1p_number))
    for i in range(26):
        name = f"C{i + 1}"
        fields.append(FieldDef(name, "categorical", 14 + i, "none", name))
    return Layout(fields, 40, 0, BINARY_LABELS, b"\t", has_header=False)


def avazu_layout(first_line: bytes, path: str) -> Layout:
    header = _split_header(first_line, b",")
    for col in ("id", "click", "hour"):
        _column_index(header, col, path, "the avazu format")
    fields = []
    for j, col in enumerate(header):
        if col in ("id", "click"):
            continue
        if col == "hour":
            fields.append(FieldDef("hour_of_day", "categorical", j,
                                   "hour_of_day", "hour", hour_of_day))
            fields.append(FieldDef("weekday", "categorical", j, "weekday",
                                   "hour", weekday))
        else:
            fields.append(FieldDef(col, "categorical", j, "none", col))
    return Layout(fields, len(header), header.index("click"), BINARY_LABELS,
                  b",", has_header=True)


def libfm_layout(first_line: bytes, path: str,
                 names: Sequence[str] | None) -> Layout:
    n = len(first_line.split()) - 1
    if names:
        _check_once(names, "--fields", "give every field its own name")
        if len(names) != n:
            raise FormatError(
                f"{path}: --fields names {len(names)} fields but the first "
                f"row has {n} id:value pairs")
    else:
        if n < 1:
            raise FormatError(f"{path}: first row has no id:value pairs")
        names = [f"f{i}" for i in range(n)]
    fields = [FieldDef(name, "categorical", 1 + i, "none", name, libfm_token)
              for i, name in enumerate(names)]
    return Layout(fields, 1 + n, 0, LIBFM_LABELS, None, has_header=False)


def csv_layout(first_line: bytes, path: str, label: str | None,
               categorical: Sequence[str] | None,
               numeric: Sequence[str] | None) -> Layout:
    if not label:
        raise FormatError("--format csv needs --label COLUMN")
    check_csv_columns(label, categorical, numeric)
    header = _split_header(first_line, b",")
    label_col = _column_index(header, label, path, "--label")
    numeric = list(numeric or [])
    if categorical is None or not list(categorical):
        categorical = [c for c in header if c != label and c not in numeric]
        _check_once(categorical, f"the header of {path}",
                    "rename one, or choose columns with --categorical")
    fields = []
    for name in categorical:
        fields.append(FieldDef(name, "categorical",
                               _column_index(header, name, path,
                                             "--categorical"), "none", name))
    for name in numeric:
        fields.append(FieldDef(name, "numeric",
                               _column_index(header, name, path, "--numeric"),
                               "none", name, plain_number))
    if not fields:
        raise FormatError(f"{path}: no feature columns besides {label!r}")
    return Layout(fields, len(header), label_col, BINARY_LABELS, b",",
                  has_header=True, quoted_csv=True)


def _check_once(names: Sequence[str], where: str, fix: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise FormatError(f"{name!r} is listed twice in {where}: {fix}")
        seen.add(name)


def check_csv_columns(label: str, categorical: Sequence[str] | None,
                      numeric: Sequence[str] | None) -> None:
    """Refuses the label column among the features and a column listed
    twice (in --categorical, --numeric or both)."""
    lists = {"--categorical": list(categorical or []),
             "--numeric": list(numeric or [])}
    for flag, names in lists.items():
        if label in names:
            raise FormatError(
                f"the label column {label!r} is also listed in {flag}: it "
                f"would be stored as a feature (a target leak). Remove it "
                f"from {flag}")
        _check_once(names, flag, "list each column once")
    both = set(lists["--categorical"]) & set(lists["--numeric"])
    if both:
        raise FormatError(
            f"column {min(both)!r} is listed in both --categorical and "
            f"--numeric: list it in one of them only")


def make_layout(fmt: str, first_line: bytes, path: str, *,
                criteo_numeric: str = "bucketize",
                fields: Sequence[str] | None = None,
                label: str | None = None,
                categorical: Sequence[str] | None = None,
                numeric: Sequence[str] | None = None) -> Layout:
    """Builds the layout of `path` from its first line."""
    if fmt == "criteo":
        return criteo_layout(first_line, path, criteo_numeric)
    if fmt == "avazu":
        return avazu_layout(first_line, path)
    if fmt == "libfm":
        return libfm_layout(first_line, path, fields)
    if fmt == "csv":
        return csv_layout(first_line, path, label, categorical, numeric)
    raise FormatError(f"--format should be one of {FORMATS}. Received: {fmt!r}")
