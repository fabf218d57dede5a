"""The one runner: `train` runs are run directories; reruns that would mix
settings, wrong teacher weights, preset leaks and diverged phases stop
with a message naming the cause (issue 15)."""

from __future__ import annotations

import json
import os
import re
import shutil

import tfdsmlp  # noqa: F401
from tfdsmlp import cli
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.run_dir import RunDir, differences
from tfdsmlp.training.pipeline import (
    PhaseDivergedError,
    check_learned,
    run_dsmlp,
)
from tfdsmlp.training.presets import build_run_config
from tfdsmlp.training.selection import select_by_validation, summary_warnings
from tfdsmlp.training.train_config import TrainConfig

import numpy as np
import pytest
import tensorflow as tf

TRAIN = ["--set", "train.epochs=3", "--set", "train.batch_size=64",
         "--set", "train.learning_rate=0.01",
         "--set", "params.hidden_units=[8]", "--quiet"]
RUN = ["--quiet"] + [a for phase in ("teacher", "distill", "align")
                     for a in ("--set", f"{phase}.train.epochs=3",
                               "--set", f"{phase}.train.batch_size=64",
                               "--set", f"{phase}.train.learning_rate=0.01")
                     ] + [
    "--set", "student.params.main_hidden_units=[8]",
    "--set", "student.params.parallel_hidden_units=[8]",
    # a few dozen steps: too short for the students to beat the base rate
    "--set", "distill.train.check_learned=false",
    "--set", "align.train.check_learned=false"]


def _train(data, out, model="dnn", *extra):
    return cli.main(["train", "--data", data, "--model", model,
                     "--preset", "synthetic", "--out", str(out),
                     *TRAIN, *extra])


