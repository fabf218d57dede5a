"""`tune --model dsmlp --teacher RUN_DIR`: trials are whole DS-MLP runs
that load the teacher of RUN_DIR; the study writes best.yaml (a preset)
and best_run.yaml (a `run --config` file) that `run` takes."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil

import tfdsmlp  # noqa: F401
from tfdsmlp import cli
from tfdsmlp.config import ConfigError, to_dict
from tfdsmlp.run_dir import RunDir
from tfdsmlp.training.presets import build_run_config, load_preset
from tfdsmlp.tuning import StudyError, run_study
from tfdsmlp.tuning.space import (
    DSMLP_OPT_IN,
    DSMLP_TARGETS,
    Choice,
    DSMLPSpace,
    dsmlp_trial_settings,
)
from tfdsmlp.tuning.storage import STUDY_NAME, open_storage
from tfdsmlp.tuning.warm_start import base_values

import optuna
import pytest
from tune_helpers import load, states

TINY_TEACHER = ["--set", "train.epochs=2", "--set", "train.batch_size=64",
                "--set", "train.learning_rate=0.01",
                "--set", "params.hidden_units=[16]",
                "--set", "params.embedding_dim=4"]
# Every phase: 2 epochs of 16 steps; smoke-sized, so no "learned" check.
TINY_RUN = [f"{phase}.train.{key}" for phase in ("distill", "align")
            for key in ("epochs=2", "batch_size=64", "check_learned=false",
                        "shuffle_buffer=1000")]
TINY_SPACE = DSMLPSpace(main_width=Choice((16, 32)),
                        parallel_width=Choice((8, 16)))


@pytest.fixture(scope="module")
def teacher_study(synth_data, tmp_path_factory) -> str:
    """A one-trial teacher study: the documented recipe's first command
    (docs/TUNING.md, "From data to an export")."""
    out = str(tmp_path_factory.mktemp("dsmlp_tune") / "teacher_study")
    assert cli.main(["tune", "--data", synth_data, "--model", "dnn",
                     "--preset", "synthetic", "--trials", "1", "--pruner",
                     "none", "--out", out, "--quiet", *TINY_TEACHER]) == 0
    return out


@pytest.fixture(scope="module")
def teacher_run(teacher_study) -> str:
    """The teacher study's best (only) trial: a finished teacher run."""
    return os.path.join(teacher_study, "trials", "0")


@pytest.fixture(scope="module")
def study(synth_data, teacher_study, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("dsmlp_tune") / "study")
    said = []
    result = run_study(synth_data, "dsmlp", out, trials=2,
                       preset="synthetic",
                       overrides=TINY_RUN + ["student.params.embedding_dim=4"],
                       pruner="none", space=TINY_SPACE, log=said.append,
                       teacher=teacher_study)
    return out, result, said


def test_dsmlp_trials_are_whole_runs_on_the_loaded_teacher(study,
                                                           teacher_run):
    out, result, said = study
    # --teacher STUDY stands for its best trial's run, and says so
    assert any("is a teacher study: its best trial 0" in line
               and line.endswith(teacher_run) for line in said), said
    with open(os.path.join(out, "best_run.yaml")) as f:
        assert f"--teacher-checkpoint {teacher_run}" in f.read()
    assert result.finished == 2
    assert states(load(out)) == ["COMPLETE"] * 2
    for trial in load(out).get_trials():
        run = RunDir(os.path.join(out, trial.user_attrs["run_dir"]))
        assert run.done_phases() == ["teacher", "distill", "align"]
        metrics = run.read_metrics()
        assert metrics["phases"]["teacher"]["loaded_from"].startswith(
            os.path.abspath(teacher_run))
        assert trial.value == metrics["selected"]["valid_auc"]
        assert "test" not in metrics["phases"]["dsmlp"]
        # distill reports steps 1, 2; align 3, 4 (after distill's epochs)
        assert max(trial.intermediate_values) <= 4
        # every setting of the default space (the opt-in ones are off)
        assert set(trial.params) == set(DSMLP_TARGETS) - set(DSMLP_OPT_IN)


