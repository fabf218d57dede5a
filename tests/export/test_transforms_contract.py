"""The converter (Python and C) and the serving graph implement the feature
transforms of `tfdsmlp.transforms_contract`: same names, and every golden
case gives the contract's token, number or rejection in each of them."""

from __future__ import annotations

import re

from tfdsmlp.export.raw_features import (
    CATEGORICAL_TRANSFORMS,
    NUMERIC_TRANSFORMS,
    RawFeatures,
)
from tfdsmlp.features import FeatureSpec, FieldSpec
from tfdsmlp.predict import parse_number
from tfdsmlp.transforms_contract import (
    GOLDEN_CASES,
    TRANSFORMS,
    Reject,
    cases,
)

import numpy as np
import pytest
import tensorflow as tf

from data_tools import formats, native

PYTHON = {"none": lambda raw: raw, "libfm_token": formats.libfm_token,
          "log_square_bucket": formats.log_square_bucket,
          "log1p": formats.log1p_number, "plain_number": formats.plain_number,
          "hour_of_day": formats.hour_of_day, "weekday": formats.weekday}
HOUR = ("hour_of_day", "weekday")


def _id(case):
    return f"{case.transform}:{case.raw!r}"


def _split(name):
    good = [c for c in cases(name) if not isinstance(c.expected, Reject)]
    return good, [c for c in cases(name) if isinstance(c.expected, Reject)]


def test_every_implementation_has_exactly_the_contract_transforms():
    assert set(PYTHON) == set(TRANSFORMS)
    # the Python converter's transform functions, named as in the C job
    assert set(native._TRANSFORMS.values()) == set(TRANSFORMS)
    with open(native.SOURCE, encoding="utf-8") as f:
        names = re.search(r"transform_code\(.*?names\[\] = \{(.*?)\};",
                          f.read(), re.DOTALL).group(1)
    assert set(re.findall(r'"(\w+)"', names)) == set(TRANSFORMS)
    # the serving graph exports every dataset.json name of each kind
    assert {(t.kind, t.stored_as) for t in TRANSFORMS.values()} == {
        *(("categorical", n) for n in CATEGORICAL_TRANSFORMS),
        *(("numeric", n) for n in NUMERIC_TRANSFORMS)}
    for name in TRANSFORMS:
        assert _split(name)[0], f"{name} has no golden case"
    # a value Python rejects is never converted by the C engine itself
    assert all(c.native == "python" for c in GOLDEN_CASES
               if isinstance(c.expected, Reject))


@pytest.mark.parametrize("case", GOLDEN_CASES, ids=_id)
def test_python_converter(case):
    fn = PYTHON[case.transform]
    if isinstance(case.expected, Reject):
        with pytest.raises(formats.RowError) as e:
            fn(case.raw)
        assert e.value.reason == case.expected.reason
    else:
        assert fn(case.raw) == case.expected


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_serving_graph(name, tmp_path):
    """`RawFeatures` (the export's graph) on the raw values; a numeric
    input is the number the client sends (`tfdsmlp.predict.parse_number`,
    which refuses what the converter rejects)."""
    t = TRANSFORMS[name]
    good, bad = _split(name)
    src = "hour" if name in HOUR else "col"
    vocab, tokens = {}, sorted({c.expected for c in good} - {b""})
    if t.kind == "categorical":
        path = tmp_path / "vocab.txt"
        path.write_bytes(b"".join(tok + b"\n" for tok in tokens))
        vocab[name] = str(path)
    field = FieldSpec(name, t.kind, len(tokens) + 2 if vocab else 0,
                      t.stored_as, src)
    raw = RawFeatures(FeatureSpec(fields=(field,)), vocab,
                      "libfm" if name == "libfm_token" else "")
    fn = tf.function(raw.__call__, input_signature=[raw.input_signature()])
    if t.kind == "categorical":
        ids = fn({src: tf.constant([c.raw for c in good])})["ids"].numpy()
        got = [b"" if i == 0 else b"<OOV>" if i == 1 else tokens[i - 2]
               for i in ids[:, 0]]
        assert got == [c.expected for c in good]
        for c in bad:
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match=f"feature `{src}`: expected"):
                fn({src: tf.constant([c.raw])})
    else:
        sent = [parse_number(c.raw) for c in good]
        out = fn({src: tf.constant(sent, tf.float32)})["dense"].numpy()
        np.testing.assert_allclose(out[:, 0], [c.expected for c in good],
                                   rtol=1e-6)
        for c in bad:
            with pytest.raises(ValueError):
                parse_number(c.raw)


