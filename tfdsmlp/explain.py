"""`explain`: every model and stream of a run, example by example.

The paper's case study (section 4.3.4, Figure 4): on examples where the
teacher is confidently wrong, does the stage-1 student copy the mistake,
and does the parallel stream pull the fused DS-MLP back towards the label?
For a finished `run` directory this scores one split with

  teacher          the teacher
  student          the DS-MLP after distillation (stage 1), fused
                   p = sigmoid(0.5 * (z_M + z_P)), and its streams
                   student_main = sigmoid(z_M), student_parallel
  dsmlp            the DS-MLP after alignment (stage 2), and its streams
                   dsmlp_main, dsmlp_parallel

and picks the rows where the teacher is confidently wrong: label 0 with
teacher p >= `confidence`, label 1 with p <= 1 - `confidence`. Summaries
are over all such rows (mean |y - p| per column, how often stage 2 moved
the prediction towards the label, how often the parallel stream is closer
to the label than the main stream); the table and plot show the `count`
most confident mistakes, half of each label where there are enough.

On synthetic data the planted truth can join them (`truth`): the true
probability p* = sigmoid(z*) of each row, from the true logits that
`data_tools synth` writes in row order beside its truth (`convert` keeps
the order). It tells the teacher's own mistakes from label noise: a row
where p* is as confidently wrong as the teacher is one that no model
should "correct" (the label is the unlikely draw), and only the rest can
be corrected by a stream.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import tfdsmlp  # noqa: F401
from tfdsmlp import metrics as M
from tfdsmlp.data.reader import make_dataset
from tfdsmlp.export.run_models import load_run_model
from tfdsmlp.run_dir import RunDir, RunDirError

import numpy as np
import tensorflow as tf


def run_predictions(run_dir: str | RunDir, split: str = "test",
                    max_rows: int = 0, batch_size: int = 4096,
                    data_dir: str | None = None) -> dict[str, np.ndarray]:
    """{"label": y, "teacher": p, "student": p, "student_main": p, ...}:
    probabilities of every model and stream of the run on the first
    `max_rows` rows of `split` (0 = all), in file order."""
    run = RunDir.open(run_dir)
    models = {"teacher": load_run_model(run, "teacher", data_dir)}
    for phase, needs in (("student", "distill"), ("dsmlp", "align")):
        if run.has_weights(needs):
            models[phase] = load_run_model(run, phase, data_dir)
    if len(models) == 1:
        raise RunDirError(
            f"run {run.path} has no DS-MLP to explain (finished phases: "
            f"{run.done_phases() or 'none'}): finish it with `python -m "
            f"tfdsmlp run --out {run.path} ...` first.")
    data = models["teacher"][2]
    fns = {name: scores_fn(model) for name, (model, *_) in models.items()}
    columns: dict[str, list[np.ndarray]] = {"label": []}
    rows = 0
    for x, y in make_dataset(data, split, batch_size, shuffle=False):
        if max_rows and rows + len(y) > max_rows:
            keep = max_rows - rows
            x = {k: v[:keep] for k, v in x.items()}
            y = y[:keep]
        columns["label"].append(np.reshape(y.numpy(), [-1]))
        for name, fn in fns.items():
            for key, logit in fn(x).items():
                column = name if key == "fused" else f"{name}_{key}"
                columns.setdefault(column, []).append(
                    M.sigmoid(np.reshape(logit.numpy(), [-1])))
        rows += len(y)
        if max_rows and rows >= max_rows:
            break
    if not rows:
        raise RunDirError(f"split {split!r} of {data} has no rows")
    return {k: np.concatenate(v) for k, v in columns.items()}


def true_logits_file(truth: str, split: str) -> str:
    """The file of `split`'s true logits: `truth` itself when it is a
    .npy file, else the `true_logits` template of the planted.json or
    dataset.json at `truth` (`data_tools.ceiling.truth_files`; any synth
    truth, not only a planted profile's)."""
    from data_tools.ceiling import true_logits_path, truth_files

    if truth.endswith(".npy"):
        if not os.path.isfile(truth):
            raise FileNotFoundError(f"--truth {truth}: no such file")
        return truth
    for file in truth_files(truth):
        if not os.path.isfile(file):
            continue
        with open(file, encoding="utf-8") as f:
            meta = json.load(f)
        meta = meta.get("synthetic", meta)
        if not meta.get("true_logits"):
            continue
        path = true_logits_path({**meta, "truth_file": file}, split)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"--truth {truth}: {file} names the true logits "
                f"{meta['true_logits']}, but {path} is missing")
        return path
    raise FileNotFoundError(
        f"--truth {truth}: no true logits found; expected a <split>_logit.npy "
        "file, or a planted.json / dataset.json with `true_logits` (written "
        "by `python -m data_tools synth`: the planted.json of `--output "
        "tsv`, the dataset directory of `--output dataset`)")


