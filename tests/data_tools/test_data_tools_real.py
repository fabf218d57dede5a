"""Conversions of the real samples in ../shared/data, checked against the source.

Expected tokens are recomputed here independently of data_tools.formats.
"""

from __future__ import annotations

import datetime
import json
import math

from tfdsmlp.features import FeatureSpec

import numpy as np
import pytest

from data_tools.convert import convert
from data_tools.inspect_dataset import decode_rows, load_examples, load_vocabs

SPLITS = ("train", "valid", "test")


def _lines(path):
    with open(path, "rb") as f:
        return f.read().decode().splitlines()


def _check_decoded(rows, expected, vocabs):
    """Decoded rows equal the source; '<OOV>' only for tokens not in vocab."""
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected):
        assert got["label"] == want["label"]
        for name, token in want.items():
            if name == "label":
                continue
            if got[name] == "<OOV>":
                assert token.encode() not in vocabs[name], (name, token)
            else:
                assert got[name] == token, (name, got[name], token)


def _criteo_bucket(raw: str) -> str:
    if raw == "":
        return ""
    v = int(raw)
    return str(math.floor(math.log(v) ** 2)) if v > 2 else str(v)


def test_criteo_sample(shared_data, tmp_path):
    src = shared_data / "criteo_sample"
    out = tmp_path / "criteo"
    summary = convert("criteo", str(src / "train.txt"), str(out),
                      valid=str(src / "valid.txt"), test=str(src / "test.txt"),
                      quiet=True)
    meta = json.loads((out / "dataset.json").read_text())
    spec = FeatureSpec.from_dict(meta)
    assert spec.num_categorical == 39 and spec.num_numeric == 0
    assert [f.transform for f in spec.fields[:13]] == ["log_square_bucket"] * 13
    vocabs = load_vocabs(str(out))
    for split in SPLITS:
        lines = _lines(src / f"{split}.txt")
        assert summary["rows"][split] == meta["splits"][split]["rows"] \
            == len(lines)
        assert meta["sources"][SPLITS.index(split)]["rows_read"] == len(lines)
        rows = decode_rows(str(out), load_examples(str(out), split))
        expected = []
        for line in lines:
            cols = line.split("\t")
            row = {"label": int(cols[0])}
            row.update({f"I{i + 1}": _criteo_bucket(cols[1 + i])
                        for i in range(13)})
            row.update({f"C{i + 1}": cols[14 + i] for i in range(26)})
            expected.append(row)
        _check_decoded(rows, expected, vocabs)
    # training tokens are never OOV
    train = load_examples(str(out), "train")
    assert (train["ids"] != 1).all()


def test_criteo_log1p_numeric(shared_data, tmp_path):
    src = shared_data / "criteo_sample"
    out = tmp_path / "criteo"
    convert("criteo", str(src / "valid.txt"), str(out),
            criteo_numeric="log1p", quiet=True)
    spec = FeatureSpec.from_dataset_dir(str(out))
    assert spec.num_numeric == 13 and spec.num_categorical == 26
    assert {f.transform for f in spec.numeric} == {"log1p"}
    ex = load_examples(str(out), "train")
    want = np.array([[math.log1p(max(int(c), 0)) if c else 0.0
                      for c in line.split("\t")[1:14]]
                     for line in _lines(src / "valid.txt")], np.float32)
    np.testing.assert_allclose(ex["dense"], want, rtol=1e-6)


def test_avazu_sample(shared_data, tmp_path):
    src = shared_data / "avazu_sample"
    out = tmp_path / "avazu"
    convert("avazu", str(src / "train.csv"), str(out),
            valid=str(src / "valid.csv"), test=str(src / "test.csv"),
            quiet=True)
    meta = json.loads((out / "dataset.json").read_text())
    names = [f["name"] for f in meta["fields"]]
    header = _lines(src / "train.csv")[0].split(",")
    assert names[:2] == ["hour_of_day", "weekday"]
    assert names[2:] == [c for c in header if c not in ("id", "click",
                                                         "hour")]
    assert meta["fields"][1]["source"] == "hour"
    vocabs = load_vocabs(str(out))
    for split in SPLITS:
        lines = _lines(src / f"{split}.csv")
        assert meta["splits"][split]["rows"] == len(lines) - 1
        rows = decode_rows(str(out), load_examples(str(out), split))
        expected = []
        for line in lines[1:]:
            rec = dict(zip(header, line.split(",")))
            h = rec["hour"]
            day = datetime.date(2000 + int(h[:2]), int(h[2:4]), int(h[4:6]))
            row = {"label": int(rec["click"]),
                   "hour_of_day": str(int(h[6:8])),
                   "weekday": str(day.weekday())}
            row.update({n: rec[n] for n in names[2:]})
            expected.append(row)
        _check_decoded(rows, expected, vocabs)


