"""`tune --space FILE`: ranges that replace the search space's defaults,
and the check that says when the best trial sits on a range's edge.

The default ranges (`SearchSpace`, `DSMLPSpace`) were set before any
study on the user's data; on the 1M-row planted Criteo-shaped data the
GDCN study's best trial took the top of the embedding L2 grid (0.1), the
only trial that did not overfit (docs/RESULTS.md, "Tuned GDCN teacher on
planted Criteo-shaped data"), so the optimum may lie beyond it. A space
file moves such a range; every setting it does not name keeps its
default. A YAML mapping from setting names (docs/TUNING.md's tables) to
one of four forms:

    embedding_l2: [0.01, 0.03, 0.1, 0.3, 1.0]    # a list: one of these
    learning_rate: {log_uniform: [3.0e-4, 3.0e-3]}
    dropout: {uniform: [0.0, 0.3], step: 0.05}
    num_cross_layers: {int: [2, 4]}

The space is part of a study's setup (study.db), so a study resumed with
another space is refused, as with other settings.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tfdsmlp.config import ConfigError, load_yaml, to_dict
from tfdsmlp.training.train_config import TrainConfig
from tfdsmlp.tuning.space import (
    DSMLP_OPT_IN,
    OPTIMIZER_CHOICES,
    TEACHER_OPT_IN,
    Choice,
    Distribution,
    DSMLPSpace,
    IntRange,
    LogUniform,
    SearchSpace,
    Uniform,
    setting_keys,
)

# The forms a space file may use, and the class each makes.
FORMS: dict[str, type] = {"choice": Choice, "log_uniform": LogUniform,
                          "uniform": Uniform, "int": IntRange}
_CLASSES = {cls.__name__: cls for cls in FORMS.values()}


def load_space(path: str, model: str) -> SearchSpace | DSMLPSpace:
    """The default space of `model` ("dsmlp": `DSMLPSpace`, else
    `SearchSpace`) with the ranges of the YAML file `path` in place of
    their defaults. Raises `ConfigError` naming the file and the setting
    for an unknown setting, an unknown form or a bad range."""
    base = DSMLPSpace() if model == "dsmlp" else SearchSpace()
    data = load_yaml(path)
    if not data:
        raise ConfigError(f"--space {path}: the file names no setting; "
                          "give at least one range (docs/TUNING.md, "
                          "'Changing the space').")
    names = [f.name for f in dataclasses.fields(base)]
    changes = {}
    for name, value in data.items():
        if name not in names:
            raise ConfigError(
                f"--space {path}: `{name}` is not a setting of the "
                f"{'DS-MLP' if model == 'dsmlp' else 'teacher'} search. "
                f"Settings: {', '.join(names)}.")
        where = f"--space {path}: `{name}`"
        default = getattr(base, name)
        if default is None:  # an opt-in setting
            default = (DSMLP_OPT_IN if model == "dsmlp"
                       else TEACHER_OPT_IN)[name]
        changes[name] = _distribution(value, default, where)
        _check_train_values(name, changes[name], model, where)
    return dataclasses.replace(base, **changes)


def _check_train_values(name: str, dist: Distribution, model: str,
                        where: str) -> None:
    """Refuses, before any trial, a range that reaches a value the
    training settings do not take (a patience of 0, an lr_decay above 1):
    each bound or option of a setting that writes a `TrainConfig` field
    is checked by `TrainConfig` itself; `optimizer`'s values are names
    of `OPTIMIZER_CHOICES` (each an optimizer with its L2 scope)."""
    if name == "optimizer":
        for value in _values(dist):
            if value not in OPTIMIZER_CHOICES:
                raise ConfigError(
                    f"{where}: `optimizer` should be one of "
                    f"{list(OPTIMIZER_CHOICES)}. Received: {value!r}")
        return
    fields = {k.rsplit(".", 1)[1] for k in setting_keys(model, name)
              if ".train." in f".{k}"}
    for field in fields:
        for value in _values(dist):
            try:
                TrainConfig(**{field: value})
            except ValueError as e:
                raise ConfigError(f"{where}: {e}") from None


def _distribution(value: Any, default: Distribution, where: str
                  ) -> Distribution:
    """The distribution that `value` (a list or a one-form mapping) names;
    its values must be of the default's kind (integers where the default
    draws integers, text where it draws text)."""
    if isinstance(value, list):
        value = {"choice": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: should be a list (one of these "
                          "values) or a mapping with one of "
                          f"{', '.join(FORMS)}. Received: {value!r}")
    forms = [k for k in value if k in FORMS]
    extra = sorted(set(value) - set(FORMS) - {"step"})
    if len(forms) != 1 or extra:
        raise ConfigError(f"{where}: should name exactly one of "
                          f"{', '.join(FORMS)} (and `step` with uniform). "
                          f"Received keys: {', '.join(map(str, value))}")
    form = forms[0]
    if ("step" in value) != (form == "uniform"):
        raise ConfigError(f"{where}: `step` goes with `uniform` only, and "
                          "`uniform` needs it (the grid of its values).")
    bounds = value[form]
    if form == "choice":
        if not isinstance(bounds, list) or not bounds:
            raise ConfigError(f"{where}: `choice` should be a non-empty "
                              f"list. Received: {bounds!r}")
        values = list(bounds)
    else:
        if not (isinstance(bounds, list) and len(bounds) == 2):
            raise ConfigError(f"{where}: `{form}` should be [low, high]. "
                              f"Received: {bounds!r}")
        values = list(bounds) + ([value["step"]] if form == "uniform"
                                 else [])
    _check_kind(values, default, where)
    try:
        if form == "choice":
            return Choice(tuple(values))
        return FORMS[form](*values)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None


def _check_kind(values: list, default: Distribution, where: str) -> None:
    kinds = {_kind(v) for v in _values(default)}
    want = "text" if "text" in kinds else ("integers" if kinds == {"int"}
                                           else "numbers")
    for v in values:
        k = _kind(v)
        ok = (k == "text" if want == "text" else
              k == "int" if want == "integers" else k in ("int", "float"))
        if not ok:
            raise ConfigError(f"{where}: {v!r} is not one of the {want} "
                              "this setting takes (its default range: "
                              f"{describe_range(default)}).")


def _kind(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return "other"
    return "int" if isinstance(v, int) else (
        "float" if isinstance(v, float) else "text")


def _values(dist: Distribution) -> list:
    if isinstance(dist, Choice):
        return list(dist.options)
    return [dist.low, dist.high]


def describe_range(dist: Distribution) -> str:
    if isinstance(dist, Choice):
        return "one of " + ", ".join(map(str, dist.options))
    return f"{dist.low} .. {dist.high}"


def to_record(dist: Distribution) -> dict[str, Any]:
    """A distribution's record in a study's setup: `to_dict` of it plus
    "kind", its class name (`from_record` reads it back)."""
    return to_dict(dist) | {"kind": type(dist).__name__}


def from_record(record: dict[str, Any]) -> Distribution:
    """A distribution from its record in a study's setup (`to_record`)."""
    fields = {k: tuple(v) if isinstance(v, list) else v
              for k, v in record.items() if k != "kind"}
    return _CLASSES[record["kind"]](**fields)


