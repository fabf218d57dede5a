"""A new study's first trial takes the base settings (preset <- --set)
where they lie in the space; the others are drawn and named; `tune
--no-base-trial` leaves the first trial to the sampler."""

from __future__ import annotations

import os

import tfdsmlp  # noqa: F401
from tfdsmlp import cli
from tfdsmlp.config import to_dict
from tfdsmlp.training.presets import build_run_config
from tfdsmlp.tuning import DSMLPSpace, LogUniform, SearchSpace, run_study
from tfdsmlp.tuning.base_trial import base_params, enqueue_base_trial
from tfdsmlp.tuning.objective import dsmlp_trial_config, trial_config

import optuna
import pytest
import yaml
from tune_helpers import TINY_TUNE, load, read, without_test_split

TEACHER_TINY = [f"teacher.{o}" for o in TINY_TUNE]


def _teacher_config(preset, model, overrides=()):
    base = build_run_config(preset, model, None, list(overrides),
                            teacher_only=True)
    return lambda values: trial_config(base, model, values, set())


def test_a_new_study_starts_with_the_base_settings(tiny_dataset_dir,
                                                    tmp_path):
    data = without_test_split(tiny_dataset_dir, str(tmp_path / "data"))
    out, lines = str(tmp_path / "study"), []
    result = run_study(data, "gdcn", out, trials=1, preset="synthetic",
                       overrides=TINY_TUNE, pruner="none",
                       log=lines.append)
    assert result.finished == 1
    trial = load(out).trials[0]
    assert trial.user_attrs["base_trial"] == "all"
    assert set(trial.params) == {"learning_rate", "embedding_l2", "dropout",
                                 "num_cross_layers"}
    # The trial trained exactly the base teacher.
    base = build_run_config("synthetic", "gdcn", None, TEACHER_TINY,
                            teacher_only=True).resolved().teacher
    ran = yaml.safe_load(read(out, "trials", "0", "config.yaml"))["teacher"]
    assert ran["params"] == to_dict(base)["params"]
    assert ran["train"] == to_dict(base)["train"]
    assert any("trial 0 takes the base settings" in line for line in lines)
    assert "the base settings (preset <- --set)" in read(result.trials_md)


def test_no_base_trial_leaves_the_first_trial_to_the_sampler(
        tiny_dataset_dir, tmp_path):
    data = without_test_split(tiny_dataset_dir, str(tmp_path / "data"))
    out = str(tmp_path / "study")
    sets = [arg for o in TINY_TUNE for arg in ("--set", o)]
    assert cli.main(["tune", "--data", data, "--model", "gdcn", "--preset",
                     "synthetic", *sets, "--trials", "1", "--pruner", "none", "--no-base-trial",
                     "--out", out, "--quiet"]) == 0
    trial = load(out).trials[0]
    assert "base_trial" not in trial.user_attrs
    assert trial.params["learning_rate"] != pytest.approx(1e-3)


def test_a_base_outside_its_range_is_drawn_and_named():
    config = _teacher_config("synthetic", "gdcn", TEACHER_TINY)
    dims = SearchSpace(learning_rate=LogUniform(3e-3, 1e-2)).dimensions(
        "gdcn", {"params.hidden_units", "params.embedding_dim",
                 "train.batch_size"})
    params, drawn = base_params(config, "gdcn", dims)
    assert params == {"embedding_l2": 0.0, "dropout": 0.1,
                      "num_cross_layers": 2}
    assert drawn == ["learning_rate (base 0.001 is outside its range)"]


def test_a_base_a_trial_cannot_write_exactly_is_drawn():
    """FinalMLP's `dropout` writes both streams' dropouts: a base with two
    different ones cannot be a trial's."""
    config = _teacher_config("synthetic", "finalmlp", [
        "teacher.params.mlp1_dropout=0.1", "teacher.params.mlp2_dropout=0.2"])
    dims = SearchSpace().dimensions("finalmlp")
    params, drawn = base_params(config, "finalmlp", dims)
    assert "dropout" not in params
    assert "dropout (a trial cannot write its base exactly)" in drawn
    assert to_dict(config(params)) == to_dict(config({}))


