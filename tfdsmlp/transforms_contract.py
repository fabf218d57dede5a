"""The feature transforms, defined once: names, formulas, golden cases.

A transform turns one raw cell (bytes) into a categorical token (bytes;
`b""` = missing, id 0) or a number (stored as float32). Three
implementations compute them, and `tests/export/test_transforms_contract.py`
checks each against `GOLDEN_CASES`:

  converter, Python   `data_tools.formats` (the reference)
  converter, C        `data_tools/native/ctrconvert.c` (`cat_transform`,
                      `num_transform`, `cat_token_libfm`, `parse_number`),
                      through `data_tools convert --engine native`
  serving graph       `tfdsmlp.export.raw_features.RawFeatures`
                      (`log_square_bucket`, `parse_hour`, `libfm_token`,
                      `log1p_number`)

plus the client side of float32 serving inputs, `tfdsmlp.predict
.parse_number` (a numeric serving input is the cell's number; the graph
applies the rest of the transform).

The C engine converts a strict subset of the inputs itself: any value it
does not handle bit for bit like Python (every value Python rejects, and
the `native="python"` cases below) makes it hand the whole input to the
Python converter (`--engine auto`) or fail (`--engine native`). So every
engine writes the same dataset, and serving computes the same tokens.

`number(raw)`, used by several transforms, is Python's `float()` of the
bytes: optional ASCII whitespace around, a sign, digits (single `_`
between digits allowed), a fraction, an exponent; `inf`, `nan` and values
that overflow to infinity (`1e400`) are rejected (`bad_number`).

This module imports nothing, so `data_tools` can use it too.
"""

from __future__ import annotations

from typing import NamedTuple


class Transform(NamedTuple):
    """One transform.

    name: the converter's name (`field <col> <kind> <name>` in the C job).
    stored_as: the `transform` of the field in dataset.json.
    kind: "categorical" (-> token) or "numeric" (-> float32).
    used_by: where `data_tools convert` applies it.
    serving_input: dtype of the serving input of the raw column.
    formula: the definition.
    """

    name: str
    stored_as: str
    kind: str
    used_by: str
    serving_input: str
    formula: str


TRANSFORMS = {t.name: t for t in (
    Transform("none", "none", "categorical",
              "criteo C1..C26, avazu columns, csv --categorical", "string",
              "token = raw, unchanged (no strip); b'' = missing"),
    Transform("libfm_token", "none", "categorical",
              "every libfm field (dataset.json options.format = libfm)",
              "string",
              "token = raw up to its first b':' (b'7:1' -> b'7'); the "
              "value after ':' is ignored"),
    Transform("log_square_bucket", "log_square_bucket", "categorical",
              "criteo I1..I13, --criteo-numeric bucketize", "string",
              "b'' -> b'' (missing); v = number(raw); v > 2 -> "
              "str(floor(ln(v) ** 2)), else str(int(v)) (truncated toward "
              "0, every digit); not a number -> reject bad_number"),
    Transform("log1p", "log1p", "numeric",
              "criteo I1..I13, --criteo-numeric log1p", "float32",
              "b'' -> 0.0; log1p(max(number(raw), 0)) in float64, stored "
              "as float32; not a number -> reject bad_number"),
    Transform("plain_number", "none", "numeric", "csv --numeric", "float32",
              "empty or blank -> 0.0; number(raw) as float32; not a number "
              "-> reject bad_number"),
    Transform("hour_of_day", "hour_of_day", "categorical",
              "avazu `hour` (YYMMDDHH, year 20YY)", "string",
              "str(HH) ('0'..'23'); not 8 ASCII digits of a valid date "
              "and hour -> reject bad_hour"),
    Transform("weekday", "weekday", "categorical",
              "avazu `hour` (YYMMDDHH, year 20YY)", "string",
              "str(weekday of 20YY-MM-DD), Monday = '0' .. Sunday = '6'; "
              "invalid -> reject bad_hour"),
)}


class Reject(NamedTuple):
    """The converter rejects the row (counted under `reason`); serving
    fails the request naming the feature (or the client cannot send it)."""

    reason: str


BAD_NUMBER = Reject("bad_number")
BAD_HOUR = Reject("bad_hour")


class Case(NamedTuple):
    """raw -> expected (a token, a number or a `Reject`). `native`: "same"
    (the C engine computes it) or "python" (the C engine hands the input
    to the Python converter)."""

    transform: str
    raw: bytes
    expected: bytes | float | Reject
    native: str = "same"


