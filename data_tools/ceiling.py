"""The planted optimum that a converted dataset still allows (`ceiling`).

`synth --profile criteo|avazu` records the Bayes-optimal AUC and log loss
of its planted teacher (planted.json, or dataset.json's `synthetic`
section). No model of the *converted* rows can reach them: the converter
maps every token seen fewer than `--min-count` times in training (and
every token first seen in valid/test) to its field's OOV id, and the
hidden parameters of those tokens are then unknowable. The best any model
of the converted rows can do, with unlimited training rows and that
vocabulary, is the planted probability averaged over what the OOV cells
could be:

    p*(x) = E_theta[ sigmoid(z(x; theta_in, theta_oov)) ],
    theta_oov ~ N(0, s_f^2 I)   (each OOV cell's (w, e) drawn as the
                                 generator draws every token's)

where theta_in are the true parameters of the in-vocabulary tokens,
decoded from the dataset's vocabularies (the truth is a function of the
converted row; missing cells stay zero). The expectation is a Monte-Carlo
mean over `draws` draws per row; the report also gives the AUC with the
first half of the draws, so the Monte-Carlo error can be read off (noise
in p* can only lower the AUC, so the figure is, if anything, low). The
draws come in antithetic pairs (theta, -theta), which cancels the
first-order part's noise: on the first 100k test rows of the 1M-row
planted data (docs/SCALE.md; `ceiling("/work/scale/c1m", truth,
rows=100_000, draws=K, antithetic=A)`, session 12, beside a training
run), 16 independent draws gave AUC 0.83976 (8:
0.83912), 16 antithetic ones 0.84059 (8: 0.84058), 64 antithetic ones
0.84068, and the planted model with OOV cells as missing 0.84039.

This ceiling is an upper bound on what training can reach at that data
size: models also have to estimate theta_in (and the OOV mean) from
finitely many rows. A gap to it is estimation error, not lost features.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

from tfdsmlp.metrics import log_loss, roc_auc, sigmoid
from tfdsmlp.schema import OOV_ID

import numpy as np

from data_tools import profiles
from data_tools.planted import SHARES, PlantedTeacher

BLOCK_ROWS = 16384


def truth_files(path: str) -> list[str]:
    """Where a synth truth may be: `path` itself when it is a file, else a
    directory's planted.json (`--output tsv`) and dataset.json (`--output
    dataset`, its `synthetic` section), in that order."""
    return ([path] if os.path.isfile(path) else
            [os.path.join(path, "planted.json"),
             os.path.join(path, "dataset.json")])


def true_logits_path(truth: dict[str, Any], split: str) -> str:
    """The file of `split`'s true logits (synth writes them in row order):
    the truth's `true_logits` template, relative to its `truth_file`."""
    return os.path.join(os.path.dirname(truth.get("truth_file", "")),
                        truth.get("true_logits", "").replace("<split>",
                                                             split))


def load_truth(path: str) -> dict[str, Any]:
    """The planted truth of `synth --profile`: from a planted.json file, a
    directory holding one (`--output tsv`), or a dataset directory written
    by synth (`--output dataset`, dataset.json's `synthetic` section)."""
    for file in truth_files(path):
        if not os.path.isfile(file):
            continue
        with open(file) as f:
            meta = json.load(f)
        truth = meta.get("synthetic", meta)
        if "profile" in truth and "variance_shares" in truth:
            return {**truth, "truth_file": file}
        raise ValueError(f"{file} holds no planted truth of `synth --profile "
                         f"criteo|avazu` (no 'profile' and "
                         f"'variance_shares'); pass the planted.json of the "
                         f"synth run that made the raw files with --truth")
    raise FileNotFoundError(
        f"no planted truth at {path}: expected planted.json (synth --output "
        f"tsv) or a dataset.json with a 'synthetic' section (synth --output "
        f"dataset)")


def rebuild_teacher(truth: dict[str, Any]) -> PlantedTeacher:
    """The generator's planted teacher, rebuilt from its recorded profile,
    seed, training rows and variance shares, and checked against the
    recorded calibration (a mismatch means another generator version)."""
    from data_tools.synth_rows import RowGenerator
    shares = truth["variance_shares"]
    cross = (None if shares == SHARES else shares["cross"])
    prof = profiles.PROFILES[truth["profile"]]
    teacher = RowGenerator(prof, truth["seed"], truth["num_rows"],
                           cross).teacher
    want = truth.get("calibration") or {}
    got = teacher.describe()["calibration"]
    if want and not math.isclose(got["bias"], want["bias"], abs_tol=1e-5):
        raise ValueError(
            f"the planted teacher rebuilt from the truth's profile "
            f"{truth['profile']!r}, seed {truth['seed']} and "
            f"{truth['num_rows']} rows has bias {got['bias']}, the truth "
            f"records {want['bias']}: the data was made by another version "
            f"of data_tools.synth")
    return teacher


