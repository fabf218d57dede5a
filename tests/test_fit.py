"""Teacher training: FuxiCTR schedule with exact validation, run files, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
from tfdsmlp import cli
from tfdsmlp.data.reader import make_dataset
from tfdsmlp.features import FeatureSpec
from tfdsmlp.models import build_model
from tfdsmlp.training.evaluation import evaluate
from tfdsmlp.training.fit import fit_ctr_model
from tfdsmlp.training.pipeline import run_dsmlp
from tfdsmlp.training.run_config import RunConfig
from tfdsmlp.training.teacher import TeacherConfig, teacher_config
from tfdsmlp.training.train_config import TrainConfig

import numpy as np
import pytest
import tensorflow as tf
import yaml
from tiny_data import REPO_ROOT, make_rows, make_spec, write_dataset

DNN = {"embedding_dim": 4, "hidden_units": [16, 8], "dropout": 0.0,
       "batch_norm": True}


def small_dnn(spec, seed=0, **params):
    tf.keras.utils.set_random_seed(seed)
    return build_model("dnn", {**DNN, **params}, spec)


def test_fit_returns_exact_metrics_and_history(tiny_dataset_dir, tiny_spec):
    cfg = TrainConfig(batch_size=32, learning_rate=0.01, epochs=3,
                      patience=1, shuffle_buffer=1000, seed=1)
    model = small_dnn(tiny_spec)
    result = fit_ctr_model(model, tiny_dataset_dir, cfg, verbose=0)

    for split in ("valid", "test"):
        assert 0.0 <= result[split]["auc"] <= 1.0
        assert result[split]["logloss"] > 0
    hist = result["history"]
    assert 1 <= result["epochs"] <= 3
    for key in ("loss", "val_auc", "val_logloss", "learning_rate"):
        assert len(hist[key]) == result["epochs"], key
    assert 1 <= result["best_epoch"] <= result["epochs"]
    assert result["params"] == model.count_params()
    # The data has a learnable signal.
    assert result["valid"]["auc"] > 0.7
    # Best weights are restored: the final exact valid AUC is the best one.
    assert result["valid"]["auc"] == pytest.approx(max(hist["val_auc"]),
                                                   abs=1e-9)
    assert hist["val_auc"][result["best_epoch"] - 1] == max(hist["val_auc"])
    # val_auc is the exact AUC over the whole valid split.
    again = evaluate(model, make_dataset(tiny_dataset_dir, "valid", 17))
    assert again["auc"] == pytest.approx(result["valid"]["auc"], abs=1e-9)


def test_plateau_decays_lr_then_early_stopping(tiny_dataset_dir, tiny_spec):
    # A learning rate this small (and no batch norm, whose moving statistics
    # change regardless) leaves the predictions' ranks unchanged, so the
    # validation AUC never improves after the first epoch.
    cfg = TrainConfig(batch_size=64, learning_rate=1e-10, min_lr=1e-12,
                      lr_decay=0.1, epochs=6, patience=2, seed=3)
    model = small_dnn(tiny_spec, seed=3, batch_norm=False)
    result = fit_ctr_model(model, tiny_dataset_dir, cfg, verbose=0)
    hist = result["history"]
    assert len(set(hist["val_auc"])) == 1, hist["val_auc"]
    # Epoch 1 sets the best; epochs 2 and 3 do not improve: lr x0.1 after
    # each, and patience 2 stops training after epoch 3.
    assert result["epochs"] == 3
    assert result["best_epoch"] == 1
    np.testing.assert_allclose(hist["learning_rate"], [1e-10, 1e-10, 1e-11],
                               rtol=1e-5)
    final_lr = float(tf.keras.backend.get_value(
        model.optimizer.learning_rate))
    assert final_lr == pytest.approx(1e-12, rel=1e-5)  # floored at min_lr


def test_no_lr_decay_when_disabled(tiny_dataset_dir, tiny_spec):
    cfg = TrainConfig(batch_size=64, learning_rate=1e-10, lr_decay=1.0,
                      epochs=3, patience=1, seed=3)
    model = small_dnn(tiny_spec, seed=3, batch_norm=False)
    result = fit_ctr_model(model, tiny_dataset_dir, cfg, verbose=0)
    assert result["epochs"] == 2  # patience 1: stops after epoch 2
    assert result["history"]["learning_rate"] == pytest.approx([1e-10] * 2)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(
        1e-10)


def test_teacher_only_run_writes_config_metrics_and_weights(
        tiny_dataset_dir, tmp_path):
    cfg = teacher_config({
        "model": "dnn", "params": DNN,
        "train": {"batch_size": 32, "learning_rate": 0.01, "epochs": 2,
                  "patience": 1, "shuffle_buffer": 1000, "seed": 5}})
    out = str(tmp_path / "run")
    result = run_dsmlp(tiny_dataset_dir, RunConfig(teacher=cfg), out,
                       verbose=0, until="teacher")

    with open(os.path.join(out, "config.yaml")) as f:
        written = yaml.safe_load(f)
    assert written.pop("data") == os.path.abspath(tiny_dataset_dir)
    assert written["until"] == "teacher"
    assert teacher_config(written["teacher"]) == cfg
    assert written["teacher"]["params"]["hidden_units"] == [16, 8]
    # defaults written out
    assert written["teacher"]["params"]["activation"] == "relu"

    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["models"] == {"teacher": "dnn"}
    assert list(metrics["phases"]) == ["teacher"]
    teacher = metrics["phases"]["teacher"]
    assert teacher["test"]["auc"] == pytest.approx(
        result.metrics["phases"]["teacher"]["test"]["auc"])
    with open(os.path.join(out, "teacher", "done.json")) as f:
        history = json.load(f)["info"]["history"]
    assert teacher["valid"]["auc"] == pytest.approx(max(history["val_auc"]))
    # 320 rows / 32 = 10 train calls an epoch: start-up and steady step.
    assert set(teacher["startup"]) == {"first_step_seconds", "step_seconds",
                                       "overhead_seconds"}

    spec = FeatureSpec.from_dataset_dir(tiny_dataset_dir)
    restored = build_model("dnn", cfg.params, spec)
    restored(restored.dummy_inputs())
    restored.load_weights(os.path.join(out, "teacher", "weights", "model")
                          ).assert_existing_objects_matched()
    again = evaluate(restored, make_dataset(tiny_dataset_dir, "valid", 64))
    assert again["auc"] == pytest.approx(teacher["valid"]["auc"], abs=1e-6)


def test_teacher_config_fills_model_defaults():
    cfg = teacher_config({"model": "gdcn"})
    assert isinstance(cfg, TeacherConfig)
    assert cfg.params["cross_type"] == "gated"
    assert cfg.train == TrainConfig()


@pytest.fixture(scope="module")
def cli_dataset_dir(tmp_path_factory) -> str:
    """Enough training rows for the synthetic preset's batch of 1024."""
    spec = make_spec()
    splits = {"train": make_rows(1100, seed=0), "valid": make_rows(200, 1),
              "test": make_rows(200, 2)}
    return write_dataset(tmp_path_factory.mktemp("cli_data"), spec, splits)


