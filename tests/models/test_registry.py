"""Model registry: names, strict params, bad values, and the shipped presets."""

from __future__ import annotations

import dataclasses
import os

import tfdsmlp
from tfdsmlp.config import ConfigError, dump_yaml, load_yaml
from tfdsmlp.models import (
    DNN,
    MODELS,
    AutoInt,
    DCNv2Config,
    build_model,
    model_class,
    model_config,
)
from tfdsmlp.training.fit import make_optimizer
from tfdsmlp.training.presets import build_run_config
from tfdsmlp.training.teacher import TeacherConfig, preset, teacher_config

import pytest
import yaml

CONFIG_DIR = os.path.join(os.path.dirname(tfdsmlp.__file__), "configs")


def test_unknown_model_lists_valid_names(tiny_spec):
    with pytest.raises(ConfigError) as e:
        build_model("dcn_v3", {}, tiny_spec)
    msg = str(e.value)
    assert "'dcn_v3'" in msg
    for name in MODELS:
        assert name in msg


def test_model_name_spellings():
    assert model_class("AutoInt+") is AutoInt
    assert model_class("DNN") is DNN
    assert model_class("dcn-v2") is model_class("DCNv2")


def test_unknown_param_lists_valid_keys(tiny_spec):
    with pytest.raises(ConfigError) as e:
        build_model("dcnv2", {"crossing_layers": 3}, tiny_spec)
    msg = str(e.value)
    assert "crossing_layers" in msg
    for field in dataclasses.fields(DCNv2Config):
        assert field.name in msg


@pytest.mark.parametrize("name, params, field, shown", [
    ("dnn", {"dropout": 1.5}, "dropout", "1.5"),
    ("dcnv2", {"dropout": -0.1}, "dropout", "-0.1"),
    ("dcnv2", {"structure": "foo"}, "structure", "'foo'"),
    ("gdcn", {"structure": "foo"}, "structure", "'foo'"),
    ("dcnv2", {"cross_type": "foo"}, "cross_type", "'foo'"),
    ("dcnv2", {"num_cross_layers": 0}, "num_cross_layers", "0"),
    ("autoint", {"attention_dropout": 1.0}, "attention_dropout", "1.0"),
    ("xdeepfm", {"cin_layer_sizes": []}, "cin_layer_sizes", "()"),
    ("finalmlp", {"mlp1_dropout": 2}, "mlp1_dropout", "2"),
    ("deepfm", {"embedding_dim": 0}, "embedding_dim", "0"),
    ("deepfm", {"embedding_l2": -1}, "embedding_l2", "-1"),
    ("dnn", {"hidden_units": "wide"}, "hidden_units", "'wide'"),
    ("dnn", {"batch_norm": "yes"}, "batch_norm", "'yes'"),
])
def test_bad_values_name_field_and_value(tiny_spec, name, params, field,
                                         shown):
    with pytest.raises(ConfigError) as e:
        build_model(name, params, tiny_spec)
    msg = str(e.value)
    assert field in msg and shown in msg, msg


def test_typed_config_and_mapping_build_the_same(tiny_spec):
    cfg = model_config("dnn", {"hidden_units": [8], "embedding_dim": 2})
    a = build_model("dnn", cfg, tiny_spec)
    b = build_model("dnn", {"hidden_units": [8], "embedding_dim": 2},
                    tiny_spec)
    assert a.get_config() | {"name": ""} == b.get_config() | {"name": ""}
    assert a.vocab_sizes == [5, 7, 4] and a.num_numeric == 2
    with pytest.raises(TypeError, match="DNNConfig"):
        build_model("dnn", DCNv2Config(), tiny_spec)


def test_teacher_config_rejects_unknown_params():
    with pytest.raises(ConfigError, match=r"dnn\.foo.*hidden_units"):
        teacher_config({"model": "dnn", "params": {"foo": 1}})


def _preset_cases():
    cases = []
    for fname in sorted(os.listdir(CONFIG_DIR)):
        if fname.endswith(".yaml"):
            with open(os.path.join(CONFIG_DIR, fname)) as f:
                models = (yaml.safe_load(f) or {}).get("models") or {}
            cases += [(fname[:-5], m) for m in models]
    return cases


