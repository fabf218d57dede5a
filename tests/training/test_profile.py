"""`train.profile_batches`: a trace in the phase's TensorBoard directory,
summarised by op type (`tfdsmlp.training.profile`)."""

from __future__ import annotations

import tfdsmlp  # noqa: F401
from tfdsmlp import cli
from tfdsmlp.training import profile
from tfdsmlp.training.train_config import TrainConfig

import pytest


def test_profiled_teacher_has_a_trace_with_its_matmuls(synth_data, tmp_path,
                                                       capsys):
    out = tmp_path / "run"
    assert cli.main([
        "train", "--data", synth_data, "--model", "dnn", "--preset",
        "synthetic", "--out", str(out), "--quiet",
        "--set", "train.epochs=1", "--set", "train.batch_size=64",
        "--set", "train.learning_rate=0.01", "--set", "train.check_learned=false",
        "--set", "train.profile_batches=[2,4]"]) == 0
    times = dict(profile.op_type_times(str(out / "tb" / "teacher")))
    assert any("MatMul" in op for op in times), sorted(times)
    assert "| op type | ms per step |" in profile.format_op_times(
        list(times.items()), steps=3)
    # profiling is not a setting of the result: the same run is reused
    assert cli.main([
        "train", "--data", synth_data, "--model", "dnn", "--preset",
        "synthetic", "--out", str(out), "--quiet",
        "--set", "train.epochs=1", "--set", "train.batch_size=64",
        "--set", "train.learning_rate=0.01", "--set", "train.check_learned=false"
    ]) == 0


def test_missing_trace_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="profile_batches"):
        profile.trace_files(str(tmp_path))


def test_profile_range_is_checked():
    with pytest.raises(ValueError, match="profile_batches"):
        TrainConfig(profile_batches=(3, 1))