def ceiling(data_dir: str, truth: dict[str, Any], split: str = "test",
            draws: int = 16, seed: int = 0, rows: int | None = None,
            antithetic: bool = True, quiet: bool = True) -> dict[str, Any]:
    """AUC and log loss of p*(x) (module docstring) on `split` (its first
    `rows` rows; all if None) of the converted dataset `data_dir`, beside
    the recorded Bayes optimum and the planted model with every OOV cell
    treated as missing (a deterministic predictor of the same rows)."""
    from tfdsmlp.dataset_dir import DatasetDir

    from data_tools.inspect_dataset import load_examples, load_vocabs
    if draws < 2 or draws % 2:
        raise ValueError(f"`draws` should be even and at least 2 (drawn in "
                         f"antithetic pairs; the report compares half of "
                         f"them). Received: draws={draws}")
    teacher = rebuild_teacher(truth)
    spec = DatasetDir.open(data_dir).spec
    names = [f.name for f in spec.categorical]
    if spec.num_numeric or names != [f.name for f in teacher.fields]:
        raise ValueError(
            f"{data_dir}'s fields {names} (+{spec.num_numeric} numeric) are "
            f"not the planted teacher's {[f.name for f in teacher.fields]}: "
            f"convert the synth run's raw files with the profile's format "
            f"(e.g. --format criteo, every column categorical)")
    tables = param_tables(teacher, load_vocabs(data_dir))
    ex = load_examples(data_dir, split, num=rows)
    ids, labels = ex["ids"], ex["label"]
    rng = np.random.default_rng(seed)
    half = draws // 2
    p_missing, p_half, p_all = (np.empty(len(labels)) for _ in range(3))
    from tqdm import tqdm
    for lo in tqdm(range(0, len(labels), BLOCK_ROWS), desc=f"ceiling {split}",
                   unit=" blocks", disable=quiet, file=sys.stderr):
        at = slice(lo, lo + BLOCK_ROWS)
        p_missing[at], p_half[at], p_all[at] = row_probabilities(
            teacher, tables, ids[at], draws, rng, antithetic)
    bayes_auc, bayes_logloss = _bayes(truth, split, labels, rows is None)
    return {
        "data": data_dir, "split": split, "rows": len(labels),
        "oov_cell_share": round(float(np.mean(ids == OOV_ID)), 6),
        "rows_with_oov_share": round(float(np.mean(
            (ids == OOV_ID).any(axis=1))), 6),
        "draws": draws, "antithetic": antithetic,
        "ceiling_auc": round(roc_auc(labels, p_all), 6),
        f"ceiling_auc_{half}_draws": round(roc_auc(labels, p_half), 6),
        "ceiling_logloss": round(_logloss(labels, p_all), 6),
        "oov_as_missing_auc": round(roc_auc(labels, p_missing), 6),
        "oov_as_missing_logloss": round(_logloss(labels, p_missing), 6),
        "bayes_auc": bayes_auc, "bayes_logloss": bayes_logloss,
    }


def _bayes(truth: dict[str, Any], split: str, labels: np.ndarray,
           whole_split: bool) -> tuple[float | None, float | None]:
    """The Bayes optimum on the scored rows: from the true logits beside
    the truth (synth writes them in row order), else the recorded figures
    of the whole split (None for part of one)."""
    path = true_logits_path(truth, split)
    if os.path.isfile(path):
        z = np.load(path, mmap_mode="r")
        if len(z) >= len(labels) and (len(z) == len(labels)
                                      or not whole_split):
            z = np.asarray(z[:len(labels)], np.float64)
            return (round(roc_auc(labels, z), 6),
                    round(_logloss(labels, sigmoid(z)), 6))
    if not whole_split:
        return None, None
    return (truth.get("true_logit_auc", {}).get(split),
            truth.get("true_logit_logloss", {}).get(split))


def param_tables(teacher: PlantedTeacher, vocabs: dict[str, list[bytes]]
                 ) -> list[np.ndarray]:
    """Per teacher field, its hidden parameters by converted id: rows 0
    and 1 (padding, OOV) zero, row id the token vocabs[field][id - 2]'s."""
    return [np.concatenate([np.zeros((2, teacher.width), np.float32),
                            teacher.token_params(i, vocabs[f.name])])
            for i, f in enumerate(teacher.fields)]


def row_probabilities(teacher: PlantedTeacher, tables: list[np.ndarray],
                      ids: np.ndarray, draws: int, rng: np.random.Generator,
                      antithetic: bool = True
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Planted probabilities of rows of converted ids (n, fields): with OOV
    cells as missing, and p*(x) over the first half and over all `draws`
    draws of the OOV cells' parameters. `tables[i]`: field i's parameters
    by id (rows 0 and 1, padding and OOV, zero)."""
    params = np.stack([t[ids[:, i]] for i, t in enumerate(tables)], axis=1)
    p_missing = sigmoid(teacher.logits_of_params(params))
    oov = ids == OOV_ID
    if not oov.any():
        return p_missing, p_missing, p_missing
    scale = teacher.field_scale[np.nonzero(oov)[1]][:, None]
    total, half = np.zeros(len(ids)), None
    for k in range(draws):
        if k % 2 == 0 or not antithetic:
            eps = rng.standard_normal((scale.shape[0], teacher.width))
        else:
            eps = -eps  # antithetic pair: (theta, -theta), both N(0, s^2)
        params[oov] = eps * scale
        total += sigmoid(teacher.logits_of_params(params))
        if k + 1 == draws // 2:
            half = total / (draws // 2)
    return p_missing, half, total / draws


def _logloss(labels: np.ndarray, p: np.ndarray) -> float:
    return log_loss(labels, p, eps=1e-12)
