"""`explain`: per-example predictions of every model and stream of a run."""

from __future__ import annotations

import csv
import json
import shutil

from tfdsmlp import metrics as M
from tfdsmlp.cli import main
from tfdsmlp.data.reader import load_arrays
from tfdsmlp.explain import (
    confidently_wrong,
    run_predictions,
    shown_rows,
    summarize,
)
from tfdsmlp.export.run_models import load_run_model

import numpy as np
import pytest


def _logit(p):
    return np.log(p) - np.log1p(-p)


@pytest.fixture(scope="module")
def preds(export_run_dir):
    return run_predictions(export_run_dir, "test")


def test_every_model_and_stream_is_scored(preds, export_run_dir):
    assert set(preds) == {"label", "teacher", "student", "student_main",
                          "student_parallel", "dsmlp", "dsmlp_main",
                          "dsmlp_parallel"}
    assert all(len(v) == 64 for v in preds.values())
    # The fused DS-MLP is the mean of its stream logits.
    np.testing.assert_allclose(
        _logit(preds["dsmlp"]),
        0.5 * (_logit(preds["dsmlp_main"]) + _logit(preds["dsmlp_parallel"])),
        atol=1e-4)
    # Stage 2 changed the student: the two stages are different weights.
    assert np.max(np.abs(preds["dsmlp"] - preds["student"])) > 1e-6
    # Same values as the run's own models, rows in file order.
    teacher, _, data, _ = load_run_model(export_run_dir, "teacher")
    x, y = load_arrays(data, "test")
    np.testing.assert_array_equal(preds["label"], y.reshape(-1))
    np.testing.assert_allclose(
        preds["teacher"],
        M.sigmoid(teacher(x, training=False).numpy().reshape(-1)),
        atol=1e-6)


def test_max_rows_keeps_the_first_rows(preds, export_run_dir):
    head = run_predictions(export_run_dir, "test", max_rows=10,
                           batch_size=4)
    assert all(len(v) == 10 for v in head.values())
    for key, values in head.items():
        np.testing.assert_allclose(values, preds[key][:10], atol=1e-6)


HAND = {"label": np.array([0., 0., 1., 1., 0., 1.]),
        "teacher": np.array([0.95, 0.5, 0.02, 0.6, 0.99, 0.08]),
        "student": np.array([0.9, 0.5, 0.1, 0.6, 0.97, 0.2]),
        "dsmlp_main": np.array([0.9, 0.4, 0.1, 0.7, 0.95, 0.3]),
        "dsmlp_parallel": np.array([0.3, 0.4, 0.7, 0.7, 0.96, 0.1]),
        "dsmlp": np.array([0.6, 0.4, 0.3, 0.7, 0.96, 0.15])}


def test_confident_mistakes_by_hand():
    # |y - p_teacher| = .95 .5 .98 .4 .99 .92: rows 4, 2, 0, 5 are >= 0.9.
    assert confidently_wrong(HAND, 0.9).tolist() == [4, 2, 0, 5]
    assert confidently_wrong(HAND, 0.95).tolist() == [4, 2, 0]
    with pytest.raises(ValueError, match="confidence"):
        confidently_wrong(HAND, 0.4)
    rows = confidently_wrong(HAND, 0.9)
    assert shown_rows(HAND, rows, 2).tolist() == [4, 2]   # one of each
    assert shown_rows(HAND, rows, 3).tolist() == [4, 0, 2]  # negatives first
    assert shown_rows(HAND, rows[:2], 4).tolist() == [4, 2]


def test_summary_by_hand():
    s = summarize(HAND, confidently_wrong(HAND, 0.9))
    assert (s["rows"], s["confidently_wrong"], s["negatives"]) == (6, 4, 2)
    # rows 4, 2, 0, 5: teacher errors .99 .98 .95 .92
    assert s["mean_abs_error"]["teacher"] == pytest.approx(0.96)
    # dsmlp errors .96 .7 .6 .85 -> mean .7775, all below the teacher's
    assert s["mean_abs_error"]["dsmlp"] == pytest.approx(0.7775)
    sh = s["shares"]
    assert sh["dsmlp_closer_than_teacher"] == 1.0
    assert sh["dsmlp_right_side"] == 0.0
    # student errors .97 .9 .9 .8: dsmlp is closer on 3 of 4 (not row 5)
    assert sh["align_moved_towards_label"] == 0.75
    # main .95 .9 .9 .7 vs parallel .96 .3 .3 .9: parallel closer on 2 of 4
    assert sh["dsmlp_parallel_closer_than_main"] == 0.5
    assert s["all_rows"]["teacher"]["auc"] == pytest.approx(
        M.roc_auc(HAND["label"], HAND["teacher"]))


