"""Every signature of the loaded SavedModel equals the in-process model on
the test split's raw rows; OOV, empty batches and bad requests."""

from __future__ import annotations

from tfdsmlp.export.serving_requests import columns, serialized_examples
from tfdsmlp.servecheck.emulator import ServingError

import numpy as np
import pytest
import tensorflow as tf

TOL = 1e-5


def _close(out, ref):
    np.testing.assert_allclose(np.reshape(out["probability"], [-1]),
                               ref["probability"], atol=TOL, rtol=0)
    np.testing.assert_allclose(np.reshape(out["logit"], [-1]), ref["logit"],
                               atol=TOL, rtol=TOL)


def _raw(rows):
    return rows.arrays()


def test_test_rows_include_oov_and_missing_values(test_rows):
    assert len(test_rows) == 64
    assert (test_rows.ids == 1).any(), "fixture should exercise OOV"
    assert (test_rows.ids == 0).any(), "fixture should exercise missing"


@pytest.mark.parametrize("kind", ["dsmlp", "teacher"])
def test_every_signature_equals_the_in_process_model(
        kind, servable, teacher_servable, test_rows, reference):
    s = servable if kind == "dsmlp" else teacher_servable
    ref = reference[kind]
    raw = _raw(test_rows)
    _close(s.call("serving_default", raw), ref)
    _close(s.call("predict_indexed", {"ids": test_rows.ids,
                                      "dense": test_rows.dense}), ref)
    ex = serialized_examples(test_rows.rows(), test_rows.inputs)
    _close(s.call("predict_examples", {"examples": ex}), ref)
    cls = s.call("classify", {"inputs": ex})
    np.testing.assert_allclose(cls["scores"][:, 1], ref["probability"],
                               atol=TOL)
    np.testing.assert_allclose(cls["scores"][:, 0], 1 - ref["probability"],
                               atol=TOL)
    assert cls["classes"].tolist() == [[b"0", b"1"]] * len(test_rows)
    reg = s.call("regress", {"inputs": ex})
    assert reg["outputs"].shape == (len(test_rows),)
    np.testing.assert_allclose(reg["outputs"], ref["probability"], atol=TOL)
    pre = s.call("preprocess", raw)
    np.testing.assert_array_equal(pre["ids"], test_rows.ids)
    np.testing.assert_array_equal(pre["dense"], test_rows.dense)


def test_teacher_and_dsmlp_differ(reference):
    assert not np.allclose(reference["dsmlp"]["logit"],
                           reference["teacher"]["logit"])


def test_unseen_values_are_oov_not_errors(servable):
    raw = {f"c{i}": np.array([b"never-seen", b"", f"c{i}_0".encode()],
                             object) for i in range(6)}
    raw.update(x0=np.float32([0, 1, 2]), x1=np.float32([0, 0, 0]))
    ids = servable.call("preprocess", raw)["ids"]
    assert (ids[0] == 1).all() and (ids[1] == 0).all()
    assert (ids[2] >= 2).all()
    out = servable.call("serving_default", raw)
    assert out["probability"].shape == (3, 1)
    assert np.isfinite(out["probability"]).all()


def test_batch_by_one_columns_are_accepted(servable, test_rows, reference):
    raw = {k: v.reshape(-1, 1) for k, v in _raw(test_rows).items()}
    _close(servable.call("serving_default", raw), reference["dsmlp"])


@pytest.mark.parametrize("signature", ["serving_default", "predict_indexed",
                                       "predict_examples", "classify",
                                       "regress", "preprocess"])
def test_empty_batch_gives_empty_result(servable, signature):
    feeds = {
        "predict_indexed": {"ids": np.zeros([0, 6], np.int64),
                            "dense": np.zeros([0, 2], np.float32)},
        "predict_examples": {"examples": np.array([], object)},
        "classify": {"inputs": np.array([], object)},
        "regress": {"inputs": np.array([], object)},
    }
    raw = {f"c{i}": np.array([], object) for i in range(6)}
    raw.update(x0=np.zeros([0], np.float32), x1=np.zeros([0], np.float32))
    out = servable.call(signature, feeds.get(signature, raw))
    assert out
    for name, value in out.items():
        assert value.shape[0] == 0, (name, value.shape)


