"""The serving graph's transforms equal data_tools' (`data_tools.formats`)
value by value, and bad raw values fail naming the feature."""

from __future__ import annotations

import datetime
import random

from tfdsmlp.export.raw_features import (
    RawFeatures,
    log_square_bucket,
    parse_hour,
    raw_inputs,
)
from tfdsmlp.features import FeatureSpec, FieldSpec

import numpy as np
import pytest
import tensorflow as tf

from data_tools import formats


def test_log_square_bucket_equals_the_converter():
    values = [b"", b"0", b"1", b"2", b"3", b"-1", b"-2", b"2.5", b"0.5",
              b"-0.5", b" 7 ", b"1e3", b"+12", b".5", b"5.", b"-3.7"]
    values += [str(v).encode() for v in
               sorted({round(np.exp(k / 4)) for k in range(80)})]
    values += [str(v).encode() for v in
               random.Random(0).sample(range(3, 10**7), 500)]
    got = tf.function(lambda x: log_square_bucket(x, "I1"))(
        tf.constant(values)).numpy().tolist()
    assert got == [formats.log_square_bucket(v) for v in values]


def test_bad_number_names_the_feature():
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"feature `I3`: expected a number as a string"):
        tf.function(lambda x: log_square_bucket(x, "I3"))(
            tf.constant([b"12", b"abc"]))


def test_hour_transforms_equal_the_converter():
    rng = random.Random(1)
    start = datetime.datetime(2000, 1, 1)
    hours = {b"14102100", b"14102923", b"16022912", b"00010100", b"99123123",
             b"20022900", b"24022900"}
    while len(hours) < 600:
        d = start + datetime.timedelta(hours=rng.randrange(100 * 365 * 24))
        hours.add(d.strftime("%y%m%d%H").encode())
    hours = sorted(hours)
    h, w = tf.function(lambda x: parse_hour(x, "hour"))(tf.constant(hours))
    assert [str(v).encode() for v in h.numpy()] == [
        formats.hour_of_day(x) for x in hours]
    assert [str(v).encode() for v in w.numpy()] == [
        formats.weekday(x) for x in hours]


@pytest.mark.parametrize("bad", [b"1410210", b"14102124", b"14023000",
                                 b"15022900", b"14130100", b"14100000",
                                 b"1410210a", b""])
def test_bad_hour_names_the_feature(bad):
    with pytest.raises(formats.RowError):
        formats.hour_of_day(bad)          # the converter rejects it too
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"feature `hour`: expected an hour YYMMDDHH"):
        tf.function(lambda x: parse_hour(x, "hour"))(
            tf.constant([b"14102100", bad]))


def _vocab(tmp_path, name, tokens):
    path = tmp_path / f"{name}.txt"
    path.write_bytes(b"".join(t + b"\n" for t in tokens))
    return str(path)


def test_avazu_like_spec_one_input_for_two_fields(tmp_path):
    spec = FeatureSpec(fields=(
        FieldSpec("hour_of_day", "categorical", 4, "hour_of_day", "hour"),
        FieldSpec("weekday", "categorical", 3, "weekday", "hour"),
        FieldSpec("site", "categorical", 4, "none", "site"),
        FieldSpec("I1", "numeric", 0, "log1p", "I1")))
    assert [(i.name, i.dtype) for i in raw_inputs(spec)] == [
        ("hour", "string"), ("site", "string"), ("I1", "float32")]
    raw = RawFeatures(spec, {
        "hour_of_day": _vocab(tmp_path, "h", [b"0", b"5"]),
        "weekday": _vocab(tmp_path, "w", [b"1"]),
        "site": _vocab(tmp_path, "s", [b"a", b"b"])})
    out = tf.function(raw)({
        "hour": tf.constant(["14102100", "14102105", "14102223"]),
        "site": tf.constant(["b", "", "zzz"]),
        "I1": tf.constant([0.0, -3.0, 10.0])})
    # 14-10-21 is a Tuesday (weekday 1), 14-10-22 a Wednesday (OOV)
    np.testing.assert_array_equal(out["ids"].numpy(),
                                  [[2, 2, 3], [3, 2, 0], [1, 1, 1]])
    np.testing.assert_allclose(out["dense"].numpy()[:, 0],
                               [0.0, 0.0, np.log1p(10.0)], rtol=1e-6)


def test_libfm_tokens_drop_the_value(tmp_path):
    spec = FeatureSpec(fields=(FieldSpec("user", "categorical", 4, "none",
                                         "user"),))
    raw = RawFeatures(spec, {"user": _vocab(tmp_path, "u", [b"12", b"7"])},
                      data_format="libfm")
    out = tf.function(raw)({"user": tf.constant(["7:1", "12", "9:1", ""])})
    assert out["ids"].numpy()[:, 0].tolist() == [3, 2, 1, 0]
    assert formats.libfm_token(b"7:1") == b"7"


def test_vocabulary_must_belong_to_the_spec(tmp_path):
    spec = FeatureSpec(fields=(FieldSpec("user", "categorical", 9, "none",
                                         "user"),))
    with pytest.raises(ValueError, match="does not belong"):
        RawFeatures(spec, {"user": _vocab(tmp_path, "u", [b"a"])})


def test_unsupported_transform_is_a_clear_error():
    spec = FeatureSpec(fields=(FieldSpec("x", "numeric", 0, "sqrt", "x"),))
    with pytest.raises(ValueError, match="cannot be exported"):
        raw_inputs(spec)