def truth_probabilities(path: str, split: str, rows: int,
                        whole_split: bool) -> np.ndarray:
    """p* = sigmoid(z*) of the first `rows` rows of `split` from its true
    logits at `path` (`true_logits_file`); the file must hold exactly the
    split's rows when the whole split is scored, at least `rows`
    otherwise."""
    z = np.load(path, mmap_mode="r")
    if len(z) < rows or (whole_split and len(z) != rows):
        raise ValueError(
            f"--truth: {path} holds {len(z)} true logits, the "
            f"scored {split} split {rows} rows, so they are not this "
            "split's rows in order; pass the truth of the synth run whose "
            f"{split} file was converted into this dataset (with no rows "
            "dropped)")
    return M.sigmoid(np.asarray(z[:rows], np.float64))


def scores_fn(model: tf.keras.Model):
    """tf.function of a batch returning the logits {"fused": z} and, for a
    dual-stream model, {"main": z_M, "parallel": z_P} too (each stream
    computed once; z = fuse(z_M, z_P))."""
    if hasattr(model, "stream_logits"):
        def scores(x):
            streams = model.stream_logits(x, training=False)
            return {"fused": model.fuse(streams), **streams}
    else:
        def scores(x):
            return {"fused": model(x, training=False)}
    return tf.function(scores)


def confidently_wrong(preds: dict[str, np.ndarray],
                      confidence: float = 0.9) -> np.ndarray:
    """Row indices where the teacher is confidently wrong, most confident
    first: label 0 with p >= confidence, label 1 with p <= 1 - confidence."""
    if not 0.5 <= confidence < 1.0:
        raise ValueError("`confidence` should be in [0.5, 1). Received: "
                         f"`confidence={confidence}`")
    y, p = preds["label"], preds["teacher"]
    error = np.abs(y - p)
    rows = np.flatnonzero(error >= confidence)
    return rows[np.argsort(-error[rows], kind="stable")]


def shown_rows(preds: dict[str, np.ndarray], rows: np.ndarray,
               count: int) -> np.ndarray:
    """Up to `count` of `rows` (most confident first): half negatives, half
    positives where both have enough, negatives first."""
    y = preds["label"][rows]
    neg, pos = rows[y < 0.5], rows[y >= 0.5]
    n_pos = min(len(pos), max(count // 2, count - len(neg)))
    n_neg = min(len(neg), count - n_pos)
    return np.concatenate([neg[:n_neg], pos[:n_pos]]).astype(np.int64)


def summarize(preds: dict[str, np.ndarray], rows: np.ndarray,
              confidence: float = 0.9) -> dict[str, Any]:
    """AUC and log loss of every column on all rows, and on the teacher's
    confident mistakes `rows` (found with `confidence`): mean |y - p| per
    column and the shares that say whether stage 2 and the parallel stream
    corrected them and, with a `truth` column, how many of them the truth
    makes as confidently (label noise) and how many it gets right."""
    y = preds["label"]
    columns = [k for k in preds if k != "label"]
    out: dict[str, Any] = {
        "rows": len(y), "confidently_wrong": len(rows),
        "negatives": int(np.sum(y[rows] < 0.5)),
        "all_rows": {k: {"auc": M.roc_auc(y, preds[k]),
                         "logloss": M.log_loss(y, preds[k])}
                     for k in columns}}
    if not len(rows):
        return out
    err = {k: np.abs(y[rows] - preds[k][rows]) for k in columns}
    out["mean_abs_error"] = {k: float(np.mean(e)) for k, e in err.items()}
    shares = {}
    for final in ("dsmlp", "student"):
        if final in err:
            shares[f"{final}_closer_than_teacher"] = float(
                np.mean(err[final] < err["teacher"]))
            shares[f"{final}_right_side"] = float(np.mean(err[final] < 0.5))
    if "dsmlp" in err and "student" in err:
        shares["align_moved_towards_label"] = float(
            np.mean(err["dsmlp"] < err["student"]))
    for model in ("dsmlp", "student"):
        if f"{model}_parallel" in err and f"{model}_main" in err:
            shares[f"{model}_parallel_closer_than_main"] = float(
                np.mean(err[f"{model}_parallel"] < err[f"{model}_main"]))
    if "truth" in err:
        # How many of the teacher's confident mistakes the truth makes too
        # (label noise) and how many it gets right (the teacher's own).
        shares["truth_as_confidently_wrong"] = float(
            np.mean(err["truth"] >= confidence))
        own = err["truth"] < 0.5
        shares["truth_right_side"] = float(np.mean(own))
        if "dsmlp" in err and own.any():
            shares["dsmlp_right_side_where_truth_is"] = float(
                np.mean(err["dsmlp"][own] < 0.5))
    out["shares"] = shares
    return out


def plot(preds: dict[str, np.ndarray], rows: np.ndarray, path: str,
         title: str = "") -> bool:
    """Figure 4 of the paper: prediction of each model per shown example,
    the labels as black crosses."""
    from tfdsmlp.experiments.aggregate import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(rows) + 2), 3.6))
    xs = np.arange(len(rows))
    styles = {"teacher": ("o", "-"), "student": ("s", "--"),
              "dsmlp_main": ("^", ":"), "dsmlp_parallel": ("v", ":"),
              "dsmlp": ("D", "-"), "truth": ("*", "-.")}
    for name, (marker, line) in styles.items():
        if name in preds:
            ax.plot(xs, preds[name][rows], marker=marker, linestyle=line,
                    label=name, alpha=0.8)
    ax.scatter(xs, preds["label"][rows], marker="x", color="black",
               label="label", zorder=3)
    ax.set_xlabel("example (teacher confidently wrong)")
    ax.set_ylabel("predicted probability")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=3)
    return save_figure(fig, path)


