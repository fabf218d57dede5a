"""`tune --warm-start STUDY`: a new study that starts from the finished
trials of an earlier one, e.g. after widening a range with `--space`.

When a study's best trial sits on the edge of a range (`space_file`), the
next step is a study over a wider space; starting it from scratch would
throw away trials that cost minutes to hours each (a GDCN trial on the 1M-row
planted data: 5 to 35 min here) and leave TPE sampling at random for its
first 10 trials again. Instead, the earlier study's complete and pruned
trials are added to the new one as history (Optuna's `Study.add_trial`,
with their validation AUCs and per-epoch values), so TPE and the pruner use
them from the first new trial on. A copied trial keeps its run directory
in the earlier study (best.yaml points there when it is the best) and
counts towards `--trials`. A trial whose settings fall outside the new
space is not copied, and the log says which and why.

Only the search may differ: the earlier study must have the same model,
base preset, `--set`, data and teacher, and search the same settings or
fewer (their ranges may differ: that is the point). A setting that the
new study searches and the earlier one did not (a DS-MLP study that turns
on the student's `embedding_dim` with `--space`) held the earlier study's
base value in every one of its trials, so its trials are copied with that
value (`base_values`), which must lie in the new range.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tfdsmlp.config import ConfigError
from tfdsmlp.models.config import ModelConfig
from tfdsmlp.run_dir import flatten
from tfdsmlp.tuning import report
from tfdsmlp.tuning.space import (
    WIDTH_DEPTH,
    Distribution,
    optimizer_choice,
    setting_keys,
)
from tfdsmlp.tuning.storage import (
    STUDY_NAME,
    StudyError,
    open_storage,
    setup_differences,
)

import optuna
from optuna.distributions import BaseDistribution

# Setup keys that may differ between a study and the one it starts from.
MAY_DIFFER = ("space", "seed", "pruner", "warm_start")

# Settings that write the width or the depth of a list of hidden units.
_WIDTHS = (*(width for width, _ in WIDTH_DEPTH), "parallel_width")
_DEPTHS = tuple(depth for _, depth in WIDTH_DEPTH)


def fits(dist: BaseDistribution, value: Any) -> bool:
    try:
        return dist._contains(dist.to_internal_repr(value))
    except (ValueError, TypeError):
        return False  # e.g. a value that is none of the choices


def _setting_key(model: str, name: str) -> str | None:
    """The key, in a study setup's `base`, that setting `name` writes."""
    keys = setting_keys(model, name)
    return keys[0] if keys else None


def base_values(setup: dict[str, Any], names: list[str]
                ) -> dict[str, Any]:
    """{name: value} of settings `names` in the base settings that `setup`
    (a study's record) holds: the value each held in every trial of a
    study that did not search it. Raises `StudyError` naming a setting
    whose value cannot be read there (a study made before setups recorded
    their base, or a hidden-unit list of mixed widths)."""
    if not names:
        return {}
    base = setup.get("base")
    if base is None:
        raise StudyError(
            "that study does not record its base settings (it was made "
            "before they were recorded), so the value it kept for "
            f"{', '.join(names)} is unknown; resume it once with this "
            "version (the same `tune` command, which records them) and "
            "warm-start again.")
    flat = flatten(base)
    out = {}
    for name in names:
        key = _setting_key(setup.get("model", ""), name)
        value = flat.get(key)
        if isinstance(value, list) and (name in _WIDTHS or name in _DEPTHS):
            if name in _DEPTHS:
                value = len(value)
            elif value and len(set(value)) == 1:
                value = value[0]
            else:
                value = None
        if name == "optimizer":  # None: e.g. Adam with the batch scope
            value = optimizer_choice(value, flat.get(
                "params.embedding_l2_scope", ModelConfig.embedding_l2_scope))
        if value is None:
            raise StudyError(
                f"that study did not search {name}, and its value there "
                f"({key}) cannot be read as one {name}; start without "
                "--warm-start.")
        out[name] = value
    return out


def unsearched_base_values(setup: dict[str, Any],
                           dims: dict[str, Distribution]) -> dict[str, Any]:
    """`base_values` of the settings of `dims` that the study of `setup`
    did not search."""
    searched = setup.get("space") or {}
    return base_values(setup, [n for n in dims if n not in searched])