def test_best_files_are_a_preset_and_a_run_config(study, synth_data,
                                                  teacher_study, teacher_run,
                                                  tmp_path, capsys):
    out, _, _ = study
    best = load(out).best_trial
    cfg = RunDir(os.path.join(out, best.user_attrs["run_dir"])).read_config()
    preset = load_preset(os.path.join(out, "best.yaml"))
    assert preset["models"]["dsmlp"] == cfg["student"]["params"]
    assert set(preset["models"]) == {"dnn", "dsmlp"}
    run_cfg = build_run_config(None, "gdcn",
                               os.path.join(out, "best_run.yaml"))
    assert run_cfg.teacher.model == "dnn"
    # the teacher's train: the settings that trained it (its fingerprint)
    made = RunDir(teacher_run).read_done("teacher")["fingerprint"]["train"]
    assert json.loads(json.dumps(to_dict(run_cfg.teacher.train))) == made
    assert preset["train"] == made
    assert run_cfg.distill.kd_weight == cfg["distill"]["kd_weight"]
    assert run_cfg.align.alpha == pytest.approx(best.params["alpha"])
    assert run_cfg.align.train.learning_rate == best.params[
        "align_learning_rate"]
    # the preset works for `run --preset ... --teacher dnn`, with the
    # stages' settings: the same run config as best_run.yaml
    from_preset = build_run_config(os.path.join(out, "best.yaml"), "dnn")
    params = from_preset.student.params
    assert json.loads(json.dumps(params)) == cfg["student"]["params"]
    assert from_preset.distill == run_cfg.distill
    assert from_preset.align == run_cfg.align
    run_out = str(tmp_path / "run")
    # the recipe's last command: the teacher study stands for its best run
    assert cli.main(["run", "--data", synth_data, "--config",
                     os.path.join(out, "best_run.yaml"),
                     "--teacher-checkpoint", teacher_study, "--out", run_out,
                     "--quiet"]) == 0
    assert (f"--teacher-checkpoint {teacher_study} is a teacher study"
            in capsys.readouterr().err)
    run = RunDir(run_out)
    assert run.done_phases() == ["teacher", "distill", "align"]
    assert run.read_metrics()["phases"]["teacher"]["loaded_from"].startswith(
        os.path.abspath(teacher_run))


def test_the_best_trial_is_scored_on_test_without_training_again(
        study, synth_data, teacher_study, tmp_path):
    """docs/TUNING.md, "From data to an export": `run --config
    best_run.yaml` on a copy of the best trial's directory loads its
    finished phases (the same settings, so the same fingerprint) and
    scores the test split that the trial never read."""
    out, _, _ = study
    best = load(out).best_trial
    trial_dir = os.path.join(out, best.user_attrs["run_dir"])
    run_out = str(tmp_path / "scored")
    with open(os.path.join(out, "best_run.yaml")) as f:
        assert f"cp -r {trial_dir} RUN" in f.read()
    shutil.copytree(trial_dir, run_out)  # keeps the files' times
    weights = sorted(glob.glob(os.path.join(run_out, "*", "weights", "*")))
    assert {os.path.basename(os.path.dirname(os.path.dirname(w)))
            for w in weights} >= {"distill", "align"}
    before = {w: os.path.getmtime(w) for w in weights}
    assert cli.main(["run", "--data", synth_data, "--config",
                     os.path.join(out, "best_run.yaml"),
                     "--teacher-checkpoint", teacher_study, "--out", run_out,
                     "--quiet"]) == 0
    assert {w: os.path.getmtime(w) for w in weights} == before  # not retrained
    metrics = RunDir(run_out).read_metrics()
    trial_metrics = RunDir(trial_dir).read_metrics()
    for phase in ("student", "dsmlp"):
        assert "test" in metrics["phases"][phase]
        assert metrics["phases"][phase]["valid"]["auc"] == pytest.approx(
            trial_metrics["phases"][phase]["valid"]["auc"], abs=1e-9)
    assert metrics["selected"]["phase"] == trial_metrics["selected"]["phase"]


