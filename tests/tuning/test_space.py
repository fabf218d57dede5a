"""The search space: one frozen definition, restricted per model to the
keys its config accepts (strictly), and the per-trial seeded sampler."""

from __future__ import annotations

import dataclasses
import warnings

from tfdsmlp.config import ConfigError
from tfdsmlp.models.registry import MODELS, model_config
from tfdsmlp.training.presets import model_preset
from tfdsmlp.training.train_config import TrainConfig
from tfdsmlp.tuning import Choice, IntRange, LogUniform, SearchSpace, Uniform
from tfdsmlp.tuning.sampler import TrialSeededTPESampler
from tfdsmlp.tuning.space import (
    OPTIMIZER_CHOICES,
    SETTINGS,
    TEACHER_OPT_IN,
    DSMLPSpace,
    optimizer_choice,
    searched_only,
    setting_keys,
    suggest,
    trial_settings,
)
from tfdsmlp.tuning.study import fixed_keys

import optuna
import pytest
from tiny_data import REPO_ROOT, make_spec

TEACHERS = sorted(m for m in MODELS if m != "dsmlp")


def test_setting_keys_name_the_config_keys_a_setting_writes():
    # one lookup for the space file's checks and the warm start's base
    assert setting_keys("dsmlp", "align_patience") == [
        "align.train.patience"]
    assert setting_keys("dsmlp", "num_cross_layers") == []  # no such key
    assert setting_keys("gdcn", "batch_size") == ["train.batch_size"]
    assert setting_keys("finalmlp", "dropout") == [
        "params.mlp1_dropout", "params.mlp2_dropout"]
    assert setting_keys("dnn", "num_cross_layers") == []
    assert setting_keys("gdcn", "align_patience") == []


def test_dimensions_follow_each_models_config():
    space = SearchSpace()
    default = set(SETTINGS) - set(TEACHER_OPT_IN)
    assert set(space.dimensions("gdcn")) == default
    assert set(space.dimensions("dcnv2")) == default
    dnn = space.dimensions("dnn")
    assert "num_cross_layers" not in dnn and "mlp_width" in dnn
    # FinalMLP: dropout writes both streams', width/depth stream 1's.
    values = suggest(optuna.trial.FixedTrial({
        "learning_rate": 1e-3, "batch_size": 1024, "embedding_dim": 8,
        "embedding_l2": 0.0, "dropout": 0.25, "mlp_width": 200,
        "mlp_depth": 2}), space.dimensions("finalmlp"))
    settings = trial_settings("finalmlp", values)
    assert settings["params"]["mlp1_dropout"] == 0.25
    assert settings["params"]["mlp2_dropout"] == 0.25
    assert settings["params"]["mlp1_hidden_units"] == [200, 200]
    assert "dropout" not in settings["params"]
    assert settings["train"] == {"learning_rate": 1e-3, "batch_size": 1024}


def _extremes(dist):
    if isinstance(dist, Choice):
        return dist.options
    return (dist.low, dist.high)


def _corners(dims):
    """All lows, all highs, and each extreme of each setting alone (the
    space's constraints are per setting, e.g. a width and the heads)."""
    low = {n: _extremes(d)[0] for n, d in dims.items()}
    yield low
    yield {n: _extremes(d)[-1] for n, d in dims.items()}
    for name, dist in dims.items():
        for value in _extremes(dist):
            yield {**low, name: value}


@pytest.mark.parametrize("model", TEACHERS)
@pytest.mark.parametrize("preset", [None, "frappe", "synthetic"])
def test_every_corner_of_the_space_fits_every_teacher(model, preset):
    """Each model's config accepts (strictly) every extreme of its space,
    over the defaults and the presets (e.g. FinalMLP's fusion heads),
    opt-in settings turned on."""
    base = model_preset(preset, model)["params"]
    space = SearchSpace(**TEACHER_OPT_IN)
    for values in _corners(space.dimensions(model)):
        settings = trial_settings(model, values)
        model_config(model, {**base, **settings["params"]})
        dataclasses.replace(TrainConfig(), **settings["train"])


def test_set_keys_are_not_searched():
    fixed = fixed_keys(["teacher.params.hidden_units=[16]",
                        "teacher.train.batch_size=32", "align.alpha=1"])
    assert fixed == {"params.hidden_units", "train.batch_size", "align.alpha"}
    dims = SearchSpace().dimensions("gdcn", fixed)
    assert not {"mlp_width", "mlp_depth", "batch_size"} & set(dims)
    # FinalMLP keeps `dropout` while one of its two keys is free.
    dims = SearchSpace().dimensions("finalmlp", {"params.mlp1_dropout"})
    assert "dropout" in dims
    values = {"dropout": 0.1}
    assert trial_settings("finalmlp", values, {"params.mlp1_dropout"}) == {
        "params": {"mlp2_dropout": 0.1}, "train": {}}


