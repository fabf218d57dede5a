"""`export --precision mixed_bfloat16`: the served model computes in
bfloat16, says so in its metadata, and `serve-check` compares it with the
model rebuilt in the same precision and scores both precisions."""

from __future__ import annotations

import json

from tfdsmlp import cli
from tfdsmlp.export import read_metadata

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bf16_export(export_run_dir, tmp_path_factory) -> str:
    base = str(tmp_path_factory.mktemp("bf16_saved_models"))
    rc = cli.main(["export", "--run", export_run_dir, "--name", "ctr16",
                   "--version", "1", "--phase", "dsmlp", "--base-dir", base,
                   "--precision", "mixed_bfloat16"])
    assert rc == 0
    return f"{base}/ctr16/1"


def test_bfloat16_export_records_its_precision(bf16_export, exported):
    assert read_metadata(bf16_export)["precision"] == "mixed_bfloat16"
    assert read_metadata(exported["dsmlp"])["precision"] == "float32"


def test_bfloat16_model_computes_in_bfloat16(export_run_dir, test_rows):
    from tfdsmlp.export.run_models import load_run_model
    from tfdsmlp.servecheck.check import reference_outputs

    m16 = load_run_model(export_run_dir, "dsmlp",
                         precision="mixed_bfloat16")[0]
    m32 = load_run_model(export_run_dir, "dsmlp")[0]
    dense16 = [v for v in m16.trainable_variables if "kernel" in v.name]
    assert dense16 and all(v.dtype == "float32" for v in dense16)
    assert {layer.compute_dtype for layer in m16.submodules
            if hasattr(layer, "compute_dtype")} >= {"bfloat16"}
    p16 = reference_outputs(m16, test_rows)["probability"]
    p32 = reference_outputs(m32, test_rows)["probability"]
    # same weights: close, but rounded through bfloat16 (not identical)
    diff = np.abs(p16 - p32)
    assert 0 < diff.max() < 0.05


def test_unknown_precision_is_a_clear_error(export_run_dir):
    from tfdsmlp.export.run_models import load_run_model

    with pytest.raises(ValueError, match="--precision should be one of"):
        load_run_model(export_run_dir, "dsmlp", precision="float16")


def test_serve_check_of_a_bfloat16_export(bf16_export, export_data,
                                          tmp_path, capsys):
    from tfdsmlp.servecheck.check import BF16_TOLERANCE

    out = str(tmp_path / "report.json")
    rc = cli.main(["serve-check", bf16_export, "--data", export_data,
                   "--iters", "5", "--batch", "64", "--json", out])
    text = capsys.readouterr().out
    assert rc == 0, text
    with open(out) as f:
        rep = json.load(f)
    assert rep["precision"] == "mixed_bfloat16"
    assert rep["tolerance"] == BF16_TOLERANCE
    q = rep["quality"]
    assert set(q) == {"auc", "logloss", "float32_auc", "float32_logloss",
                      "max_probability_diff_vs_float32"}
    assert 0 < q["max_probability_diff_vs_float32"] < 0.05
    assert abs(q["auc"] - q["float32_auc"]) < 0.05
    assert "the float32 model on them: AUC" in text


def test_quality_needs_both_classes_and_matching_rows():
    from tfdsmlp.metrics import roc_auc
    from tfdsmlp.servecheck.check import quality

    labels = np.array([0.0, 1.0, 1.0, 0.0])
    prob = np.array([0.1, 0.8, 0.4, 0.3])
    ref = {"probability": np.array([0.1, 0.7, 0.2, 0.3])}
    q = quality({"probability": prob.reshape(-1, 1).tolist()}, ref, labels,
                "mixed_bfloat16")
    assert q["auc"] == 1.0 and q["float32_auc"] == roc_auc(labels,
                                                           ref["probability"])
    assert q["max_probability_diff_vs_float32"] == pytest.approx(0.2)
    assert quality({"probability": prob.tolist()}, ref, labels,
                   "float32").keys() == {"auc", "logloss"}
    assert quality({"probability": prob.tolist()}, ref, np.ones(4),
                   "float32") == {}
    assert quality(None, ref, labels, "float32") == {}
    assert quality({"probability": prob[:3].tolist()}, ref, labels,
                   "float32") == {}
