"""Fidelity of distilled explicit interactions (paper section 4.3.3, Fig. 3).

    python -m tfdsmlp.experiments.fidelity --out DIR [--widths 16,64,256] [--seeds 0,1,2]

Three categorical fields x1, x2, x3 (`vocab` tokens each, drawn uniformly)
and a ground-truth GDCN cross network with random weights (embeddings
N(0, 1)): its logit, standardised to mean `logit_mean` and standard
deviation `logit_std`, gives p*(x) = sigmoid(z*(x)), and each row's label
is drawn from Bernoulli(p*). On these rows we train

  cross       a GDCN cross network of the same shape (the teacher; the
              paper's "CrossNet module of GDCN")
  main1       the DS-MLP's main (student) MLP after distillation from
              `cross` (stage 1), `depth` hidden layers of each width
  main1_nokd  the main MLP trained on the labels alone (stage 1 with
              kd_weight = 0 and train_parallel = False: no teacher)
  main        the main MLP after alignment (stage 2)
  parallel    the parallel MLP after alignment (same widths)
  dsmlp       the fused DS-MLP after alignment, sigmoid(0.5 (z_M + z_P))

and report, for every width, the mean squared error between each one's
probability and p* over all vocab^3 inputs (every input the truth
defines), plus main1's MSE against the teacher's probabilities. Each fit keeps the
epoch with the best validation AUC (Keras `EarlyStopping`); test rows are
not used.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
from typing import Any

import tfdsmlp  # noqa: F401
from tfdsmlp.distill import Aligner, Distiller
from tfdsmlp.explain import scores_fn
from tfdsmlp.features import FeatureSpec, FieldSpec
from tfdsmlp.metrics import roc_auc, sigmoid
from tfdsmlp.models.registry import build_model

import numpy as np
import tensorflow as tf

COLUMNS = ("cross", "main1", "main1_nokd", "main", "parallel", "dsmlp")


@dataclasses.dataclass(frozen=True)
class FidelityConfig:
    """Settings of the fidelity study (see the module docstring)."""

    vocab: int = 30
    rows: int = 200_000
    valid_rows: int = 50_000
    widths: tuple[int, ...] = (16, 64, 256)
    depth: int = 3
    embedding_dim: int = 8
    cross_layers: int = 3
    logit_std: float = 2.0
    logit_mean: float = -1.0
    batch_size: int = 1024
    learning_rate: float = 1e-3
    epochs: int = 20
    patience: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab", "rows", "valid_rows", "depth", "epochs",
                     "embedding_dim", "cross_layers", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"`{name}` should be positive. Received: "
                                 f"`{name}={getattr(self, name)}`")
        if not self.widths or min(self.widths) <= 0:
            raise ValueError("`widths` should be positive widths. Received: "
                             f"`widths={self.widths}`")


def spec_of(vocab: int) -> FeatureSpec:
    """Fields x1, x2, x3 of `vocab` tokens (+ padding and OOV ids)."""
    return FeatureSpec(fields=tuple(
        FieldSpec(name=f"x{i}", kind="categorical", vocab_size=vocab + 2,
                  source=f"x{i}") for i in (1, 2, 3)))


def _cross(spec: FeatureSpec, cfg: FidelityConfig) -> tf.keras.Model:
    return build_model("gdcn", {
        "embedding_dim": cfg.embedding_dim, "hidden_units": [],
        "num_cross_layers": cfg.cross_layers, "structure": "stacked",
        "dropout": 0.0, "batch_norm": False, "embedding_l2": 0.0}, spec)


def all_inputs(vocab: int) -> np.ndarray:
    """Every (x1, x2, x3) as ids 2..vocab+1, shape (vocab^3, 3)."""
    ids = np.arange(2, vocab + 2, dtype=np.int64)
    return np.array(list(itertools.product(ids, ids, ids)), dtype=np.int64)


def ground_truth(cfg: FidelityConfig) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, z*) over every input: the random GDCN cross network's
    logits, standardised to `logit_mean` and `logit_std`."""
    tf.keras.utils.set_random_seed(cfg.seed)
    truth = _cross(spec_of(cfg.vocab), cfg)
    truth(truth.dummy_inputs())
    rng = np.random.default_rng(cfg.seed)
    for var in truth.embedding.trainable_variables:
        var.assign(rng.normal(size=var.shape).astype(np.float32))
    inputs = all_inputs(cfg.vocab)
    z = truth.predict({"ids": inputs}, batch_size=8192, verbose=0)
    z = np.reshape(z, [-1]).astype(np.float64)
    z = (z - z.mean()) / max(z.std(), 1e-12)
    return inputs, cfg.logit_mean + cfg.logit_std * z


