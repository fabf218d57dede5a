"""Mixed bfloat16 training (`train.precision`): scoped policy, float32
logits, the student's two phases agree, old runs still match."""

from __future__ import annotations

import json
import os

import tfdsmlp  # noqa: F401
from tfdsmlp import cli
from tfdsmlp.distill.student_trainer import student_streams
from tfdsmlp.models.registry import build_model
from tfdsmlp.run_dir import differences
from tfdsmlp.training.precision import precision_policy
from tfdsmlp.training.train_config import TrainConfig

import numpy as np
import pytest
import tensorflow as tf


def test_policy_is_scoped_and_logits_are_float32(tiny_spec, tiny_batch):
    x, _ = tiny_batch
    before = tf.keras.mixed_precision.global_policy().name
    with precision_policy("mixed_bfloat16"):
        model = build_model("dsmlp", {"main_hidden_units": [8],
                                      "parallel_hidden_units": [4]},
                            tiny_spec)
        out = model(x)
    assert tf.keras.mixed_precision.global_policy().name == before
    assert model.main_mlp.compute_dtype == "bfloat16"
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)
    assert out.dtype == tf.float32
    streams = student_streams(model, x, training=False)
    assert {v.dtype for v in streams.values()} == {tf.float32}
    # the same weights in float32 give nearly the same logits
    ref = build_model("dsmlp", {"main_hidden_units": [8],
                                "parallel_hidden_units": [4]}, tiny_spec)
    ref(x)
    ref.set_weights(model.get_weights())
    np.testing.assert_allclose(out.numpy(), ref(x).numpy(), atol=0.05)


@pytest.mark.parametrize("name", ["dnn", "deepfm", "dcnv2", "gdcn",
                                  "finalmlp", "xdeepfm", "autoint", "dsmlp"])
def test_every_model_trains_in_mixed_bfloat16(name, tiny_spec, tiny_batch):
    from tfdsmlp.training.fit import compile_ctr_model

    x, y = tiny_batch
    with precision_policy("mixed_bfloat16"):  # sublayers build in the call
        model = build_model(name, {}, tiny_spec)
        model(x)
    compile_ctr_model(model, TrainConfig(batch_size=16,
                                         precision="mixed_bfloat16"))
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model(x).dtype == tf.float32


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="float16")


def test_stored_fingerprints_without_the_new_settings_still_match():
    stored = {"train": {"seed": 1}}
    assert differences(stored, {"train": {"seed": 1, "jit_compile": False,
                                          "precision": "float32"}}) == []
    assert differences(stored, {"train": {"seed": 1,
                                          "precision": "mixed_bfloat16"}}) == [
        "train.precision: stored 'float32', now 'mixed_bfloat16'"]


def test_distill_and_align_precisions_must_agree(synth_data, tmp_path,
                                                 capsys):
    out = tmp_path / "run"
    rc = cli.main(["run", "--data", synth_data, "--teacher", "dnn",
                   "--preset", "synthetic", "--out", str(out), "--quiet",
                   "--set", "distill.train.precision=mixed_bfloat16"])
    assert rc != 0
    assert "align.train.precision" in capsys.readouterr().err
    assert not os.path.exists(out / "config.yaml")


def test_bfloat16_teacher_trains_and_exports_float32(synth_data, tmp_path):
    out = tmp_path / "run"
    assert cli.main([
        "train", "--data", synth_data, "--model", "dnn", "--preset",
        "synthetic", "--out", str(out), "--quiet",
        "--set", "train.precision=mixed_bfloat16", "--set", "train.epochs=2",
        "--set", "train.batch_size=64", "--set", "train.learning_rate=0.01",
        "--set", "params.hidden_units=[8]"]) == 0
    with open(out / "metrics.json", encoding="utf-8") as f:
        metrics = json.load(f)
    assert metrics["selected"]["valid_auc"] > 0.55
    base = tmp_path / "saved"
    assert cli.main(["export", "--run", str(out), "--name", "m",
                     "--base-dir", str(base)]) == 0
    sig = tf.saved_model.load(str(base / "m" / "1")).signatures[
        "predict_indexed"]
    assert sig.structured_outputs["logit"].dtype == tf.float32
