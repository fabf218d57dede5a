"""Each model's formula on a tiny input with every weight set to one.

Input: 2 categorical fields (vocabularies 3 and 4) and 1 numeric field;
rows ids [1, 2], dense [0.5] and ids [0, 3] (padding), dense [2.0]. With
all-ones tables the field embeddings are e = 1 (id != 0), 0 (padding) and
x * 1 (numeric), so with `embedding_dim=1` the rows embed to [1, 1, 0.5]
(sum 2.5) and [0, 1, 2] (sum 3). DeepFM, DCNv2 and GDCN have NumPy
recomputations in their own test files.
"""

from __future__ import annotations

import tfdsmlp  # noqa: F401  (Keras 2; conftest imports it before TF)
from tfdsmlp.models import (
    DNN,
    AutoInt,
    AutoIntConfig,
    DNNConfig,
    DualStreamMLP,
    DualStreamMLPConfig,
    FinalMLP,
    FinalMLPConfig,
    XDeepFM,
    XDeepFMConfig,
)

import numpy as np
import pytest
import tensorflow as tf

X = {"ids": tf.constant([[1, 2], [0, 3]], tf.int64),
     "dense": tf.constant([[0.5], [2.0]])}
SUMS = np.array([2.5, 3.0])  # sum of each row's embeddings (dim 1)
PLAIN = {"embedding_dim": 1, "activation": "relu", "dropout": 0.0,
         "batch_norm": False}


def ones(model):
    model(X)
    for w in model.weights:
        w.assign(tf.ones_like(w))
    return model


def logits(model):
    return model(X, training=False).numpy()[:, 0]


def test_dnn_is_an_mlp_over_the_embeddings():
    # MLP [3] -> 1: h = relu(2 * s + 1) per unit (dim 2: sums double),
    # logit = 3 h + 1.
    config = DNNConfig(**{**PLAIN, "embedding_dim": 2}, hidden_units=(3,))
    model = ones(DNN([3, 4], 1, config=config))
    h = 2 * SUMS + 1
    np.testing.assert_allclose(logits(model), 3 * h + 1)  # [19, 22]


def test_xdeepfm_is_linear_plus_cin_plus_mlp():
    # LR = s + 1; CIN (one map): sum_{h,m} x_h x_m + 1 = s^2 + 1, head
    # adds 1; MLP [2]: 2 * relu(s + 1) + 1.
    config = XDeepFMConfig(**PLAIN, cin_layer_sizes=(1,), hidden_units=(2,))
    model = ones(XDeepFM([3, 4], 1, config=config))
    want = (SUMS + 1) + (SUMS ** 2 + 2) + (2 * (SUMS + 1) + 1)
    np.testing.assert_allclose(logits(model), want)  # [19.75, 24]
    no_mlp = ones(XDeepFM([3, 4], 1, config=XDeepFMConfig(
        **PLAIN, cin_layer_sizes=(1,), hidden_units=())))
    assert no_mlp.mlp is None
    np.testing.assert_allclose(logits(no_mlp), (SUMS + 1) + (SUMS ** 2 + 2))


def test_autoint_is_attention_plus_mlp_plus_wide():
    # Q = K = 0 gives uniform attention: every field's output is
    # relu(mean_f e_f * [1, 1]); the flattened 3 x 2 outputs sum to 2 s,
    # the head adds 1. MLP [2]: 2 * relu(s + 1) + 1; wide: s + 1.
    config = AutoIntConfig(**PLAIN, attention_layers=1, num_heads=1,
                           attention_dim=2, use_scale=False,
                           use_residual=False, layer_norm=False,
                           attention_dropout=0.0, use_wide=True,
                           hidden_units=(2,))
    model = ones(AutoInt([3, 4], 1, config=config))
    attention = model.attention[0]
    for dense in (attention.query, attention.key):
        dense.kernel.assign(tf.zeros_like(dense.kernel))
    want = (2 * SUMS + 1) + (2 * (SUMS + 1) + 1) + (SUMS + 1)
    np.testing.assert_allclose(logits(model), want, rtol=1e-6)  # [17.5, 20]


