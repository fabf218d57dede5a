"""`kill -9` anywhere (mid-epoch, between epochs, between phases), then the
same command again: the run continues from what was committed and ends
with exactly the metrics of an uninterrupted run; and two uninterrupted
runs are identical.

One run is killed at every point in turn, in the order they come in a run:
each launch resumes from what the kill before it left, goes on to the next
point and is killed there; the last launch finishes. So every point is
both a kill (what it leaves is checked) and a resume (the next launch
starts from it), and the end must equal the uninterrupted run bit for bit.
(Until session 35 each point had its own run, killed once and run again:
14 launches and 120 s for this module's runs alone on a quiet 2-core
machine; the chain's 9 launches take 87 s there.)

The kill comes from the documented test hook TFDSMLP_FAULT_INJECT
("distill:3:2" = SIGKILL at the start of batch 2 of epoch 3 of the
distillation phase, see `tfdsmlp.training.faults.FaultInjection`;
"after:distill" = right after the distill phase is committed, see
`inject_boundary_fault`): mid-epoch the backup holds 2 finished epochs,
with EarlyStopping / ReduceLROnPlateau state, the dropout random generators
and the Adam slots. Both runs use
`--deterministic` (TensorFlow op determinism); the tolerance is 0: every
number in metrics.json (except wall-clock seconds and timestamps) and every
weight must be bit-identical.
"""

import os
import signal

import tfdsmlp  # noqa: F401

import numpy as np
import pytest
import tensorflow as tf
from fault_helpers import (
    TINY_RUN,
    cli_env,
    numeric_diffs,
    popen_cli,
    read_json,
    run_args,
    tail,
    wait_all,
)

DET = "--deterministic"


def _weights(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k)
            for k in reader.get_variable_to_shape_map()
            if not k.startswith("_CHECKPOINTABLE")}


# Where the kill comes, in the order of a run: between phases
# (teacher/distill, distill/align, align/export: right after a phase's
# done.json or after metrics.json), between two epochs (the start of epoch
# 2's first batch: right after epoch 1's backup) and mid-epoch.
KILL_POINTS = ("after:teacher", "distill:2:1", "distill:3:2",
               "after:distill", "after:align", "after:metrics")


@pytest.fixture(scope="module")
def killed_runs(tiny_dataset_dir, tmp_path_factory):
    """Two uninterrupted runs (beside each other), and one run killed at
    every point of KILL_POINTS in turn, then run to its end: {point: what
    the kill there left}, the return codes and the run directories."""
    tmp = tmp_path_factory.mktemp("kill")
    out = {name: str(tmp / name) for name in ("full", "full2", "chain")}
    args = {name: run_args(tiny_dataset_dir, path, TINY_RUN, DET)
            for name, path in out.items()}
    full = [(name, popen_cli(args[name], tmp / f"{name}.log", cli_env()))
            for name in ("full", "full2")]
    codes, left = {}, {}
    try:
        for i, point in enumerate((*KILL_POINTS, None)):
            name = f"chain{i}"
            env = cli_env(TFDSMLP_FAULT_INJECT=point) if point else cli_env()
            proc = popen_cli(args["chain"], tmp / f"{name}.log", env)
            wait_all([proc], timeout=300)
            codes[point] = (proc.returncode, name)
            if point is None or proc.returncode != -signal.SIGKILL:
                break
            left[point] = _left(out["chain"])
    finally:
        wait_all([p for _, p in full], timeout=300)
    codes.update({name: p.returncode for name, p in full})
    return out, codes, left, tmp


def _left(run_dir):
    """What a killed run left: finished phases, metrics.json, the distill
    backup's state."""
    backup = os.path.join(run_dir, "distill", "backup", "state.json")
    return {"done": [p for p in ("teacher", "distill", "align")
                     if os.path.exists(os.path.join(run_dir, p,
                                                    "done.json"))],
            "metrics": os.path.exists(os.path.join(run_dir,
                                                   "metrics.json")),
            "distill_backup": (read_json(backup)
                               if os.path.exists(backup) else None)}


