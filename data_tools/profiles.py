"""The `synth --profile` tables: Criteo- and Avazu-shaped raw files.

Numbers are approximate public statistics of the Kaggle data sets (Criteo
display ads 2014, 45,840,617 rows; Avazu CTR 2014, 40,428,967 rows):
`full_vocab` is the number of distinct values of a column in the full
data set, `top_share` the share of its most frequent value among the
present cells, and the missing intervals reproduce Criteo's missing rates
and the way its columns go missing together (columns on one group's
per-row uniform with nested intervals are missing in nested sets of rows).
A column's vocabulary is min(full_vocab, training rows); see
docs/DATA_FORMAT.md for the table.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from data_tools.synth_columns import (
    Categorical,
    Count,
    Hour,
    RowId,
    linear_ints,
    listed_ints,
)


@dataclasses.dataclass(frozen=True)
class Profile:
    """A raw file layout: `columns` in file order, the label at
    `label_index`; `convert_format` is the converter's --format."""

    name: str
    convert_format: str
    reference_rows: int
    positive_rate: float
    columns: tuple[Any, ...]
    label_index: int
    label_name: str
    sep: bytes
    header: bool
    extension: str

    def file_name(self, split: str, gzip: bool = False) -> str:
        return f"{split}{self.extension}" + (".gz" if gzip else "")

    def header_line(self) -> bytes:
        names = [c.name for c in self.columns]
        names.insert(self.label_index, self.label_name)
        return self.sep.join(n.encode() for n in names) + b"\n"


# Criteo integer columns: (name, p_zero, mu, sigma, missing); log-normal
# sizes fitted by eye to Criteo's medians and 90th percentiles.
_A, _B, _C = "ints_a", "ints_b", "cats_c"
CRITEO_COUNTS = (
    Count("I1", 0.48, 1.1, 1.05, missing=(_A, 0.0, 0.454)),
    Count("I2", 0.18, 2.6, 2.25, p_negative=0.10),
    Count("I3", 0.01, 1.95, 1.55, missing=("I3", 0.0, 0.215)),
    Count("I4", 0.07, 1.6, 1.2, missing=(_B, 0.0, 0.217)),
    Count("I5", 0.02, 8.0, 2.9, missing=(_A, 0.0, 0.026)),
    Count("I6", 0.06, 3.9, 1.75, missing=(_A, 0.0, 0.223)),
    Count("I7", 0.26, 1.6, 1.4, missing=(_A, 0.026, 0.069)),
    Count("I8", 0.12, 2.3, 1.15, missing=("I8", 0.0, 0.0005)),
    Count("I9", 0.03, 3.8, 1.8, missing=(_A, 0.026, 0.069)),
    Count("I10", 0.51, 0.0, 0.3, missing=(_A, 0.0, 0.454)),
    Count("I11", 0.27, 0.7, 0.7, missing=(_A, 0.026, 0.069)),
    Count("I12", 0.75, 0.0, 0.8, missing=(_A, 0.0, 0.766)),
    Count("I13", 0.06, 1.8, 1.3, missing=(_B, 0.0, 0.217)),
)
# Criteo categorical columns: (name, distinct values in the full data,
# share of the top value among present cells, missing).
_D, _E = "cats_d", "cats_e"
CRITEO_CATEGORIES = (
    Categorical("C1", 1460, 0.50),
    Categorical("C2", 583, 0.12),
    Categorical("C3", 10131227, 0.05, (_D, 0.0, 0.034)),
    Categorical("C4", 2202608, 0.08, (_D, 0.0, 0.034)),
    Categorical("C5", 305, 0.67),
    Categorical("C6", 24, 0.53, (_C, 0.0, 0.121)),
    Categorical("C7", 12517, 0.011),
    Categorical("C8", 633, 0.60),
    Categorical("C9", 3, 0.885),
    Categorical("C10", 93145, 0.28),
    Categorical("C11", 5683, 0.02),
    Categorical("C12", 8351593, 0.05, (_D, 0.0, 0.034)),
    Categorical("C13", 3194, 0.022),
    Categorical("C14", 27, 0.36),
    Categorical("C15", 14992, 0.021),
    Categorical("C16", 5461306, 0.05, (_D, 0.0, 0.034)),
    Categorical("C17", 10, 0.43),
    Categorical("C18", 5652, 0.052),
    Categorical("C19", 2173, 0.60, (_E, 0.0, 0.440)),
    Categorical("C20", 4, 0.36, (_E, 0.0, 0.440)),
    Categorical("C21", 7046547, 0.05, (_D, 0.0, 0.034)),
    Categorical("C22", 18, 0.52, (_C, 0.0, 0.763)),
    Categorical("C23", 15, 0.45),
    Categorical("C24", 286181, 0.08, (_D, 0.0, 0.034)),
    Categorical("C25", 105, 0.33, (_E, 0.0, 0.440)),
    Categorical("C26", 142572, 0.086, (_E, 0.0, 0.440)),
)

