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
A setting whose base value lies outside the space (the avazu preset's
main MLP of 1024 units against DS-MLP widths 200 .. 1000), or that the
trial could not write back exactly (FinalMLP's `dropout` where the
preset gives its two streams different ones), is drawn instead, and the
log names it. `tune --no-base-trial` leaves trial 0 to the sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfdsmlp.config import to_dict
from tfdsmlp.tuning.space import Distribution
from tfdsmlp.tuning.storage import StudyError
from tfdsmlp.tuning.warm_start import base_values, fits

import optuna

# Settings that write one list together (width x depth): kept or drawn
# together.
_PAIRS = (("mlp_width", "mlp_depth"), ("main_width", "main_depth"))


def _groups(dims: dict[str, Distribution]) -> list[tuple[str, ...]]:
    paired = {n for pair in _PAIRS for n in pair if set(pair) <= set(dims)}
    groups = [pair for pair in _PAIRS if set(pair) <= set(dims)]
    return groups + [(n,) for n in dims if n not in paired]


def base_params(config: Callable[[dict[str, Any]], Any], model: str,
                dims: dict[str, Distribution]
                ) -> tuple[dict[str, Any], list[str]]:
    """({setting: base value} that trial 0 takes, [why each other setting
    is drawn]).

    `config(values)` is the objective's: the trial's resolved `RunConfig`
    (`config({})` is the base). A setting is kept when its base value
    lies in its range and the trial it writes equals the base."""
    reference = config({})
    flat = to_dict(reference if model == "dsmlp" else reference.teacher)
    setup = {"model": model, "base": flat}
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
        if to_dict(config(values)) != to_dict(reference):
            drawn.append(f"{'/'.join(group)} (a trial cannot write its "
                         "base exactly)")
            continue
        params.update(values)
    return params, drawn


def enqueue_base_trial(study: optuna.Study,
                       config: Callable[[dict[str, Any]], Any], model: str,
                       dims: dict[str, Distribution],
                       say: Callable[[str], None]) -> bool:
    """Queues the base settings as the next trial of `study` (the first,
    in a new study) unless a trial with the same settings exists (one
    copied by `--warm-start`); returns whether it was queued."""
    params, drawn = base_params(config, model, dims)
    if not params:
        say("[tune] no base trial: no searched setting can take its base "
            "value (" + "; ".join(drawn) + ")")
        return False
    existing = [t for t in study.get_trials(deepcopy=False)
                if all(k in t.params and _same(t.params[k], v)
                       for k, v in params.items())
                and set(t.params) == set(dims)]
    if existing and not drawn:
        say(f"[tune] no base trial: trial {existing[0].number} has the "
            "base settings")
        return False
    study.enqueue_trial(params, user_attrs={"base_trial": drawn or "all"})
    say(f"[tune] trial {len(study.trials) - 1} takes the base settings "
        "(preset <- --set)"
        + (" except " + "; ".join(drawn) + ", drawn" if drawn else "")
        + "; --no-base-trial leaves it to the sampler")
    return True


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(b)))
        except (TypeError, ValueError):
            return False
    return a == b
