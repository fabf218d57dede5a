"""`tune --space FILE`: ranges replacing the defaults (strictly read, named
errors), the edge warning, and a study that records its space."""

from __future__ import annotations

import os

from tfdsmlp import cli
from tfdsmlp.config import ConfigError, to_dict
from tfdsmlp.tuning import (
    Choice,
    DSMLPSpace,
    IntRange,
    LogUniform,
    SearchSpace,
    StudyError,
    Uniform,
    run_study,
)
from tfdsmlp.tuning.space import dsmlp_trial_settings
from tfdsmlp.tuning.space_file import at_edges, from_record, load_space
from tfdsmlp.tuning.study import describe

import pytest
from tune_helpers import TINY_TUNE, read, without_test_split


def _file(tmp_path, text: str) -> str:
    path = tmp_path / "space.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_each_form_replaces_its_default_only(tmp_path):
    space = load_space(_file(tmp_path, (
        "embedding_l2: [0.01, 0.1, 1.0]\n"
        "learning_rate: {log_uniform: [3.0e-4, 3.0e-3]}\n"
        "dropout: {uniform: [0.0, 0.3], step: 0.1}\n"
        "num_cross_layers: {int: [2, 4]}\n")), "gdcn")
    assert space.embedding_l2 == Choice((0.01, 0.1, 1.0))
    assert space.learning_rate == LogUniform(3e-4, 3e-3)
    assert space.dropout == Uniform(0.0, 0.3, 0.1)
    assert space.num_cross_layers == IntRange(2, 4)
    assert space.batch_size == SearchSpace().batch_size
    dsmlp = load_space(_file(tmp_path, "main_width: [1200, 1600]\n"
                                       "kd_loss: [kl]\n"), "dsmlp")
    assert isinstance(dsmlp, DSMLPSpace)
    assert dsmlp.main_width == Choice((1200, 1600))
    assert dsmlp.kd_loss == Choice(("kl",))


def test_student_embedding_settings_are_searched_only_when_given(tmp_path):
    default = DSMLPSpace().dimensions()
    assert "embedding_dim" not in default and "embedding_l2" not in default
    space = load_space(_file(tmp_path, "embedding_dim: [10, 32]\n"
                                       "embedding_l2: [0.0, 0.01]\n"),
                       "dsmlp")
    dims = space.dimensions()
    assert dims["embedding_dim"] == Choice((10, 32))
    assert list(dims)[:-2] == list(default)  # the default ones unchanged
    settings = dsmlp_trial_settings(
        {"embedding_dim": 32, "embedding_l2": 0.01, "dropout": 0.1}, 3)
    assert settings == {"student.params.embedding_dim": 32,
                        "student.params.embedding_l2": 0.01,
                        "student.params.dropout": 0.1}
    # --set fixes it; a range of the wrong kind is refused.
    assert "embedding_dim" not in space.dimensions(
        {"student.params.embedding_dim"})
    with pytest.raises(ConfigError, match="not one of the integers"):
        load_space(_file(tmp_path, "embedding_dim: [10, 12.5]\n"), "dsmlp")


def test_stage_batch_sizes_are_searched_only_when_given(tmp_path):
    default = DSMLPSpace().dimensions()
    assert "distill_batch_size" not in default
    assert "align_batch_size" not in default
    space = load_space(_file(tmp_path, "distill_batch_size: [1024, 4096]\n"),
                       "dsmlp")
    assert space.dimensions()["distill_batch_size"] == Choice((1024, 4096))
    assert "align_batch_size" not in space.dimensions()
    assert dsmlp_trial_settings({"distill_batch_size": 1024,
                                 "align_batch_size": 2048}, 3) == {
        "distill.train.batch_size": 1024, "align.train.batch_size": 2048}
    assert "distill_batch_size" not in space.dimensions(
        {"distill.train.batch_size"})
    with pytest.raises(ConfigError, match="not one of the integers"):
        load_space(_file(tmp_path, "align_batch_size: [1024, 0.5]\n"),
                   "dsmlp")