def _compare_runs(a_dir, b_dir):
    a = read_json(os.path.join(a_dir, "metrics.json"))
    b = read_json(os.path.join(b_dir, "metrics.json"))
    assert numeric_diffs(a, b) == []
    for phase in ("teacher", "distill", "align"):
        hist_a = read_json(os.path.join(a_dir, phase, "done.json"))
        hist_b = read_json(os.path.join(b_dir, phase, "done.json"))
        assert numeric_diffs(hist_a["info"], hist_b["info"]) == [], phase
        wa = _weights(os.path.join(a_dir, phase, "weights", "model"))
        wb = _weights(os.path.join(b_dir, phase, "weights", "model"))
        assert set(wa) == set(wb)
        for key in wa:
            np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)


def test_two_uninterrupted_runs_are_identical(killed_runs):
    out, codes, _, tmp = killed_runs
    assert codes["full"] == 0, tail(tmp / "full.log")
    assert codes["full2"] == 0, tail(tmp / "full2.log")
    _compare_runs(out["full"], out["full2"])


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_9_leaves_what_was_committed(killed_runs, point):
    _, codes, left, tmp = killed_runs
    assert point in codes, f"an earlier launch of the chain did not get " \
        f"killed where it should: {codes}"
    rc, name = codes[point]
    assert rc == -signal.SIGKILL, tail(tmp / f"{name}.log")
    left = left[point]
    if point.startswith("distill:"):
        # teacher done, distillation backed up at the last finished epoch
        assert left["done"] == ["teacher"]
        state = left["distill_backup"]
        assert state["epoch"] == int(point.split(":")[1]) - 1
        assert {"EarlyStopping", "ReduceLROnPlateau"} <= set(
            state["callbacks"])
    elif point != "after:metrics":
        phase = point.split(":")[1]
        assert left["done"] == list(("teacher", "distill", "align")[
            :("teacher", "distill", "align").index(phase) + 1])
        # The backup is removed once the phase is done.
        assert left["distill_backup"] is None
    assert left["metrics"] == (point == "after:metrics")


def test_resumed_after_every_kill_matches_uninterrupted(killed_runs):
    out, codes, _, tmp = killed_runs
    assert codes["full"] == 0, tail(tmp / "full.log")
    assert None in codes, f"the chain stopped before its last launch: {codes}"
    rc, name = codes[None]
    assert rc == 0, tail(tmp / f"{name}.log")
    _compare_runs(out["full"], out["chain"])
    b = read_json(os.path.join(out["chain"], "metrics.json"))
    # distillation's last resume: from the backup of epoch 2 (distill:3:2)
    assert b["phases"]["student"]["resumed_from_epoch"] == 2
    assert not os.path.exists(os.path.join(out["chain"], "distill",
                                           "backup"))


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
                      cli_env(TFDSMLP_FAULT_INJECT="teacher:3:2"))]
    wait_all(runs, timeout=240)
    assert runs[0].returncode == 0, tail(tmp_path / "full.log")
    assert runs[1].returncode == -signal.SIGKILL, tail(tmp_path / "killed.log")
    assert not os.path.exists(os.path.join(killed, "metrics.json"))
    assert read_json(os.path.join(killed, "teacher", "backup",
                                  "state.json"))["epoch"] == 2

    # Another config must not resume this backup.
    other = popen_cli(_train_args(tiny_dataset_dir, killed)
                      + ["--set", "params.hidden_units=[8]"],
                      tmp_path / "other.log", cli_env())
    wait_all([other], timeout=180)
    assert other.returncode != 0
    log = tail(tmp_path / "other.log")
    assert "interrupted phase (its backup) 'teacher'" in log
    assert "params.hidden_units: stored [16], now [8]" in log

    again = popen_cli(_train_args(tiny_dataset_dir, killed),
                      tmp_path / "again.log", cli_env())
    wait_all([again], timeout=180)
    assert again.returncode == 0, tail(tmp_path / "again.log")
    a = read_json(os.path.join(full, "metrics.json"))
    b = read_json(os.path.join(killed, "metrics.json"))
    assert b["phases"]["teacher"]["resumed_from_epoch"] == 2
    assert numeric_diffs(a, b) == []
    wa = _weights(os.path.join(full, "teacher", "weights", "model"))
    wb = _weights(os.path.join(killed, "teacher", "weights", "model"))
    assert set(wa) == set(wb)
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
    assert not os.path.exists(os.path.join(killed, "teacher", "backup"))
