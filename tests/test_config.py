"""Strict typed config loading: unknown keys, types, overrides, YAML files."""

from __future__ import annotations

import dataclasses

from tfdsmlp.config import (
    ConfigError,
    deep_merge,
    dump_yaml,
    from_dict,
    load_config,
    load_yaml,
    merge_overrides,
    parse_override,
    to_dict,
)
from tfdsmlp.training.train_config import TrainConfig

import pytest


@dataclasses.dataclass(frozen=True)
class Inner:
    units: tuple[int, ...] = (4, 4)
    rate: float = 0.5
    name: str = "mlp"
    enabled: bool = True
    tag: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rate < 1:
            raise ValueError(f"`rate` should be in [0, 1). "
                             f"Received: `rate={self.rate}`")


@dataclasses.dataclass(frozen=True)
class Outer:
    inner: Inner = dataclasses.field(default_factory=Inner)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    steps: int = 1
    extra: dict = dataclasses.field(default_factory=dict)


def test_defaults_and_nested_values():
    cfg = from_dict(Outer, {"inner": {"units": [8, 16], "rate": 0},
                            "steps": 3})
    assert cfg.inner == Inner(units=(8, 16), rate=0.0)
    assert isinstance(cfg.inner.units, tuple)
    assert isinstance(cfg.inner.rate, float)
    assert cfg.steps == 3
    assert cfg.train == TrainConfig()


def test_unknown_top_level_key_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        from_dict(Outer, {"stpes": 3})
    msg = str(e.value)
    assert "stpes" in msg
    for key in ("inner", "train", "steps", "extra"):
        assert key in msg


def test_unknown_nested_key_names_path_and_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        from_dict(Outer, {"train": {"learning_rte": 0.1}})
    msg = str(e.value)
    assert "train.learning_rte" in msg
    assert "TrainConfig" in msg
    for field in dataclasses.fields(TrainConfig):
        assert field.name in msg


@pytest.mark.parametrize("data, where, received", [
    ({"steps": "3"}, "steps", "'3'"),
    ({"steps": 2.5}, "steps", "2.5"),
    ({"steps": True}, "steps", "True"),
    ({"inner": {"rate": "high"}}, "inner.rate", "'high'"),
    ({"inner": {"rate": False}}, "inner.rate", "False"),
    ({"inner": {"enabled": "yes please"}}, "inner.enabled", "'yes please'"),
    ({"inner": {"name": 3}}, "inner.name", "3"),
    ({"inner": {"units": 4}}, "inner.units", "4"),
    ({"inner": {"units": [4, "x"]}}, "inner.units[1]", "'x'"),
    ({"inner": [1, 2]}, "inner", "[1, 2]"),
    ({"extra": [1]}, "extra", "[1]"),
])
def test_type_errors_name_field_and_value(data, where, received):
    with pytest.raises(ConfigError) as e:
        from_dict(Outer, data)
    msg = str(e.value)
    assert f"`{where}`" in msg
    assert received in msg


def test_optional_field_accepts_none_and_its_type():
    assert from_dict(Inner, {"tag": None}).tag is None
    assert from_dict(Inner, {"tag": "a"}).tag == "a"
    with pytest.raises(ConfigError, match="tag"):
        from_dict(Inner, {"tag": 1})


def test_value_errors_become_config_errors_with_location():
    with pytest.raises(ConfigError, match=r"inner.*`rate=1.5`"):
        from_dict(Outer, {"inner": {"rate": 1.5}})
    with pytest.raises(ConfigError, match="`batch_size=0`"):
        from_dict(TrainConfig, {"batch_size": 0})
    with pytest.raises(ConfigError, match="lr_decay"):
        from_dict(TrainConfig, {"lr_decay": 1.5})


def test_parse_override_reads_yaml_values():
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=0.5") == (["a"], 0.5)
    assert parse_override("a=x=y") == (["a"], "x=y")
    assert parse_override("a={b: 1}") == (["a"], {"b": 1})
    assert parse_override(" a.b = null") == (["a", "b"], None)
    for bad in ("no_equals_sign", "=3"):
        with pytest.raises(ConfigError):
            parse_override(bad)


