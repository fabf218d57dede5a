"""`kill -9` in the middle of an epoch, then the same command again: the run
continues from the phase's backup and ends with exactly the metrics of an
uninterrupted run.

The kill comes from the documented test hook TFDSMLP_FAULT_INJECT
("distill:3:2" = SIGKILL at the start of batch 2 of epoch 3 of the
distillation phase; see `tfdsmlp.training.callbacks.FaultInjection`), so the
backup holds 2 finished epochs, with EarlyStopping / ReduceLROnPlateau state,
the dropout random generators and the Adam slots. Both runs use
`--deterministic` (TensorFlow op determinism); the tolerance is 0: every
number in metrics.json (except wall-clock seconds and timestamps) and every
weight must be bit-identical.
"""

import os
import signal

import numpy as np

import tfdsmlp  # noqa: F401
import tensorflow as tf

from fault_helpers import (TINY_RUN, cli_env, numeric_diffs, popen_cli,
                           read_json, run_args, tail, wait_all)

DET = "--deterministic"


def _weights(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k)
            for k in reader.get_variable_to_shape_map()
            if not k.startswith("_CHECKPOINTABLE")}


def test_kill_9_mid_epoch_then_rerun_matches_uninterrupted(tiny_dataset_dir,
                                                           tmp_path):
    full, killed = str(tmp_path / "full"), str(tmp_path / "killed")
    runs = [popen_cli(run_args(tiny_dataset_dir, full, TINY_RUN, DET),
                      tmp_path / "full.log", cli_env()),
            popen_cli(run_args(tiny_dataset_dir, killed, TINY_RUN, DET),
                      tmp_path / "killed.log",
                      cli_env(TFDSMLP_FAULT_INJECT="distill:3:2"))]
    wait_all(runs, timeout=240)
    assert runs[0].returncode == 0, tail(tmp_path / "full.log")
    assert runs[1].returncode == -signal.SIGKILL, tail(tmp_path / "killed.log")

    # What the kill left: teacher done, distillation backed up at epoch 2.
    assert os.path.exists(os.path.join(killed, "teacher", "done.json"))
    assert not os.path.exists(os.path.join(killed, "distill", "done.json"))
    assert not os.path.exists(os.path.join(killed, "metrics.json"))
    state = read_json(os.path.join(killed, "distill", "backup",
                                   "state.json"))
    assert state["epoch"] == 2
    assert {"EarlyStopping", "ReduceLROnPlateau"} <= set(state["callbacks"])
    assert len(state["history"]["loss"]) == 2

    again = popen_cli(run_args(tiny_dataset_dir, killed, TINY_RUN, DET),
                      tmp_path / "again.log", cli_env())
    wait_all([again], timeout=180)
    assert again.returncode == 0, tail(tmp_path / "again.log")

    a = read_json(os.path.join(full, "metrics.json"))
    b = read_json(os.path.join(killed, "metrics.json"))
    assert b["phases"]["student"]["resumed_from_epoch"] == 2
    assert numeric_diffs(a, b) == []
    for phase in ("teacher", "distill", "align"):
        hist_a = read_json(os.path.join(full, phase, "done.json"))
        hist_b = read_json(os.path.join(killed, phase, "done.json"))
        assert numeric_diffs(hist_a, hist_b) == [], phase
        wa = _weights(os.path.join(full, phase, "weights", "model"))
        wb = _weights(os.path.join(killed, phase, "weights", "model"))
        assert set(wa) == set(wb)
        for key in wa:
            np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
    # The backup is removed once the phase is done.
    assert not os.path.exists(os.path.join(killed, "distill", "backup"))


TINY_TRAIN = ["params.hidden_units=[16]", "params.num_cross_layers=1",
              "params.batch_norm=true", "train.epochs=3",
              "train.batch_size=32", "train.shuffle_buffer=1000"]


def _train_args(data_dir, out):
    args = ["train", "--data", data_dir, "--preset", "synthetic", "--model",
            "gdcn", "--out", out, "--quiet", DET]
    for kv in TINY_TRAIN:
        args += ["--set", kv]
    return args


def test_train_kill_9_then_rerun_matches_uninterrupted(tiny_dataset_dir,
                                                       tmp_path):
    # `python -m tfdsmlp train` (the experiments' teacher jobs) resumes too.
    full, killed = str(tmp_path / "full"), str(tmp_path / "killed")
    runs = [popen_cli(_train_args(tiny_dataset_dir, full),
                      tmp_path / "full.log", cli_env()),
            popen_cli(_train_args(tiny_dataset_dir, killed),
                      tmp_path / "killed.log",
                      cli_env(TFDSMLP_FAULT_INJECT="train:3:2"))]
    wait_all(runs, timeout=240)
    assert runs[0].returncode == 0, tail(tmp_path / "full.log")
    assert runs[1].returncode == -signal.SIGKILL, tail(tmp_path / "killed.log")
    assert not os.path.exists(os.path.join(killed, "metrics.json"))
    assert read_json(os.path.join(killed, "backup", "state.json"))[
        "epoch"] == 2

    # Another config must not resume this backup.
    other = popen_cli(_train_args(tiny_dataset_dir, killed)
                      + ["--set", "params.hidden_units=[8]"],
                      tmp_path / "other.log", cli_env())
    wait_all([other], timeout=180)
    assert other.returncode != 0
    assert "backup of an interrupted run with another config" in tail(
        tmp_path / "other.log")

    again = popen_cli(_train_args(tiny_dataset_dir, killed),
                      tmp_path / "again.log", cli_env())
    wait_all([again], timeout=180)
    assert again.returncode == 0, tail(tmp_path / "again.log")
    a = read_json(os.path.join(full, "metrics.json"))
    b = read_json(os.path.join(killed, "metrics.json"))
    assert b["resumed_from_epoch"] == 2
    assert numeric_diffs(a, b) == []
    wa = _weights(os.path.join(full, "weights", "best"))
    wb = _weights(os.path.join(killed, "weights", "best"))
    assert set(wa) == set(wb)
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
    assert not os.path.exists(os.path.join(killed, "backup"))