# ------------------------------------------------------------- the C engine
CRITEO_REST = b"\t" * 12 + b"\tr%d" + b"\t" * 25
# transform -> (format, convert options, header, row, field read back,
# field holding b"r<row index>")
LAYOUTS = {
    "none": ("csv", {"label": "label", "categorical": ["idx", "v"]},
             b"label,idx,v\n", b"0,r%d,%s\n", "v", "idx"),
    "plain_number": ("csv", {"label": "label", "categorical": ["idx"],
                             "numeric": ["v"]},
                     b"label,idx,v\n", b"0,r%d,%s\n", "v", "idx"),
    "libfm_token": ("libfm", {}, b"", b"0 r%d:1 %s\n", "f1", "f0"),
    "log_square_bucket": ("criteo", {}, b"", None, "I1", "C1"),
    "log1p": ("criteo", {"criteo_numeric": "log1p"}, b"", None, "I1", "C1"),
    "hour_of_day": ("avazu", {}, b"id,click,hour,site\n", b"%d,0,%s,r%d\n",
                    "hour_of_day", "site"),
    "weekday": ("avazu", {}, b"id,click,hour,site\n", b"%d,0,%s,r%d\n",
                "weekday", "site"),
}


@pytest.fixture(scope="module")
def c_engine():
    path, why = native.available()
    if path is None:
        pytest.skip(f"the C converter (data_tools/native/ctrconvert.c) is "
                    f"not available here: {why}")
    return path


def _row(name, i, raw):
    fmt, _, _, row, _, _ = LAYOUTS[name]
    if fmt == "criteo":
        return b"0\t" + raw + CRITEO_REST % i + b"\n"
    if fmt == "avazu":
        return row % (i, raw, i)
    return row % (i, raw)


def _convert(name, raws, tmp_path, tag):
    from data_tools.convert import convert

    fmt, opts, header, _, _, _ = LAYOUTS[name]
    src = tmp_path / f"{tag}.txt"
    src.write_bytes(header + b"".join(_row(name, i, r)
                                      for i, r in enumerate(raws)))
    out = tmp_path / f"{tag}_out"
    summary = convert(fmt, str(src), str(out), engine="native", workers=1,
                      shards=1, quiet=True, **opts)
    assert summary["engine"] == "native"
    return str(out)


def _read_back(out, name):
    """{row index: token or float32} of the field under test."""
    from tfdsmlp.dataset_dir import DatasetDir

    from data_tools.inspect_dataset import load_examples
    from data_tools.vocab import read_vocab

    data = DatasetDir.open(out)
    field, index_field = LAYOUTS[name][4:]
    ex = load_examples(out, "train")
    cat = [f.name for f in data.spec.categorical]
    vocabs = {n: read_vocab(data.vocab_file(n)) for n in cat}

    def token(n, ids):
        return [b"" if i == 0 else vocabs[n][i - 2] for i in ids]

    rows = [int(t[1:]) for t in token(index_field,
                                      ex["ids"][:, cat.index(index_field)])]
    if TRANSFORMS[name].kind == "numeric":
        j = [f.name for f in data.spec.numeric].index(field)
        values = ex["dense"][:, j].tolist()
    else:
        values = token(field, ex["ids"][:, cat.index(field)])
    return dict(zip(rows, values))


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_c_engine(name, c_engine, tmp_path):
    """The C engine converts the "same" cases to the contract's value and
    hands the "python" ones to the Python converter (which
    `--engine native` refuses)."""
    from data_tools.outputs import ConvertError

    same = [c for c in cases(name) if c.native == "same"]
    got = _read_back(_convert(name, [c.raw for c in same], tmp_path, "same"),
                     name)
    want = {i: (np.float32(c.expected).item()
                if TRANSFORMS[name].kind == "numeric" else c.expected)
            for i, c in enumerate(same)}
    assert got == want
    for k, c in enumerate(c for c in cases(name) if c.native == "python"):
        with pytest.raises(ConvertError, match="--engine native cannot"):
            _convert(name, [c.raw], tmp_path, f"py{k}")