@pytest.mark.parametrize("use_fs", [False, True])
def test_finalmlp_fuses_two_streams_bilinearly(use_fs):
    # h1 = relu(s + 1) * [1, 1], h2 = relu(s + 1) * [1, 1, 1, 1];
    # logit = (sum h1 + 1) + (sum h2 + 1) + sum h1 * sum h2 (one head).
    # With zero gate weights, gate = 2 * sigmoid(0) = 1: the same logit.
    config = FinalMLPConfig(embedding_dim=1, mlp1_hidden_units=(2,),
                            mlp1_dropout=0.0, mlp1_batch_norm=False,
                            mlp2_hidden_units=(4,), mlp2_dropout=0.0,
                            mlp2_batch_norm=False, use_fs=use_fs,
                            fs_hidden_units=(2,), num_heads=1)
    model = ones(FinalMLP([3, 4], 1, config=config))
    if use_fs:
        for gate in (model.gate1, model.gate2):
            for w in gate.gate_mlp.weights:
                w.assign(tf.zeros_like(w))
    h = SUMS + 1
    want = (2 * h + 1) + (4 * h + 1) + (2 * h) * (4 * h)
    np.testing.assert_allclose(logits(model), want, rtol=1e-6)  # [121, 154]


def _hand_set_dsmlp():
    """Main MLP [3] over the all-ones table: z_M = 3 (s + 1) + 1; parallel
    MLP [] over an all-twos table: z_P = 2 s + 1."""
    config = DualStreamMLPConfig(
        embedding_dim=1, main_hidden_units=(3,), parallel_hidden_units=(),
        dropout=0.0, batch_norm=False)
    model = ones(DualStreamMLP([3, 4], 1, config=config))
    for w in model.parallel_embedding.weights:
        w.assign(2 * tf.ones_like(w))
    return model


def test_dsmlp_averages_its_two_stream_logits():
    model = _hand_set_dsmlp()
    z_m, z_p = 3 * (SUMS + 1) + 1, 2 * SUMS + 1
    streams = model.stream_logits(X)
    np.testing.assert_allclose(streams["main"].numpy()[:, 0], z_m)
    np.testing.assert_allclose(streams["parallel"].numpy()[:, 0], z_p)
    np.testing.assert_allclose(logits(model), 0.5 * (z_m + z_p))  # [15, 17.5]
    main_only = ones(DualStreamMLP([3, 4], 1, config=DualStreamMLPConfig(
        embedding_dim=1, main_hidden_units=(3,), dropout=0.0,
        batch_norm=False, use_parallel=False)))
    assert main_only.parallel_embedding is None
    np.testing.assert_allclose(logits(main_only), z_m)


def test_dsmlp_stream_model_keeps_one_stream_and_its_weights(tmp_path):
    model = _hand_set_dsmlp()  # z_M = 3 (s + 1) + 1, z_P = 2 s + 1
    main, parallel = model.stream_model("main"), model.stream_model("parallel")
    assert (main.use_main, main.use_parallel) == (True, False)
    assert (parallel.use_main, parallel.use_parallel) == (False, True)
    np.testing.assert_allclose(logits(main), 3 * (SUMS + 1) + 1)  # [11.5, 13]
    np.testing.assert_allclose(logits(parallel), 2 * SUMS + 1)  # [6, 7]
    # Only the kept stream's variables: the parallel-only model carries no
    # main table (it is never called, so never built).
    assert main.count_params() == sum(
        int(tf.size(v)) for v in model.stream_variables("main"))
    assert parallel.count_params() == sum(
        int(tf.size(v)) for v in model.stream_variables("parallel"))
    # A copy, not a view: training the DS-MLP further leaves it as it was.
    model.main_mlp.weights[0].assign_add(tf.ones_like(
        model.main_mlp.weights[0]))
    np.testing.assert_allclose(logits(main), 3 * (SUMS + 1) + 1)
    main.save(str(tmp_path / "main.keras"))
    loaded = tf.keras.models.load_model(str(tmp_path / "main.keras"))
    np.testing.assert_allclose(logits(loaded), logits(main))
    with pytest.raises(ValueError, match="no parallel stream"):
        main.stream_model("parallel")
    with pytest.raises(ValueError, match='"main" or "parallel"'):
        model.stream_model("fused")
