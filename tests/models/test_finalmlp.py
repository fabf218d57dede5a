"""FinalMLP feature-selection contexts, given by field names."""

from __future__ import annotations

import tfdsmlp  # noqa: F401  (Keras 2; conftest imports it before TF)
from tfdsmlp.config import ConfigError
from tfdsmlp.layers import FeatureEmbedding, FeatureSelectionGate
from tfdsmlp.models import FinalMLP, FinalMLPConfig, build_model

import numpy as np
import pytest
import tensorflow as tf
from tiny_data import make_rows

SMALL = {"embedding_dim": 4, "mlp1_hidden_units": [8],
         "mlp2_hidden_units": [4], "fs_hidden_units": [8], "num_heads": 2,
         "mlp1_dropout": 0.0, "mlp2_dropout": 0.0}


def inputs(n=8):
    ids, dense, _ = make_rows(n, seed=4)
    return {"ids": ids, "dense": dense}


def var_names(model):
    return [w.name for w in model.weights]


def test_context_field_names_become_indices(tiny_spec):
    model = build_model("finalmlp", {**SMALL, "fs1_context": ["user"],
                                     "fs2_context": ["ctx", "item"]},
                        tiny_spec)
    assert type(model) is FinalMLP
    assert model.fs1_context == (0,) and model.fs2_context == (2, 1)
    model(inputs())
    assert model.get_config()["fs1_context"] == [0]
    assert isinstance(model.ctx1, FeatureEmbedding)
    assert model.ctx1.vocab_sizes == [5]
    assert model.ctx2.vocab_sizes == [4, 7]
    assert not any("context_bias" in n for n in var_names(model))
    assert len([m for m in model.submodules
                if isinstance(m, FeatureSelectionGate)]) == 2


def test_context_embeddings_drive_the_gates(tiny_spec):
    model = build_model("finalmlp", {**SMALL, "fs1_context": ["user"],
                                     "fs2_context": ["item"]}, tiny_spec)
    x = inputs()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=True))
    grads = tape.gradient(loss, model.ctx1.trainable_weights
                          + model.ctx2.trainable_weights)
    for g in grads:
        assert g is not None
        assert np.abs(tf.convert_to_tensor(g).numpy()).max() > 0


def test_without_context_the_gates_use_a_learned_bias(tiny_spec):
    model = build_model("finalmlp", SMALL, tiny_spec)
    model(inputs())
    assert model.ctx1 is None and model.ctx2 is None
    assert len([n for n in var_names(model) if "context_bias" in n]) == 2


def test_without_feature_selection(tiny_spec):
    model = build_model("finalmlp", {**SMALL, "use_fs": False}, tiny_spec)
    assert model(inputs()).shape == (8, 1)
    assert not [m for m in model.submodules
                if isinstance(m, FeatureSelectionGate)]


def test_unknown_context_field_lists_categorical_fields(tiny_spec):
    for bad in ("usr", "price"):  # misspelt; numeric field
        with pytest.raises(ValueError) as e:
            build_model("finalmlp", {**SMALL, "fs1_context": [bad]},
                        tiny_spec)
        msg = str(e.value)
        assert "fs1_context" in msg and bad in msg
        assert "['user', 'item', 'ctx']" in msg


def test_context_indices_checked_when_built_directly():
    config = FinalMLPConfig(fs2_context=(2,), mlp1_hidden_units=(4,),
                            mlp2_hidden_units=(4,), num_heads=2)
    with pytest.raises(ValueError, match="fs2_context"):
        FinalMLP([5, 7], config=config)


def test_context_names_need_the_feature_spec(tiny_spec):
    config = FinalMLPConfig(fs1_context=("user",), mlp1_hidden_units=(4,),
                            mlp2_hidden_units=(4,), num_heads=2)
    with pytest.raises(ValueError, match="from_feature_spec"):
        FinalMLP([5, 7, 4], config=config)
    model = FinalMLP.from_feature_spec(config, tiny_spec)
    assert model.config.fs1_context == (0,)
    # indices (as `get_config` writes them) are accepted by the config too
    again = FinalMLP.from_config(model.get_config())
    assert again.config == model.config


def test_heads_must_divide_stream_widths(tiny_spec):
    with pytest.raises(ConfigError, match=r"mlp2_hidden_units.*num_heads=3"):
        build_model("finalmlp", {**SMALL, "num_heads": 3,
                                 "mlp1_hidden_units": [6]}, tiny_spec)