def test_stage_schedules_are_searched_only_when_given(tmp_path):
    names = ("distill_patience", "align_patience", "distill_lr_decay",
             "align_lr_decay")
    assert not set(names) & set(DSMLPSpace().dimensions())
    space = load_space(_file(tmp_path, "align_patience: {int: [1, 3]}\n"
                                       "align_lr_decay: [0.1, 1.0]\n"),
                       "dsmlp")
    dims = space.dimensions()
    assert dims["align_patience"] == IntRange(1, 3)
    assert dims["align_lr_decay"] == Choice((0.1, 1.0))
    assert "distill_patience" not in dims
    assert dsmlp_trial_settings({"distill_patience": 2, "align_patience": 1,
                                 "distill_lr_decay": 0.3,
                                 "align_lr_decay": 1.0}, 3) == {
        "distill.train.patience": 2, "align.train.patience": 1,
        "distill.train.lr_decay": 0.3, "align.train.lr_decay": 1.0}
    assert "align_patience" not in space.dimensions({"align.train.patience"})


@pytest.mark.parametrize("model, text, named", [
    ("dsmlp", "distill_patience: {int: [0, 2]}\n",
     "`distill_patience`: `patience` should be positive"),
    ("dsmlp", "align_lr_decay: [0.1, 1.5]\n",
     "`align_lr_decay`: `lr_decay` should be in \\(0, 1\\]"),
    ("dsmlp", "distill_batch_size: [0, 1024]\n",
     "`distill_batch_size`: `batch_size` should be positive"),
    ("gdcn", "batch_size: [0, 1024]\n",
     "`batch_size`: `batch_size` should be positive"),
])
def test_a_range_the_training_settings_refuse_is_named(tmp_path, model,
                                                       text, named):
    # Refused when the file is read, not when a trial reaches the value.
    with pytest.raises(ConfigError, match=named):
        load_space(_file(tmp_path, text), model)


@pytest.mark.parametrize("text, named", [
    ("embeding_l2: [0.1]\n", "`embeding_l2` is not a setting"),
    ("dropout: {normal: [0, 1]}\n", "exactly one of"),
    ("dropout: {uniform: [0.0, 0.3]}\n", "needs it"),
    ("embedding_l2: {choice: [0.1], step: 1}\n", "`step` goes with"),
    ("mlp_width: [100, 150.5]\n", "150.5 is not one of the integers"),
    ("learning_rate: {log_uniform: [0, 0.1]}\n", "0 < low < high"),
    ("num_cross_layers: {int: [4]}\n", "should be [low, high]"),
    ("batch_size: 4096\n", "should be a list"),
    ("{}\n", "names no setting"),
])
def test_a_bad_space_file_names_the_setting_and_the_fix(tmp_path, text,
                                                        named):
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_space(path, "gdcn")
    assert f"--space {path}" in str(e.value) and named in str(e.value)


def test_text_settings_take_text_only(tmp_path):
    with pytest.raises(ConfigError, match="1 is not one of the text"):
        load_space(_file(tmp_path, "kd_loss: [bce, 1]\n"), "dsmlp")


def test_edges_are_reported_where_the_optimum_may_lie_beyond():
    dims = {"embedding_l2": Choice((0.0, 1e-4, 0.1)),
            "learning_rate": LogUniform(1e-4, 1e-2),
            "dropout": Uniform(0.0, 0.5, 0.05),
            "mlp_depth": IntRange(1, 4),
            "kd_loss": Choice(("bce", "kl")),
            "embedding_dim": Choice((8, 10, 16))}
    # Tops: the L2 grid's 0.1; 9.9e-3 is within the log range's outer 5%.
    best = {"embedding_l2": 0.1, "learning_rate": 9.9e-3, "dropout": 0.5,
            "mlp_depth": 4, "kd_loss": "kl", "embedding_dim": 10}
    warned = at_edges(dims, best)
    assert [w.split(" (")[0] for w in warned] == [
        "the best trial's embedding_l2", "the best trial's learning_rate",
        "the best trial's dropout", "the best trial's mlp_depth"]
    assert "top of its searched range (one of 0.0, 0.0001, 0.1)" in warned[0]
    # Bottoms at the end of the scale (no L2, no dropout, one layer) and
    # inner values are not reported; a bottom above it is.
    assert at_edges(dims, {"embedding_l2": 0.0, "learning_rate": 1e-3,
                           "dropout": 0.0, "mlp_depth": 1,
                           "embedding_dim": 10}) == []
    low = at_edges(dims, {"learning_rate": 1.1e-4, "embedding_dim": 8})
    assert len(low) == 2 and all("bottom" in w for w in low)