@pytest.fixture(scope="module")
def train_run(synth_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "dnn"
    assert _train(synth_data, out) == 0
    return out


def _stamps(run_dir):
    return {os.path.join(d, f): os.path.getmtime(os.path.join(d, f))
            for d, _, files in os.walk(run_dir) for f in files}


def test_train_run_has_the_run_layout(train_run):
    run = RunDir.open(train_run)
    assert run.done_phases() == ["teacher"]
    assert run.has_weights("teacher")
    metrics = run.read_metrics()
    assert list(metrics["phases"]) == ["teacher"]
    assert metrics["models"] == {"teacher": "dnn"}
    assert run.read_config()["until"] == "teacher"


def test_train_run_exports_and_reports(train_run, tmp_path, capsys):
    base = str(tmp_path / "models")
    assert cli.main(["export", "--run", str(train_run), "--name", "t",
                     "--phase", "teacher", "--base-dir", base]) == 0
    assert os.path.isdir(os.path.join(base, "t", "1"))
    # the default (the selected model) of a teacher-only run: its teacher
    assert cli.main(["export", "--run", str(train_run), "--name", "b",
                     "--base-dir", base]) == 0
    assert "exported teacher:" in capsys.readouterr().out
    # no DS-MLP in a teacher-only run: a clear error, not a KeyError
    assert cli.main(["export", "--run", str(train_run), "--name", "d",
                     "--phase", "dsmlp", "--base-dir", base]) == 2
    err = capsys.readouterr().err
    assert "teacher-only" in err and "--phase teacher" in err
    assert cli.main(["report", str(train_run)]) == 0
    assert "| teacher |" in capsys.readouterr().out
    assert cli.main(["report", str(train_run.parent)]) == 0
    assert "| dnn | dnn |" in capsys.readouterr().out


@pytest.mark.parametrize("form", ["run_dir", "prefix"])
def test_train_run_is_a_teacher_checkpoint(train_run, synth_data,
                                           tmp_path, form):
    source = (str(train_run) if form == "run_dir" else
              RunDir(train_run).weights_prefix("teacher"))
    out = tmp_path / "ds"
    # teacher.train trains nothing here (it differs from the run's 0.01)
    lr = ["--set", "teacher.train.learning_rate=0.5"]
    assert cli.main(["run", "--data", synth_data, "--teacher", "dnn",
                     "--preset", "synthetic", "--out", str(out),
                     "--teacher-checkpoint", source, *RUN, *lr,
                     "--set", "teacher.params.hidden_units=[8]"]) == 0
    # config.yaml records the settings that trained the loaded teacher
    recorded = RunDir(out).read_config()["teacher"]["train"]
    assert recorded == RunDir(train_run).read_config()["teacher"]["train"]
    assert recorded["learning_rate"] == 0.01
    metrics = RunDir(out).read_metrics()
    ref = RunDir(train_run).read_metrics()["phases"]["teacher"]
    teacher = metrics["phases"]["teacher"]
    assert teacher["loaded_from"].endswith(os.path.join("teacher", "weights",
                                                        "model"))
    assert teacher["test"]["auc"] == pytest.approx(ref["test"]["auc"],
                                                   abs=1e-6)
    assert "dsmlp" in metrics["phases"]
    # the other form names the same teacher: the finished run is reused
    other = (RunDir(train_run).weights_prefix("teacher") if form == "run_dir"
             else str(train_run))
    assert cli.main(["run", "--data", synth_data, "--teacher", "dnn",
                     "--preset", "synthetic", "--out", str(out),
                     "--teacher-checkpoint", other, *RUN, *lr,
                     "--set", "teacher.params.hidden_units=[8]"]) == 0
    assert RunDir(out).read_metrics()["phases"]["dsmlp"] == \
        metrics["phases"]["dsmlp"]


def test_loose_teacher_weights_record_no_training_settings(
        train_run, synth_data, tmp_path):
    """Weights copied out of their run say nothing of how they were
    trained: config.yaml records no teacher.train for them."""
    prefix = RunDir(train_run).weights_prefix("teacher")
    loose = tmp_path / "loose"
    shutil.copytree(os.path.dirname(prefix), loose)
    cfg = build_run_config("synthetic", "dnn", overrides=[
        "teacher.params.hidden_units=[8]"])
    out = tmp_path / "ds"
    run_dsmlp(synth_data, cfg, str(out), until="teacher", verbose=0,
              teacher_checkpoint=str(loose / "model"))
    recorded = RunDir(out).read_config()
    assert "train" not in recorded["teacher"]
    assert recorded["teacher_checkpoint"] == str(loose / "model")


def test_teacher_checkpoint_of_another_model_is_refused(
        train_run, synth_data, tmp_path, capsys):
    out = tmp_path / "gdcn"
    # weights of a DNN, copied out of their run, given to a GDCN teacher
    prefix = RunDir(train_run).weights_prefix("teacher")
    loose = tmp_path / "loose"
    loose.mkdir()
    for name in os.listdir(os.path.dirname(prefix)):
        shutil.copy(os.path.join(os.path.dirname(prefix), name), loose)
    code = cli.main(["run", "--data", synth_data, "--teacher", "gdcn",
                     "--preset", "synthetic", "--out", str(out),
                     "--teacher-checkpoint", str(loose / "model"), *RUN])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "do not fit the teacher" in err and "GDCN" in err
    assert not RunDir(out).is_done("teacher")
    # the run directory of a DNN, or its weights prefix (the same record)
    for i, source in enumerate([str(train_run), prefix]):
        code = cli.main(["run", "--data", synth_data, "--teacher", "gdcn",
                         "--preset", "synthetic", "--out",
                         str(tmp_path / f"g{i}"),
                         "--teacher-checkpoint", source, *RUN])
        err = capsys.readouterr().err
        assert code == 2 and "model: stored 'dnn', now 'gdcn'" in err
        assert not (tmp_path / f"g{i}").exists()


def test_rerun_with_other_settings_stops_before_any_work(
        train_run, synth_data, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(train_run, out)
    before = _stamps(out)
    code = _train(synth_data, out, "dnn", "--set", "params.dropout=0.3")
    err = capsys.readouterr().err
    assert code == 2
    assert "teacher.params.dropout" not in err  # keys are the phase's own
    assert re.search(r"\n    params\.dropout: stored 0\.\d+, now 0\.3\n", err)
    assert "--restart-from teacher" in err
    assert _stamps(out) == before  # config.yaml and weights untouched
    # another model in the same directory: the class differs too
    assert _train(synth_data, out, "deepfm") == 2
    assert "model: stored 'dnn', now 'deepfm'" in capsys.readouterr().err
    assert _stamps(out) == before
    # --restart-from trains it again with the new settings
    assert _train(synth_data, out, "dnn", "--set", "params.dropout=0.3",
                  "--restart-from", "teacher") == 0
    run = RunDir(out)
    assert run.read_done("teacher")["settings"]["params"]["dropout"] == 0.3
    assert run.read_config()["teacher"]["params"]["dropout"] == 0.3


def test_same_settings_reuse_the_phase(train_run, synth_data, tmp_path,
                                       capsys):
    out = tmp_path / "same"
    shutil.copytree(train_run, out)
    weights = RunDir(out).weights_prefix("teacher") + ".index"
    stamp = os.path.getmtime(weights)
    assert _train(synth_data, out) == 0
    assert os.path.getmtime(weights) == stamp


def test_other_data_is_a_difference(train_run, synth_data, tmp_path,
                                    capsys):
    data = tmp_path / "data"
    shutil.copytree(synth_data, data)
    meta = json.loads((data / "dataset.json").read_text())
    meta["splits"]["train"]["rows"] -= 1  # any change of content
    (data / "dataset.json").write_text(json.dumps(meta))
    out = tmp_path / "r"
    shutil.copytree(train_run, out)
    assert _train(str(data), out) == 2
    assert "dataset: stored" in capsys.readouterr().err


def test_no_preset_uses_defaults_naming_no_fields(synth_data,
                                                  tmp_path, capsys):
    # The frappe preset's FinalMLP names Frappe's `user`/`item` fields ...
    out = tmp_path / "frappe_preset"
    code = cli.main(["train", "--data", synth_data, "--model",
                     "finalmlp", "--preset", "frappe", "--out", str(out),
                     "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "fs1_context" in err and "preset 'frappe'" in err
    assert "--set" in err
    assert not out.exists()  # a failed check leaves nothing behind
    # ... without --preset the model's defaults name no field
    from tfdsmlp.training.presets import build_run_config

    cfg = build_run_config(None, "finalmlp")
    assert list(cfg.teacher.params["fs1_context"]) == []
    assert cfg.teacher.train == TrainConfig()
    from tfdsmlp.models import build_model

    build_model("finalmlp", cfg.teacher.params,
                DatasetDir.open(synth_data).spec)  # fits any dataset


class _Const(tf.keras.Model):
    """logit = scale * dense[:, 0] + shift."""

    def __init__(self, scale, shift):
        super().__init__()
        self.scale, self.shift = scale, shift

    def call(self, x, training=None):
        return self.scale * x["dense"][:, :1] + self.shift


def test_check_learned_refuses_chance_and_worse_than_base_rate(
        tiny_dataset_dir):
    data = DatasetDir.open(tiny_dataset_dir)
    cfg = TrainConfig(batch_size=64)
    with pytest.raises(PhaseDivergedError, match="no better than chance"):
        check_learned(_Const(0.0, 0.0), data, cfg, "teacher")
    with pytest.raises(PhaseDivergedError, match="base rate"):
        # ranks well (the label follows dense[:, 0]) but predicts ~1 always
        check_learned(_Const(0.01, 20.0), data, cfg, "teacher")
    good = check_learned(_Const(2.0, 0.0), data, cfg, "teacher")
    assert good["auc"] > 0.6 and np.isfinite(good["logloss"])


def test_diverged_phase_saves_and_exports_nothing(synth_data, tmp_path,
                                                  monkeypatch, capsys):
    from tfdsmlp.training import pipeline

    def diverged(*a, **k):
        raise PhaseDivergedError("Phase 'teacher' ended no better than "
                                 "chance: validation AUC 0.4900 <= 0.5.")

    monkeypatch.setattr(pipeline, "check_learned", diverged)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    code = cli.main(["run", "--data", synth_data, "--preset",
                     "synthetic", "--out", str(out), "--export-name", "x",
                     *RUN])
    assert code == 3
    assert "no better than chance" in capsys.readouterr().err
    assert not RunDir(out).is_done("teacher")
    assert not os.path.exists(RunDir(out).weights_prefix("teacher")
                              + ".index")
    assert not (tmp_path / "saved_models").exists()


def test_differences_names_nested_keys():
    assert differences({"a": {"b": 1, "c": [1, 2]}},
                       {"a": {"b": 2, "c": (1, 2)}}) == [
        "a.b: stored 1, now 2"]
    assert differences({"train": {"learning_rate": 1.0}},
                       {"train": {"learning_rate": 2.0}},
                       ignore=("train.learning_rate",)) == []


@pytest.mark.parametrize("name", ["../up", "a/b", ".hidden", "has space",
                                  ""])
def test_export_names_must_be_plain(synth_data, train_run, tmp_path, capsys,
                                    name):
    out = tmp_path / "run"
    code = cli.main(["run", "--data", synth_data, "--out", str(out),
                     "--export-name", name, *RUN])
    assert code == 2
    assert "--name should be a plain model name" in capsys.readouterr().err
    assert not out.exists()  # refused before any work
    code = cli.main(["export", "--run", str(train_run), "--phase", "teacher",
                     "--name", name, "--base-dir", str(tmp_path / "m")])
    assert code == 2 and not (tmp_path / "m").exists()


def test_summary_warns_when_the_dsmlp_ends_below_its_teacher(capsys):
    def phase(auc):
        return {"valid": {"auc": auc}}

    assert summary_warnings({"teacher": phase(0.8)}) == []
    assert summary_warnings({"teacher": phase(0.8),
                             "dsmlp": phase(0.81)}) == []
    [line] = summary_warnings({"teacher": phase(0.8), "dsmlp": phase(0.79)},
                              run_path="runs/r1", data_path="data/d")
    assert "below its teacher" in line and "0.7900 < 0.8000" in line
    assert "tune --model dsmlp --teacher runs/r1 --data data/d " in line
    # without alignment the stage-1 student is the final model
    assert summary_warnings({"teacher": phase(0.8), "student": phase(0.7)})


def test_train_over_a_finished_run_keeps_its_phases(synth_data, tmp_path,
                                                     capsys):
    out = tmp_path / "full"
    common = ["--data", synth_data, "--preset", "synthetic", "--out",
              str(out), *RUN]
    assert cli.main(["run", "--teacher", "dnn", *common]) == 0
    before = RunDir(out).read_metrics()["phases"]
    # the same settings: every phase is reused and reported
    assert cli.main(["train", "--model", "dnn", *common]) == 0
    after = RunDir(out).read_metrics()["phases"]
    assert set(after) == set(before)
    assert after["dsmlp"]["test"]["auc"] == before["dsmlp"]["test"]["auc"]
    # other student settings: the stored DS-MLP phases disagree
    code = cli.main(["train", "--model", "dnn", *common, "--set",
                     "student.params.main_hidden_units=[4]"])
    err = capsys.readouterr().err
    assert code == 2 and "finished phase 'distill'" in err


def test_selection_by_validation_between_stages_and_streams():
    def phase(auc, **extra):
        return {"valid": {"auc": auc}, **extra}

    # stage 2 lowered validation AUC: the stage-1 student is exported
    sel = select_by_validation({"teacher": phase(0.80),
                                "student": phase(0.83),
                                "dsmlp": phase(0.82),
                                "dsmlp_main": phase(0.81),
                                "dsmlp_parallel": phase(0.70)})
    assert sel["phase"] == "student"
    assert sel["runner_up"] == "dsmlp"
    assert sel["margin"] == pytest.approx(0.01)
    # the aligned model's main stream alone beats both stages: it is
    # exported (as a one-stream DS-MLP, tests/export/test_export_streams.py)
    sel = select_by_validation({"teacher": phase(0.80),
                                "student": phase(0.83),
                                "dsmlp": phase(0.82),
                                "dsmlp_main": phase(0.85),
                                "dsmlp_parallel": phase(0.70)})
    assert (sel["phase"], sel["runner_up"]) == ("dsmlp_main", "student")
    assert sel["margin"] == pytest.approx(0.02)
    assert sel["valid_auc_by_phase"]["teacher"] == 0.80  # recorded only
    # a tie keeps the aligned DS-MLP, then the stage-1 student; a student
    # scored as its main stream is a candidate (exported as that stream)
    assert select_by_validation({"teacher": phase(0.8), "student": phase(
        0.82), "dsmlp": phase(0.82), "dsmlp_main": phase(0.82)}
                                )["phase"] == "dsmlp"
    assert select_by_validation({"teacher": phase(0.8), "student": phase(
        0.9, scored="main stream"), "dsmlp": phase(0.82)})["phase"] == (
            "student")
    # the candidates can be narrowed (the teacher_parallel ablation: its
    # main stream is the teacher)
    assert select_by_validation({"teacher": phase(0.8), "dsmlp": phase(
        0.81), "dsmlp_main": phase(0.8)}, ("dsmlp",))["phase"] == "dsmlp"
    # a teacher-only run selects its teacher
    sel = select_by_validation({"teacher": phase(0.8)})
    assert sel == {"phase": "teacher", "valid_auc": 0.8, "margin": None,
                   "runner_up": None,
                   "valid_auc_by_phase": {"teacher": 0.8}}


def test_export_default_is_the_selected_model(synth_data, tmp_path, capsys):
    from tfdsmlp.export.saved_model import read_metadata

    out = tmp_path / "run"
    assert cli.main(["run", "--teacher", "dnn", "--data", synth_data,
                     "--preset", "synthetic", "--out", str(out), *RUN]) == 0
    printed = capsys.readouterr().out
    selected = RunDir(out).read_metrics()["selected"]
    assert f"selected for export: {selected['phase']}" in printed
    base = str(tmp_path / "models")
    assert cli.main(["export", "--run", str(out), "--name", "m",
                     "--base-dir", base]) == 0
    assert f"exported {selected['phase']}:" in capsys.readouterr().out
    assert read_metadata(os.path.join(base, "m", "1"))["phase"] == (
        selected["phase"])
