"""Exact metrics against brute-force references."""

import math

from tfdsmlp import metrics

import numpy as np
import pytest


def pairwise_auc(y, p) -> float:
    """O(n^2) ROC AUC: P(score_pos > score_neg), ties count one half."""
    y = np.asarray(y).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    pos, neg = p[y > 0.5], p[y <= 0.5]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum())
                 / (pos.size * neg.size))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("levels", [None, 2, 7])
def test_roc_auc_matches_pairwise_reference(seed, levels):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(np.float32)
    y[:2] = [0.0, 1.0]  # both classes present
    p = rng.random(n) + 0.3 * y
    if levels is not None:  # many ties, also across classes
        p = np.round(p * levels) / levels
    assert metrics.roc_auc(y, p) == pytest.approx(pairwise_auc(y, p),
                                                  abs=1e-12)


def test_roc_auc_known_values():
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert metrics.roc_auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert metrics.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    # (n, 1) labels and (n,) scores are the same vectors.
    y = np.array([[0], [1], [1], [0]], np.float32)
    assert metrics.roc_auc(y, [0.1, 0.9, 0.4, 0.6]) == 0.75


def test_roc_auc_is_rank_invariant_and_accepts_logits():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    logits = rng.normal(size=200) + y
    assert metrics.roc_auc(y, logits) == pytest.approx(
        metrics.roc_auc(y, metrics.sigmoid(logits)), abs=1e-12)


def test_log_loss_matches_reference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500).astype(np.float64)
    p = rng.uniform(0.01, 0.99, 500)
    expected = -np.mean([math.log(pi) if yi else math.log(1 - pi)
                         for yi, pi in zip(y, p)])
    assert metrics.log_loss(y, p) == pytest.approx(expected, rel=1e-12)
    assert metrics.log_loss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))


def test_log_loss_clips_certain_mistakes():
    value = metrics.log_loss([1, 0], [0.0, 1.0])
    assert np.isfinite(value)
    assert value == pytest.approx(-math.log(1e-7), rel=1e-6)


def test_rela_impr():
    assert metrics.rela_impr(0.8, 0.75) == pytest.approx(20.0)
    assert metrics.rela_impr(0.75, 0.75) == pytest.approx(0.0)
    assert metrics.rela_impr(0.7, 0.75) == pytest.approx(-20.0)
    with pytest.raises(ValueError, match="0.5"):
        metrics.rela_impr(0.8, 0.5)


def test_sigmoid_is_stable():
    z = np.array([-1000.0, -5.0, 0.0, 5.0, 1000.0])
    s = metrics.sigmoid(z)
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s[1:4], 1 / (1 + np.exp(-z[1:4])), rtol=1e-12)
    assert s[0] == 0.0 and s[-1] == 1.0


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0]])
def test_roc_auc_needs_both_classes(labels):
    with pytest.raises(ValueError, match="both classes"):
        metrics.roc_auc(labels, [0.1, 0.2, 0.3])


@pytest.mark.parametrize("fn", [metrics.roc_auc, metrics.log_loss])
def test_size_mismatch_and_bad_inputs(fn):
    with pytest.raises(ValueError, match="3 values.*2"):
        fn([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="0 examples"):
        fn([], [])
    with pytest.raises(ValueError, match="NaN"):
        fn([0, 1], [0.1, float("nan")])
