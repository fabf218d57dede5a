"""One stream of a DS-MLP exported alone (`export --phase dsmlp_main`,
`dsmlp_parallel`, and the stage-1 student that trained only its main MLP):
the SavedModel serves exactly that stream's logit of the whole model, records
the stream, and serve-check rebuilds the same one-stream model."""

from __future__ import annotations

import os
import shutil

from tfdsmlp import cli
from tfdsmlp.export.run_models import load_run_model, phase_stream
from tfdsmlp.export.saved_model import read_metadata
from tfdsmlp.run_dir import RunDirError
from tfdsmlp.servecheck.emulator import Servable

import numpy as np
import pytest
import tensorflow as tf
import yaml


def _stream_logits(model, rows, stream):
    x = {"ids": tf.constant(rows.ids), "dense": tf.constant(rows.dense)}
    return model.stream_logits(x, training=False)[stream].numpy()[:, 0]


@pytest.mark.parametrize("stream", ["main", "parallel"])
def test_a_stream_exports_alone_and_serves_its_logit(
        stream, export_run_dir, export_data, test_rows, tmp_path, capsys):
    phase = f"dsmlp_{stream}"
    base = str(tmp_path / "saved_models")
    assert cli.main(["export", "--run", export_run_dir, "--name", phase,
                     "--phase", phase, "--base-dir", base]) == 0
    version = os.path.join(base, phase, "1")
    assert f"exported {phase}: {version}" in capsys.readouterr().out
    meta = read_metadata(version)
    assert (meta["phase"], meta["stream"]) == (phase, stream)
    assert meta["params"]["use_main"] is (stream == "main")
    assert meta["params"]["use_parallel"] is (stream == "parallel")
    whole, *_ = load_run_model(export_run_dir, "dsmlp")
    want = _stream_logits(whole, test_rows, stream)
    got = Servable(version).call("serving_default", test_rows.arrays())
    np.testing.assert_allclose(np.reshape(got["logit"], [-1]), want,
                               rtol=1e-5, atol=1e-5)
    # only the stream's own weights (batch-norm statistics aside)
    alone, *_ = load_run_model(export_run_dir, phase)
    assert sum(int(tf.size(v)) for v in alone.trainable_weights) == sum(
        int(tf.size(v)) for v in whole.stream_variables(stream))
    assert alone.count_params() < whole.count_params()


def test_serve_check_rebuilds_the_one_stream_model(
        export_run_dir, export_data, tmp_path):
    from tfdsmlp.export import export_run
    from tfdsmlp.servecheck.check import serve_check

    version = export_run(export_run_dir, "main_alone", "dsmlp_main",
                         base_dir=str(tmp_path))
    report = serve_check(version, export_data, split="test", rows=64,
                         iters=2, batch=64)
    assert report["ok"], report


def test_a_student_that_trained_only_its_main_mlp_exports_that_stream(
        export_run_dir, test_rows, tmp_path):
    # The fixture's run trained both streams in stage 1 (the default):
    # its student is the whole DS-MLP.
    whole, _, _, info = load_run_model(export_run_dir, "student")
    assert info["stream"] is None and whole.use_parallel
    # The same run recorded with distill.train_parallel: false (stage 1
    # left the parallel MLP as initialised): the student is its main
    # stream, as the run scored it, never the untrained parallel MLP.
    run = str(tmp_path / "run")
    shutil.copytree(export_run_dir, run)
    path = os.path.join(run, "config.yaml")
    with open(path) as f:
        cfg = yaml.safe_load(f)
    cfg["distill"]["train_parallel"] = False
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    main, _, _, info = load_run_model(run, "student")
    assert info["stream"] == "main"
    assert (main.use_main, main.use_parallel) == (True, False)
    x = {"ids": tf.constant(test_rows.ids),
         "dense": tf.constant(test_rows.dense)}
    np.testing.assert_allclose(main(x, training=False).numpy()[:, 0],
                               _stream_logits(whole, test_rows, "main"),
                               rtol=1e-5, atol=1e-5)


def test_a_stream_of_no_ds_mlp_is_a_clear_error(export_run_dir):
    with pytest.raises(RunDirError, match="student is 'teacher_parallel'"):
        phase_stream(export_run_dir, "dsmlp_main",
                     {"model": "teacher_parallel", "params": {}})
    with pytest.raises(RunDirError, match="no parallel stream"):
        phase_stream(export_run_dir, "dsmlp_parallel",
                     {"model": "dsmlp", "params": {"use_parallel": False}})
    assert phase_stream(export_run_dir, "dsmlp",
                        {"model": "dsmlp", "params": {}}) is None