def at_edges(dims: dict[str, Distribution], params: dict[str, Any]
             ) -> list[str]:
    """Warnings for the settings of `params` (the best trial's) that sit on
    the top or bottom of their numeric range in `dims`, where the optimum
    may lie beyond. A bottom of 0 (no dropout, no L2, no KD) or of one
    layer is the end of the scale and not reported; nor are unordered
    choices (text) or ranges of one value."""
    out = []
    for name, dist in dims.items():
        value = params.get(name)
        numbers = [v for v in _values(dist) if _kind(v) in ("int", "float")]
        if value is None or len(numbers) != len(_values(dist)):
            continue
        low, high = min(numbers), max(numbers)
        if low == high:
            continue
        if isinstance(dist, LogUniform):
            near = math.log(high / low) * 0.05  # the outer 5% of the range
            top = math.log(high / value) <= near
            bottom = math.log(value / low) <= near
        elif isinstance(dist, Uniform):
            top, bottom = value >= high - dist.step / 2, value <= low + dist.step / 2
        else:
            top, bottom = value == high, value == low
        floor = 1 if isinstance(dist, IntRange) else 0
        if bottom and low <= floor:
            bottom = False
        if top or bottom:
            out.append(
                f"the best trial's {name} ({value:g}) is the "
                f"{'top' if top else 'bottom'} of its searched range "
                f"({describe_range(dist)}): the best value may lie beyond "
                "it; widen the range with --space FILE (docs/TUNING.md, "
                "'Changing the space').")
    return out
