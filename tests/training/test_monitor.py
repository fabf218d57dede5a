"""`train.monitor`: the schedule on AUC, or on AUC - log loss."""

from __future__ import annotations

import tfdsmlp  # noqa: F401
from tfdsmlp.models import build_model
from tfdsmlp.run_dir import differences
from tfdsmlp.training import callbacks
from tfdsmlp.training.fit import compile_ctr_model, fit_phase
from tfdsmlp.training.train_config import TrainConfig

import pytest
import tensorflow as tf

# AUC creeps up every epoch while the log loss rises from epoch 3 on.
AUC = [0.70, 0.71, 0.712, 0.713, 0.714, 0.715]
LOGLOSS = [0.50, 0.48, 0.55, 0.60, 0.65, 0.70]


def _fit(tiny_dataset_dir, tiny_spec, monitor, monkeypatch):
    scripted = iter(zip(AUC, LOGLOSS))

    def fake_evaluate(model, dataset, progress=None):
        auc, logloss = next(scripted)
        return {"auc": auc, "logloss": logloss}

    monkeypatch.setattr(callbacks, "evaluate", fake_evaluate)
    cfg = TrainConfig(batch_size=64, epochs=6, patience=2, lr_decay=1.0,
                      monitor=monitor, seed=1)
    tf.keras.utils.set_random_seed(1)
    model = build_model("dnn", {"embedding_dim": 2, "hidden_units": [4]},
                        tiny_spec)
    compile_ctr_model(model, cfg)
    return fit_phase(model, tiny_dataset_dir, cfg, verbose=0)


def test_auc_monitor_trains_on_while_auc_creeps_up(
        tiny_dataset_dir, tiny_spec, monkeypatch):
    result = _fit(tiny_dataset_dir, tiny_spec, "auc", monkeypatch)
    assert (result["epochs"], result["best_epoch"]) == (6, 6)
    assert "val_auc_logloss" not in result["history"]


def test_auc_logloss_monitor_stops_when_logloss_rises(
        tiny_dataset_dir, tiny_spec, monkeypatch):
    result = _fit(tiny_dataset_dir, tiny_spec, "auc_logloss", monkeypatch)
    # AUC - logloss: .20 .23 .162 .113 ...: best epoch 2, patience 2 stops
    # after epoch 4.
    assert (result["epochs"], result["best_epoch"]) == (4, 2)
    assert result["history"]["val_auc_logloss"] == pytest.approx(
        [a - b for a, b in zip(AUC[:4], LOGLOSS[:4])])


def test_bad_monitor_and_old_fingerprints():
    with pytest.raises(ValueError, match="`monitor='logloss'`"):
        TrainConfig(monitor="logloss")
    # A phase stored before the setting existed matches the default.
    assert differences({"train": {"epochs": 1}},
                       {"train": {"epochs": 1, "monitor": "auc"}}) == []
    assert differences({"train": {"epochs": 1}},
                       {"train": {"epochs": 1, "monitor": "auc_logloss"}})
