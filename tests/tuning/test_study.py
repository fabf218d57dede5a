"""A study end to end in process: trials are teacher phases that never
read the test split; best.yaml is a preset that `train` takes; pruning
stops trials after an epoch; a diverging trial is pruned, not a crash; a
rerun reuses the finished trials; another setup is refused."""

from __future__ import annotations

import json
import os
import time

import tfdsmlp  # noqa: F401
from tfdsmlp import cli
from tfdsmlp.config import ConfigError
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.training.presets import build_run_config
from tfdsmlp.tuning import (
    Choice,
    LogUniform,
    SearchSpace,
    StudyError,
    run_study,
)

import optuna
import pytest
import tensorflow as tf
import yaml
from tune_helpers import (
    TINY_TUNE,
    load,
    read,
    states,
    without_test_split,
)


@pytest.fixture(scope="module")
def no_test_data(tiny_dataset_dir, tmp_path_factory):
    return without_test_split(tiny_dataset_dir,
                              str(tmp_path_factory.mktemp("tune") / "data"))


@pytest.fixture(scope="module")
def study(no_test_data, tmp_path_factory):
    """A 3-trial study, recording every split whose files are opened."""
    out = str(tmp_path_factory.mktemp("tune") / "study")
    opened = []
    files = DatasetDir.files

    def spy(self, split):
        opened.append(split)
        return files(self, split)

    start = time.time()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DatasetDir, "files", spy)
        # Every trial drawn (no base trial), so that the best trial's
        # settings differ from the preset's (best_teacher.yaml's test).
        result = run_study(no_test_data, "gdcn", out, trials=3,
                           preset="synthetic", overrides=TINY_TUNE,
                           pruner="none", log=None, base_trial=False)
    assert time.time() - start < 60
    return out, result, opened


def test_study_runs_trials_without_the_test_split(study):
    out, result, opened = study
    assert result.finished == 3
    assert states(load(out)) == ["COMPLETE"] * 3
    assert "test" not in opened and "valid" in opened
    for n in range(3):
        metrics = yaml.safe_load(read(out, "trials", str(n),
                                      "metrics.json"))
        assert set(metrics["phases"]["teacher"]) >= {"valid", "epochs"}
        assert "test" not in metrics["phases"]["teacher"]
        assert metrics["phases"]["teacher"]["epochs"] == 2


def test_trials_md_and_tensorboard_hparams(study):
    out, result, _ = study
    table = read(result.trials_md)
    assert "| # | state | params | val AUC | epochs | seconds |" in table
    assert table.count("| COMPLETE |") == 3
    assert f"Best: trial {result.best_number}" in table
    tags = set()
    for n in range(3):
        folder = os.path.join(out, "tb", str(n))
        for name in os.listdir(folder):
            for event in tf.compat.v1.train.summary_iterator(
                    os.path.join(folder, name)):
                tags |= {v.tag for v in event.summary.value}
    assert {"_hparams_/session_start_info", "val_auc", "epoch_val_auc",
            "epochs", "seconds"} <= tags
    assert any(n.startswith("events.")
               for n in os.listdir(os.path.join(out, "tb")))


def test_best_yaml_is_a_preset_train_accepts(study, tiny_dataset_dir,
                                             tmp_path):
    out, result, _ = study
    best = load(out).best_trial
    assert result.best_number == best.number
    preset = yaml.safe_load(read(result.best_yaml))
    assert set(preset) == {"train", "models"}
    assert "dsmlp" in preset["models"]  # the base preset's other models
    cfg = build_run_config(result.best_yaml, "gdcn")
    assert cfg.teacher.train.learning_rate == pytest.approx(
        best.params["learning_rate"])
    # the tuned teacher's training is its own; the stages keep the base's
    base = build_run_config("synthetic", "gdcn")
    assert cfg.distill == base.distill and cfg.align == base.align
    assert cfg.student == base.student
    assert cfg.teacher.params["num_cross_layers"] == \
        best.params["num_cross_layers"]
    assert list(cfg.teacher.params["hidden_units"]) == [16]
    run = str(tmp_path / "run")
    assert cli.main(["train", "--data", tiny_dataset_dir, "--model", "gdcn",
                     "--preset", result.best_yaml, "--out", run,
                     "--quiet"]) == 0
    metrics = yaml.safe_load(read(run, "metrics.json"))
    assert metrics["phases"]["teacher"]["valid"]["auc"] == pytest.approx(
        best.value, abs=1e-4)
    assert "test" in metrics["phases"]["teacher"]


