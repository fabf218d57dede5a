"""A new study's first trial: the base settings (preset <- `--set`).

TPE draws its first 10 trials at random, and a trial here costs minutes
to hours (a GDCN trial on the 1M-row planted data: 5 to 35 min; a DS-MLP
one: 20 to 60 min), so a study of a few trials can end with every trial
below the settings it started from. It happened on the planted data:
5 of the 10 trials of the 1M-row Criteo-shaped GDCN study stopped below
the criteo preset's validation AUC (0.7576), and 2 of the 3 first trials
of the Avazu-shaped DS-MLP study below the avazu preset's student
(0.7820; docs/RESULTS.md). A user who tunes expects the result to be at
least as good as the preset on validation.

So a new study queues the base settings as trial 0 (Optuna's
`Study.enqueue_trial`): its best is then never below the base on
validation (same seed), and TPE learns from the base like any trial.
A setting whose base value lies outside the space (the criteo preset's
main MLP of 1024 units against DS-MLP widths 200 .. 1000), or that the
trial could not write back exactly (FinalMLP's `dropout` where the
preset gives its two streams different ones), is drawn instead, and the
log names it. `tune --no-base-trial` leaves trial 0 to the sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfdsmlp.config import to_dict
from tfdsmlp.tuning.space import WIDTH_DEPTH, Distribution
from tfdsmlp.tuning.storage import StudyError
from tfdsmlp.tuning.warm_start import base_values, fits

import optuna


def _groups(dims: dict[str, Distribution]) -> list[tuple[str, ...]]:
    """The settings of `dims`, a width and its depth as one group (they
    write one list, so they are kept or drawn together)."""
    pairs = [pair for pair in WIDTH_DEPTH if set(pair) <= set(dims)]
    paired = {name for pair in pairs for name in pair}
    return pairs + [(n,) for n in dims if n not in paired]


def base_params(config: Callable[[dict[str, Any]], Any], model: str,
                dims: dict[str, Distribution]
                ) -> tuple[dict[str, Any], list[str]]:
    """({setting: base value} that trial 0 takes, [why each other setting
    is drawn]).

    `config(values)` is the objective's: the trial's resolved `RunConfig`
    (`config({})` is the base). A setting is kept when its base value
    lies in its range and the trial it writes equals the base."""
    reference = config({})
    expected = to_dict(reference)
    setup = {"model": model, "base": to_dict(
        reference if model == "dsmlp" else reference.teacher)}
    params: dict[str, Any] = {}
    drawn: list[str] = []
    for group in _groups(dims):
        try:
            values = base_values(setup, list(group))
        except StudyError:
            drawn.append(f"{'/'.join(group)} (its base is not one value "
                         "of the setting)")
            continue
        outside = [n for n in group if not fits(dims[n].optuna(), values[n])]
        if outside:
            whose = "" if len(group) == 1 else f"{outside[0]}'s "
            drawn.append(f"{'/'.join(group)} ({whose}base "
                         f"{values[outside[0]]!r} is outside its range)")
            continue
        if to_dict(config(values)) != expected:
            drawn.append(f"{'/'.join(group)} (a trial cannot write its "
                         "base exactly)")
            continue
        params.update(values)
    return params, drawn


def enqueue_base_trial(study: optuna.Study,
                       config: Callable[[dict[str, Any]], Any], model: str,
                       dims: dict[str, Distribution],
                       say: Callable[[str], None]) -> None:
    """Queues the base settings as the next trial of `study` (the first,
    in a new study) unless a trial with the same settings exists (one
    copied by `--warm-start`: Optuna's `skip_if_exists`, which matches a
    trial with these settings and no others)."""
    params, drawn = base_params(config, model, dims)
    if not params:
        say("[tune] no base trial: no searched setting can take its base "
            "value (" + "; ".join(drawn) + ")")
        return
    before = len(study.trials)
    study.enqueue_trial(params, user_attrs={"base_trial": drawn or "all"},
                        skip_if_exists=True)
    if len(study.trials) == before:
        say("[tune] no base trial: a trial of the study has the base "
            "settings")
        return
    say(f"[tune] trial {before} takes the base settings (preset <- --set)"
        + (" except " + "; ".join(drawn) + ", drawn" if drawn else "")
        + "; --no-base-trial leaves it to the sampler")
