"""Distiller (stage 1) and Aligner (stage 2) on a fixed tiny batch."""

import dataclasses

import tfdsmlp  # noqa: F401
from tfdsmlp.distill import (
    Aligner,
    AlignerConfig,
    Distiller,
    DistillerConfig,
    KDLoss,
)
from tfdsmlp.models import build_model
from tfdsmlp.training.run_config import AlignConfig, DistillConfig

import numpy as np
import pytest
import tensorflow as tf

TEACHER = {"hidden_units": [16], "num_cross_layers": 2, "dropout": 0.0}
STUDENT = {"main_hidden_units": [16], "parallel_hidden_units": [8],
           "dropout": 0.0, "embedding_l2": 0.01}


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
    d = Distiller(teacher, student, kd_weight=1.0, kd_loss="kl",
                  train_parallel=False)
    d.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    hist = d.fit(x, y, batch_size=32, epochs=15, verbose=0).history
    assert all(np.array_equal(a, b.numpy())
               for a, b in zip(before_t, teacher.weights))
    assert not teacher.trainable
    changed = [not np.array_equal(a, b.numpy())
               for a, b in zip(before_s, student.trainable_weights)]
    assert any(changed)
    # with train_parallel=False (paper) only the main stream is trained
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


# The Python API and the `run` command share one source of defaults.
TRAINER_SETTINGS = [
    (DistillConfig, DistillerConfig,
     lambda t, s, **kw: Distiller(t, s, **kw)),
    (AlignConfig, AlignerConfig, lambda t, s, **kw: Aligner(s, **kw)),
]


@pytest.mark.parametrize("stage, settings, make", TRAINER_SETTINGS)
def test_trainer_defaults_are_the_run_commands(tiny_spec, tiny_batch,
                                               stage, settings, make):
    teacher, student, _, _ = _models(tiny_spec, tiny_batch)
    trainer = make(teacher, student)
    assert issubclass(stage, settings)
    assert trainer.config == settings()
    run_defaults = stage()
    for field in dataclasses.fields(settings):
        value = getattr(trainer.config, field.name)
        assert value == getattr(run_defaults, field.name), field.name
        if hasattr(type(trainer), field.name):  # exposed as an attribute
            assert getattr(trainer, field.name) == value, field.name
    assert Distiller(teacher, student).train_parallel is True


def test_trainers_take_the_stage_config(tiny_spec, tiny_batch):
    teacher, student, _, _ = _models(tiny_spec, tiny_batch)
    stage1 = DistillConfig(kd_weight=0.3, kd_loss="kl", temperature=2.0,
                           train_parallel=False)
    d = Distiller(teacher, student, stage1)
    assert (d.kd_weight, d.train_parallel) == (0.3, False)
    assert (d.kd.kind, d.kd.temperature) == ("kl", 2.0)
    # keywords override the config's fields
    d = Distiller(teacher, student, stage1, kd_weight=0.0)
    assert d.kd_weight == 0.0 and d.kd.kind == "kl"
    # a KDLoss gives the kind and the temperature
    d = Distiller(teacher, student, kd_loss=KDLoss("mse_logit", 3.0))
    assert d.config.kd_loss == "mse_logit" and d.config.temperature == 3.0
    a = Aligner(student, AlignConfig(alpha=0.5, beta=0.0, enabled=False))
    assert (a.alpha, a.beta) == (0.5, 0.0)
    with pytest.raises(TypeError, match="AlignerConfig"):
        Aligner(student, stage1)
    with pytest.raises(TypeError):
        Distiller(teacher, student, kd_wieght=1.0)  # misspelt: not kept
    with pytest.raises(ValueError, match="kd_loss='softmax'"):
        Distiller(teacher, student, kd_loss="softmax")