def explain_run(run_dir: str, out_dir: str, split: str = "test",
                count: int = 20, confidence: float = 0.9, max_rows: int = 0,
                batch_size: int = 4096, data_dir: str | None = None,
                truth: str | None = None) -> dict[str, Any]:
    """Writes OUT/explain.json (summary), OUT/explain.csv (the shown rows,
    every column) and OUT/explain.png; returns the summary. `truth`: the
    planted truth of synthetic data (`true_logits_file`), added as the
    column `truth`."""
    if count <= 0:
        raise ValueError(f"`count` should be positive. Received: {count}")
    # a bad truth path fails before scoring
    logits = None if truth is None else true_logits_file(truth, split)
    preds = run_predictions(run_dir, split, max_rows, batch_size, data_dir)
    if logits is not None:
        rows = len(preds["label"])
        whole = not max_rows or rows < max_rows
        preds["truth"] = truth_probabilities(logits, split, rows, whole)
    rows = confidently_wrong(preds, confidence)
    shown = shown_rows(preds, rows, count)
    summary = {"run": os.path.abspath(str(run_dir)), "split": split,
               "confidence": confidence,
               **summarize(preds, rows, confidence),
               "shown": [int(i) for i in shown]}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "explain.json"), "w",
              encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    columns = list(preds)
    with open(os.path.join(out_dir, "explain.csv"), "w", newline="",
              encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["row", *columns])
        for i in shown:
            writer.writerow([int(i), *(f"{preds[k][i]:.6f}"
                                       for k in columns)])
    if len(shown):
        plot(preds, shown, os.path.join(out_dir, "explain.png"),
             title=f"{os.path.basename(os.path.abspath(str(run_dir)))}: "
                   f"{split}, teacher error >= {confidence}")
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as the lines `explain` prints."""
    head = (f"{summary['split']}: {summary['rows']} rows; teacher "
            f"confidently wrong (|y - p| >= {summary['confidence']}) on "
            f"{summary['confidently_wrong']} ({summary['negatives']} "
            "negatives)")
    lines = [head, (f"{'column':<18}{'AUC':>8}{'logloss':>9}"
                   f"{'mean |y-p| on those':>22}")]
    errors = summary.get("mean_abs_error", {})
    for name, m in summary["all_rows"].items():
        err = f"{errors[name]:.4f}" if name in errors else "-"
        lines.append(f"{name:<18}{m['auc']:>8.4f}{m['logloss']:>9.4f}"
                     f"{err:>22}")
    for key, value in summary.get("shares", {}).items():
        lines.append(f"{key.replace('_', ' ')}: {100 * value:.1f}%")
    return "\n".join(lines)
