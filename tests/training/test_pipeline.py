"""End-to-end `run_dsmlp` on a tiny dataset: files, TensorBoard, resume."""

import glob
import json
import os

import tfdsmlp  # noqa: F401
from tfdsmlp.config import ConfigError
from tfdsmlp.training.pipeline import run_dsmlp
from tfdsmlp.training.presets import build_run_config

import pytest
import tensorflow as tf
import yaml

TINY = [
    "teacher.params.hidden_units=[16]", "teacher.params.num_cross_layers=1",
    "student.params.main_hidden_units=[16]",
    "student.params.parallel_hidden_units=[8]",
    "align.alpha=0.8", "align.beta=1.2",
] + [f"{phase}.train.{key}={value}"
     for phase in ("teacher", "distill", "align")
     for key, value in (("epochs", 2), ("batch_size", 64),
                        ("shuffle_buffer", 1000))]


def _scalar_tags(log_dir):
    tags = set()
    for path in glob.glob(os.path.join(log_dir, "**", "events.*"),
                          recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


@pytest.fixture(scope="module")
def run_dir(tiny_dataset_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    cfg = build_run_config("synthetic", "gdcn", overrides=TINY)
    result = run_dsmlp(tiny_dataset_dir, cfg, out, strategy="default",
                       verbose=0)
    result = result.metrics
    return out, result, cfg


def test_run_writes_metrics_for_every_phase(run_dir):
    out, _result, _ = run_dir
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert set(metrics["phases"]) == {"teacher", "student", "dsmlp",
                                      "dsmlp_main", "dsmlp_parallel"}
    for name, phase in metrics["phases"].items():
        for split in ("valid", "test"):
            assert 0.5 < phase[split]["auc"] <= 1.0, (name, phase)
            assert phase[split]["logloss"] > 0
            assert "rela_impr_vs_teacher" in phase[split]
        assert phase["params"] > 0
    assert metrics["phases"]["dsmlp"]["epochs"] >= 1
    assert metrics["phases"]["teacher"]["test"]["rela_impr_vs_teacher"] == 0


def test_run_writes_resolved_config(run_dir):
    out, _, _cfg = run_dir
    with open(os.path.join(out, "config.yaml")) as f:
        saved = yaml.safe_load(f)
    assert saved["align"]["alpha"] == 0.8
    assert saved["student"]["params"]["main_hidden_units"] == [16]
    # resolved: defaults are written out too
    assert "batch_norm" in saved["teacher"]["params"]


def test_tensorboard_has_every_loss_term(run_dir):
    out, _, _ = run_dir
    tb = os.path.join(out, "tb")
    terms = {"teacher": ("loss", "auc", "learning_rate"),
             "distill": ("loss", "ctr_loss", "kd_loss", "reg_loss",
                         "learning_rate"),
             "align": ("loss", "bce_fused", "bce_main", "bce_parallel",
                       "reg_loss", "learning_rate")}
    for phase, names in terms.items():
        train = _scalar_tags(os.path.join(tb, phase, "train"))
        for term in names:
            assert f"epoch_{term}" in train, (phase, term, sorted(train))
        # exact validation AUC / logloss (Keras writes val_* here)
        valid = _scalar_tags(os.path.join(tb, phase, "validation"))
        assert {"epoch_auc", "epoch_logloss"} <= valid, (phase, valid)


def test_second_invocation_resumes_instead_of_retraining(run_dir,
                                                         tiny_dataset_dir,
                                                         capsys):
    out, first, cfg = run_dir
    stamps = {p: os.path.getmtime(p) for p in glob.glob(
        os.path.join(out, "*", "done.json"))}
    assert len(stamps) == 3
    again = run_dsmlp(tiny_dataset_dir, cfg, out, strategy="default",
                      verbose=1)
    again = again.metrics
    printed = capsys.readouterr().out
    assert printed.count("already complete") == 3
    assert {p: os.path.getmtime(p) for p in stamps} == stamps
    for phase in first["phases"]:
        assert again["phases"][phase]["test"]["auc"] == pytest.approx(
            first["phases"][phase]["test"]["auc"], abs=1e-6)


def test_report_lists_every_phase(run_dir):
    from tfdsmlp.report import report

    out, result, _ = run_dir
    table = report(out)
    for phase, metrics in result["phases"].items():
        assert f"| {phase} | {metrics['valid']['auc']:.4f} |" in table


@pytest.mark.parametrize("ablation,overrides", [
    ("no_main_mlp", ["student.model=teacher_parallel"]),
    ("no_dual_mlp", ["student.model=dcnv2",
                     ("student.params={hidden_units: [8], "
                     "num_cross_layers: 1}")]),
    ("no_parallel_mlp", ["student.params.use_parallel=false"]),
])
def test_ablation_switches_run(tiny_dataset_dir, tmp_path, ablation,
                               overrides):
    cfg = build_run_config("synthetic", "gdcn", overrides=TINY + overrides
                           + [f"{p}.train.epochs=1"
                              for p in ("teacher", "distill", "align")])
    result = run_dsmlp(tiny_dataset_dir, cfg, str(tmp_path / ablation),
                       strategy="default", verbose=0)
    result = result.metrics
    phases = result["phases"]
    assert "dsmlp" in phases and phases["dsmlp"]["test"]["auc"] > 0
    if ablation == "no_main_mlp":
        assert "student" not in phases  # nothing to distil
        assert not os.path.exists(tmp_path / ablation / "distill")
        assert {"dsmlp_main", "dsmlp_parallel"} <= set(phases)
    else:
        assert "student" in phases


def test_stage1_student_is_scored_on_what_stage1_trained(run_dir,
                                                         tiny_dataset_dir,
                                                         tmp_path):
    # default (train_parallel=true): the fused DS-MLP was trained
    _, result, cfg = run_dir
    assert cfg.distill.train_parallel
    assert "scored" not in result["phases"]["student"]
    # paper setting: only the main MLP was trained in stage 1
    paper = build_run_config("synthetic", "gdcn", overrides=TINY + [
        "distill.train_parallel=false", "align.enabled=false"])
    out = run_dsmlp(tiny_dataset_dir, paper, str(tmp_path / "paper"),
                    strategy="default", verbose=0)
    out = out.metrics
    student = out["phases"]["student"]
    assert student["scored"] == "main stream"
    assert student["params"] == out["phases"]["dsmlp_main"]["params"]


def test_init_from_teacher_with_another_embedding_width_is_refused_first(
        tiny_dataset_dir, tmp_path):
    """Refused before the teacher trains and before the run directory is
    written, naming both widths and the fix."""
    cfg = build_run_config("synthetic", "gdcn", overrides=TINY + [
        "distill.init_main_from_teacher=true",
        "teacher.params.embedding_dim=8", "student.params.embedding_dim=4"])
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=(
            r"student.params.embedding_dim=4, teacher.params.embedding_dim=8"
            r"; set --set student.params.embedding_dim=8")):
        run_dsmlp(tiny_dataset_dir, cfg, str(out), strategy="default",
                  verbose=0)
    assert not os.path.exists(out / "config.yaml")
