"""Typed model configs: each setting and default written once.

A model takes its frozen config dataclass; its constructor repeats no
default, every config field is a read-only model attribute, `get_config`
echoes the config (plain, YAML-safe) and `from_config` rebuilds it. The MLP
settings are one type, `MLPConfig`, that the model configs reuse.
"""

from __future__ import annotations

import dataclasses
import inspect
import json

import tfdsmlp  # noqa: F401  (Keras 2; conftest imports it before TF)
from tfdsmlp.config import ConfigError, from_dict
from tfdsmlp.models import (
    GDCN,
    MODELS,
    AutoIntConfig,
    DCNv2,
    DCNv2Config,
    DNNConfig,
    DualStreamMLP,
    DualStreamMLPConfig,
    FinalMLPConfig,
    GDCNConfig,
    MLPConfig,
    ModelConfig,
    XDeepFMConfig,
    build_model,
    model_config,
)
from tfdsmlp.models.config import MLP_FIELDS

import pytest
import yaml

SINGLE_MLP = {"dnn", "deepfm", "dcnv2", "gdcn", "xdeepfm", "autoint"}
# The vocabularies of `tiny_spec`, for models built directly.
VOCAB = [5, 7, 4]


def small(name: str) -> dict:
    """Tiny settings for model `name` (flat keys, as in YAML)."""
    if name == "finalmlp":
        return {"embedding_dim": 2, "mlp1_hidden_units": [4],
                "mlp2_hidden_units": [2], "fs_hidden_units": [4],
                "num_heads": 2}
    if name == "dsmlp":
        return {"embedding_dim": 2, "main_hidden_units": [4],
                "parallel_hidden_units": [2]}
    extra = {"autoint": {"attention_layers": 1, "num_heads": 1,
                         "attention_dim": 2},
             "xdeepfm": {"cin_layer_sizes": [2]},
             "dcnv2": {"num_cross_layers": 1},
             "gdcn": {"num_cross_layers": 1}}.get(name, {})
    return {"embedding_dim": 2, "hidden_units": [4], **extra}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_constructor_repeats_no_setting(name):
    cls = MODELS[name]
    params = list(inspect.signature(cls.__init__).parameters)
    assert params == ["self", "vocab_sizes", "num_numeric", "config",
                      "kwargs"], params
    assert inspect.signature(cls.__init__).parameters["config"].default \
        is None


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_config_means_the_config_defaults(name):
    cls = MODELS[name]
    model = cls(VOCAB, 2)
    assert model.config == cls.config_class()
    assert type(model.config) is cls.config_class


@pytest.mark.parametrize("name", sorted(MODELS))
def test_config_fields_are_read_only_model_attributes(name, tiny_spec):
    model = build_model(name, small(name), tiny_spec)
    for field in dataclasses.fields(model.config):
        assert getattr(model, field.name) == getattr(model.config,
                                                     field.name)
        with pytest.raises(AttributeError):
            setattr(model, field.name, getattr(model.config, field.name))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_get_config_is_the_config_plus_the_dataset_shape(name, tiny_spec):
    model = MODELS[name].from_feature_spec(model_config(name, small(name)),
                                           tiny_spec, name="m")
    config = model.get_config()
    fields = {f.name for f in dataclasses.fields(model.config)}
    assert set(config) == fields | {"vocab_sizes", "num_numeric", "name"}
    assert config["vocab_sizes"] == VOCAB and config["num_numeric"] == 2
    assert config["name"] == "m"
    # plain Python: JSON and safe YAML both take it unchanged
    assert json.loads(json.dumps(config)) == config
    assert yaml.safe_load(yaml.safe_dump(config)) == config
    again = type(model).from_config(config)
    assert again.config == model.config and again.name == "m"
    assert again.get_config() == config


def test_from_config_rejects_unknown_keys():
    config = DualStreamMLP(VOCAB).get_config()
    with pytest.raises(ConfigError, match="use_mian.*use_main"):
        DualStreamMLP.from_config({**config, "use_mian": False})


def test_constructor_takes_only_its_config_class():
    with pytest.raises(TypeError, match="GDCNConfig"):
        GDCN(VOCAB, config=DCNv2Config())
    # a subclass config is a valid config of the parent model
    model = DCNv2(VOCAB, config=GDCNConfig(num_cross_layers=1))
    assert model.cross_type == "gated"