def test_best_teacher_yaml_keeps_the_base_presets_student(study,
                                                        tiny_dataset_dir):
    """best_teacher.yaml: `run --preset BASE --config best_teacher.yaml`
    gets the best trial's teacher and the base preset's student settings
    (as `run --preset best.yaml` does)."""
    out, result, _ = study
    path = os.path.join(out, "best_teacher.yaml")
    assert set(yaml.safe_load(read(path))) == {"teacher"}
    trial = yaml.safe_load(read(out, "trials", str(result.best_number),
                                "config.yaml"))["teacher"]
    base = build_run_config("synthetic", "gdcn")
    cfg = build_run_config("synthetic", "gdcn", config_file=path)
    assert json.loads(json.dumps(dict(cfg.teacher.params))) == trial["params"]
    assert cfg.teacher.train.learning_rate == pytest.approx(
        trial["train"]["learning_rate"])
    assert cfg.teacher.train.learning_rate != pytest.approx(
        base.teacher.train.learning_rate)
    assert cfg.student == base.student and cfg.distill == base.distill
    assert cfg.align == base.align
    assert f"--teacher-checkpoint {out}" in read(path).splitlines()[2]


def test_rerun_reuses_finished_trials_and_refuses_another_setup(
        study, no_test_data):
    out, _, _ = study
    again = run_study(no_test_data, "gdcn", out, trials=3,
                      preset="synthetic", overrides=TINY_TUNE,
                      pruner="none", log=None)
    assert again.finished == 3 and len(states(load(out))) == 3
    with pytest.raises(StudyError, match="overrides"):
        run_study(no_test_data, "gdcn", out, trials=4, preset="synthetic",
                  overrides=[*TINY_TUNE, "train.patience=1"],
                  pruner="none", log=None)


def test_a_preset_file_edited_between_commands_is_refused(no_test_data,
                                                         tmp_path):
    out, preset = str(tmp_path / "study"), tmp_path / "preset.yaml"
    preset.write_text("train: {patience: 2}\nmodels: {gdcn: {}}\n")
    run_study(no_test_data, "gdcn", out, trials=1, preset=str(preset),
              overrides=TINY_TUNE, pruner="none", log=None)
    # The same name, other settings.
    preset.write_text("train: {patience: 1}\nmodels: {gdcn: {}}\n")
    with pytest.raises(StudyError,
                       match="(?s)base.train.patience: stored 2.*changed"):
        run_study(no_test_data, "gdcn", out, trials=2, preset=str(preset),
                  overrides=TINY_TUNE, pruner="none", log=None)
    # A study made before the base settings were recorded resumes, and
    # they are recorded from then on.
    study = load(out)
    older = {k: v for k, v in study.user_attrs["setup"].items()
             if k != "base"}
    study.set_user_attr("setup", older)
    assert run_study(no_test_data, "gdcn", out, trials=1, preset=str(preset),
                     overrides=TINY_TUNE, pruner="none",
                     log=None).finished == 1
    base = load(out).user_attrs["setup"]["base"]
    assert base["train"]["patience"] == 1 and base["model"] == "gdcn"


