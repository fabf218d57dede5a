"""Typed training settings shared by every phase."""

from __future__ import annotations

import dataclasses

OPTIMIZERS = ("adam", "lazy_adam", "catch_up_adam")
MONITORS = ("auc", "auc_logloss")
PRECISIONS = ("float32", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How one phase trains (defaults: BARS / FuxiCTR common settings).

    Attributes:
      batch_size: global batch size (over all replicas).
      learning_rate: Adam learning rate.
      epochs: maximum epochs.
      patience: stop after this many epochs without gain in `monitor`.
      lr_decay: multiply the learning rate by this on every epoch without
        gain (FuxiCTR `reduce_lr_on_plateau`); 1.0 disables it.
      min_lr: floor of the learning rate.
      clipnorm: global gradient-norm clip (FuxiCTR: 10); 0 disables it.
      seed: seed of weights, shuffling and dropout.
      shuffle_buffer: records in the training shuffle buffer.
      steps_per_epoch: steps per epoch (0 = the whole split). Shorter
        epochs validate (and back up) more often; the data stream continues
        across epochs.
      skip_corrupt: skip unreadable records of truncated or corrupted
        TFRecord files (counted in the logs and metrics.json) instead of
        failing with an error naming the file.
      optimizer: "adam" (Keras Adam; its sparse update still decays the
        moments of whole embedding tables every step) or "lazy_adam"
        (`LazyAdam`: only the looked-up rows; needs sparse embedding
        gradients, i.e. `embedding_l2: 0` or `embedding_l2_scope` `batch`
        or `lazy`; with `lazy` the whole-table L2 is applied lazily,
        `LazyAdamTableL2`) or "catch_up_adam" (`CatchUpAdam`: LazyAdam's
        cost, and a row absent from batches catches up, when next looked
        up, on what plain Adam would have done to it meanwhile: momentum,
        second-moment decay and, with scope `lazy`, the whole-table L2;
        the same sparse-gradient condition).
      steps_per_execution: training steps run per call of the compiled
        train function (Keras `compile(steps_per_execution=...)`): the same
        updates with less per-step Python overhead, which matters for small
        CTR models; batch-level callbacks then see every N-th batch.
      in_memory: parse the training split once and hold it in memory; each
        step gathers its batch from an epoch permutation seeded like the
        TFRecord stream (`tfdsmlp.data.memory`). Faster for datasets that
        fit in RAM (Frappe: 16 MB); `shuffle_buffer` is then unused.
      check_learned: fail the phase (nothing saved or exported) when its
        validation AUC is no better than chance or its validation log loss
        is worse than always predicting the positive rate. Turn it off only
        for smoke runs too short to learn anything.
      jit_compile: XLA-compile the train step (Keras `compile(
        jit_compile=True)`): element-wise ops fuse into the matmuls around
        them. Faster or slower by model and machine (`python -m tfdsmlp
        bench --peer fuxictr --jit-compile` measures both); the results
        differ from the default in the last float bits.
      precision: "float32" (default) or "mixed_bfloat16": the model is
        built under Keras' mixed_bfloat16 policy (bfloat16 matmuls, float32
        weights, optimizer and logits; `tfdsmlp.training.precision`).
        Faster on CPUs with AVX-512 BF16 or AMX; its effect on AUC is in
        docs/BENCHMARKS.md. Export always serves float32.
      monitor: what the schedule (lr decay, early stop, best weights)
        watches on the exact validation pass: "auc" (default, BARS) or
        "auc_logloss", AUC - log loss (FuxiCTR's `monitor: {AUC: 1,
        logloss: -1}`): an epoch whose AUC creeps up while its log loss
        rises by more does not count as a gain, so a model that starts to
        overfit stops early. Logged as `val_auc_logloss`.
      profile_batches: (first, last) call of the train function, counted
        from 1 over the run, to trace with TensorFlow's profiler into the
        phase's TensorBoard directory (its Profile tab: where a step's time
        goes, op by op); () = off. Each call runs `steps_per_execution`
        steps, so (2, 3) with 10 steps per execution traces steps 11-30.
        Not part of a phase's fingerprint.
    """

    batch_size: int = 4096
    learning_rate: float = 1e-3
    epochs: int = 100
    patience: int = 2
    lr_decay: float = 0.1
    min_lr: float = 1e-6
    clipnorm: float = 10.0
    seed: int = 2021
    shuffle_buffer: int = 300_000
    steps_per_epoch: int = 0
    skip_corrupt: bool = False
    optimizer: str = "adam"
    steps_per_execution: int = 1
    in_memory: bool = False
    check_learned: bool = True
    jit_compile: bool = False
    precision: str = "float32"
    monitor: str = "auc"
    profile_batches: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("batch_size", "learning_rate", "epochs", "patience",
                     "shuffle_buffer", "steps_per_execution"):
            if getattr(self, name) <= 0:
                raise ValueError(f"`{name}` should be positive. Received: "
                                 f"`{name}={getattr(self, name)}`")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError("`lr_decay` should be in (0, 1]. Received: "
                             f"`lr_decay={self.lr_decay}`")
        pb = self.profile_batches
        if pb and (len(pb) != 2 or not 1 <= pb[0] <= pb[1]):
            raise ValueError("`profile_batches` should be () or (first, "
                             "last) with 1 <= first <= last. Received: "
                             f"`profile_batches={pb!r}`")
        if self.precision not in PRECISIONS:
            raise ValueError(f"`precision` should be one of {list(PRECISIONS)}"
                             f". Received: `precision={self.precision!r}`")
        if self.monitor not in MONITORS:
            raise ValueError(f"`monitor` should be one of {list(MONITORS)}. "
                             f"Received: `monitor={self.monitor!r}`")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"`optimizer` should be one of {list(OPTIMIZERS)}"
                             f". Received: `optimizer={self.optimizer!r}`")
        if self.clipnorm < 0 or self.steps_per_epoch < 0:
            raise ValueError("`clipnorm` and `steps_per_epoch` should be "
                             f">= 0. Received: `clipnorm={self.clipnorm}`, "
                             f"`steps_per_epoch={self.steps_per_epoch}`")
