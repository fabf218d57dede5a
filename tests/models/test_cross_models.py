"""DCNv2 uses TFRS `Cross` layers, GDCN gated cross layers: checked by layer
type, weights and a NumPy recomputation of the logit."""

from __future__ import annotations

import tfdsmlp  # noqa: F401  (Keras 2; conftest imports it before TF)
from tfdsmlp.layers import GatedCrossNetwork
from tfdsmlp.models import GDCN, DCNv2, build_model

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs
from tiny_data import make_rows

PARAMS = {"embedding_dim": 3, "num_cross_layers": 2, "hidden_units": [8],
          "dropout": 0.0, "batch_norm": False}


def inputs():
    ids, dense, _ = make_rows(6, seed=2)
    return {"ids": ids, "dense": dense}


def randomize(model, seed=0):
    """Larger random weights, so every term visibly matters."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32)
                       for w in model.get_weights()])


def sublayers(model, cls):
    return [m for m in model.submodules if isinstance(m, cls)]


def flat_embedding(model, x):
    return model.flat_embedding(x)[1].numpy().astype(np.float64)


def head(model, h):
    kernel, bias = (w.numpy() for w in model.head.weights)
    return h @ kernel + bias


def mlp(model, h):
    return model.mlp(tf.constant(h, tf.float32), training=False).numpy()


@pytest.mark.parametrize("structure", ["parallel", "stacked"])
def test_dcnv2_uses_tfrs_cross(tiny_spec, structure):
    model = build_model("dcnv2", {**PARAMS, "structure": structure},
                        tiny_spec)
    assert type(model) is DCNv2 and model.cross_type == "dcnv2"
    x = inputs()
    model(x)
    randomize(model)
    crosses = sublayers(model, tfrs.layers.dcn.Cross)
    assert len(crosses) == 2
    assert not sublayers(model, GatedCrossNetwork)
    d = model.flat_dim
    assert d == 5 * 3
    x0 = xl = flat_embedding(model, x)
    for layer in crosses:
        kernel, bias = (w.numpy() for w in layer.weights)
        assert kernel.shape == (d, d) and bias.shape == (d,)
        xl = x0 * (xl @ kernel + bias) + xl  # x_{l+1} = x0 * (W x_l + b) + x_l
    hidden = (mlp(model, xl) if structure == "stacked"
              else np.concatenate([xl, mlp(model, x0)], axis=1))
    np.testing.assert_allclose(model(x, training=False).numpy(),
                               head(model, hidden), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("structure", ["parallel", "stacked"])
def test_gdcn_uses_gated_cross(tiny_spec, structure):
    model = build_model("gdcn", {**PARAMS, "structure": structure},
                        tiny_spec)
    assert type(model) is GDCN and model.cross_type == "gated"
    x = inputs()
    model(x)
    randomize(model, seed=1)
    assert not sublayers(model, tfrs.layers.dcn.Cross)
    (gated,) = sublayers(model, GatedCrossNetwork)
    d = model.flat_dim
    weights = {w.name.split("/")[-1].split(":")[0]: w.numpy()
               for w in gated.weights}
    assert sorted(weights) == ["bias_0", "bias_1", "gate_kernel_0",
                               "gate_kernel_1", "kernel_0", "kernel_1"]
    x0 = xl = flat_embedding(model, x)
    for i in range(2):
        w, wg, b = (weights[f"kernel_{i}"], weights[f"gate_kernel_{i}"],
                    weights[f"bias_{i}"])
        assert w.shape == wg.shape == (d, d) and b.shape == (d,)
        gate = 1.0 / (1.0 + np.exp(-(xl @ wg)))
        xl = x0 * (xl @ w + b) * gate + xl
    hidden = (mlp(model, xl) if structure == "stacked"
              else np.concatenate([xl, mlp(model, x0)], axis=1))
    np.testing.assert_allclose(model(x, training=False).numpy(),
                               head(model, hidden), rtol=1e-4, atol=1e-4)


def test_gdcn_is_dcnv2_with_gated_layers(tiny_spec):
    dcn = build_model("dcnv2", PARAMS, tiny_spec)
    gdcn = build_model("gdcn", PARAMS, tiny_spec)
    dcn_gated = build_model("dcnv2", {**PARAMS, "cross_type": "gated"},
                            tiny_spec)
    x = inputs()
    for m in (dcn, gdcn, dcn_gated):
        m(x)
    d = dcn.flat_dim
    # Per cross layer: DCNv2 has W (d*d) and b (d); GDCN also a gate W_g.
    assert gdcn.count_params() - dcn.count_params() == 2 * d * d
    assert dcn_gated.count_params() == gdcn.count_params()
    assert isinstance(gdcn, DCNv2)
