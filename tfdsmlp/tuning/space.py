"""The search space of `python -m tfdsmlp tune`: written once, here.

`SearchSpace` names each searched setting and its range; `TARGETS` says
which config keys a setting writes. A model is searched over the settings
whose keys its config has (`tfdsmlp.models.registry`, strict keys), so
`dnn` gets no cross depth and FinalMLP's `dropout` writes its two streams'
`mlp1_dropout` and `mlp2_dropout`. docs/TUNING.md shows the same table.

    space = SearchSpace()                      # the documented defaults
    dims = space.dimensions("gdcn", fixed={"train.batch_size"})
    values = suggest(trial, dims)              # an Optuna trial
    trial_settings("gdcn", values)             # {"params": .., "train": ..}
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable
from typing import Any

from tfdsmlp.config import ConfigError
from tfdsmlp.models.registry import model_class
from tfdsmlp.training.train_config import TrainConfig

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """A float drawn log-uniformly from [low, high] (0 < low < high)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 < self.low < self.high:
            raise ValueError("`LogUniform` should have 0 < low < high. "
                             f"Received: `low={self.low}, high={self.high}`")

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)

    def optuna(self) -> BaseDistribution:
        """The Optuna distribution `suggest` draws from."""
        return FloatDistribution(self.low, self.high, log=True)


