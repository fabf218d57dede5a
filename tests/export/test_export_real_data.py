"""On the real samples in ../shared/data (skipped when absent): the serving
graph's ids (the `preprocess` function that every raw signature uses) equal
the converter's ids for the raw test rows, for Criteo (bucketize and log1p,
separate files and --split), Avazu (hour -> hour_of_day, weekday), Frappe
CSV and Frappe libfm."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tiny_data import require_shared_data

CASES = {
    "criteo_bucketize": {"format": "criteo",
                         "train": "criteo_sample/train.txt",
                         "test": "criteo_sample/test.txt"},
    "criteo_log1p": {"format": "criteo", "train": "criteo_sample/train.txt",
                     "test": "criteo_sample/test.txt",
                     "criteo_numeric": "log1p"},
    "criteo_split": {"format": "criteo", "train": "criteo_sample/train.txt",
                     "split": "8:1:1", "seed": 5},
    "avazu": {"format": "avazu", "train": "avazu_sample/train.csv",
              "test": "avazu_sample/test.csv"},
    "frappe_csv": {"format": "csv", "label": "label",
                   "train": "frappe/train.csv", "test": "frappe/test.csv"},
    "frappe_libfm": {"format": "libfm", "train": "frappe/frappe.train.libfm",
                     "test": "frappe/frappe.test.libfm"},
}


# These go through a whole SavedModel (export, load, signatures).
EXPORTED = ("avazu",)


def _exported_preprocess(data_dir, rows, tmp_path):
    from tfdsmlp.dataset_dir import DatasetDir
    from tfdsmlp.export import export_saved_model
    from tfdsmlp.models import build_model
    from tfdsmlp.servecheck.emulator import Servable

    spec = DatasetDir.open(data_dir).spec
    model = build_model("dnn", {"hidden_units": [4], "embedding_dim": 2},
                        spec)
    model(model.dummy_inputs())
    path = export_saved_model(model, spec, str(tmp_path / "sm"), "m",
                              data_dir=data_dir)
    s = Servable(path)
    pred = s.call("serving_default", rows.arrays())
    assert pred["probability"].shape == (len(rows), 1)
    ref = model({"ids": rows.ids, **({"dense": rows.dense}
                                     if rows.dense.shape[1] else {})})
    np.testing.assert_allclose(pred["logit"], ref.numpy(), atol=1e-5)
    return s.call("preprocess", rows.arrays())


@pytest.mark.parametrize("case", sorted(CASES))
def test_serving_ids_equal_converter_ids(case, tmp_path):
    from tfdsmlp.export.raw_features import RawFeatures
    from tfdsmlp.servecheck.raw_rows import read_raw_rows

    from data_tools.convert import convert
    from data_tools.inspect_dataset import load_examples

    opts = dict(CASES[case])
    for key in ("train", "test"):
        if key in opts:
            opts[key] = str(require_shared_data(*opts[key].split("/")))
    out = str(tmp_path / case)
    convert(out=out, quiet=True, workers=1, **opts)

    rows = read_raw_rows(out, "test")
    assert "raw file" in rows.origin       # read from the raw source
    records = load_examples(out, "test")
    # the converter's ids of the raw rows are the dataset's TFRecord ids
    np.testing.assert_array_equal(rows.ids, records["ids"])
    np.testing.assert_allclose(rows.dense, records["dense"], rtol=1e-6)

    if case in EXPORTED:
        got = _exported_preprocess(out, rows, tmp_path)
    else:
        raw = RawFeatures.from_dataset_dir(out)
        got = tf.function(raw)({k: tf.constant(v)
                                for k, v in rows.arrays().items()})
        got = {k: v.numpy() for k, v in got.items()}
    np.testing.assert_array_equal(got["ids"], rows.ids)
    if rows.dense.shape[1]:
        np.testing.assert_allclose(got["dense"], rows.dense,
                                   rtol=1e-6, atol=1e-7)
    assert (rows.ids == 1).any() or case.startswith("frappe"), \
        "real test rows should include unseen (OOV) values"