def load_earlier(out: str, source: str, setup: dict[str, Any],
                 dims: dict[str, Distribution]) -> optuna.Study:
    """The study in directory `source`, checked against the new study of
    directory `out`, made with `setup` over `dims`, before that one is
    created. Raises `ConfigError` when `source` holds no study and
    `StudyError` when its setup differs in more than the search
    (`MAY_DIFFER`) or it searched other settings."""
    if os.path.abspath(source) == os.path.abspath(out):
        raise ConfigError(f"--warm-start {source}: that is --out itself; "
                          "name the earlier study's directory.")
    if not os.path.isfile(os.path.join(source, "study.db")):
        raise ConfigError(f"--warm-start {source}: no study there (no "
                          "study.db); give a `tune --out` directory.")
    earlier = optuna.load_study(study_name=STUDY_NAME,
                                storage=open_storage(source))
    stored = earlier.user_attrs.get("setup") or {}
    diff = setup_differences({k: v for k, v in stored.items()
                              if k not in MAY_DIFFER},
                             {k: v for k, v in setup.items()
                              if k not in MAY_DIFFER})
    if diff:
        raise StudyError(
            f"--warm-start {source}: that study was made with other "
            "settings or data (only the space, --seed and --pruner may "
            "differ); nothing was done:\n"
            + "\n".join(f"  {d}" for d in diff[:12]))
    searched = set(stored.get("space") or {})
    if not searched <= set(dims):
        raise StudyError(
            f"--warm-start {source}: that study searched "
            f"{', '.join(sorted(searched))}; this one searches "
            f"{', '.join(sorted(dims))}, without "
            f"{', '.join(sorted(searched - set(dims)))}. Give both the "
            "same --set.")
    try:
        kept = unsearched_base_values(stored, dims)
    except StudyError as e:
        raise StudyError(f"--warm-start {source}: {e}") from None
    for name, value in kept.items():
        if not fits(dims[name].optuna(), value):
            raise StudyError(
                f"--warm-start {source}: that study kept {name} at "
                f"{value!r} (its base setting) in every trial, outside "
                f"this study's range for {name}; include {value!r} in "
                "the range (--space), or start without --warm-start.")
    return earlier


def copy_trials(study: optuna.Study, out: str, earlier: optuna.Study,
                source: str, dims: dict[str, Distribution],
                say: Callable[[str], None]) -> int:
    """Adds the finished trials of `earlier` (from `load_earlier`, of
    directory `source`) to the new, empty `study` of directory `out`, over
    `dims`; returns how many were copied."""
    dists = {name: d.optuna() for name, d in dims.items()}
    kept = unsearched_base_values(earlier.user_attrs.get("setup") or {},
                                  dims)
    if kept:
        say(f"[tune] warm start: {source} did not search "
            f"{', '.join(kept)}; its trials are copied with their base "
            "values " + ", ".join(f"{k}={v}" for k, v in kept.items()))
    copied = 0
    for t in earlier.get_trials(deepcopy=False, states=report.FINISHED):
        params = {**kept, **t.params}
        outside = [f"{k}={v}" for k, v in params.items()
                   if not fits(dists[k], v)]
        if outside:
            say(f"[tune] trial {t.number} of {source} not copied: "
                f"{', '.join(outside)} outside this study's space")
            continue
        attrs = {k: v for k, v in t.user_attrs.items()
                 if k not in ("worker", "interrupted")}
        attrs["run_dir"] = os.path.abspath(os.path.join(
            source, t.user_attrs.get("run_dir", f"trials/{t.number}")))
        attrs["copied_from"] = f"{os.path.abspath(source)} #{t.number}"
        # A FrozenTrial rather than `create_trial`, to keep its start and
        # end times (trials.md's seconds); add_trial renumbers it.
        study.add_trial(optuna.trial.FrozenTrial(
            number=0, trial_id=0, state=t.state, value=None,
            values=t.values, datetime_start=t.datetime_start,
            datetime_complete=t.datetime_complete, params=params,
            distributions={k: dists[k] for k in params},
            user_attrs=attrs, system_attrs={},
            intermediate_values=dict(t.intermediate_values)))
        copied += 1
    for t in study.get_trials(deepcopy=False):
        report.write_trial_hparams(out, t)
    say(f"[tune] warm start: {copied} finished trials copied from "
        f"{source}")
    return copied