def test_the_dsmlp_base_keeps_all_but_a_main_width_outside_the_space():
    """A main MLP of 3 x 1024 (the avazu preset's before session 21) is
    wider than the DS-MLP space's widest (1000): width and depth are drawn
    together; the rest is the preset's student and stages."""
    base = build_run_config("avazu", "gdcn", overrides=[
        "student.params.main_hidden_units=[1024,1024,1024]"]).resolved()

    def config(values):
        return dsmlp_trial_config(base, values)

    dims = DSMLPSpace().dimensions()
    params, drawn = base_params(config, "dsmlp", dims)
    assert drawn == [
        "main_width/main_depth (main_width's base 1024 is outside its range)"]
    assert set(params) == set(dims) - {"main_width", "main_depth"}
    assert params["parallel_width"] == 400 and params["dropout"] == 0.05
    assert (params["kd_weight"], params["alpha"]) == (1.1, 1.5)
    assert to_dict(config(params)) == to_dict(config({}))


def test_the_log_and_trials_md_name_what_a_base_trial_draws(
        tiny_dataset_dir, tmp_path):
    data = without_test_split(tiny_dataset_dir, str(tmp_path / "data"))
    out, lines = str(tmp_path / "study"), []
    run_study(data, "gdcn", out, trials=1, preset="synthetic",
              overrides=TINY_TUNE, pruner="none", log=lines.append,
              space=SearchSpace(learning_rate=LogUniform(3e-3, 1e-2)))
    trial = load(out).trials[0]
    assert trial.user_attrs["base_trial"] == [
        "learning_rate (base 0.001 is outside its range)"]
    assert 3e-3 <= trial.params["learning_rate"] <= 1e-2
    said = next(line for line in lines if "takes the base settings" in line)
    assert "except learning_rate (base 0.001 is outside its range)" in said
    assert "except learning_rate" in read(os.path.join(out, "trials.md"))


def test_no_base_trial_when_a_copied_trial_has_the_base_settings():
    """A warm-started study whose copied trials include the base settings
    queues no second one; with other settings it queues the base."""
    config = _teacher_config("synthetic", "gdcn", TEACHER_TINY)
    dims = SearchSpace().dimensions(
        "gdcn", {"params.hidden_units", "params.embedding_dim",
                 "train.batch_size"})
    params, drawn = base_params(config, "gdcn", dims)
    assert not drawn
    dists = {name: d.optuna() for name, d in dims.items()}
    for copied, queued in ((params, False),
                           ({**params, "dropout": 0.3}, True)):
        study = optuna.create_study(direction="maximize")
        study.add_trial(optuna.trial.create_trial(
            params=copied, distributions=dists, value=0.7))
        lines = []
        enqueue_base_trial(study, config, "gdcn", dims, lines.append)
        waiting = study.get_trials(
            states=(optuna.trial.TrialState.WAITING,))
        assert len(waiting) == int(queued), lines
        if queued:
            assert waiting[0].user_attrs["base_trial"] == "all"
            assert lines == [("[tune] trial 1 takes the base settings "
                              "(preset <- --set); --no-base-trial leaves "
                              "it to the sampler")]
        else:
            assert lines == [("[tune] no base trial: a trial of the "
                              "study has the base settings")]


def test_the_base_trial_takes_the_base_optimizer_with_its_l2_scope():
    """The opt-in `optimizer` setting: Adam with the whole-table L2 is
    the base's value; Adam with the batch-scope L2 (from a preset) is no
    value of the setting, so it is drawn and named."""
    from tfdsmlp.tuning import Choice

    space = SearchSpace(optimizer=Choice(("adam", "lazy_adam")))
    dims = space.dimensions("gdcn")
    params, drawn = base_params(
        _teacher_config("synthetic", "gdcn", TEACHER_TINY), "gdcn", dims)
    assert params["optimizer"] == "adam"
    assert not [d for d in drawn if d.startswith("optimizer")]
    params, drawn = base_params(_teacher_config(
        "synthetic", "gdcn",
        [*TEACHER_TINY, "teacher.params.embedding_l2_scope=batch"]),
        "gdcn", dims)
    assert "optimizer" not in params
    assert "optimizer (its base is not one value of the setting)" in drawn
    # LazyAdam with the lazy whole-table L2 is the third value's base.
    dims = SearchSpace(optimizer=Choice(
        ("adam", "lazy_adam", "lazy_adam_lazy_l2"))).dimensions("gdcn")
    params, drawn = base_params(_teacher_config(
        "synthetic", "gdcn",
        [*TEACHER_TINY, "teacher.params.embedding_l2_scope=lazy",
         "teacher.train.optimizer=lazy_adam"]), "gdcn", dims)
    assert params["optimizer"] == "lazy_adam_lazy_l2"
