"""TPE seeded per trial, so that shared and resumed studies stay seeded."""

from __future__ import annotations

import numpy as np
import optuna


class TrialSeededTPESampler(optuna.samplers.TPESampler):
    """Optuna's `TPESampler` whose random draws for trial n come from the
    seed sequence (seed, n).

    A `TPESampler(seed=S)` seeds one random stream per process: two
    processes sharing a study draw the same parameters for their first
    (random start-up) trials, and a study resumed in a new process repeats
    the draws of its first process. Reseeding from (seed, trial number)
    before every trial, whose number the storage hands out once, gives
    each trial its own draws: with the same history, the same proposal,
    whichever process asks. (It reseeds the sampler's own `_rng` streams:
    Optuna's public `reseed_rng()` only reseeds at random.)

    Args:
      seed: int. The study's seed.
      **kwargs: `TPESampler` arguments.
    """

    def __init__(self, seed: int, **kwargs) -> None:
        super().__init__(seed=seed, **kwargs)
        self.seed = int(seed)

    def before_trial(self, study: optuna.Study,
                     trial: optuna.trial.FrozenTrial) -> None:
        state = np.random.SeedSequence([self.seed, trial.number])
        seed = int(state.generate_state(1)[0])
        self._rng.rng.seed(seed)
        self._random_sampler._rng.rng.seed(seed)
        super().before_trial(study, trial)
