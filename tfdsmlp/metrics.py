"""Exact evaluation metrics on a whole split (float64, as FuxiCTR/sklearn).

- `roc_auc`: exact ROC AUC (Mann-Whitney U with tie handling).
- `log_loss`: mean binary cross entropy of probabilities (clipped 1e-7).
- `rela_impr`: RelaImpr = ((AUC_m - 0.5) / (AUC_base - 0.5) - 1) * 100.
"""

from __future__ import annotations

import numpy as np


def _check(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_prob, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but y_pred has "
                         f"{p.size}; expected the same number.")
    if y.size == 0:
        raise ValueError("Cannot compute a metric on 0 examples.")
    if not np.all(np.isfinite(p)):
        raise ValueError("y_pred contains NaN or inf values.")
    return y, p


def roc_auc(y_true, y_pred) -> float:
    """Exact ROC AUC; ties in `y_pred` count one half."""
    y, p = _check(y_true, y_pred)
    pos = y > 0.5
    n_pos = int(pos.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both classes; received "
                         f"{n_pos} positives and {n_neg} negatives.")
    order = np.argsort(p, kind="mergesort")
    sorted_p = p[order]
    ranks = np.empty(y.size, dtype=np.float64)
    # Average ranks over tied groups.
    boundaries = np.flatnonzero(np.diff(sorted_p)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [y.size]])
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each group
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def log_loss(y_true, y_prob, eps: float = 1e-7) -> float:
    """Mean binary cross entropy of probabilities."""
    y, p = _check(y_true, y_prob)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def rela_impr(auc_model: float, auc_base: float) -> float:
    """Relative AUC improvement over a base model, in percent."""
    if auc_base == 0.5:
        raise ValueError("RelaImpr is undefined for a base AUC of 0.5.")
    return ((auc_model - 0.5) / (auc_base - 0.5) - 1.0) * 100.0


def sigmoid(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * z))