def test_overrides_apply_to_nested_sections():
    cfg = load_config(Outer, overrides=[
        "inner.units=[32, 16, 8]", "inner.enabled=false",
        "train.learning_rate=0.0005", "train.batch_size=64", "steps=7",
        "extra.anything=1"])
    assert cfg.inner.units == (32, 16, 8)
    assert cfg.inner.enabled is False
    assert cfg.train.learning_rate == 0.0005
    assert cfg.train.batch_size == 64
    assert cfg.steps == 7
    assert cfg.extra == {"anything": 1}


def test_override_scientific_notation_float():
    # PyYAML reads `1e-3` (no dot) as a string; float fields accept it.
    cfg = load_config(TrainConfig, overrides=["learning_rate=1e-3",
                                              "min_lr=-2E-7", "clipnorm=5"])
    assert cfg.learning_rate == 1e-3
    assert cfg.min_lr == -2e-7
    assert cfg.clipnorm == 5.0 and isinstance(cfg.clipnorm, float)
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config(TrainConfig, overrides=["learning_rate=fast"])
    with pytest.raises(ConfigError, match="batch_size"):
        load_config(TrainConfig, overrides=["batch_size=1e3"])


def test_unknown_override_key_is_an_error():
    with pytest.raises(ConfigError, match=r"train\.bacth_size"):
        load_config(Outer, overrides=["train.bacth_size=3"])


def test_override_into_non_section_is_an_error():
    with pytest.raises(ConfigError, match="steps"):
        merge_overrides({"steps": 1}, ["steps.x=2"])


def test_merge_overrides_does_not_mutate_input():
    data = {"a": {"b": 1}}
    out = merge_overrides(data, ["a.b=2", "c.d=3"])
    assert data == {"a": {"b": 1}}
    assert out == {"a": {"b": 2}, "c": {"d": 3}}


def test_deep_merge():
    a = {"x": {"y": 1, "z": 2}, "w": 0}
    assert deep_merge(a, {"x": {"y": 5}, "v": 1}) == {
        "x": {"y": 5, "z": 2}, "w": 0, "v": 1}
    assert a == {"x": {"y": 1, "z": 2}, "w": 0}


def test_load_order_defaults_base_file_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 2\ntrain:\n  epochs: 5\n  batch_size: 8\n")
    cfg = load_config(Outer, str(path), overrides=["train.epochs=9"],
                      base={"steps": 1, "train": {"seed": 3}})
    assert (cfg.steps, cfg.train.epochs, cfg.train.batch_size,
            cfg.train.seed) == (2, 9, 8, 3)


def test_yaml_file_unknown_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  unitz: [1]\n")
    with pytest.raises(ConfigError, match=r"inner\.unitz.*Valid keys"):
        load_config(Outer, str(path))


def test_yaml_top_level_must_be_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(str(path))


def test_dump_load_round_trip(tmp_path):
    cfg = from_dict(Outer, {"inner": {"units": [3, 2], "rate": 0.25,
                                      "tag": "t"},
                            "train": {"learning_rate": 1e-4, "epochs": 2},
                            "steps": 4, "extra": {"k": [1, 2]}})
    path = tmp_path / "cfg.yaml"
    dump_yaml(cfg, str(path))
    assert load_config(Outer, str(path)) == cfg
    assert load_yaml(str(path)) == to_dict(cfg)
    assert to_dict(cfg)["inner"]["units"] == [3, 2]


def test_configs_are_frozen():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3  # type: ignore[misc]


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "nan"])
def test_non_finite_numbers_are_refused(value):
    from tfdsmlp.training.presets import build_run_config

    with pytest.raises(ConfigError, match="number"):
        build_run_config(None, "dnn",
                         overrides=[f"teacher.train.learning_rate={value}"])