def test_cli_writes_summary_table_and_plot(export_run_dir, tmp_path, capsys):
    out = tmp_path / "explain"
    assert main(["explain", export_run_dir, "--out", str(out),
                 "--confidence", "0.5", "--count", "6"]) == 0
    printed = capsys.readouterr().out
    assert "teacher confidently wrong" in printed and "dsmlp_parallel" in printed
    summary = json.loads((out / "explain.json").read_text())
    with open(out / "explain.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(summary["shown"]) == min(
        6, summary["confidently_wrong"])
    assert summary["confidently_wrong"] > 0     # 0.5: any wrong side
    assert (out / "explain.png").stat().st_size > 1000
    for row in table:
        label, teacher = float(row["label"]), float(row["teacher"])
        assert abs(label - teacher) >= 0.5


def test_a_run_without_student_is_refused(export_run_dir, tmp_path, capsys):
    run = tmp_path / "teacher_only"
    shutil.copytree(export_run_dir, run)
    shutil.rmtree(run / "distill")
    shutil.rmtree(run / "align")
    assert main(["explain", str(run), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no DS-MLP to explain" in err and str(run) in err


def test_truth_by_hand():
    # p* per row; rows 4, 2, 0, 5 are the teacher's confident mistakes
    # (errors .99 .98 .95 .92): the truth's errors there .95 .3 .97 .6.
    preds = {**HAND, "truth": np.array([0.97, 0.5, 0.7, 0.5, 0.95, 0.4])}
    s = summarize(preds, confidently_wrong(preds, 0.9), 0.9)
    sh = s["shares"]
    assert sh["truth_as_confidently_wrong"] == 0.5     # rows 4 and 0
    assert sh["truth_right_side"] == 0.25               # row 2
    # on row 2 the DS-MLP (p .3, label 1) is on the wrong side
    assert sh["dsmlp_right_side_where_truth_is"] == 0.0
    assert s["mean_abs_error"]["truth"] == pytest.approx(0.705)


def test_truth_column_from_the_synth_dataset(export_run_dir, export_data,
                                             preds, tmp_path, capsys):
    out = tmp_path / "truth"
    assert main(["explain", export_run_dir, "--out", str(out),
                 "--confidence", "0.5", "--truth", export_data]) == 0
    assert "truth" in capsys.readouterr().out
    summary = json.loads((out / "explain.json").read_text())
    z = np.load(f"{export_data}/synthetic/test_logit.npy")
    assert summary["all_rows"]["truth"]["auc"] == pytest.approx(
        M.roc_auc(preds["label"], z))
    with open(out / "explain.csv", newline="") as f:
        table = list(csv.DictReader(f))
    for row in table:
        assert float(row["truth"]) == pytest.approx(
            M.sigmoid(z[int(row["row"])]), abs=1e-6)
    assert "truth_right_side" in summary["shares"]
    # the first 10 rows only: the first 10 true logits
    assert main(["explain", export_run_dir, "--out", str(tmp_path / "t10"),
                 "--rows", "10", "--confidence", "0.5",
                 "--truth", f"{export_data}/synthetic/test_logit.npy"]) == 0


@pytest.mark.parametrize("which, match", [
    ("missing", "no true logits found"),
    ("short", "holds 63 true logits, the scored test split 64 rows"),
])
def test_a_wrong_truth_is_named(export_run_dir, export_data, tmp_path,
                                capsys, which, match):
    if which == "missing":
        truth = str(tmp_path)
    else:
        truth = str(tmp_path / "short.npy")
        np.save(truth, np.load(f"{export_data}/synthetic/test_logit.npy")[:63])
    assert main(["explain", export_run_dir, "--out", str(tmp_path / "o"),
                 "--truth", truth]) == 2
    err = capsys.readouterr().err
    assert match in err and truth in err
