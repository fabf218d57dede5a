"""TrainingBackup.load builds the model itself (process-level resume tests:
tests/faults/test_kill_resume.py)."""

from __future__ import annotations

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
from tfdsmlp.distill.student_trainer import StudentTrainer
from tfdsmlp.models import build_model
from tfdsmlp.training.backup import (
    TrainingBackup,
    _state_checkpoint,
    checkpointable_dropout,
)

import pytest
import tensorflow as tf


def test_load_builds_model_and_dropout_generators(tiny_spec, tmp_path):
    with checkpointable_dropout():
        model = build_model("dnn", {"hidden_units": [8, 8], "dropout": 0.5},
                            tiny_spec)
        trainer = StudentTrainer(model)
        assert not model.built and not trainer.built
        # no backup yet: nothing restored, but the variables now exist
        assert TrainingBackup(str(tmp_path / "backup")).load(trainer) == 0
        assert model.built and trainer.built
        model.compile(optimizer=tf.keras.optimizers.Adam())
        gens = _state_checkpoint(model).random_generators
        assert len(gens) == 2  # one per dropout layer
        assert all(isinstance(g, tf.random.Generator) for g in gens)


def test_load_refuses_an_unbuilt_model_without_dummy_inputs(tmp_path):
    model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="unbuilt Sequential"):
        TrainingBackup(str(tmp_path)).load(model)