@pytest.mark.parametrize("name", sorted(SINGLE_MLP))
def test_single_mlp_configs_reuse_mlp_config(name):
    cls = MODELS[name].config_class
    assert issubclass(cls, MLPConfig) and issubclass(cls, ModelConfig)
    # the four MLP settings are declared once, in MLPConfig (a model may
    # only override a default, e.g. DCNv2's dropout 0.4)
    own = set(inspect.get_annotations(cls))
    assert not own & {"hidden_units", "activation", "batch_norm"}
    config = model_config(name, {"hidden_units": [8, 4], "dropout": 0.3,
                                 "batch_norm": False})
    assert config.mlp == MLPConfig(hidden_units=(8, 4), activation="relu",
                                   dropout=0.3, batch_norm=False)
    assert type(config.mlp) is MLPConfig


def test_model_specific_mlp_defaults():
    assert DNNConfig().mlp == MLPConfig()
    assert DCNv2Config().dropout == 0.4 and GDCNConfig().dropout == 0.4
    assert AutoIntConfig().dropout == 0.1
    assert XDeepFMConfig().mlp == MLPConfig()
    assert DualStreamMLPConfig().parallel_mlp == MLPConfig()
    assert DualStreamMLPConfig().main_mlp == MLPConfig(
        hidden_units=(600, 600, 600))
    fm = FinalMLPConfig()
    assert fm.mlp1 == MLPConfig(hidden_units=(400,), dropout=0.4)
    assert fm.mlp2 == MLPConfig(hidden_units=(100,), dropout=0.4)


@pytest.mark.parametrize("values, shown", [
    ({"dropout": 1.0}, "`dropout` should be in [0, 1)"),
    ({"dropout": -0.1}, "`dropout` should be in [0, 1)"),
    ({"hidden_units": (4, 0)}, ("`hidden_units` should be a list of "
                               "positive integers")),
    ({"hidden_units": (4.5,)}, "hidden_units=(4.5,)"),
])
def test_mlp_config_checks(values, shown):
    with pytest.raises(ValueError) as e:
        MLPConfig(**values)
    assert shown in str(e.value)


@pytest.mark.parametrize("name, params, key", [
    ("dnn", {"hidden_units": [8, -1]}, "hidden_units"),
    ("autoint", {"dropout": 1.0}, "dropout"),
    ("finalmlp", {"mlp1_dropout": 1.0}, "mlp1_dropout"),
    ("finalmlp", {"mlp2_hidden_units": [0]}, "mlp2_hidden_units"),
    ("finalmlp", {"fs_hidden_units": [0]}, "fs_hidden_units"),
    ("dsmlp", {"main_hidden_units": [0]}, "main_hidden_units"),
    ("dsmlp", {"parallel_hidden_units": [-4]}, "parallel_hidden_units"),
    ("dsmlp", {"dropout": 1.5}, "dropout"),
    ("xdeepfm", {"cin_layer_sizes": [0]}, "cin_layer_sizes"),
])
def test_mlp_checks_name_the_models_own_key(name, params, key):
    with pytest.raises(ConfigError, match=f"`{key}` should"):
        model_config(name, params)


def test_dsmlp_needs_a_stream_checked_once_in_the_config():
    with pytest.raises(ValueError, match="use_main"):
        DualStreamMLPConfig(use_main=False, use_parallel=False)
    both = DualStreamMLPConfig(main_hidden_units=(4,),
                               parallel_hidden_units=(2,), dropout=0.1,
                               batch_norm=False)
    assert both.main_mlp == MLPConfig((4,), "relu", 0.1, False)
    assert both.parallel_mlp == MLPConfig((2,), "relu", 0.1, False)


def test_from_fields_reads_prefixed_and_shared_keys():
    config = FinalMLPConfig(mlp1_hidden_units=(6,), mlp1_dropout=0.1,
                            mlp1_batch_norm=False, activation="tanh",
                            num_heads=2)
    assert MLPConfig.from_fields(config, "mlp1_", shared=["activation"]) \
        == MLPConfig((6,), "tanh", 0.1, False)
    assert config.mlp1 == MLPConfig((6,), "tanh", 0.1, False)
    assert set(MLP_FIELDS) == {f.name for f in dataclasses.fields(MLPConfig)}


def test_flat_yaml_keys_still_load():
    text = """
    hidden_units: [400, 400, 400]
    dropout: 0.2
    num_cross_layers: 3
    """
    config = from_dict(GDCNConfig, yaml.safe_load(text))
    assert config.hidden_units == (400, 400, 400) and config.dropout == 0.2
    assert dataclasses.asdict(config)["hidden_units"] == (400, 400, 400)
    dsmlp = model_config("dsmlp", {"main_hidden_units": [8],
                                   "parallel_hidden_units": [4],
                                   "dropout": 0.1})
    assert dsmlp.main_mlp.hidden_units == (8,)
    finalmlp = model_config("finalmlp", {"mlp1_hidden_units": [10],
                                         "mlp1_dropout": 0.2})
    assert finalmlp.mlp1 == MLPConfig((10,), "relu", 0.2, True)
