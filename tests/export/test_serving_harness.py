"""The C++ serving-path timer (`tfdsmlp.serving_bench.harness`) and XLA
serving exports (`export --jit-compile`)."""

from __future__ import annotations

import json
import os
import shutil

from tfdsmlp.export import export_run
from tfdsmlp.serving_bench import harness

import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.skipif(
    not (shutil.which("cc") or shutil.which("gcc")),
    reason="the C serving harness needs a C compiler (cc or gcc)")


@pytest.fixture(scope="module")
def jit_export(export_run_dir, tmp_path_factory) -> str:
    base = str(tmp_path_factory.mktemp("jit_models"))
    return export_run(export_run_dir, "dsmlp_xla", "dsmlp", base_dir=base,
                      jit_compile=True)


def test_jit_export_predicts_what_the_plain_export_does(exported, jit_export,
                                                         export_data):
    from tfdsmlp.servecheck.raw_rows import read_raw_rows

    rows = read_raw_rows(export_data, "test", limit=32)
    feeds = {"ids": tf.constant(rows.ids), "dense": tf.constant(rows.dense)}
    plain = tf.saved_model.load(exported["dsmlp"]).signatures[
        "predict_indexed"](**feeds)["logit"].numpy()
    xla = tf.saved_model.load(jit_export).signatures["predict_indexed"](
        **feeds)["logit"].numpy()
    np.testing.assert_allclose(xla, plain, rtol=1e-4, atol=1e-5)
    with open(os.path.join(jit_export, "assets.extra",
                           "tfdsmlp_export.json"), encoding="utf-8") as f:
        assert json.load(f)["jit_compile"] is True


def test_cpp_timer_runs_every_signature(exported, jit_export, export_data,
                                        tmp_path):
    for path in (exported["dsmlp"], jit_export):
        out = harness.time_export(path, export_data, batches=(1, 16),
                                  repeats=5, build_dir=str(tmp_path))
        assert set(out) == set(harness.SIGNATURES)
        for per_batch in out.values():
            for r in per_batch.values():
                assert 0 < r["p50_ms"] <= r["p99_ms"]
                assert r["examples_per_s"] > 0
    text = harness.format_serving({"dsmlp": out})
    assert "| dsmlp | preprocess | 16 |" in text


def test_cpp_timer_names_a_missing_signature(exported):
    with pytest.raises(harness.HarnessError, match="no signature 'nope'"):
        harness.signature_tensors(exported["dsmlp"], "nope")