class PruneEveryTrial(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def test_pruner_stops_trials_after_the_first_epoch(no_test_data, tmp_path):
    out = str(tmp_path / "study")
    lines = []
    result = run_study(no_test_data, "gdcn", out, trials=2,
                       preset="synthetic", overrides=TINY_TUNE,
                       pruner=PruneEveryTrial(), log=lines.append)
    trials = load(out).get_trials()
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"]
    assert all(list(t.intermediate_values) == [1] for t in trials)
    assert result.best_yaml is None
    assert not os.path.exists(os.path.join(out, "best.yaml"))
    for n in range(2):  # nothing committed, the backup dropped
        phase = os.path.join(out, "trials", str(n), "teacher")
        assert not os.path.exists(os.path.join(phase, "done.json"))
        assert not os.path.exists(os.path.join(phase, "backup"))
    assert "pruned after epoch 1" in read(result.trials_md)
    assert any("2/2 finished" in line for line in lines)


def test_diverging_trial_is_pruned_not_a_crash(no_test_data, tmp_path,
                                               monkeypatch):
    monkeypatch.setenv("TFDSMLP_FAULT_INJECT", "teacher:1:2:nan")
    out = str(tmp_path / "study")
    result = run_study(no_test_data, "gdcn", out, trials=2,
                       preset="synthetic", overrides=TINY_TUNE,
                       pruner="none", log=None)
    trials = load(out).get_trials()
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"]
    assert all("non-finite loss" in t.user_attrs["diverged"]
               for t in trials)
    assert result.finished == 2 and result.best_yaml is None


def test_time_budget_stops_starting_trials(no_test_data, tmp_path):
    out = str(tmp_path / "study")
    result = run_study(no_test_data, "gdcn", out, trials=5,
                       time_budget=0.5, preset="synthetic",
                       overrides=TINY_TUNE, pruner="none", log=None)
    assert result.finished == 1  # started within 0.5 s, then none
    assert states(load(out)) == ["COMPLETE"]


def test_warm_start_copies_the_finished_trials_without_training(
        study, no_test_data, tmp_path):
    source, first, _ = study
    out = str(tmp_path / "wide")
    lines = []
    # A wider learning-rate range: every earlier trial fits it.
    wide = SearchSpace(learning_rate=LogUniform(1e-5, 1e-1))
    result = run_study(no_test_data, "gdcn", out, trials=3,
                       preset="synthetic", overrides=TINY_TUNE,
                       pruner="none", space=wide, warm_start=source,
                       log=lines.append)
    assert result.finished == 3 and result.best_value == first.best_value
    assert not os.path.exists(os.path.join(out, "trials"))  # none trained
    assert "warm start: 3 finished trials copied" in " ".join(lines)
    copied = load(out).get_trials()
    old = load(source).get_trials()
    assert [t.params for t in copied] == [t.params for t in old]
    assert [t.intermediate_values for t in copied] == [
        t.intermediate_values for t in old]
    best_dir = os.path.join(os.path.abspath(source), "trials",
                            str(first.best_number))
    assert f"--teacher-checkpoint {best_dir}" in read(out, "best_teacher.yaml")
    assert "(--warm-start)" in read(result.trials_md)
    assert len(os.listdir(os.path.join(out, "tb"))) >= 4  # + one per trial
    # The new study goes on from there: trial 3 runs in STUDY/trials/3.
    more = run_study(no_test_data, "gdcn", out, trials=4,
                     preset="synthetic", overrides=TINY_TUNE, pruner="none",
                     space=wide, warm_start=source, log=None)
    assert more.finished == 4
    assert os.listdir(os.path.join(out, "trials")) == ["3"]
    with pytest.raises(StudyError, match="warm_start"):
        run_study(no_test_data, "gdcn", out, trials=4, preset="synthetic",
                  overrides=TINY_TUNE, pruner="none", space=wide, log=None)


def test_warm_start_names_what_it_leaves_out_or_refuses(study, no_test_data,
                                                        tmp_path):
    source, _, _ = study
    rates = sorted(t.params["learning_rate"] for t in load(source).get_trials())
    narrow = SearchSpace(learning_rate=LogUniform(rates[0] / 2, rates[1]))
    lines = []
    result = run_study(no_test_data, "gdcn", str(tmp_path / "narrow"),
                       trials=2, preset="synthetic", overrides=TINY_TUNE,
                       pruner="none", space=narrow, warm_start=source,
                       log=lines.append)
    assert result.finished == 2
    left = [line for line in lines if "not copied" in line]
    assert len(left) == 1 and "learning_rate=" in left[0]
    assert "outside this study's space" in left[0]
    with pytest.raises(StudyError, match="(?s)only the space.*overrides"):
        run_study(no_test_data, "gdcn", str(tmp_path / "other"), trials=2,
                  preset="synthetic",
                  overrides=[*TINY_TUNE, "train.patience=1"],
                  pruner="none", warm_start=source, log=None)
    # Refused before the new study is made: nothing to undo.
    assert not os.path.exists(str(tmp_path / "other"))
    with pytest.raises(ConfigError, match="no study there"):
        run_study(no_test_data, "gdcn", str(tmp_path / "x"), trials=2,
                  preset="synthetic", overrides=TINY_TUNE,
                  warm_start=str(tmp_path), log=None)


def test_progress_eta_reads_as_hours_minutes_seconds():
    """A 30-trial DS-MLP study on 1M rows has an ETA of hours: the
    progress line says 18:25:57, not 66357 s."""
    from tfdsmlp.tuning.study import _Progress

    progress = _Progress("out", 10, None, say=None, write=None)
    progress.durations = [3600.0]
    assert progress._eta(1) == "9:00:00"
    progress.durations = [65.4]
    assert progress._eta(9) == "0:01:05"
    assert progress._eta(10) == "done"
    budget = _Progress("out", 10, 100.0, say=None, write=None)
    budget.start, budget.durations = time.time() - 40.0, [3600.0]
    assert budget._eta(1) in ("0:01:00 (time budget)",
                              "0:00:59 (time budget)")
    # only trials that took another's result so far (a warm start)
    progress.durations = []
    assert progress._eta(3) == "unknown until a trial has trained"


def test_search_names_the_settings_searched_the_rest_stay_at_base(
        no_test_data, tmp_path):
    out = str(tmp_path / "study")
    result = run_study(no_test_data, "gdcn", out, trials=2,
                       preset="synthetic", overrides=TINY_TUNE,
                       pruner="none", log=None, search=["embedding_l2"])
    assert result.finished == 2
    study = load(out)
    assert list(study.user_attrs["setup"]["space"]) == ["embedding_l2"]
    base = build_run_config("synthetic", "gdcn", None,
                            [f"teacher.{o}" for o in TINY_TUNE],
                            teacher_only=True).teacher
    for trial in study.get_trials():
        assert list(trial.params) == ["embedding_l2"]
        config = yaml.safe_load(read(out, "trials", str(trial.number),
                                     "config.yaml"))["teacher"]
        assert config["train"]["learning_rate"] == \
            base.train.learning_rate
        assert config["params"]["dropout"] == base.params["dropout"]
        assert config["params"]["embedding_l2"] == \
            trial.params["embedding_l2"]
    # another --search is another study
    with pytest.raises(StudyError, match="space"):
        run_study(no_test_data, "gdcn", out, trials=3, preset="synthetic",
                  overrides=TINY_TUNE, pruner="none", log=None,
                  search=["embedding_l2", "dropout"])


@pytest.mark.parametrize("names, message", [
    (["embeding_l2"], r"did you mean embedding_l2, embedding_dim\?$"),
    (["xyz"], r"the settings are learning_rate, batch_size, .*\.$"),
    (["embedding_dim"], "not searched by this study: fixed by --set"),
    (["optimizer"], "off unless a --space file gives its range"),
    (["mlp_width"], "names mlp_width without mlp_depth"),
    ([" "], "names no setting"),
])
def test_search_refuses_names_it_cannot_search(no_test_data, tmp_path,
                                               names, message):
    sets = [o for o in TINY_TUNE if not o.startswith("params.hidden")]
    with pytest.raises(ConfigError, match=message):
        run_study(no_test_data, "gdcn", str(tmp_path / "s"), trials=1,
                  preset="synthetic", overrides=sets, pruner="none",
                  log=None, search=names)
    assert not os.path.exists(str(tmp_path / "s" / "study.db"))


def test_a_trial_drawing_finished_settings_takes_their_result(
        no_test_data, tmp_path):
    out, lines = str(tmp_path / "study"), []
    # two values, four trials: at least two draws repeat a finished one
    result = run_study(no_test_data, "gdcn", out, trials=4,
                       preset="synthetic", overrides=TINY_TUNE,
                       pruner="none", log=lines.append,
                       space=SearchSpace(embedding_l2=Choice((0.0, 0.01))),
                       search=["embedding_l2"])
    assert result.finished == 4
    trials = load(out).get_trials()
    twins = [t for t in trials if "same_as" in t.user_attrs]
    assert len(twins) >= 2
    for t in twins:
        first = trials[t.user_attrs["same_as"]]
        assert t.params == first.params and t.value == first.value
        assert t.user_attrs["run_dir"] == first.user_attrs["run_dir"]
        assert not os.path.exists(os.path.join(out, "trials",
                                               str(t.number)))
        assert f"same settings as #{first.number}" in read(result.trials_md)
    assert sum("its result taken, not trained again" in line
               for line in lines) == len(twins)
    # the ETA counts only the trials that trained
    for t in twins:
        assert any(line.startswith(f"[tune] trial {t.number} complete (as "
                                   f"trial {t.user_attrs['same_as']})")
                   for line in lines)