def test_cli_train(cli_dataset_dir, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "tfdsmlp", "train", "--data", cli_dataset_dir,
         "--model", "dnn", "--preset", "synthetic", "--out", str(out),
         "--set", "train.epochs=1", "--quiet"],
        cwd=str(REPO_ROOT), env=env, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "teacher" in result.stdout and "test AUC" in result.stdout
    for name in ("config.yaml", "metrics.json", "teacher/weights",
                 "teacher/done.json"):
        assert (out / name).exists(), name
    with open(out / "config.yaml") as f:
        assert yaml.safe_load(f)["teacher"]["train"]["epochs"] == 1
    with open(out / "metrics.json") as f:
        assert json.load(f)["phases"]["teacher"]["epochs"] == 1


def test_cli_unknown_override_fails_with_the_key(cli_dataset_dir, tmp_path,
                                                 capsys):
    code = cli.main(["train", "--data", cli_dataset_dir, "--model", "dnn",
                     "--preset", "synthetic", "--out", str(tmp_path / "r"),
                     "--set", "params.foo=1", "--quiet"])
    assert code != 0
    err = capsys.readouterr().err
    assert "foo" in err and "hidden_units" in err
    assert not (tmp_path / "r").exists()  # nothing left behind


def test_cli_batch_larger_than_train_split_trains_on_every_row(
        tiny_dataset_dir, tmp_path, capsys):
    # 320 rows, batch 1024: one smaller batch per epoch (no row dropped).
    out = tmp_path / "r"
    code = cli.main(["train", "--data", tiny_dataset_dir, "--model", "dnn",
                     "--preset", "synthetic", "--out", str(out),
                     "--set", "train.epochs=1",
                     "--set", "train.check_learned=false", "--quiet"])
    assert code == 0, capsys.readouterr().err
    with open(out / "teacher" / "done.json") as f:
        assert json.load(f)["info"]["epochs"] == 1


def test_steps_per_execution_gives_the_same_training(tiny_dataset_dir,
                                                     tiny_spec):
    # Several steps per call of the train function: the same updates, so
    # the same weights and history (the epoch's remainder steps included).
    results, weights = [], []
    for spe in (1, 3):
        cfg = TrainConfig(batch_size=64, epochs=2, patience=5, seed=5,
                          steps_per_execution=spe)
        model = small_dnn(tiny_spec, seed=5)
        results.append(fit_ctr_model(model, tiny_dataset_dir, cfg,
                                     verbose=0))
        weights.append(model.get_weights())
    assert len(results[1]["history"]["loss"]) == 2
    np.testing.assert_allclose(results[0]["history"]["val_auc"],
                               results[1]["history"]["val_auc"], atol=1e-6)
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="steps_per_execution=0"):
        TrainConfig(steps_per_execution=0)


def test_in_memory_training_learns_the_signal(tiny_dataset_dir, tiny_spec):
    cfg = TrainConfig(batch_size=32, learning_rate=0.01, epochs=2,
                      patience=1, seed=1, in_memory=True)
    result = fit_ctr_model(small_dnn(tiny_spec), tiny_dataset_dir, cfg,
                           verbose=0)
    assert result["valid"]["auc"] > 0.7
