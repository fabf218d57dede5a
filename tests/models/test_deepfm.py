"""DeepFM's logit is LR + FM + MLP, recomputed in NumPy from its weights."""

from __future__ import annotations

import tfdsmlp  # noqa: F401  (Keras 2; conftest imports it before TF)
from tfdsmlp.models import DeepFM, build_model

import numpy as np
import tensorflow as tf
from tiny_data import TINY_VOCAB_SIZES, make_rows


def weight(layer, name):
    (w,) = [w for w in layer.weights
            if w.name.split("/")[-1].split(":")[0] == name]
    return w.numpy().astype(np.float64)


def embed(table, numeric_table, ids, dense):
    """FuxiCTR embedding: row `offset_f + id` (id 0 = zero), x * v."""
    offsets = np.cumsum([0] + list(TINY_VOCAB_SIZES[:-1]))
    cat = table[ids + offsets] * (ids != 0)[..., None]
    num = dense[..., None].astype(np.float64) * numeric_table[None]
    return np.concatenate([cat, num], axis=1)


def test_deepfm_logit_is_linear_plus_fm_plus_mlp(tiny_spec):
    model = build_model("deepfm", {"embedding_dim": 4, "hidden_units": [8],
                                   "dropout": 0.5, "batch_norm": True},
                        tiny_spec)
    assert type(model) is DeepFM
    ids, dense, _ = make_rows(6, seed=5)
    ids[0, 1] = ids[3, 0] = 0  # padding ids contribute nothing
    x = {"ids": ids, "dense": dense}
    model(x)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32)
                       for w in model.get_weights()])
    moving_var = [w for w in model.weights if "moving_variance" in w.name]
    for w in moving_var:  # keep batch-norm variances positive
        w.assign(tf.abs(w) + 0.5)

    emb = embed(weight(model.embedding, "embeddings"),
                weight(model.embedding, "numeric_embeddings"), ids, dense)
    assert emb.shape == (6, 5, 4)
    linear_layer = model.linear
    w_lin = embed(weight(linear_layer, "embeddings"),
                  weight(linear_layer, "numeric_embeddings"), ids, dense)
    linear = w_lin.sum(axis=(1, 2)) + weight(linear_layer, "bias")[0]
    fm = 0.5 * ((emb.sum(axis=1) ** 2) - (emb ** 2).sum(axis=1)).sum(axis=1)
    mlp = model.mlp(tf.constant(emb.reshape(6, -1), tf.float32),
                    training=False).numpy()[:, 0]

    logits = model(x, training=False).numpy()[:, 0]
    np.testing.assert_allclose(logits, linear + fm + mlp, rtol=1e-4,
                               atol=1e-4)
    # Each part matters (the check would catch a dropped term).
    for part in (linear, fm, mlp):
        assert np.abs(part).max() > 1e-2