# ------------------------------------------------------------ bad requests
def _good(n=2):
    raw = {f"c{i}": np.array([f"c{i}_0".encode()] * n, object)
           for i in range(6)}
    raw.update(x0=np.float32([0.5] * n), x1=np.float32([1.0] * n))
    return raw


def test_missing_feature_is_named(servable):
    raw = _good()
    del raw["c3"]
    with pytest.raises(ServingError, match=r"missing feature\(s\) \['c3'\]"):
        servable.call("serving_default", raw)
    # the loaded signature itself (a plain TensorFlow user) names it too
    with pytest.raises(TypeError, match="c3"):
        servable.loaded.signatures["serving_default"](
            **{k: tf.constant(v) for k, v in raw.items()})


def test_wrong_dtype_is_named_with_the_expected_one(servable):
    raw = _good()
    raw["c1"] = np.float32([1.0, 2.0])
    with pytest.raises(ServingError,
                       match=r"feature `c1` expects DT_STRING .* got DT_FLOAT"):
        servable.call("serving_default", raw)
    raw = _good()
    raw["x0"] = np.array([b"1.5", b"2"], object)
    with pytest.raises(ServingError,
                       match=r"feature `x0` expects DT_FLOAT .* got DT_STRING"):
        servable.call("serving_default", raw)


@pytest.mark.parametrize("bad_shape", [(2, 2), (), (1, 2, 1)])
def test_wrong_shape_is_named_with_the_expected_one(servable, bad_shape):
    raw = _good()
    n = int(np.prod(bad_shape)) if bad_shape else 1
    raw["c2"] = np.array([b"c2_0"] * n, object).reshape(bad_shape)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"feature `c2`: expected a string tensor of "
                             r"shape \[batch\] or \[batch, 1\]"):
        servable.call("serving_default", raw)


def test_features_with_different_batch_sizes(servable):
    raw = _good(3)
    raw["x1"] = np.float32([1.0, 2.0])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="feature `x1`: batch size differs"):
        servable.call("serving_default", raw)


def test_non_finite_number_is_named(servable):
    raw = _good()
    raw["x0"] = np.float32([np.nan, 1.0])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="feature `x0`: expected finite float32"):
        servable.call("serving_default", raw)


def test_bad_indexed_inputs_are_named(servable):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"input `ids`: expected int64 ids of shape "
                             r"\[batch, 6\]"):
        servable.call("predict_indexed", {
            "ids": np.zeros([2, 5], np.int64),
            "dense": np.zeros([2, 2], np.float32)})
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"input `ids`: every id must be in "
                             r"\[0, vocab_size\)"):
        servable.call("predict_indexed", {
            "ids": np.full([2, 6], 999, np.int64),
            "dense": np.zeros([2, 2], np.float32)})
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"input `dense`: expected float32 values of "
                             r"shape \[batch, 2\]"):
        servable.call("predict_indexed", {
            "ids": np.zeros([2, 6], np.int64),
            "dense": np.zeros([2, 3], np.float32)})


def test_bad_examples_name_the_feature(servable, test_rows):
    rows = test_rows.rows(2)
    for r in rows:
        del r["c4"]
    inputs = [i for i in test_rows.inputs if i.name != "c4"]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Feature: c4 \(data type: string\) is "
                             r"required but could not be found"):
        servable.call("predict_examples",
                      {"examples": serialized_examples(rows, inputs)})
    # a categorical value sent as int64_list instead of bytes_list
    ex = tf.train.Example()
    ex.ParseFromString(serialized_examples(test_rows.rows(1),
                                           test_rows.inputs)[0])
    ex.features.feature["c0"].Clear()
    ex.features.feature["c0"].int64_list.value.append(7)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"(?s)c0.*expected type: string"):
        servable.call("classify", {"inputs": np.array(
            [ex.SerializeToString()], object)})


def test_columns_helper_matches_rows(test_rows):
    cols = columns(test_rows.rows(), test_rows.inputs)
    for k, v in test_rows.arrays().items():
        if v.dtype == object:
            assert list(cols[k]) == list(v)
        else:
            np.testing.assert_array_equal(cols[k], v)
