"""Distiller (stage 1) and Aligner (stage 2) on a fixed tiny batch."""

import numpy as np
import pytest

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.distill import Aligner, Distiller
from tfdsmlp.models import build_model

TEACHER = dict(hidden_units=[16], num_cross_layers=2, dropout=0.0)
STUDENT = dict(main_hidden_units=[16], parallel_hidden_units=[8],
               dropout=0.0, embedding_l2=0.01)


def _sig(z):
    return 1 / (1 + np.exp(-z))


def _bce(y, z):
    p = _sig(z)
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def _models(spec, batch, seed=0):
    tf.keras.utils.set_random_seed(seed)
    teacher = build_model("gdcn", TEACHER, spec)
    student = build_model("dsmlp", STUDENT, spec)
    x = {k: tf.constant(v) for k, v in batch[0].items()}
    teacher(x), student(x)
    return teacher, student, x, tf.constant(batch[1])


def _reg(student):
    return sum(0.005 * float(np.sum(np.square(v.numpy())))
               for v in student.trainable_variables if "embedding" in v.name)


@pytest.mark.parametrize("train_parallel", [False, True])
def test_stage1_loss_equals_formula(tiny_spec, tiny_batch, train_parallel):
    teacher, student, x, y = _models(tiny_spec, tiny_batch)
    d = Distiller(teacher, student, kd_weight=0.7, kd_loss="mse_logit",
                  train_parallel=train_parallel)
    t = teacher(x, training=False).numpy()
    terms, _ = d.compute_terms(x, y, t, training=True)
    streams = student.stream_logits(x, training=True)
    zm, zp = streams["main"].numpy(), streams["parallel"].numpy()
    z_ctr = 0.5 * (zm + zp) if train_parallel else zm
    y = y.numpy()
    kd = float(np.mean((t - zm) ** 2))
    reg = _reg(student)
    np.testing.assert_allclose(terms["ctr_loss"], _bce(y, z_ctr), rtol=1e-5)
    np.testing.assert_allclose(terms["kd_loss"], kd, rtol=1e-5)
    np.testing.assert_allclose(terms["reg_loss"], reg, rtol=1e-4)
    np.testing.assert_allclose(terms["loss"], _bce(y, z_ctr) + 0.7 * kd
                               + reg, rtol=1e-5)


def test_stage2_loss_equals_formula(tiny_spec, tiny_batch):
    _, student, x, y = _models(tiny_spec, tiny_batch)
    a = Aligner(student, alpha=0.8, beta=1.2)
    terms, _ = a.compute_terms(x, y, training=True)
    s = student.stream_logits(x, training=True)
    zm, zp, y = s["main"].numpy(), s["parallel"].numpy(), y.numpy()
    want = (_bce(y, 0.5 * (zm + zp)) + 0.8 * _bce(y, zm)
            + 1.2 * _bce(y, zp) + _reg(student))
    np.testing.assert_allclose(terms["bce_main"], _bce(y, zm), rtol=1e-5)
    np.testing.assert_allclose(terms["bce_parallel"], _bce(y, zp),
                               rtol=1e-5)
    np.testing.assert_allclose(terms["loss"], want, rtol=1e-5)


def test_stage1_freezes_teacher_trains_student_and_kd_falls(tiny_spec,
                                                            tiny_batch):
    teacher, student, x, y = _models(tiny_spec, tiny_batch)
    teacher.compile(optimizer=tf.keras.optimizers.Adam(1e-2),
                    loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
    teacher.fit(x, y, batch_size=32, epochs=20, verbose=0)  # informative
    before_t = [w.numpy().copy() for w in teacher.weights]
    before_s = [w.numpy().copy() for w in student.trainable_weights]
    d = Distiller(teacher, student, kd_weight=1.0, kd_loss="kl")
    d.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    hist = d.fit(x, y, batch_size=32, epochs=15, verbose=0).history
    assert all(np.array_equal(a, b.numpy())
               for a, b in zip(before_t, teacher.weights))
    assert not teacher.trainable
    changed = [not np.array_equal(a, b.numpy())
               for a, b in zip(before_s, student.trainable_weights)]
    assert any(changed)
    # only the main stream is trained in stage 1 by default
    main_ids = {id(v) for v in student.stream_variables("main")}
    for was, var, moved in zip(before_s, student.trainable_weights, changed):
        assert moved == (id(var) in main_ids), var.name
    assert hist["kd_loss"][0] > 0
    assert hist["kd_loss"][-1] < 0.5 * hist["kd_loss"][0]
    assert set(hist) >= {"loss", "ctr_loss", "kd_loss", "reg_loss", "auc"}


def test_stage2_tracks_every_term_and_learns(tiny_spec, tiny_batch):
    _, student, x, y = _models(tiny_spec, tiny_batch)
    a = Aligner(student, alpha=1.0, beta=1.0)
    a.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    hist = a.fit(x, y, batch_size=32, epochs=10, verbose=0).history
    assert set(hist) >= {"loss", "bce_fused", "bce_main", "bce_parallel",
                         "reg_loss", "auc"}
    assert hist["bce_fused"][-1] < hist["bce_fused"][0]
    result = a.evaluate(x, y, verbose=0, return_dict=True)
    assert set(result) == {"loss", "auc"}


def test_bad_weights_are_rejected(tiny_spec, tiny_batch):
    teacher, student, _, _ = _models(tiny_spec, tiny_batch)
    with pytest.raises(ValueError, match="kd_weight=-1"):
        Distiller(teacher, student, kd_weight=-1)
    with pytest.raises(ValueError, match="beta=-0.5"):
        Aligner(student, beta=-0.5)
