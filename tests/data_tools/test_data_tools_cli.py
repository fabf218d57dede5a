"""Options, errors, CLI, inspect, synth and the hand-written TFRecord bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tfdsmlp.metrics import roc_auc

import numpy as np
import pytest

from data_tools import crc32c, tfrecord
from data_tools.__main__ import main
from data_tools.convert import convert
from data_tools.inspect_dataset import decode_rows, load_examples, load_vocabs
from data_tools.outputs import ConvertError
from data_tools.synth import write_synthetic

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _csv(path, n=300, seed=0):
    rng = np.random.default_rng(seed)
    lines = ["label,u,i,price"]
    for k in range(n):
        lines.append(f"{k % 2},u{rng.integers(20)},i{rng.integers(50)},"
                     f"{rng.random():.3f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _read_bytes(out, split):
    meta = json.loads((out / "dataset.json").read_text())
    return b"".join((out / f).read_bytes() for f in meta["splits"][split]
                    ["files"])


def test_missing_and_empty_input(tmp_path):
    with pytest.raises(ConvertError, match="nope.csv.*--train.*does not exist"):
        convert("csv", str(tmp_path / "nope.csv"), str(tmp_path / "o"),
                label="label")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ConvertError, match="empty.csv.*--valid.*is empty"):
        convert("csv", str(_csv(tmp_path / "a.csv")), str(tmp_path / "o"),
                valid=str(empty), label="label")
    with pytest.raises(ConvertError, match="'nolabel'.*--label"):
        convert("csv", str(tmp_path / "a.csv"), str(tmp_path / "o"),
                label="nolabel")


def test_existing_output_needs_overwrite(tmp_path):
    src = _csv(tmp_path / "a.csv")
    out = tmp_path / "o"
    convert("csv", str(src), str(out), label="label", quiet=True)
    with pytest.raises(ConvertError, match="already exists.*--overwrite"):
        convert("csv", str(src), str(out), label="label", quiet=True)
    (out / "stale.txt").write_text("x")
    convert("csv", str(src), str(out), label="label", quiet=True,
            overwrite=True)
    assert not (out / "stale.txt").exists()
    other = tmp_path / "not_a_dataset"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(ConvertError, match="no dataset.json"):
        convert("csv", str(src), str(other), label="label", overwrite=True)
    assert (other / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.csv", "not_a_dataset", "o"]  # no temp dirs left behind


def test_gzip_and_shards(tmp_path):
    src = _csv(tmp_path / "a.csv", n=1000)
    plain, gz = tmp_path / "plain", tmp_path / "gz"
    convert("csv", str(src), str(plain), label="label", numeric="price",
            quiet=True)
    convert("csv", str(src), str(gz), label="label", numeric="price",
            compression="GZIP", shards=3, quiet=True)
    meta = json.loads((gz / "dataset.json").read_text())
    assert meta["compression"] == "GZIP"
    files = meta["splits"]["train"]["files"]
    assert files == [f"train/part-0000{k}.tfrecord.gz" for k in range(3)]
    a, b = load_examples(str(plain), "train"), load_examples(str(gz), "train")
    for k in ("ids", "dense", "label"):
        np.testing.assert_array_equal(a[k], b[k])
    sizes = [len(load_examples_file(gz / f)) for f in files]
    assert sum(sizes) == 1000 and min(sizes) > 200


def load_examples_file(path):
    import tensorflow as tf
    return list(tf.data.TFRecordDataset(str(path), compression_type="GZIP"))


def test_split_with_seed_is_deterministic(tmp_path):
    src = _csv(tmp_path / "a.csv", n=2000)
    outs = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        out = tmp_path / name
        convert("csv", str(src), str(out), label="label", split="8:1:1",
                seed=seed, quiet=True)
        outs.append(out)
    meta = json.loads((outs[0] / "dataset.json").read_text())
    rows = {s: meta["splits"][s]["rows"] for s in ("train", "valid", "test")}
    assert sum(rows.values()) == 2000
    assert 1500 < rows["train"] < 1700 and 120 < rows["valid"] < 280
    for s in rows:
        assert _read_bytes(outs[0], s) == _read_bytes(outs[1], s)
    assert _read_bytes(outs[0], "valid") != _read_bytes(outs[2], "valid")
    # vocabulary from train rows only: every valid token seen in train or OOV
    train_rows = decode_rows(str(outs[0]), load_examples(str(outs[0]),
                                                         "train"))
    vocabs = load_vocabs(str(outs[0]))
    assert {t.decode() for t in vocabs["u"]} == {r["u"] for r in train_rows}


def test_worker_pool_gives_same_bytes(tmp_path, monkeypatch):
    from data_tools import chunks, passes
    src = _csv(tmp_path / "a.csv", n=3000)
    monkeypatch.setattr(passes, "SMALL_INPUT_BYTES", 0)  # force the pool
    monkeypatch.setattr(chunks, "chunk_count", lambda size, shards, **kw: 6)
    from data_tools import native
    runs = [("python", 1), ("python", 2)]
    if native.available()[0]:  # else only Python (no C compiler)
        runs += [("native", 1), ("native", 2)]
    for engine, w in runs:
        convert("csv", str(src), str(tmp_path / f"{engine}{w}"),
                label="label", split="8:1:1", seed=1, shards=2, workers=w,
                engine=engine, quiet=True)
    for engine, w in runs[1:]:
        for s in ("train", "valid", "test"):
            assert _read_bytes(tmp_path / "python1", s) == _read_bytes(
                tmp_path / f"{engine}{w}", s), (engine, w, s)
    meta = json.loads((tmp_path / "python2" / "dataset.json").read_text())
    assert sum(v["rows"] for v in meta["splits"].values()) == 3000
    assert meta["sources"][0]["split"] == "all"


def test_inspect_prints_decoded_rows(tmp_path, capsys):
    src = _csv(tmp_path / "a.csv", n=10)
    out = tmp_path / "o"
    assert main(["convert", "--format", "csv", "--label", "label",
                 "--numeric", "price", "--train", str(src), "--out",
                 str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["inspect", str(out), "--num", "2"]) == 0
    text = capsys.readouterr().out
    first = src.read_text().splitlines()[1].split(",")
    assert "price" in text and "numeric" in text and "10 rows" in text
    assert f"[0] label={first[0]} u='{first[1]}' i='{first[2]}'" in text
    assert main(["inspect", str(tmp_path / "missing")]) == 2


def test_cli_help_and_errors(tmp_path, capsys):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    res = subprocess.run([sys.executable, "-m", "data_tools", "--help"],
                         cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0 and "convert" in res.stdout
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--format", "--split", "--min-count", "--shards",
                 "--compression", "--max-reject-fraction", "--overwrite",
                 "--criteo-numeric", "--quiet"):
        assert flag in help_text
    assert main(["convert", "--format", "csv", "--label", "label",
                 "--train", str(tmp_path / "x.csv"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "x.csv (--train) does not exist" in capsys.readouterr().err


def test_min_count_maps_rare_tokens_to_oov(tmp_path):
    src = tmp_path / "a.csv"
    src.write_bytes(b"label,c\r\n1,a\r\n0,a\r\n1,b\r\n0,")  # CRLF, no last EOL
    out = tmp_path / "o"
    convert("csv", str(src), str(out), label="label", min_count=2, quiet=True)
    ex = load_examples(str(out), "train")
    assert ex["ids"][:, 0].tolist() == [2, 2, 1, 0]
    assert (out / "vocab" / "c.txt").read_text() == "a\n"


def test_synth_deterministic_and_interactions(tmp_path, synth_dir):
    meta = json.loads((synth_dir / "dataset.json").read_text())
    assert sum(f["kind"] == "numeric" for f in meta["fields"]) >= 2
    assert "u0*u1" in meta["synthetic"]["formula"]
    out = tmp_path / "again"
    write_synthetic(str(out), num_rows=20000, seed=0)
    for s in ("train", "valid", "test"):
        assert _read_bytes(out, s) == _read_bytes(synth_dir, s)
    write_synthetic(str(tmp_path / "other"), num_rows=2000, seed=1)
    assert _read_bytes(tmp_path / "other", "test") != _read_bytes(
        synth_dir, "test")
    # A one-hot logistic regression stays well below the true logit's AUC.
    tr, te = load_examples(str(synth_dir), "train"), load_examples(
        str(synth_dir), "test")
    sizes = [f["vocab_size"] for f in meta["fields"]
             if f["kind"] == "categorical"]
    off = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    w, v, b = np.zeros(sum(sizes)), np.zeros(tr["dense"].shape[1]), 0.0
    for _ in range(300):  # full-batch gradient descent
        z = b + w[tr["ids"] + off].sum(1) + tr["dense"] @ v
        g = (1 / (1 + np.exp(-z)) - tr["label"]) / len(z)
        w -= 20 * np.bincount((tr["ids"] + off).ravel(), minlength=len(w),
                              weights=np.repeat(g, len(sizes)))
        v -= 2 * tr["dense"].T @ g
        b -= 2 * g.sum()
    lr_auc = roc_auc(te["label"], b + w[te["ids"] + off].sum(1) + te["dense"] @ v)
    true_auc = meta["synthetic"]["true_logit_auc"]["test"]
    z_true = np.load(synth_dir / "synthetic" / "test_logit.npy")
    assert true_auc == pytest.approx(roc_auc(te["label"], z_true), abs=1e-4)
    assert 0.6 < lr_auc < true_auc - 0.05, (lr_auc, true_auc)


def test_tfrecord_bytes_match_tensorflow(tmp_path):
    import tensorflow as tf
    assert crc32c.crc32c(b"123456789") == 0xE3069283
    recs = [bytes(range(n % 256)) * (1 + n // 256) for n in range(0, 700, 7)]
    want = [crc32c.crc32c(r) for r in recs]
    masked = [(((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
              for c in want]
    assert crc32c.masked_crc32c_batch(recs).tolist() == masked
    enc = tfrecord.ExampleEncoder(3, 2)
    ids, dense = [0, 1, 2 ** 40], [0.5, -3.0]
    rec = enc.encode(b"".join(tfrecord.varint(i) for i in ids), dense, 1)
    ex = tf.train.Example()
    ex.features.feature["ids"].int64_list.value.extend(ids)
    ex.features.feature["dense"].float_list.value.extend(dense)
    ex.features.feature["label"].float_list.value.append(1.0)
    assert tf.train.Example.FromString(rec) == ex
    path = str(tmp_path / "r.tfrecord")
    w = tfrecord.RecordFileWriter(path)
    w.write_batch(recs)
    w.close()
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == recs


def test_synth_one_class_split_has_no_auc(tmp_path):
    """A split with one class has no AUC: dataset.json says null, not NaN."""
    write_synthetic(str(tmp_path / "d"), num_rows=200, valid_rows=1,
                    test_rows=50, seed=3)
    meta = json.loads((tmp_path / "d" / "dataset.json").read_text())
    aucs = meta["synthetic"]["true_logit_auc"]
    assert aucs["valid"] is None
    assert 0.5 < aucs["test"] <= 1.0
