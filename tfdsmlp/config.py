"""Typed, frozen configuration with strict YAML and `--set key=value` loading.

Configs are nested frozen dataclasses (as in TF Model Garden). Loading from a
mapping rejects unknown keys and lists the valid ones, so a misspelt key such
as `crossing_layers` fails loudly instead of being silently ignored.

Example:

    cfg = load_config(ExperimentConfig, "frappe.yaml",
                      overrides=["teacher.train.learning_rate=0.0005"])
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

# YAML 1.1 (PyYAML) reads `1e-3` (no dot) as a string; accept such numbers
# for float fields, so `--set train.learning_rate=1e-3` works.
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(ValueError):
    """A configuration value or key is invalid."""


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Converts a YAML value to the annotated type `tp`, checking it."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError("; ".join(errors))
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(
                f"`{where}` should be a mapping for {tp.__name__}. "
                f"Received: {value!r}")
        return from_dict(tp, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"`{where}` should be a list. Received: {value!r}")
        item_tp = args[0] if args else Any
        return tuple(_convert(v, item_tp, f"{where}[{i}]")
                     for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(
                f"`{where}` should be a mapping. Received: {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(
                f"`{where}` should be a number. Received: {value!r}")
        if not math.isfinite(value):
            # NaN passes every `<= 0` check after it and trains NaN weights.
            raise ConfigError(
                f"`{where}` should be a finite number. Received: {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                f"`{where}` should be an integer. Received: {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(
                f"`{where}` should be true or false. Received: {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(
                f"`{where}` should be a string. Received: {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Builds dataclass `cls` from `data`; unknown keys are errors."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"Unknown config key(s) {[prefix + k for k in unknown]} for "
            f"{cls.__name__}. Valid keys: {names}")
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        kwargs[key] = _convert(value, hints[key], path)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from e


def to_dict(cfg: Any) -> Any:
    """Plain-Python (YAML-safe) form of a config."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name))
                for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parses `a.b.c=value` (value in YAML syntax)."""
    if "=" not in text:
        raise ConfigError(
            f"Override should look like key.path=value. Received: {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"Override has an empty key: {text!r}")
    return key.split("."), yaml.safe_load(raw)


def merge_overrides(data: dict[str, Any], overrides: list[str]) -> dict:
    """Applies `key.path=value` overrides to a nested dict (copy)."""
    import copy

    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"Override {text!r}: `{part}` is not a section.")
            node = child
        node[path[-1]] = value
    return data


def load_yaml(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level should be a mapping. "
                          f"Received: {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | None = None,
                overrides: list[str] | tuple[str, ...] = (),
                base: dict[str, Any] | None = None) -> T:
    """Loads `cls` from defaults <- `base` <- YAML file <- overrides."""
    data: dict[str, Any] = dict(base or {})
    if path:
        data = deep_merge(data, load_yaml(path))
    data = merge_overrides(data, list(overrides))
    return from_dict(cls, data)


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def dump_yaml(cfg: Any, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(cfg), f, sort_keys=False)
