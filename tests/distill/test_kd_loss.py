"""KDLoss: values equal NumPy formulas; bad arguments; config round trip."""

import tfdsmlp  # noqa: F401
from tfdsmlp.distill import KDLoss

import numpy as np
import pytest
import tensorflow as tf


def _sig(z):
    return 1 / (1 + np.exp(-z))


T_LOGITS = np.array([[2.0], [-1.0], [0.5]], np.float32)
S_LOGITS = np.array([[1.0], [0.0], [-0.5]], np.float32)


def _reference(kind, temp):
    t, s = T_LOGITS[:, 0].astype(np.float64), S_LOGITS[:, 0].astype(
        np.float64)
    if kind == "mse_logit":
        return (t - s) ** 2
    if kind == "mse_prob":
        return (_sig(t) - _sig(s)) ** 2
    pt, ps = _sig(t / temp), _sig(s / temp)
    bce = -(pt * np.log(ps) + (1 - pt) * np.log(1 - ps))
    if kind == "kl":
        bce += pt * np.log(pt) + (1 - pt) * np.log(1 - pt)
    return bce * temp ** 2


@pytest.mark.parametrize("kind", ["bce", "kl", "mse_prob", "mse_logit"])
@pytest.mark.parametrize("temp", [1.0, 3.0])
def test_values_match_numpy(kind, temp):
    loss = KDLoss(kind, temperature=temp)
    got = loss(y_true=T_LOGITS, y_pred=S_LOGITS).numpy()
    np.testing.assert_allclose(got, _reference(kind, temp), rtol=1e-5,
                               atol=1e-6)


def test_kl_is_zero_when_student_equals_teacher_and_bce_is_not():
    same = tf.constant(T_LOGITS)
    assert np.allclose(KDLoss("kl")(y_true=same, y_pred=same), 0, atol=1e-6)
    assert np.all(KDLoss("bce")(y_true=same, y_pred=same).numpy() > 0)


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="kind='softmax'"):
        KDLoss("softmax")
    with pytest.raises(ValueError, match="temperature=0"):
        KDLoss("kl", temperature=0)


def test_config_round_trip():
    loss = KDLoss("kl", temperature=2.0)
    again = KDLoss.from_config(loss.get_config())
    assert (again.kind, again.temperature) == ("kl", 2.0)
    restored = tf.keras.losses.deserialize(
        tf.keras.losses.serialize(loss))
    np.testing.assert_allclose(restored(y_true=T_LOGITS, y_pred=S_LOGITS),
                               loss(y_true=T_LOGITS, y_pred=S_LOGITS))
