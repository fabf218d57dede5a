"""Tests for FactorizationMachine."""

import itertools

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import FactorizationMachine

import numpy as np
import pytest
import tensorflow as tf


def test_equals_sum_of_pairwise_inner_products(rng):
    e = rng.normal(size=(3, 4, 5)).astype(np.float32)
    out = FactorizationMachine()(e)
    expected = [[sum(e[b, i] @ e[b, j]
                     for i, j in itertools.combinations(range(4), 2))]
                for b in range(3)]
    assert out.shape == (3, 1)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_hand_checkable_value():
    e = np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32)  # <e1, e2> = 11
    np.testing.assert_allclose(FactorizationMachine()(e), [[11.0]])


def test_rejects_flat_input():
    with pytest.raises(ValueError, match="ndim=3"):
        FactorizationMachine()(tf.zeros([2, 6]))


def test_roundtrip(assert_layer_roundtrip, tmp_path, rng):
    assert_layer_roundtrip(FactorizationMachine,
                           rng.normal(size=(3, 4, 5)).astype(np.float32),
                           tmp_path)