def sample_rows(inputs: np.ndarray, z: np.ndarray, n: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n rows drawn uniformly over the inputs, labels ~ Bernoulli(p*)."""
    pick = rng.integers(0, len(inputs), size=n)
    labels = (rng.random(n) < sigmoid(z[pick])).astype(np.float32)
    return inputs[pick], labels[:, None]


def _dataset(ids: np.ndarray, y: np.ndarray, batch: int, shuffle: bool,
             seed: int) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices(({"ids": ids}, y))
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)


def _fit(model: tf.keras.Model, train, valid, cfg: FidelityConfig) -> int:
    """Fits with early stopping on validation AUC (best weights kept);
    returns the epochs run."""
    stop = tf.keras.callbacks.EarlyStopping(
        monitor="val_auc", mode="max", patience=cfg.patience,
        restore_best_weights=True)
    history = model.fit(train, validation_data=valid, epochs=cfg.epochs,
                        callbacks=[stop], verbose=0)
    return len(history.history["loss"])


def _probabilities(fn, inputs: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, list] = {}
    for lo in range(0, len(inputs), 8192):
        for key, logit in fn({"ids": inputs[lo:lo + 8192]}).items():
            out.setdefault(key, []).append(np.reshape(logit.numpy(), [-1]))
    return {k: sigmoid(np.concatenate(v)) for k, v in out.items()}


def run_fidelity(cfg: FidelityConfig, log=print) -> dict[str, Any]:
    """The study; returns {"config", "truth", "teacher", "widths": [...]}"""
    inputs, z = ground_truth(cfg)
    p_true = sigmoid(z)
    rng = np.random.default_rng(cfg.seed + 1)
    train_x, train_y = sample_rows(inputs, z, cfg.rows, rng)
    valid_x, valid_y = sample_rows(inputs, z, cfg.valid_rows, rng)
    train = _dataset(train_x, train_y, cfg.batch_size, True, cfg.seed)
    valid = _dataset(valid_x, valid_y, 8192, False, cfg.seed)
    spec = spec_of(cfg.vocab)

    tf.keras.utils.set_random_seed(cfg.seed + 2)
    teacher = _cross(spec, cfg)
    teacher.compile(optimizer=tf.keras.optimizers.Adam(cfg.learning_rate),
                    loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
                    metrics=[tf.keras.metrics.AUC(from_logits=True,
                                                  name="auc")])
    epochs = _fit(teacher, train, valid, cfg)
    p_cross = _probabilities(scores_fn(teacher), inputs)["fused"]
    result: dict[str, Any] = {
        "config": dataclasses.asdict(cfg),
        "truth": {"positive_rate": float(np.mean(p_true)),
                  "bayes_valid_auc": roc_auc(
                      valid_y[:, 0], sigmoid(z)[_rows_of(valid_x, cfg)])},
        "teacher": {"epochs": epochs, "mse": _mse(p_cross, p_true)},
        "widths": []}
    truth, mse = result["truth"], result["teacher"]["mse"]
    log(f"[fidelity] truth: positive rate {truth['positive_rate']:.3f}, "
        f"Bayes valid AUC {truth['bayes_valid_auc']:.4f}; cross network "
        f"MSE {mse:.5f} ({epochs} epochs)")
    for width in cfg.widths:
        row = {"width": width, "mse": {"cross": result["teacher"]["mse"]}}
        for kd_weight in (1.0, 0.0):
            student = _student(spec, cfg, width)
            # Without KD the main MLP learns the labels alone (the paper's
            # stage 1, train_parallel=False): with the parallel MLP in the
            # fused loss and no KD term, z_M alone would be unanchored.
            distiller = Distiller(teacher, student, kd_weight=kd_weight,
                                  train_parallel=bool(kd_weight))
            tag = "" if kd_weight else "_nokd"
            row[f"epochs_distill{tag}"] = _fit_trainer(distiller, train,
                                                       valid, cfg)
            p = _probabilities(scores_fn(student), inputs)
            row["mse"][f"main1{tag}"] = _mse(p["main"], p_true)
            if kd_weight:
                row["main1_vs_cross_mse"] = _mse(p["main"], p_cross)
                row["epochs_align"] = _fit_trainer(Aligner(student), train,
                                                   valid, cfg)
                p = _probabilities(scores_fn(student), inputs)
                for key, col in (("main", "main"), ("parallel", "parallel"),
                                 ("fused", "dsmlp")):
                    row["mse"][col] = _mse(p[key], p_true)
        result["widths"].append(row)
        log(f"[fidelity] width {width}: " + ", ".join(
            f"{k} {v:.5f}" for k, v in row["mse"].items()))
    return result


def _student(spec: FeatureSpec, cfg: FidelityConfig, width: int
             ) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(cfg.seed + 3)
    student = build_model("dsmlp", {
        "embedding_dim": cfg.embedding_dim,
        "main_hidden_units": [width] * cfg.depth,
        "parallel_hidden_units": [width] * cfg.depth,
        "dropout": 0.0, "batch_norm": False, "embedding_l2": 0.0}, spec)
    student(student.dummy_inputs())
    return student


def _fit_trainer(trainer: tf.keras.Model, train, valid,
                 cfg: FidelityConfig) -> int:
    trainer.compile(optimizer=tf.keras.optimizers.Adam(cfg.learning_rate))
    return _fit(trainer, train, valid, cfg)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


def _rows_of(x: np.ndarray, cfg: FidelityConfig) -> np.ndarray:
    """Index into `all_inputs(cfg.vocab)` of each row of ids `x`."""
    v = cfg.vocab
    d = x - 2
    return d[:, 0] * v * v + d[:, 1] * v + d[:, 2]


def markdown(result: dict[str, Any]) -> str:
    """The MSE table (rows: widths; columns: `COLUMNS`)."""
    lines = ["| MLP width | " + " | ".join(COLUMNS)
             + " | main1 vs cross |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for row in result["widths"]:
        lines.append(f"| {row['width']} | " + " | ".join(
            f"{row['mse'][c]:.5f}" for c in COLUMNS)
            + f" | {row['main1_vs_cross_mse']:.5f} |")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str) -> bool:
    """Figure 3 of the paper: MSE against the truth per MLP width."""
    rows = result["widths"]
    return plot_widths([r["width"] for r in rows],
                       {c: [r["mse"][c] for r in rows] for c in COLUMNS},
                       "MSE against p* (all inputs)", path)


def plot_widths(widths: list[int], means: dict[str, list[float]],
                ylabel: str, path: str,
                stds: dict[str, list[float]] | None = None) -> bool:
    """One line per column over the MLP widths (log2 axis), with bars of
    `stds` where given."""
    from tfdsmlp.experiments.aggregate import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for col, values in means.items():
        ax.errorbar(widths, values, yerr=stds[col] if stds else None,
                    marker="o", capsize=3, label=col)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("MLP width (each hidden layer)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def write_result(result: dict[str, Any], out: str, stem: str = "fidelity",
                 table=None, figure=None) -> None:
    """STEM.json, STEM.md and STEM.png in `out`: by default one study's
    (`markdown`, `plot`); `table` and `figure` write other results
    (the seeds' summary)."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{stem}.json"), "w",
              encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(out, f"{stem}.md"), "w", encoding="utf-8") as f:
        f.write((table or markdown)(result) + "\n")
    (figure or plot)(result, os.path.join(out, f"{stem}.png"))


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(w) for w in text.split(","))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tfdsmlp.experiments.fidelity", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = FidelityConfig()
    p.add_argument("--out", required=True,
                   help="Directory for fidelity.json, fidelity.md and "
                        "fidelity.png (with --seeds: seed_<s>/ per seed and "
                        "fidelity_seeds.json, .md and .png).")
    p.add_argument("--widths", default=",".join(map(str, defaults.widths)),
                   help="Comma-separated MLP widths. Default: "
                        f"{','.join(map(str, defaults.widths))}.")
    names = ("vocab", "rows", "valid_rows", "depth", "embedding_dim",
             "cross_layers", "epochs")
    for name in names:
        p.add_argument(f"--{name.replace('_', '-')}", type=int,
                       default=getattr(defaults, name),
                       help=f"FidelityConfig.{name}. Default: "
                            f"{getattr(defaults, name)}.")
    seeding = p.add_mutually_exclusive_group()
    seeding.add_argument("--seed", type=int, default=defaults.seed,
                         help="FidelityConfig.seed: the planted truth's, "
                              "the rows' and the models'. Default: "
                              f"{defaults.seed}.")
    seeding.add_argument(
        "--seeds", default=None,
        help="Comma-separated seeds: one study per seed in OUT/seed_<s>/ "
             "(a finished one with the same settings is read, not run "
             "again; other settings are an error), then the mean and std "
             "over seeds of every MSE and of KD's paired effect "
             "(main1 - main1_nokd) in OUT/fidelity_seeds.*. "
             "See tfdsmlp/experiments/fidelity_seeds.py.")
    args = p.parse_args(argv)
    try:
        cfg = FidelityConfig(
            widths=_ints(args.widths), seed=args.seed,
            **{k: getattr(args, k) for k in names})
        seeds = _ints(args.seeds) if args.seeds is not None else None
    except ValueError as e:
        p.error(str(e))
    if seeds is not None:
        from tfdsmlp.experiments.fidelity_seeds import markdown_seeds, run_seeds

        try:
            summary = run_seeds(cfg, seeds, args.out)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(markdown_seeds(summary))
        return 0
    result = run_fidelity(cfg)
    write_result(result, args.out)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