@dataclasses.dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from [low, high] on a grid of `step`."""

    low: float
    high: float
    step: float

    def __post_init__(self) -> None:
        if not (self.low < self.high and self.step > 0):
            raise ValueError(
                "`Uniform` should have low < high and step > 0. Received: "
                f"`low={self.low}, high={self.high}, step={self.step}`")

    def suggest(self, trial: Any, name: str) -> float:
        value = trial.suggest_float(name, self.low, self.high, step=self.step)
        return round(value, 10)  # 0.35, not 0.35000000000000003

    def optuna(self) -> BaseDistribution:
        """The Optuna distribution `suggest` draws from."""
        return FloatDistribution(self.low, self.high, step=self.step)


@dataclasses.dataclass(frozen=True)
class IntRange:
    """An integer drawn uniformly from [low, high]."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError("`IntRange` should have low <= high. Received: "
                             f"`low={self.low}, high={self.high}`")

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high)

    def optuna(self) -> BaseDistribution:
        """The Optuna distribution `suggest` draws from."""
        return IntDistribution(self.low, self.high)


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of `options` (unordered for the sampler)."""

    options: tuple[int | float | str | bool, ...]

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError("`Choice` should have at least one option. "
                             f"Received: `options={self.options}`")

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.options))

    def optuna(self) -> BaseDistribution:
        """The Optuna distribution `suggest` draws from."""
        return CategoricalDistribution(list(self.options))


Distribution = LogUniform | Uniform | IntRange | Choice


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """What `tune` searches (per model, only the settings it has).

    Attributes:
      learning_rate: Adam learning rate, log-uniform in [1e-4, 1e-2].
      batch_size: global batch size, one of 1024, 2048, 4096, 8192.
      embedding_dim: field embedding width, one of 8, 10, 16.
      embedding_l2: embedding L2 weight, one of 0 and a log grid 1e-4 ..
        0.1 (a categorical, so that 0, no regularisation, is a value).
      dropout: dropout of the MLP(s), uniform in [0, 0.5], step 0.05.
      mlp_width: width of every hidden layer, one of 100, 200, 400, 800
        (each divisible by 1, 2, 4, 5, 10 and 20: FinalMLP's fusion heads
        must divide its streams' last width).
      mlp_depth: hidden layers, 1 to 4.
      num_cross_layers: cross depth of DCNv2 / GDCN, 1 to 6.
      optimizer: the optimizer with the embedding L2 it pairs with
        (`OPTIMIZER_CHOICES`): "adam" (Keras Adam, L2 on the whole
        table), "lazy_adam" (LazyAdam, L2 on the batch's rows),
        "lazy_adam_lazy_l2" (LazyAdam, the whole-table L2 applied
        lazily) or "catch_up_adam_lazy_l2" (CatchUpAdam, the same L2).
        None
        (the default): not searched, the base config's; a `--space` file
        turns it on (`TEACHER_OPT_IN`), so that studies made over the
        default space keep their recorded space.
    """

    learning_rate: Distribution = LogUniform(1e-4, 1e-2)
    batch_size: Distribution = Choice((1024, 2048, 4096, 8192))
    embedding_dim: Distribution = Choice((8, 10, 16))
    embedding_l2: Distribution = Choice((0.0, 1e-4, 1e-3, 1e-2, 0.05, 0.1))
    dropout: Distribution = Uniform(0.0, 0.5, 0.05)
    mlp_width: Distribution = Choice((100, 200, 400, 800))
    mlp_depth: Distribution = IntRange(1, 4)
    num_cross_layers: Distribution = IntRange(1, 6)
    optimizer: Distribution | None = None

    def dimensions(self, model: str, fixed: Iterable[str] = ()
                   ) -> dict[str, Distribution]:
        """{setting: distribution} searched for `model`: the settings that
        are on (not None) and write at least one key its config (or
        `TrainConfig`) has, minus those whose keys are all in `fixed`
        (e.g. given with `--set`); a `JOINT` setting is dropped when any
        of its keys is fixed."""
        fixed = set(fixed)
        dims = {}
        for name in SETTINGS:
            if getattr(self, name) is None:
                continue
            targets = target_keys(model, name)
            keys = [k for k in targets if k not in fixed]
            if keys and (name not in JOINT or keys == targets):
                dims[name] = getattr(self, name)
        # Width and depth make one list: both are searched or neither.
        if ("mlp_width" in dims) != ("mlp_depth" in dims):
            dims.pop("mlp_width", None)
            dims.pop("mlp_depth", None)
        return dims


# The teacher settings that are off unless a `--space` file gives a range,
# with the values each takes. The criteo preset trained with LazyAdam in
# sessions 10-21, so the 1M-row GDCN study on the planted Criteo-shaped
# data never saw Keras Adam, which at 10M rows gave its teacher 0.008
# more validation AUC (docs/SCALE.md, section 8): a study can now choose.
TEACHER_OPT_IN: dict[str, Distribution] = {
    "optimizer": Choice(("adam", "lazy_adam", "lazy_adam_lazy_l2",
                         "catch_up_adam_lazy_l2")),
}

# What each value of the `optimizer` setting writes: (train.optimizer,
# params.embedding_l2_scope). Keras Adam with the whole-table L2
# (FuxiCTR's, the presets'); LazyAdam with the L2 on the batch's rows (a
# whole-table L2 in the loss would make its gradients dense, which `fit`
# refuses); LazyAdam with the whole-table L2 applied lazily
# (`LazyAdamTableL2`); `CatchUpAdam` with the same lazy L2 (absent rows
# also catch up on Adam's momentum and second-moment decay). The last two
# were added in session 25, so that the first two keep their meaning in
# existing studies. At 10M planted rows the GDCN teacher reached 0.7905
# validation AUC with the batch scope, 0.7957 with LazyAdamTableL2, 0.7984
# with CatchUpAdam and 0.7987 with Adam (docs/SCALE.md, section 8).
OPTIMIZER_CHOICES: dict[str, tuple[str, str]] = {
    "adam": ("adam", "table"),
    "lazy_adam": ("lazy_adam", "batch"),
    "lazy_adam_lazy_l2": ("lazy_adam", "lazy"),
    "catch_up_adam_lazy_l2": ("catch_up_adam", "lazy"),
}


def optimizer_choice(optimizer: str, scope: str) -> str | None:
    """The `optimizer` setting's value that writes (`optimizer`,
    `scope`); None when no value does (e.g. Adam with the batch scope)."""
    for value, pair in OPTIMIZER_CHOICES.items():
        if pair == (optimizer, scope):
            return value
    return None

# Settings that write several keys as one choice: searched only when every
# key is free (a `--set` of any of them fixes the setting).
JOINT = ("optimizer",)

# The (width, depth) settings that write one hidden-unit list together,
# [width] * depth: a teacher's MLP and the DS-MLP's main MLP.
WIDTH_DEPTH = (("mlp_width", "mlp_depth"), ("main_width", "main_depth"))

# The config keys (as `train --set` spells them) each setting writes; a
# model takes those its config has. mlp_width and mlp_depth together write
# the hidden-unit list [width] * depth.
TARGETS: dict[str, tuple[str, ...]] = {
    "learning_rate": ("train.learning_rate",),
    "batch_size": ("train.batch_size",),
    "embedding_dim": ("params.embedding_dim",),
    "embedding_l2": ("params.embedding_l2",),
    "dropout": ("params.dropout", "params.mlp1_dropout",
                "params.mlp2_dropout"),
    "mlp_width": ("params.hidden_units", "params.mlp1_hidden_units"),
    "mlp_depth": ("params.hidden_units", "params.mlp1_hidden_units"),
    "num_cross_layers": ("params.num_cross_layers",),
    "optimizer": ("train.optimizer", "params.embedding_l2_scope"),
}
SETTINGS = tuple(f.name for f in dataclasses.fields(SearchSpace))


def target_keys(model: str, setting: str) -> list[str]:
    """The keys of `TARGETS[setting]` that `model`'s config accepts."""
    accepted = {f"params.{f.name}" for f in dataclasses.fields(
        model_class(model).config_class)}
    accepted |= {f"train.{f.name}" for f in dataclasses.fields(TrainConfig)}
    return [k for k in TARGETS[setting] if k in accepted]


def suggest(trial: Any, dims: dict[str, Distribution]) -> dict[str, Any]:
    """Draws every setting of `dims` from an Optuna `trial` (a retried
    trial gets its stored values back)."""
    return {name: dist.suggest(trial, name) for name, dist in dims.items()}


def trial_settings(model: str, values: dict[str, Any],
                   fixed: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """{"params": {...}, "train": {...}}: the config values of one trial
    (keys in `fixed` are left to the user's `--set`)."""
    fixed = set(fixed)
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if name in ("mlp_width", "mlp_depth"):
            value = [int(values["mlp_width"])] * int(values["mlp_depth"])
        if name == "optimizer":
            value = dict(zip(TARGETS["optimizer"],
                             OPTIMIZER_CHOICES[value]))
        for key in target_keys(model, name):
            if key not in fixed:
                flat[key] = value[key] if name == "optimizer" else value
    out: dict[str, dict[str, Any]] = {"params": {}, "train": {}}
    for key, value in flat.items():
        section, name = key.split(".", 1)
        out[section][name] = value
    return out


@dataclasses.dataclass(frozen=True)
class DSMLPSpace:
    """What `tune --model dsmlp --teacher RUN_DIR` searches: the DS-MLP's
    distillation (stage 1), alignment (stage 2) and student settings, with
    the teacher of RUN_DIR loaded, never trained. `DSMLP_TARGETS` names the
    `RunConfig` key each writes; docs/TUNING.md shows the same table.

    Attributes:
      kd_weight: lambda, weight of the KD loss, uniform in [0, 2], step 0.1.
      kd_loss: "bce" or "kl".
      temperature: KD temperature, uniform in [1, 4], step 0.5.
      alpha: weight of the main stream's loss in stage 2, [0, 2], step 0.1.
      beta: weight of the parallel stream's loss in stage 2, [0, 2], 0.1.
      main_width: width of the main MLP, one of 200, 400, 600, 800, 1000.
      main_depth: layers of the main MLP, 1 to 3.
      parallel_width: width of the parallel MLP (its depth is the base
        config's), one of 100, 200, 400.
      distill_learning_rate: stage-1 Adam learning rate, log 1e-4 .. 1e-2.
      align_learning_rate: stage-2 Adam learning rate, log 1e-4 .. 1e-2.
      dropout: dropout of both student MLPs, [0, 0.5], step 0.05.
      embedding_dim, embedding_l2: the student's own embedding width and
        L2; None (the default): not searched, the base config's. A
        `--space` file turns them on with a range (`DSMLP_OPT_IN` gives
        the kind of values each takes), so that studies made over the
        default space keep their recorded space.
      distill_batch_size, align_batch_size: each stage's batch size; off
        (None) unless a `--space` file gives a range, like the two above.
      distill_patience, align_patience, distill_lr_decay, align_lr_decay:
        each stage's schedule (`TrainConfig.patience`: epochs without gain
        before it stops; `lr_decay`: the learning rate's factor on each
        such epoch, 1 = none); off (None) unless a `--space` file gives a
        range, like the four above.
    """

    kd_weight: Distribution = Uniform(0.0, 2.0, 0.1)
    kd_loss: Distribution = Choice(("bce", "kl"))
    temperature: Distribution = Uniform(1.0, 4.0, 0.5)
    alpha: Distribution = Uniform(0.0, 2.0, 0.1)
    beta: Distribution = Uniform(0.0, 2.0, 0.1)
    main_width: Distribution = Choice((200, 400, 600, 800, 1000))
    main_depth: Distribution = IntRange(1, 3)
    parallel_width: Distribution = Choice((100, 200, 400))
    distill_learning_rate: Distribution = LogUniform(1e-4, 1e-2)
    align_learning_rate: Distribution = LogUniform(1e-4, 1e-2)
    dropout: Distribution = Uniform(0.0, 0.5, 0.05)
    embedding_dim: Distribution | None = None
    embedding_l2: Distribution | None = None
    distill_batch_size: Distribution | None = None
    align_batch_size: Distribution | None = None
    distill_patience: Distribution | None = None
    align_patience: Distribution | None = None
    distill_lr_decay: Distribution | None = None
    align_lr_decay: Distribution | None = None

    def dimensions(self, fixed: Iterable[str] = ()
                   ) -> dict[str, Distribution]:
        """{setting: distribution}, minus settings that are off (None) or
        whose key is in `fixed` (full `RunConfig` keys given with
        `--set`)."""
        fixed = set(fixed)
        return {f.name: getattr(self, f.name)
                for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None
                and DSMLP_TARGETS[f.name] not in fixed}


# The DS-MLP settings that are off unless a `--space` file gives a range,
# each with an example range of the values it takes (checked against the
# file's). On the planted Avazu-shaped data the student (width 10, no L2,
# 168,052 ids in one field) overfits after one distillation epoch while
# its teacher has width 32 (docs/RESULTS.md, "A DS-MLP study on the
# Avazu-shaped teacher").
DSMLP_OPT_IN: dict[str, Distribution] = {
    "embedding_dim": Choice((8, 10, 16, 32)),
    "embedding_l2": Choice((0.0, 1e-4, 1e-3, 1e-2, 0.05, 0.1)),
    # There, too, the student distilled at batch 1024 (the tuned teacher's)
    # rather than the preset's 4096 keeps improving for 4+ epochs instead
    # of peaking after one (docs/RESULTS.md, session 17 probes).
    "distill_batch_size": Choice((1024, 2048, 4096, 8192)),
    "align_batch_size": Choice((1024, 2048, 4096, 8192)),
    # Each stage's schedule (issue 19: stage 2's schedule a tunable
    # setting). Every preset waits 2 epochs (patience 2), as FuxiCTR does.
    # On the planted Avazu-shaped data an epoch at the cut rate overfitted
    # the teacher and alignment at once but lifted a distilled student
    # above its teacher (docs/RESULTS.md, "The teacher trained again" and
    # "One stage-1 epoch at the decayed rate"): it depends on the data
    # and the recipe, so these stay opt-in.
    "distill_patience": IntRange(1, 3),
    "align_patience": IntRange(1, 3),
    "distill_lr_decay": Choice((0.1, 0.3, 1.0)),
    "align_lr_decay": Choice((0.1, 0.3, 1.0)),
}


# The `RunConfig` key (as `run --set` spells it) each DS-MLP setting
# writes; main_width and main_depth together write [width] * depth, and
# parallel_width writes [width] * (the base parallel depth).
DSMLP_TARGETS: dict[str, str] = {
    "kd_weight": "distill.kd_weight",
    "kd_loss": "distill.kd_loss",
    "temperature": "distill.temperature",
    "alpha": "align.alpha",
    "beta": "align.beta",
    "main_width": "student.params.main_hidden_units",
    "main_depth": "student.params.main_hidden_units",
    "parallel_width": "student.params.parallel_hidden_units",
    "distill_learning_rate": "distill.train.learning_rate",
    "align_learning_rate": "align.train.learning_rate",
    "dropout": "student.params.dropout",
    "embedding_dim": "student.params.embedding_dim",
    "embedding_l2": "student.params.embedding_l2",
    "distill_batch_size": "distill.train.batch_size",
    "align_batch_size": "align.train.batch_size",
    "distill_patience": "distill.train.patience",
    "align_patience": "align.train.patience",
    "distill_lr_decay": "distill.train.lr_decay",
    "align_lr_decay": "align.train.lr_decay",
}


def setting_keys(model: str, name: str) -> list[str]:
    """The config keys that setting `name` writes for `model`: for
    "dsmlp" its `DSMLP_TARGETS` key (a `run` key), for a teacher the
    `TARGETS` keys its config accepts (`train` keys); [] for a setting the
    model does not have."""
    if model == "dsmlp":
        return [DSMLP_TARGETS[name]] if name in DSMLP_TARGETS else []
    return target_keys(model, name) if name in TARGETS else []


def dsmlp_trial_settings(values: dict[str, Any], parallel_depth: int
                         ) -> dict[str, Any]:
    """{RunConfig key: value} of one DS-MLP trial."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in ("main_width", "main_depth"):
            value = ([int(values.get("main_width", 600))]
                     * int(values.get("main_depth", 3)))
        elif name == "parallel_width":
            value = [int(value)] * parallel_depth
        out[DSMLP_TARGETS[name]] = value
    return out


def searched_only(dims: dict[str, Any], search: list[str] | None,
                  known: list[str], what: str) -> dict[str, Any]:
    """`dims` cut to the settings named in `search` (`tune --search`;
    None: all of them); the others stay at their base values (preset <-
    --set). Raises `ConfigError` for a name that is not a setting of the
    space (`known`), one this study does not search, or half of a
    width/depth pair (they write one list together)."""
    if search is None:
        return dims
    names = list(dict.fromkeys(n.strip() for n in search if n.strip()))
    if not names:
        raise ConfigError("--search names no setting; give a comma-separated "
                          f"list of the {what} settings, e.g. "
                          f"{', '.join(list(dims)[:2])}.")
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            raise ConfigError(
                f"--search: {name!r} is not a setting of the {what} space"
                + (f"; did you mean {', '.join(close)}?" if close else
                   f"; the settings are {', '.join(known)}."))
        if name not in dims:
            raise ConfigError(
                f"--search: {name!r} is not searched by this study: fixed "
                f"by --set, not a setting of {what}, or off unless a "
                "--space file gives its range (docs/TUNING.md, 'The search "
                "space'). Searched: " + ", ".join(dims) + ".")
    for pair in WIDTH_DEPTH:
        named = [n for n in pair if n in names]
        if len(named) == 1 and set(pair) <= set(dims):
            raise ConfigError(
                f"--search names {named[0]} without "
                f"{(set(pair) - set(named)).pop()}: the two write one "
                "list of hidden units together; name both, or fix the "
                "list with --set.")
    return {k: v for k, v in dims.items() if k in names}