CRITEO = Profile(
    name="criteo", convert_format="criteo", reference_rows=45_840_617,
    positive_rate=0.25, columns=CRITEO_COUNTS + CRITEO_CATEGORIES,
    label_index=0, label_name="label", sep=b"\t", header=False,
    extension=".txt")

# Avazu: every column categorical, none missing; integer-valued columns get
# distinct integers per rank (the top value first), the others 8 hex digits.
AVAZU_COLUMNS = (
    RowId(),
    Hour(),
    Categorical("C1", 7, 0.92, ints=linear_ints(1005)),
    Categorical("banner_pos", 7, 0.72, ints=linear_ints(0)),
    Categorical("site_id", 4737, 0.36),
    Categorical("site_domain", 7745, 0.37),
    Categorical("site_category", 26, 0.41),
    Categorical("app_id", 8552, 0.64),
    Categorical("app_domain", 559, 0.67),
    Categorical("app_category", 36, 0.65),
    Categorical("device_id", 2686408, 0.82),
    Categorical("device_ip", 6729486, 0.005),
    Categorical("device_model", 8251, 0.06),
    Categorical("device_type", 5, 0.92, ints=linear_ints(1)),
    Categorical("device_conn_type", 4, 0.86, ints=linear_ints(0)),
    Categorical("C14", 2626, 0.02, ints=linear_ints(15704, 7)),
    Categorical("C15", 8, 0.93, ints=listed_ints(
        (320, 300, 216, 728, 120, 1024, 480, 768))),
    Categorical("C16", 9, 0.94, ints=listed_ints(
        (50, 250, 36, 480, 90, 20, 768, 320, 1024))),
    Categorical("C17", 435, 0.11, ints=linear_ints(1722, 3)),
    Categorical("C18", 4, 0.42, ints=linear_ints(0)),
    Categorical("C19", 68, 0.30, ints=linear_ints(35, 4)),
    Categorical("C20", 172, 0.47, ints=linear_ints(100000, 3, first=-1)),
    Categorical("C21", 60, 0.22, ints=linear_ints(79, 3)),
)

AVAZU = Profile(
    name="avazu", convert_format="avazu", reference_rows=40_428_967,
    positive_rate=0.17, columns=AVAZU_COLUMNS, label_index=1,
    label_name="click", sep=b",", header=True, extension=".csv")

PROFILES = {"criteo": CRITEO, "avazu": AVAZU}


def vocab_table(profile: Profile, rows: int) -> list[dict[str, Any]]:
    """Per categorical column: full-data vocabulary, this run's vocabulary
    (capped by the training rows), top share, Zipf exponent, missing."""
    from data_tools.synth_columns import zipf_exponent
    out = []
    for c in profile.columns:
        if isinstance(c, Categorical):
            v = c.vocab(rows)
            out.append({"column": c.name, "full_vocab": c.full_vocab,
                        "vocab": v, "top_share": c.top_share,
                        "zipf_exponent": round(zipf_exponent(
                            v, c.top_share), 4),
                        "missing_rate": _rate(c.missing)})
        elif isinstance(c, Count):
            out.append({"column": c.name, "p_negative": c.p_negative,
                        "p_zero": c.p_zero, "log_mu": c.mu,
                        "log_sigma": c.sigma,
                        "missing_rate": _rate(c.missing)})
    return out


def _rate(missing: tuple[str, float, float] | None) -> float:
    return 0.0 if missing is None else round(missing[2] - missing[1], 4)
