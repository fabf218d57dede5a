"""Every model: forward shape, a few training steps, save/load round trips.

One table of small settings per model variant; each variant is built through
the registry (`build_model(name, params, spec)`), as users and presets do.
Training runs once per variant (cached) and feeds the round-trip tests, so
they compare trained weights and updated batch-norm statistics.
"""

from __future__ import annotations

import functools

import tfdsmlp  # noqa: F401  (Keras 2; conftest imports it before TF)
from tfdsmlp.models import MODELS, build_model

import numpy as np
import pytest
import tensorflow as tf
from tiny_data import make_rows, make_spec

SMALL = {"embedding_dim": 4, "embedding_l2": 0.01}
CASES = {
    "dnn": ("dnn", {"hidden_units": [16, 8], "dropout": 0.1}),
    "deepfm": ("deepfm", {"hidden_units": [8], "dropout": 0.1}),
    "dcnv2_parallel": ("dcnv2", {"num_cross_layers": 2, "hidden_units": [8],
                                 "structure": "parallel"}),
    "dcnv2_stacked": ("dcnv2", {"num_cross_layers": 2, "hidden_units": [8],
                                "structure": "stacked"}),
    "gdcn_parallel": ("gdcn", {"num_cross_layers": 2, "hidden_units": [8],
                               "structure": "parallel"}),
    "gdcn_stacked": ("gdcn", {"num_cross_layers": 2, "hidden_units": [8],
                              "structure": "stacked"}),
    "finalmlp_context": ("finalmlp", {
        "mlp1_hidden_units": [8], "mlp2_hidden_units": [4],
        "fs_hidden_units": [8], "num_heads": 2, "fs1_context": ["user"],
        "fs2_context": ["item", "ctx"]}),
    "finalmlp_no_context": ("finalmlp", {
        "mlp1_hidden_units": [8], "mlp2_hidden_units": [4],
        "fs_hidden_units": [8], "num_heads": 2}),
    "autoint": ("autoint", {"attention_layers": 2, "num_heads": 2,
                            "attention_dim": 8, "hidden_units": [8],
                            "use_wide": False}),
    "autoint_wide": ("autoint", {"attention_layers": 1, "num_heads": 2,
                                 "attention_dim": 8, "hidden_units": [8],
                                 "use_wide": True}),
    "xdeepfm": ("xdeepfm", {"cin_layer_sizes": [4, 4], "hidden_units": [8]}),
}
BCE = tf.keras.losses.BinaryCrossentropy(from_logits=True)


TEACHERS = {"dnn", "deepfm", "dcnv2", "gdcn", "finalmlp", "autoint",
            "xdeepfm"}


def test_table_covers_every_teacher_model():
    assert {name for name, _ in CASES.values()} == TEACHERS
    assert TEACHERS <= set(MODELS)


def build(case: str, seed: int = 0):
    name, params = CASES[case]
    tf.keras.utils.set_random_seed(seed)
    return build_model(name, {**SMALL, **params}, make_spec())


def batch():
    ids, dense, labels = make_rows(32, seed=7)
    ids[:4, 2] = 0  # some padding ids
    return {"ids": ids, "dense": dense}, labels


def eval_loss(model, x, y) -> float:
    return float(BCE(y, model(x, training=False)))


@functools.cache
def trained(case: str):
    """(model after 5 Adam steps on one fixed batch, loss before, after)."""
    model = build(case)
    x, y = batch()
    before = eval_loss(model, x, y)
    # Eager steps keep this cheap; the SavedModel tests trace every model.
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss=BCE,
                  run_eagerly=True)
    history = model.fit(x, y, batch_size=32, epochs=5, shuffle=False,
                        verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    return model, before, eval_loss(model, x, y)


@pytest.mark.parametrize("case", CASES)
def test_forward_gives_float32_logits(case, tiny_batch):
    model = build(case)
    x, _ = tiny_batch
    for training in (False, True):
        logits = model(x, training=training)
        assert logits.shape == (32, 1)
        assert logits.dtype == tf.float32
        assert np.all(np.isfinite(logits.numpy()))
    # Also from tensors of a different batch size, int32 ids included.
    logits = model({"ids": tf.constant(x["ids"][:3], tf.int32),
                    "dense": tf.constant(x["dense"][:3])})
    assert logits.shape == (3, 1)
    assert model.losses, "embedding_l2 > 0 should add regularization losses"


@pytest.mark.parametrize("case", CASES)
def test_adam_steps_reduce_the_loss(case):
    _, before, after = trained(case)
    assert after < before - 1e-3, (before, after)


# One variant per model (SavedModel saving traces every layer: slow); the
# `.keras` test below covers every variant.
@pytest.mark.parametrize("case", ["dnn", "deepfm", "dcnv2_stacked",
                                  "gdcn_parallel", "finalmlp_context",
                                  "autoint_wide", "xdeepfm"])
def test_saved_model_round_trip(case, tmp_path):
    model, _, _ = trained(case)
    x, _ = batch()
    expected = model(x, training=False).numpy()
    path = str(tmp_path / "saved_model")
    model.save(path, save_format="tf")
    loaded = tf.keras.models.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded(x, training=False).numpy(), expected,
                               rtol=1e-6, atol=1e-6)
    assert loaded.get_config() == model.get_config()
    assert len(loaded.weights) == len(model.weights)
    # The plain-TensorFlow view of the same SavedModel (as serving sees it).
    tf_loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(
        tf_loaded(tf.nest.map_structure(tf.constant, x), training=False),
        expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_keras_format_round_trip(case, tmp_path):
    model, _, _ = trained(case)
    x, _ = batch()
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded(x, training=False).numpy(),
                               model(x, training=False).numpy(),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_config_round_trip_with_weights(case):
    model, _, _ = trained(case)
    x, _ = batch()
    config = model.get_config()
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    clone(x)  # build
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(x, training=False).numpy(),
                               model(x, training=False).numpy(),
                               rtol=1e-6, atol=1e-6)
    # Also through Keras' generic (de)serialization.
    again = tf.keras.utils.deserialize_keras_object(
        tf.keras.utils.serialize_keras_object(model))
    assert type(again) is type(model)


@pytest.mark.parametrize("case", ["dnn", "finalmlp_context"])
def test_same_seed_same_initial_outputs(case):
    x, _ = batch()
    a = build(case, seed=3)(x, training=False).numpy()
    b = build(case, seed=3)(x, training=False).numpy()
    np.testing.assert_array_equal(a, b)


def test_model_without_numeric_fields():
    spec = make_spec(numeric=())
    ids, _, _ = make_rows(8, seed=1, num_numeric=0)
    for name, params in CASES.values():
        model = build_model(name, {**SMALL, **params}, spec)
        assert model({"ids": ids}).shape == (8, 1), name