_C = Case
GOLDEN_CASES = (
    _C("none", b"204", b"204"), _C("none", b"", b""),
    _C("none", b"a b", b"a b"), _C("none", b" x ", b" x "),
    _C("libfm_token", b"7:1", b"7"), _C("libfm_token", b"12", b"12"),
    _C("libfm_token", b"a:b:c", b"a"), _C("libfm_token", b":5", b""),
    _C("log_square_bucket", b"", b""),
    _C("log_square_bucket", b"0", b"0"), _C("log_square_bucket", b"1", b"1"),
    _C("log_square_bucket", b"2", b"2"), _C("log_square_bucket", b"3", b"1"),
    _C("log_square_bucket", b"-1", b"-1"),
    _C("log_square_bucket", b"2.5", b"0"),
    _C("log_square_bucket", b"1.9", b"1"),
    _C("log_square_bucket", b"-0.5", b"0"),      # int(-0.5) = 0, not "-0"
    _C("log_square_bucket", b"1e3", b"47"),
    _C("log_square_bucket", b"+12", b"6"),
    _C("log_square_bucket", b".5", b"0"),
    _C("log_square_bucket", b"5.", b"2"),
    _C("log_square_bucket", b"007", b"3"),
    _C("log_square_bucket", b"99999999999", b"641"),
    _C("log_square_bucket", b"-99999999999", b"-99999999999"),
    _C("log_square_bucket", b"-1e19", b"-10000000000000000000", "python"),
    _C("log_square_bucket", b" 7 ", b"3", "python"),
    _C("log_square_bucket", b"1_000", b"47", "python"),
    _C("log_square_bucket", b"abc", BAD_NUMBER, "python"),
    _C("log_square_bucket", b"nan", BAD_NUMBER, "python"),
    _C("log_square_bucket", b"inf", BAD_NUMBER, "python"),
    _C("log_square_bucket", b"1e400", BAD_NUMBER, "python"),
    _C("log_square_bucket", b"0x10", BAD_NUMBER, "python"),
    _C("log_square_bucket", b"1__0", BAD_NUMBER, "python"),
    _C("log_square_bucket", b"-", BAD_NUMBER, "python"),
    _C("log1p", b"", 0.0), _C("log1p", b"0", 0.0), _C("log1p", b"-3", 0.0),
    _C("log1p", b"1", 0.6931471805599453),
    _C("log1p", b"10", 2.3978952727983707),
    _C("log1p", b"2.5", 1.252762968495368),
    _C("log1p", b"1e30", 69.07755278982137),
    _C("log1p", b"123456789", 18.631401774268017),
    _C("log1p", b"abc", BAD_NUMBER, "python"),
    _C("log1p", b"inf", BAD_NUMBER, "python"),
    _C("plain_number", b"", 0.0), _C("plain_number", b"  ", 0.0),
    _C("plain_number", b"1.25", 1.25), _C("plain_number", b"-3", -3.0),
    _C("plain_number", b"7e-3", 0.007),
    _C("plain_number", b" 2 ", 2.0, "python"),
    _C("plain_number", b"abc", BAD_NUMBER, "python"),
    _C("plain_number", b"nan", BAD_NUMBER, "python"),
    _C("hour_of_day", b"14102100", b"0"),
    _C("hour_of_day", b"14102923", b"23"),
    _C("hour_of_day", b"16022912", b"12"),       # 2016 is a leap year
    _C("hour_of_day", b"1410210", BAD_HOUR, "python"),
    _C("hour_of_day", b"14102124", BAD_HOUR, "python"),
    _C("hour_of_day", b"15022900", BAD_HOUR, "python"),
    _C("hour_of_day", b"14130100", BAD_HOUR, "python"),
    _C("hour_of_day", b"1410210a", BAD_HOUR, "python"),
    _C("hour_of_day", b"", BAD_HOUR, "python"),
    _C("weekday", b"14102100", b"1"),             # a Tuesday
    _C("weekday", b"14102923", b"2"),
    _C("weekday", b"16022912", b"0"),
    _C("weekday", b"00010100", b"5"),             # 2000-01-01, a Saturday
    _C("weekday", b"99123123", b"3"),
    _C("weekday", b"14100000", BAD_HOUR, "python"),
)


def cases(transform: str) -> list[Case]:
    """The golden cases of one transform."""
    if transform not in TRANSFORMS:
        raise ValueError(f"`transform` should be one of {sorted(TRANSFORMS)}"
                         f". Received: {transform!r}")
    return [c for c in GOLDEN_CASES if c.transform == transform]
