"""`make demo`'s job on a small synthetic dataset: table, export, paths."""

import os

from tfdsmlp.demo import run_demo


def test_demo_runs_end_to_end(tmp_path, capsys):
    # One epoch of 3 steps: too short to learn, so no divergence check.
    short = [f"{p}.train.{kv}" for p in ("teacher", "distill", "align")
             for kv in ("epochs=1", "check_learned=false")]
    result = run_demo(str(tmp_path), rows=3000, seed=0, overrides=short)
    out = capsys.readouterr().out
    for label in ("teacher (gdcn)", "student (stage 1)", "DS-MLP (stage 2)",
                  "Exported DS-MLP SavedModel:", "tensorboard --logdir"):
        assert label in out
    assert os.path.isdir(tmp_path / "saved_models" / "dsmlp" / "1")
    assert result["phases"]["dsmlp"]["test"]["auc"] > 0.5
