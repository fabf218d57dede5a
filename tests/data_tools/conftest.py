"""Shared fixtures of the data_tools tests.

Real-data tests read ../shared/data (relative to the repository root) and
skip when it is absent; the Frappe conversions (~290k rows) run once per
session and are shared.
"""

from __future__ import annotations

from pathlib import Path

import tfdsmlp  # noqa: F401  (before TensorFlow, for Keras 2)

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
FRAPPE_FIELDS = ["user", "item", "daytime", "weekday", "isweekend",
                 "homework", "cost", "weather", "country", "city"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not found: {SHARED_DATA} (real-data "
                    f"tests need the shared benchmark files)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def frappe_csv_dir(shared_data, tmp_path_factory) -> Path:
    from data_tools.convert import convert

    src = shared_data / "frappe"
    out = tmp_path_factory.mktemp("frappe") / "csv"
    convert("csv", str(src / "train.csv"), str(out), valid=str(src /
            "valid.csv"), test=str(src / "test.csv"), label="label",
            quiet=True)
    return out


@pytest.fixture(scope="session")
def frappe_libfm_dir(shared_data, tmp_path_factory) -> Path:
    from data_tools.convert import convert

    src = shared_data / "frappe"
    out = tmp_path_factory.mktemp("frappe") / "libfm"
    convert("libfm", str(src / "frappe.train.libfm"), str(out),
            valid=str(src / "frappe.validation.libfm"),
            test=str(src / "frappe.test.libfm"), fields=FRAPPE_FIELDS,
            quiet=True)
    return out


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from data_tools.synth import write_synthetic

    out = tmp_path_factory.mktemp("synth") / "ds"
    write_synthetic(str(out), num_rows=20000, seed=0)
    return out