def _frappe_source(src, files):
    """{split: (labels, ids[n, 10])} from the BARS CSV files (ids are ints)."""
    out = {}
    for split, name in zip(SPLITS, files):
        text = (src / name).read_text()
        body = text[text.index("\n") + 1:].strip().replace("\n", ",")
        arr = np.array(body.split(","), dtype=np.int64).reshape(-1, 11)
        out[split] = (arr[:, 0], arr[:, 1:])
    return out


def test_frappe_csv(shared_data, frappe_csv_dir):
    out = str(frappe_csv_dir)
    meta = json.loads((frappe_csv_dir / "dataset.json").read_text())
    spec = FeatureSpec.from_dict(meta)
    assert spec.num_fields == 10 and spec.num_numeric == 0
    source = _frappe_source(shared_data / "frappe",
                            ("train.csv", "valid.csv", "test.csv"))
    distinct = np.unique(np.concatenate([t for _, t in source.values()]))
    assert len(distinct) == 5382
    vocabs = {k: np.array(v, dtype=np.int64)
              for k, v in load_vocabs(out).items()}
    assert sum(len(v) for v in vocabs.values()) == len(
        np.unique(source["train"][1]))
    for split in SPLITS:
        labels, toks = source[split]
        assert meta["splits"][split]["rows"] == len(labels)
        ex = load_examples(out, split)
        np.testing.assert_array_equal(ex["label"], labels)
        assert (ex["ids"] > 0).all()  # Frappe has no missing values
        for j, f in enumerate(spec.categorical):
            ids, vocab = ex["ids"][:, j], vocabs[f.name]
            in_vocab = ids >= 2
            np.testing.assert_array_equal(vocab[ids[in_vocab] - 2],
                                          toks[in_vocab, j])
            assert not np.isin(toks[~in_vocab, j], vocab).any()
            if split == "train":
                assert in_vocab.all()


def test_frappe_libfm_matches_csv(frappe_csv_dir, frappe_libfm_dir):
    a, b = frappe_csv_dir, frappe_libfm_dir
    assert load_vocabs(str(a)) == load_vocabs(str(b))  # same training tokens
    meta_a = json.loads((a / "dataset.json").read_text())
    meta_b = json.loads((b / "dataset.json").read_text())
    assert meta_a["fields"] == meta_b["fields"]
    for split in SPLITS:
        assert meta_a["splits"][split] == meta_b["splits"][split]
        for f in meta_a["splits"][split]["files"]:
            # same vocab ids + same rows -> byte-identical Examples
            assert (a / f).read_bytes() == (b / f).read_bytes()
    ea, eb = (load_examples(str(d), "valid", num=500) for d in (a, b))
    assert decode_rows(str(a), ea) == decode_rows(str(b), eb)


def test_libfm_default_field_names(shared_data, tmp_path):
    src = shared_data / "frappe" / "frappe.test.libfm"
    convert("libfm", str(src), str(tmp_path / "o"), quiet=True)
    spec = FeatureSpec.from_dataset_dir(str(tmp_path / "o"))
    assert [f.name for f in spec.fields] == [f"f{i}" for i in range(10)]
    ex = load_examples(str(tmp_path / "o"), "train", num=3)
    want = [0 if ln.split()[0] == "-1" else 1
            for ln in _lines(src)[:3]]
    assert ex["label"].tolist() == want


def _files(out) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes()
            for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt,train,extra", [
    ("criteo", "criteo_sample/train.txt",
     {"valid": "criteo_sample/valid.txt", "test": "criteo_sample/test.txt"}),
    ("criteo", "criteo_sample/train.txt", {"split": "8:1:1"}),
    ("avazu", "avazu_sample/train.csv",
     {"valid": "avazu_sample/valid.csv", "test": "avazu_sample/test.csv"}),
    ("libfm", "frappe/frappe.train.libfm",
     {"valid": "frappe/frappe.validation.libfm",
      "test": "frappe/frappe.test.libfm"}),
])
def test_native_engine_writes_the_python_engines_bytes(shared_data, tmp_path,
                                                       fmt, train, extra):
    # The real samples through both engines: the same files, byte for byte
    # (the C converter must not fall back to Python on any of them).
    kw = {k: (v if k == "split" else str(shared_data / v))
          for k, v in extra.items()}
    trees = {}
    for engine in ("native", "python"):
        out = tmp_path / engine
        summary = convert(fmt, str(shared_data / train), str(out),
                          engine=engine, quiet=True, **kw)
        assert summary["engine"] == engine
        trees[engine] = _files(out)
    assert sorted(trees["native"]) == sorted(trees["python"])
    for name, data in trees["python"].items():
        assert trees["native"][name] == data, name
