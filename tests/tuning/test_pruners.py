"""`make_pruner`: "median" cuts a slow starter at epoch 1; "stalled" (the
default) lets a trial run while each epoch raises its best validation AUC
and cuts it at the first epoch that does not, when it is below the median.
The AUCs are the shape of the 1M-row planted study (tfdsmlp/tuning/study.py,
make_pruner): fast risers that overfit after epoch 1, a strongly
regularised trial that starts lowest and keeps rising."""

from __future__ import annotations

from tfdsmlp.tuning.study import PRUNERS, make_pruner

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

FINISHED = ([0.7582, 0.7581, 0.7560], [0.7578, 0.7570, 0.7550],
            [0.7570, 0.7560, 0.7540])


def _study(pruner: str) -> optuna.Study:
    study = optuna.create_study(direction="maximize",
                                pruner=make_pruner(pruner, max_epochs=30))
    for aucs in FINISHED:
        study.add_trial(create_trial(
            state=TrialState.COMPLETE, value=max(aucs),
            params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
            intermediate_values=dict(enumerate(aucs, start=1))))
    return study


def _epochs_until_pruned(study: optuna.Study, aucs: list[float]) -> int | None:
    trial = study.ask()
    for epoch, auc in enumerate(aucs, start=1):
        trial.report(auc, epoch)
        if trial.should_prune():
            return epoch
    return None


def test_median_cuts_a_slow_starter_that_stalled_keeps():
    riser = [0.7404, 0.7432, 0.7444, 0.7459]
    assert _epochs_until_pruned(_study("median"), riser) == 1
    assert _epochs_until_pruned(_study("stalled"), riser) is None


def test_stalled_cuts_a_below_median_trial_once_an_epoch_fails_to_raise_it():
    # epoch 2 raises it (kept although below the median), epoch 3 does not.
    assert _epochs_until_pruned(_study("stalled"),
                                [0.7400, 0.7450, 0.7440, 0.7600]) == 3


def test_stalled_keeps_a_trial_above_the_median_that_stops_improving():
    assert _epochs_until_pruned(_study("stalled"),
                                [0.7600, 0.7590, 0.7580]) is None


def test_pruner_names():
    assert PRUNERS[0] == "stalled"
    assert isinstance(make_pruner("stalled", 5), optuna.pruners.PatientPruner)
    assert isinstance(make_pruner("median", 5), optuna.pruners.MedianPruner)
    nop = optuna.pruners.NopPruner()
    assert make_pruner(nop, 5) is nop
    with pytest.raises(ValueError, match="stalled"):
        make_pruner("patient", 5)