PRESET_CASES = _preset_cases()


def test_presets_exist():
    datasets = {d for d, _ in PRESET_CASES}
    assert {"frappe", "criteo", "avazu", "movielens",
            "synthetic"} <= datasets
    assert len([m for d, m in PRESET_CASES if d == "frappe"]) >= 7


@pytest.mark.parametrize("dataset, model", PRESET_CASES)
def test_preset_builds(tiny_spec, dataset, model):
    # tiny_spec has fields user/item/ctx: frappe's FinalMLP contexts.
    cfg = teacher_config(preset(dataset, model))
    assert cfg.model == model
    net = build_model(cfg.model, cfg.params, tiny_spec)
    x = net.dummy_inputs(2)
    assert net(x, training=False).shape == (2, 1)
    # Its optimizer takes its embedding L2 scope (a sparse optimizer
    # refuses a whole-table L2, Adam the lazy scope): no compile-time
    # failure.
    make_optimizer(cfg.train, net)


@pytest.mark.parametrize("dataset", sorted({d for d, m in PRESET_CASES
                                            if m == "dsmlp"}))
def test_preset_stages_optimizer_fits_the_student(tiny_spec, dataset):
    """As `test_preset_builds` for the "dsmlp" entry as `run`'s student,
    with each stage's own optimizer."""
    teacher = next(m for d, m in PRESET_CASES
                   if d == dataset and m != "dsmlp")
    rc = build_run_config(dataset, teacher)
    student = build_model("dsmlp", rc.student.params, tiny_spec)
    for stage in (rc.distill, rc.align):
        make_optimizer(stage.train, student)


@pytest.mark.parametrize("dataset", sorted({d for d, _ in PRESET_CASES}))
def test_every_preset_states_its_early_stopping_monitor(dataset):
    # BARS-derived presets watch AUC; the others AUC - log loss (issue 19).
    with open(os.path.join(CONFIG_DIR, f"{dataset}.yaml")) as f:
        monitor = yaml.safe_load(f)["train"]["monitor"]
    assert monitor == ("auc" if dataset in ("frappe", "movielens",
                                            "synthetic") else "auc_logloss")


def test_preset_errors():
    with pytest.raises(ConfigError, match="Valid presets"):
        preset("no_such_dataset", "dnn")
    with pytest.raises(ConfigError, match="Models in it"):
        preset("frappe", "no_such_model")


def test_frappe_preset_values():
    cfg = teacher_config(preset("frappe", "finalmlp"))
    assert cfg.params["fs1_context"] == ("user",)
    assert cfg.params["fs2_context"] == ("item",)
    assert cfg.params["embedding_l2"] == 0.05
    assert cfg.train.batch_size == 4096 and cfg.train.patience == 2


def test_resolved_teacher_config_round_trips_through_yaml(tmp_path):
    cfg = teacher_config(preset("frappe", "autoint"))
    path = str(tmp_path / "config.yaml")
    dump_yaml(cfg, path)
    again = teacher_config(load_yaml(path))
    assert again == cfg
    assert isinstance(again, TeacherConfig)


def test_criteo_preset_catch_up_adam_in_every_phase():
    """Sessions 26-27 (docs/SCALE.md, section 8): the teachers and both
    DS-MLP stages CatchUpAdam with the lazy whole-table L2."""
    for model in ("gdcn", "dcnv2", "finalmlp", "dnn"):
        cfg = teacher_config(preset("criteo", model))
        assert cfg.train.optimizer == "catch_up_adam"
        assert cfg.params["embedding_l2_scope"] == "lazy"
    rc = build_run_config("criteo", "gdcn")
    assert rc.teacher.train.optimizer == "catch_up_adam"
    assert rc.distill.train.optimizer == "catch_up_adam"
    assert rc.align.train.optimizer == "catch_up_adam"
    assert rc.student.params["embedding_l2_scope"] == "lazy"
