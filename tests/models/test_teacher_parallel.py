"""TeacherParallel (ablation "w/o main MLP"): fusion, training, round trip."""

import tfdsmlp  # noqa: F401
from tfdsmlp.distill import Aligner
from tfdsmlp.models import build_model
from tfdsmlp.models.teacher_parallel import TeacherParallel

import numpy as np
import pytest
import tensorflow as tf

PARALLEL = {"use_main": False, "parallel_hidden_units": [8], "dropout": 0.0}


def _model(spec):
    teacher = build_model("dnn", {"hidden_units": [8], "dropout": 0.0}, spec)
    parallel = build_model("dsmlp", PARALLEL, spec)
    return TeacherParallel(teacher, parallel)


def test_logit_is_mean_of_teacher_and_parallel(tiny_spec, tiny_batch):
    model = _model(tiny_spec)
    x = {k: tf.constant(v) for k, v in tiny_batch[0].items()}
    z = model(x).numpy()
    zt = model.teacher(x).numpy()
    zp = model.parallel(x).numpy()
    np.testing.assert_allclose(z, 0.5 * (zt + zp), rtol=1e-6)
    assert z.shape == (len(tiny_batch[1]), 1)


def test_aligner_trains_teacher_and_parallel(tiny_spec, tiny_batch):
    model = _model(tiny_spec)
    x = {k: tf.constant(v) for k, v in tiny_batch[0].items()}
    model(x)
    before = [v.numpy().copy() for v in model.trainable_variables]
    aligner = Aligner(model, alpha=1.0, beta=1.0)
    aligner.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    hist = aligner.fit(x, tiny_batch[1], batch_size=32, epochs=8,
                       verbose=0).history
    assert hist["bce_fused"][-1] < hist["bce_fused"][0]
    assert hist["bce_main"][0] > 0 and hist["bce_parallel"][0] > 0
    moved = [not np.array_equal(a, v.numpy())
             for a, v in zip(before, model.trainable_variables)]
    assert sum(moved) >= len(moved) // 2


def test_rejects_a_parallel_model_with_a_main_stream(tiny_spec):
    teacher = build_model("dnn", {"hidden_units": [8]}, tiny_spec)
    both = build_model("dsmlp", {"main_hidden_units": [4],
                                 "parallel_hidden_units": [4]}, tiny_spec)
    with pytest.raises(ValueError, match="use_main=True"):
        TeacherParallel(teacher, both)


def test_config_round_trip(tiny_spec, tiny_batch):
    model = _model(tiny_spec)
    x = {k: tf.constant(v) for k, v in tiny_batch[0].items()}
    model(x)
    again = TeacherParallel.from_config(model.get_config())
    again(x)
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(again(x), model(x), rtol=1e-6)
