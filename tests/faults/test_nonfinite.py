"""A diverging phase: a clear error naming the phase, a non-zero exit, the
last good backup kept, nothing of the diverged state saved or exported; the
same command with a lower learning rate then resumes from that backup.

The divergence comes from the documented test hook TFDSMLP_FAULT_INJECT
("distill:2:2:nan" = all trainable weights set to NaN at the start of batch
2 of epoch 2 of the distillation), as a too-high learning rate would do.
"""

import json
import os

import tfdsmlp  # noqa: F401
from tfdsmlp import cli
from tfdsmlp.training.faults import FAULT_ENV

import numpy as np
import pytest
import tensorflow as tf
from fault_helpers import TINY_RUN, run_args


def test_nan_loss_stops_keeps_backup_and_exports_nothing(
        tiny_dataset_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # saved_models/ goes here
    out = str(tmp_path / "run")
    monkeypatch.setenv(FAULT_ENV, "distill:2:2:nan")
    rc = cli.main(run_args(tiny_dataset_dir, out, TINY_RUN,
                           "--export-name", "diverged"))
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "Phase 'distill'" in err and "non-finite loss" in err
    assert "epoch 2" in err
    assert "--set distill.train.learning_rate=" in err
    assert "end of epoch 1" in err and "rerunning" in err

    distill = os.path.join(out, "distill")
    assert not os.path.exists(os.path.join(distill, "done.json"))
    assert not os.path.exists(os.path.join(distill, "weights"))
    assert not os.path.exists(os.path.join(out, "metrics.json"))
    assert not os.path.exists(tmp_path / "saved_models")
    with open(os.path.join(distill, "backup", "state.json")) as f:
        assert json.load(f)["epoch"] == 1
    reader = tf.train.load_checkpoint(os.path.join(distill, "backup",
                                                   "ckpt-1"))
    for key in reader.get_variable_to_shape_map():
        if "student" in key and "OPTIMIZER" not in key:
            assert np.all(np.isfinite(reader.get_tensor(key))), key

    # Rerun with a lower learning rate: resumes from epoch 1 at that rate.
    monkeypatch.delenv(FAULT_ENV)
    rc = cli.main(run_args(tiny_dataset_dir, out, TINY_RUN, "--set",
                           "distill.train.learning_rate=0.0005"))
    assert rc == 0, capsys.readouterr().err
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["phases"]["student"]["resumed_from_epoch"] == 1
    with open(os.path.join(distill, "done.json")) as f:
        lrs = json.load(f)["info"]["history"]["learning_rate"]
    assert lrs[0] == pytest.approx(1e-3) and lrs[1] == pytest.approx(5e-4)


def test_nan_at_the_last_step_before_validation_is_caught(
        tiny_dataset_dir, tmp_path, monkeypatch, capsys):
    # 320 rows at batch 32: 10 steps an epoch, run 4 per call of the train
    # function (batches 1-4, 5-8, 9-10: callbacks see the start and end of
    # each call). NaN weights from the start of the last call of the last
    # epoch, right before the final validation.
    out = str(tmp_path / "run")
    monkeypatch.setenv(FAULT_ENV, "distill:3:9:nan")
    rc = cli.main(run_args(tiny_dataset_dir, out, TINY_RUN, "--set",
                           "distill.train.steps_per_execution=4"))
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "Phase 'distill'" in err
    assert not os.path.exists(os.path.join(out, "distill", "done.json"))
    assert not os.path.exists(os.path.join(out, "distill", "weights"))
