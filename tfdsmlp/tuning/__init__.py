"""Hyperparameter search for teacher models (`python -m tfdsmlp tune`).

    from tfdsmlp.tuning import SearchSpace, run_study
    result = run_study("data/frappe", "gdcn", "studies/gdcn", trials=30,
                       preset="frappe")
    result.best_yaml   # a preset: `train --preset studies/gdcn/best.yaml`
    # the DS-MLP over a finished teacher run (DSMLPSpace):
    run_study("data/frappe", "dsmlp", "studies/dsmlp", teacher="runs/gdcn")

Modules: `space` (the search space, written once), `objective` (one trial
= one teacher phase of `run_dsmlp`, with a pruning callback), `storage`
(Optuna's SQLite storage, interrupted-trial recovery), `sampler` (TPE
seeded per trial), `report` (trials.md, best.yaml, TensorBoard HParams),
`study` (`run_study`, and why Optuna), `space_file` (`tune --space`:
ranges from YAML, the edge warning), `warm_start` (`tune --warm-start`:
a study that starts from an earlier one's trials). See docs/TUNING.md.
"""

from tfdsmlp.tuning.space import (
    DSMLP_TARGETS,
    TARGETS,
    Choice,
    DSMLPSpace,
    IntRange,
    LogUniform,
    SearchSpace,
    Uniform,
)
from tfdsmlp.tuning.storage import StudyError
from tfdsmlp.tuning.study import StudyResult, run_study

__all__ = ["DSMLP_TARGETS", "TARGETS", "Choice", "DSMLPSpace", "IntRange", "LogUniform", "SearchSpace",
           "StudyError", "StudyResult", "Uniform", "run_study"]