def test_dsmlp_needs_a_teacher_run_and_only_dsmlp_takes_one(
        synth_data, teacher_run, tmp_path, capsys):
    assert cli.main(["tune", "--data", synth_data, "--model", "dsmlp",
                     "--out", str(tmp_path / "a")]) == 2
    assert "--model dsmlp needs --teacher" in capsys.readouterr().err
    assert cli.main(["tune", "--data", synth_data, "--model", "gdcn",
                     "--teacher", teacher_run,
                     "--out", str(tmp_path / "b")]) == 2
    assert "--teacher is for `--model dsmlp` only" in capsys.readouterr().err
    assert cli.main(["tune", "--data", synth_data, "--model", "dsmlp",
                     "--teacher", str(tmp_path), "--out",
                     str(tmp_path / "c")]) == 2
    assert "not a finished teacher run" in capsys.readouterr().err
    assert cli.main(["tune", "--data", synth_data, "--model", "dsmlp",
                     "--teacher", str(tmp_path), "--pruner", "median",
                     "--out", str(tmp_path / "d")]) == 2
    assert "warning: --pruner median" in capsys.readouterr().err


def test_teacher_study_must_be_a_teacher_study_with_a_result(
        synth_data, study, tmp_path, capsys):
    out = study[0]
    assert cli.main(["tune", "--data", synth_data, "--model", "dsmlp",
                     "--teacher", out, "--out", str(tmp_path / "a")]) == 2
    assert "a DS-MLP study, not a teacher one" in capsys.readouterr().err
    empty = str(tmp_path / "empty")
    optuna.create_study(storage=open_storage(empty), study_name=STUDY_NAME)
    assert cli.main(["run", "--data", synth_data, "--teacher", "dnn",
                     "--teacher-checkpoint", empty, "--out",
                     str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "--teacher-checkpoint" in err and "no complete trial yet" in err
    assert not os.path.exists(tmp_path / "b")


def test_a_student_table_from_the_teacher_takes_its_width(
        synth_data, teacher_run, tmp_path):
    """With `distill.init_main_from_teacher` the base student takes the
    width of the teacher run (4 here, not the preset's or the default),
    and a space that searches the student's width is refused before any
    trial (its width is the teacher's)."""
    out = str(tmp_path / "study")
    init = ["distill.init_main_from_teacher=true"]
    with pytest.raises(ConfigError, match="Drop embedding_dim"):
        run_study(synth_data, "dsmlp", out, trials=1, preset="synthetic",
                  overrides=TINY_RUN + init, pruner="none",
                  space=dataclasses.replace(
                      TINY_SPACE, embedding_dim=Choice((4, 8))),
                  teacher=teacher_run, log=None)
    assert not os.path.exists(os.path.join(out, "study.db"))
    result = run_study(synth_data, "dsmlp", out, trials=1,
                       preset="synthetic", overrides=TINY_RUN + init,
                       pruner="none", space=TINY_SPACE, teacher=teacher_run,
                       log=None)
    assert result.finished == 1
    cfg = RunDir(os.path.join(out, "trials", "0")).read_config()
    assert cfg["student"]["params"]["embedding_dim"] == 4


def test_dsmlp_space_fixes_keys_given_with_set():
    dims = DSMLPSpace().dimensions({"distill.kd_weight",
                                    "student.params.main_hidden_units"})
    assert "kd_weight" not in dims
    assert "main_width" not in dims and "main_depth" not in dims
    assert dsmlp_trial_settings({"main_width": 200, "main_depth": 2,
                                 "parallel_width": 100}, 3) == {
        "student.params.main_hidden_units": [200, 200],
        "student.params.parallel_hidden_units": [100, 100, 100]}


def test_pruning_steps_increase_over_both_phases():
    from tfdsmlp.tuning.objective import PruningCallback

    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    PruningCallback(trial, offset=0).on_epoch_end(1, {"val_auc": 0.6})
    PruningCallback(trial, offset=2).on_epoch_end(0, {"val_auc": 0.7})
    assert study.trials[0].intermediate_values == {2: 0.6, 3: 0.7}


def test_warm_start_from_a_study_that_searched_fewer_settings(
        study, synth_data, tmp_path):
    """A study whose --space turns on the student's embedding L2 starts
    from one over the default space: its trials held the base L2 (0), so
    they are copied with it; a range without that value is refused."""
    source, first, _ = study
    overrides = TINY_RUN + ["student.params.embedding_dim=4"]
    wider = dataclasses.replace(TINY_SPACE,
                                embedding_l2=Choice((0.0, 0.01)))
    said = []
    result = run_study(synth_data, "dsmlp", str(tmp_path / "wider"),
                       trials=2, preset="synthetic", overrides=overrides,
                       pruner="none", space=wider, log=said.append,
                       teacher=study_teacher(source),
                       warm_start=source)
    assert result.finished == 2 and result.best_value == first.best_value
    assert not os.path.exists(tmp_path / "wider" / "trials")  # none trained
    assert any("did not search embedding_l2" in line
               and "embedding_l2=0.0" in line for line in said), said
    copied = load(str(tmp_path / "wider")).get_trials()
    old = load(source).get_trials()
    assert [t.params for t in copied] == [
        {**t.params, "embedding_l2": 0.0} for t in old]
    # the base value must lie in the new range; refused before any study
    without = dataclasses.replace(TINY_SPACE,
                                  embedding_l2=Choice((0.01, 0.1)))
    with pytest.raises(StudyError, match=r"kept embedding_l2 at 0\.0"):
        run_study(synth_data, "dsmlp", str(tmp_path / "without"), trials=2,
                  preset="synthetic", overrides=overrides, pruner="none",
                  space=without, log=None, teacher=study_teacher(source),
                  warm_start=source)
    assert not os.path.exists(tmp_path / "without")
    # searching fewer settings than the earlier study stays refused: its
    # trials varied what this study would hold fixed
    with pytest.raises(StudyError, match="without embedding_l2"):
        run_study(synth_data, "dsmlp", str(tmp_path / "fewer"), trials=2,
                  preset="synthetic", overrides=overrides, pruner="none",
                  space=TINY_SPACE, log=None, teacher=study_teacher(source),
                  warm_start=str(tmp_path / "wider"))


def study_teacher(source: str) -> str:
    """The teacher run that the DS-MLP study of `source` recorded."""
    return load(source).user_attrs["setup"]["teacher"]


def test_base_values_read_widths_depths_and_refuse_the_unknown():
    setup = {"model": "dsmlp", "base": {"student": {"params": {
        "main_hidden_units": [64, 64, 64], "parallel_hidden_units": [8, 4],
        "embedding_dim": 10}}}}
    assert base_values(setup, ["main_width", "main_depth",
                               "embedding_dim"]) == {
        "main_width": 64, "main_depth": 3, "embedding_dim": 10}
    with pytest.raises(StudyError, match="parallel_width.*cannot be read"):
        base_values(setup, ["parallel_width"])
    with pytest.raises(StudyError, match="resume it once with this version"):
        base_values({"model": "dsmlp"}, ["embedding_dim"])
    # nothing to read: a study made before setups recorded their base
    # still warm-starts one over the same settings
    assert base_values({"model": "dsmlp"}, []) == {}
    teacher = {"model": "gdcn", "base": {"params": {"hidden_units": [32, 32]},
                                         "train": {"batch_size": 512}}}
    assert base_values(teacher, ["mlp_width", "mlp_depth", "batch_size"]) == {
        "mlp_width": 32, "mlp_depth": 2, "batch_size": 512}
