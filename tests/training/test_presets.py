"""Preset files: `train:`, `models:` (with a model's own `train:`), and the
stages' `distill:` / `align:` sections (issue 19: the avazu preset carries
the tuned student's recipe)."""

from tfdsmlp.config import ConfigError
from tfdsmlp.training.presets import build_run_config, model_preset

import pytest


def _preset(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return str(path)


def test_stage_sections_merge_over_the_top_level_train(tmp_path):
    path = _preset(tmp_path, (
        "train: {epochs: 3, batch_size: 64, learning_rate: 0.01}\n"
        "models:\n"
        "  dnn: {dropout: 0.3, train: {batch_size: 32}}\n"
        "  dcnv2: {}\n"
        "distill: {kd_weight: 0.5, train: {learning_rate: 0.002}}\n"
        "align: {alpha: 0.25}\n"))
    cfg = build_run_config(path, "dnn")
    assert cfg.teacher.params["dropout"] == 0.3
    # the model's own train: over the top-level one, for that model only
    assert (cfg.teacher.train.batch_size, cfg.teacher.train.epochs) == (32, 3)
    assert build_run_config(path, "dcnv2").teacher.train.batch_size == 64
    assert model_preset(path, "dnn")["train"]["batch_size"] == 32
    assert "train" not in model_preset(path, "dnn")["params"]
    # each stage: its own settings, its train: over the top-level one
    assert cfg.distill.kd_weight == 0.5
    assert cfg.distill.train.learning_rate == 0.002
    assert (cfg.distill.train.batch_size, cfg.distill.train.epochs) == (64, 3)
    assert cfg.align.alpha == 0.25 and cfg.align.train.learning_rate == 0.01


def test_teachers_section_is_under_every_teacher_but_not_the_student(
        tmp_path):
    path = _preset(tmp_path, (
        "train: {epochs: 3, batch_size: 64}\n"
        "teachers: {dropout: 0.3, embedding_l2: 0.001,\n"
        "           train: {batch_size: 32, epochs: 5}}\n"
        "models:\n"
        "  dnn: {dropout: 0.1, train: {epochs: 7}}\n"
        "  dcnv2: {}\n"
        "  dsmlp: {dropout: 0.2}\n"))
    dnn = build_run_config(path, "dnn")
    # a model's own entry wins over `teachers:`, which wins over `train:`
    assert dnn.teacher.params["dropout"] == 0.1
    assert dnn.teacher.params["embedding_l2"] == 0.001
    assert (dnn.teacher.train.batch_size, dnn.teacher.train.epochs) == (32, 7)
    dcn = build_run_config(path, "dcnv2")
    assert dcn.teacher.params["dropout"] == 0.3
    assert (dcn.teacher.train.batch_size, dcn.teacher.train.epochs) == (32, 5)
    assert "train" not in model_preset(path, "dcnv2")["params"]
    # the student and its stages take none of it
    assert dnn.student.params["dropout"] == 0.2
    assert "embedding_l2" not in model_preset(path, "dsmlp")["params"]
    assert dnn.distill.train.batch_size == dnn.align.train.batch_size == 64


@pytest.mark.parametrize("text, match", [
    ("distill: {kd_wieght: 1}\n", "kd_wieght"),
    ("align: {train: {learnin_rate: 1}}\n", "learnin_rate"),
    ("models: {dnn: {train: {bach_size: 8}}}\n", "bach_size"),
    ("distill: [1, 2]\n", "distill should be a mapping"),
    ("align: {train: 5}\n", "align.train should be a mapping"),
    ("models: {dnn: 3}\n", "models.dnn should be a mapping"),
    ("models: {dnn: {}, dsmlp: {train: {epochs: 1}}}\n",
     "distill.train and align.train"),
    ("stages: {}\n", "unknown preset key"),
    ("teachers: {train: {optimzer: adam}}\n", "optimzer"),
    ("teachers: {dropuot: 0.1}\n", "dropuot"),
    ("teachers: {train: 5}\n", "teachers.train should be a mapping"),
    ("teachers: [1]\n", "teachers should be a mapping"),
])
def test_a_bad_preset_key_is_named(tmp_path, text, match):
    path = _preset(tmp_path, "models: {dnn: {}}\n" + text
                   if "models" not in text else text)
    with pytest.raises(ConfigError, match=match):
        build_run_config(path, "dnn")


def test_student_takes_the_teachers_width_when_its_table_starts_there(
        tmp_path):
    path = _preset(tmp_path, (
        "models: {dnn: {embedding_dim: 12}, dcnv2: {}, dsmlp: {}}\n"
        "distill: {init_main_from_teacher: true}\n"))
    assert build_run_config(path, "dnn").student.params[
        "embedding_dim"] == 12
    assert build_run_config(path, "dcnv2").student.params[
        "embedding_dim"] == 10  # both at the model default
    cfg = build_run_config(path, "dnn",
                           overrides=["teacher.params.embedding_dim=6"])
    assert cfg.student.params["embedding_dim"] == 6
    trained = {"model": "dcnv2", "params": {"embedding_dim": 4}}
    cfg = build_run_config(path, "dnn", trained_teacher=trained)
    assert cfg.teacher.model == "dcnv2"
    assert cfg.student.params["embedding_dim"] == 4
    # a width the student names is kept (the run checks it before training)
    cfg = build_run_config(path, "dnn",
                           overrides=["student.params.embedding_dim=8"])
    assert cfg.student.params["embedding_dim"] == 8
    # without init_main_from_teacher the student keeps its own default
    cfg = build_run_config(
        path, "dnn", overrides=["distill.init_main_from_teacher=false"])
    assert cfg.student.params["embedding_dim"] == 10


def test_avazu_preset_is_the_tuned_recipe():
    """The settings of docs/RESULTS.md's batch-1024 probe (the GDCN study's
    best teacher, the DS-MLP study's best student, the main table from the
    teacher's, batch 1024 in both stages)."""
    cfg = build_run_config("avazu", "gdcn")
    teacher = cfg.teacher
    assert teacher.params["embedding_dim"] == 32
    assert teacher.params["embedding_l2"] == 0.001
    assert teacher.params["num_cross_layers"] == 6
    assert list(teacher.params["hidden_units"]) == [400, 400]
    assert teacher.params["dropout"] == 0.15
    assert (teacher.train.batch_size, teacher.train.learning_rate) == (
        1024, 0.000909)
    student = cfg.student.params
    assert student["embedding_dim"] == 32
    assert student["embedding_l2"] == 0.001
    assert list(student["main_hidden_units"]) == [800, 800]
    assert list(student["parallel_hidden_units"]) == [400, 400, 400]
    assert student["dropout"] == 0.05
    d, a = cfg.distill, cfg.align
    assert (d.kd_weight, d.kd_loss, d.temperature) == (1.1, "kl", 4.0)
    assert d.init_main_from_teacher
    assert (d.train.batch_size, d.train.learning_rate) == (1024, 0.00068)
    assert (a.alpha, a.beta) == (1.5, 0.1)
    assert (a.train.batch_size, a.train.learning_rate) == (1024, 0.00095)
    for train in (teacher.train, d.train, a.train):
        assert (train.patience, train.monitor) == (2, "auc_logloss")
    # another teacher keeps the preset's shared training settings, and
    # the student takes its width
    other = build_run_config("avazu", "dcnv2")
    assert other.teacher.train.batch_size == 4096
    assert other.student.params["embedding_dim"] == \
        other.teacher.params["embedding_dim"]