def test_the_optimizer_is_searched_with_its_l2_scope_when_turned_on():
    """Off by default; on, it writes the optimizer and the embedding L2
    scope it pairs with, and a `--set` of either key fixes it."""
    assert "optimizer" not in SearchSpace().dimensions("gdcn")
    space = SearchSpace(optimizer=TEACHER_OPT_IN["optimizer"])
    assert "optimizer" in space.dimensions("gdcn")
    assert trial_settings("gdcn", {"optimizer": "lazy_adam"}) == {
        "params": {"embedding_l2_scope": "batch"},
        "train": {"optimizer": "lazy_adam"}}
    assert trial_settings("gdcn", {"optimizer": "adam"}) == {
        "params": {"embedding_l2_scope": "table"},
        "train": {"optimizer": "adam"}}
    assert trial_settings("gdcn", {"optimizer": "lazy_adam_lazy_l2"}) == {
        "params": {"embedding_l2_scope": "lazy"},
        "train": {"optimizer": "lazy_adam"}}
    for key in ("train.optimizer", "params.embedding_l2_scope"):
        assert "optimizer" not in space.dimensions("gdcn", {key})
    assert set(OPTIMIZER_CHOICES) == set(TEACHER_OPT_IN["optimizer"].options)
    for value, pair in OPTIMIZER_CHOICES.items():
        assert optimizer_choice(*pair) == value
    assert optimizer_choice("adam", "batch") is None


@pytest.mark.parametrize("model", TEACHERS)
def test_every_searched_optimizer_trains_with_any_embedding_l2(model):
    """LazyAdam refuses a whole-table L2 in the loss (dense gradients):
    each value pairs it with the batch or the lazy scope, and the lazy
    one gets `LazyAdamTableL2`, at every L2 of the space."""
    from tfdsmlp.models.registry import build_model
    from tfdsmlp.training.fit import make_optimizer
    space = SearchSpace(optimizer=TEACHER_OPT_IN["optimizer"])
    base = model_preset("synthetic", model)["params"]
    for optimizer in OPTIMIZER_CHOICES:
        settings = trial_settings(model, {"optimizer": optimizer,
                                          "embedding_l2": 0.1})
        assert "optimizer" in space.dimensions(model)
        net = build_model(model, {**base, **settings["params"]}, make_spec())
        opt = make_optimizer(dataclasses.replace(TrainConfig(),
                                                 **settings["train"]), net)
        assert type(opt).__name__ == {
            "adam": "Adam", "lazy_adam": "LazyAdam",
            "lazy_adam_lazy_l2": "LazyAdamTableL2",
            "catch_up_adam_lazy_l2": "CatchUpAdam"}[optimizer]


def test_space_is_frozen_and_checks_its_ranges():
    space = SearchSpace()
    with pytest.raises(dataclasses.FrozenInstanceError):
        space.dropout = Uniform(0.0, 0.9, 0.1)
    for bad in (lambda: LogUniform(0.0, 1.0), lambda: Uniform(1, 0, 0.1),
                lambda: IntRange(3, 1), lambda: Choice(())):
        with pytest.raises(ValueError, match="should"):
            bad()
    assert SearchSpace(mlp_depth=IntRange(1, 1)).mlp_depth.high == 1


def test_docs_list_every_setting():
    text = (REPO_ROOT / "docs" / "TUNING.md").read_text()
    missing = [s for s in SETTINGS if f"`{s}`" not in text]
    assert missing == []


def test_sampler_is_seeded_per_trial():
    """The same (seed, trial number) draws the same settings in any
    process; two processes sharing a study draw different ones."""
    dims = SearchSpace().dimensions("gdcn")
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)

    def draws(study, n):
        out = []
        for _ in range(n):
            trial = study.ask()
            out.append(suggest(trial, dims))
            study.tell(trial, 0.5)
        return out

    a = optuna.create_study(sampler=TrialSeededTPESampler(7))
    b = optuna.create_study(sampler=TrialSeededTPESampler(7))
    assert draws(a, 3) == draws(b, 3)
    # One study, two samplers with the same seed (two processes): trial
    # numbers differ, so do the draws.
    storage = optuna.storages.InMemoryStorage()
    one = optuna.create_study(storage=storage, study_name="s",
                              sampler=TrialSeededTPESampler(7))
    two = optuna.load_study(storage=storage, study_name="s",
                            sampler=TrialSeededTPESampler(7))
    first, other = one.ask(), two.ask()
    assert suggest(first, dims) != suggest(other, dims)


def test_searched_only_cuts_the_dsmlp_space_and_keeps_pairs_whole():
    known = [f.name for f in dataclasses.fields(DSMLPSpace)]
    dims = DSMLPSpace().dimensions()
    assert list(searched_only(dims, ["alpha", "kd_weight", "alpha"], known,
                              "dsmlp")) == ["kd_weight", "alpha"]
    assert searched_only(dims, None, known, "dsmlp") is dims
    both = searched_only(dims, ["main_width", "main_depth"], known, "dsmlp")
    assert list(both) == ["main_width", "main_depth"]
    with pytest.raises(ConfigError, match="main_depth without main_width"):
        searched_only(dims, ["main_depth"], known, "dsmlp")
    with pytest.raises(ConfigError, match="off unless a --space file"):
        searched_only(dims, ["embedding_l2"], known, "dsmlp")