def test_study_records_its_space_and_warns_at_an_edge(tiny_dataset_dir,
                                                      tmp_path):
    data = without_test_split(tiny_dataset_dir, str(tmp_path / "data"))
    out = str(tmp_path / "study")
    path = _file(tmp_path, "learning_rate: [0.001, 0.01]\n"
                           "embedding_l2: [0.0]\n"
                           "dropout: {uniform: [0.1, 0.2], step: 0.1}\n"
                           "num_cross_layers: {int: [2, 2]}\n")
    result = run_study(data, "gdcn", out, trials=1, preset="synthetic",
                       overrides=TINY_TUNE, pruner="none",
                       space=load_space(path, "gdcn"), log=None)
    # Two values: whichever the trial drew is an edge (0.001 is above 0).
    assert any("learning_rate" in w for w in result.edges)
    lines = describe(result)
    assert any(line.startswith("warning: the best trial's learning_rate")
               for line in lines)
    assert "Warning: the best trial's learning_rate" in read(result.trials_md)
    with pytest.raises(StudyError, match="space"):
        run_study(data, "gdcn", out, trials=2, preset="synthetic",
                  overrides=TINY_TUNE, pruner="none", log=None)


def test_records_rebuild_their_distribution():
    for dist in (Choice((1, 2)), LogUniform(1e-4, 1e-2),
                 Uniform(0.0, 0.5, 0.05), IntRange(1, 6)):
        record = to_dict(dist) | {"kind": type(dist).__name__}
        assert from_record(record) == dist


def test_cli_refuses_a_bad_space_before_any_trial(tiny_dataset_dir,
                                                  tmp_path, capsys):
    path = _file(tmp_path, "embeding_l2: [0.1]\n")
    out = str(tmp_path / "study")
    code = cli.main(["tune", "--data", tiny_dataset_dir, "--model", "gdcn",
                     "--space", path, "--out", out])
    assert code != 0
    assert "`embeding_l2` is not a setting" in capsys.readouterr().err
    assert not os.path.exists(out)


def test_the_optimizer_is_searched_only_when_given(tmp_path):
    space = load_space(_file(tmp_path, "optimizer: [adam, lazy_adam]\n"),
                       "gdcn")
    assert space.dimensions("gdcn")["optimizer"] == Choice(
        ("adam", "lazy_adam"))
    assert "optimizer" not in SearchSpace().dimensions("gdcn")
    with pytest.raises(ConfigError, match="`optimizer`: `optimizer` should "
                       "be one of"):
        load_space(_file(tmp_path, "optimizer: [adam, sgd]\n"), "gdcn")
    space = load_space(_file(tmp_path, "optimizer: [lazy_adam_lazy_l2, "
                             "lazy_adam]\n"), "gdcn")
    assert space.dimensions("gdcn")["optimizer"] == Choice(
        ("lazy_adam_lazy_l2", "lazy_adam"))


def test_a_trial_trains_the_optimizer_it_drew_with_its_l2_scope(
        tiny_dataset_dir, tmp_path):
    """End to end: a trial that draws LazyAdam trains with it and with
    the batch-scope L2 (the synthetic preset's base: Adam, whole table,
    embedding L2 > 0, which LazyAdam alone would refuse)."""
    import yaml

    data = without_test_split(tiny_dataset_dir, str(tmp_path / "data"))
    out = str(tmp_path / "study")
    path = _file(tmp_path, "optimizer: [lazy_adam]\nembedding_l2: [0.01]\n")
    space = load_space(path, "gdcn")
    result = run_study(data, "gdcn", out, trials=1, preset="synthetic",
                       overrides=[*TINY_TUNE, "train.learning_rate=1e-3",
                                  "params.dropout=0.1",
                                  "params.num_cross_layers=2"],
                       pruner="none", space=space, log=None)
    assert result.finished == 1
    ran = yaml.safe_load(read(out, "trials", "0", "config.yaml"))["teacher"]
    assert ran["train"]["optimizer"] == "lazy_adam"
    assert ran["params"]["embedding_l2_scope"] == "batch"
    best = read(result.best_yaml)
    assert "optimizer: lazy_adam" in best
    assert "embedding_l2_scope: batch" in best
