"""`synth --profile criteo|avazu`: schema, value shapes, the planted truth,
determinism, and conversion of the raw files."""

from __future__ import annotations

import collections
import gzip
import json

from tfdsmlp.metrics import roc_auc

import numpy as np
import pytest
from dataset_files import read_tree

from data_tools import native, profiles
from data_tools.__main__ import main
from data_tools.convert import convert
from data_tools.planted import BayesMeter
from data_tools.synth_profile import write_profile
from data_tools.synth_rows import RowGenerator

ROWS, EVAL_ROWS = 4000, 1500


@pytest.fixture(scope="module")
def criteo_tsv(tmp_path_factory):
    out = tmp_path_factory.mktemp("planted") / "criteo"
    write_profile(str(out), "criteo", ROWS, valid_rows=EVAL_ROWS,
                  test_rows=EVAL_ROWS, output="tsv", workers=1, quiet=True)
    return out


def _table(path):
    lines = path.read_bytes().decode().splitlines()
    return [line.split("\t") for line in lines]


def test_criteo_schema_missing_values_and_vocabularies(criteo_tsv):
    rows = _table(criteo_tsv / "train.txt")
    assert len(rows) == ROWS and {len(r) for r in rows} == {40}
    cols = list(zip(*rows))
    assert set(cols[0]) == {"0", "1"}
    assert all(v == "" or v.lstrip("-").isdigit() for c in cols[1:14]
               for v in c)
    assert all(v == "" or (len(v) == 8 and int(v, 16) >= 0)
               for c in cols[14:] for v in c)
    name = {f"I{i}": cols[i] for i in range(1, 14)} | {
        f"C{i}": cols[13 + i] for i in range(1, 27)}
    missing = {k: np.array([v == "" for v in c]) for k, c in name.items()}
    for k, rate in [("I1", 0.454), ("I12", 0.766), ("I3", 0.215),
                    ("C19", 0.44), ("C22", 0.763), ("C3", 0.034),
                    ("I2", 0.0), ("C1", 0.0)]:
        assert missing[k].mean() == pytest.approx(rate, abs=0.03), k
    # columns go missing together, as in Criteo
    assert (missing["I1"] == missing["I10"]).all()
    assert (missing["C19"] == missing["C26"]).all()
    assert (missing["I5"] <= missing["I6"]).all()
    assert min(int(v) for v in name["I2"]) < 0  # Criteo's I2 has -1, -2..
    counts = {k: collections.Counter(v for v in c if v)
              for k, c in name.items() if k[0] == "C"}
    distinct = {k: len(c) for k, c in counts.items()}
    assert distinct["C9"] <= 3 and distinct["C20"] <= 4
    assert distinct["C3"] > 1000 and distinct["C3"] > 5 * distinct["C1"]
    for k, share in [("C1", 0.50), ("C9", 0.885), ("C3", 0.05)]:
        top = counts[k].most_common(1)[0][1] / sum(counts[k].values())
        assert top == pytest.approx(share, abs=0.04), k
    rate = np.mean([r[0] == "1" for r in rows])
    assert rate == pytest.approx(0.25, abs=0.03)


def test_criteo_planted_truth(criteo_tsv):
    truth = json.loads((criteo_tsv / "planted.json").read_text())
    assert truth["profile"] == "criteo" and truth["seed"] == 0
    assert truth["num_rows"] == ROWS and truth["test_rows"] == EVAL_ROWS
    for split in ("train", "valid", "test"):
        y = np.array([int(r[0]) for r in _table(
            criteo_tsv / f"{split}.txt")])
        z = np.load(criteo_tsv / f"{split}_logit.npy")
        assert z.dtype == np.float32 and z.shape == y.shape
        m = truth["bayes"][split]
        assert m["auc"] == pytest.approx(roc_auc(y, z), abs=1e-6)
        assert truth["true_logit_auc"][split] == m["auc"]
        assert m["auc"] > 0.75  # the planted logits beat chance clearly
        zz = z.astype(np.float64)
        loss = np.mean(np.logaddexp(0, zz) - y * zz)
        assert m["logloss"] == pytest.approx(loss, abs=1e-5)
        assert m["positives"] == y.sum()
    shares = truth["variance_shares"]
    assert sum(shares.values()) == pytest.approx(1.0)


def test_same_bytes_for_any_chunk_size_and_worker_count(criteo_tsv,
                                                        tmp_path):
    want = read_tree(criteo_tsv)
    out = tmp_path / "chunks"
    write_profile(str(out), "criteo", ROWS, valid_rows=EVAL_ROWS,
                  test_rows=EVAL_ROWS, output="tsv", chunk_rows=2048,
                  workers=2, quiet=True)
    assert read_tree(out) == want
    out = tmp_path / "gz"
    write_profile(str(out), "criteo", ROWS, valid_rows=EVAL_ROWS,
                  test_rows=EVAL_ROWS, output="tsv", chunk_rows=4096,
                  gzip=True, workers=1, quiet=True)
    got = read_tree(out)
    for split in ("train", "valid", "test"):
        assert gzip.decompress(got[f"{split}.txt.gz"]) == \
            want[f"{split}.txt"]
    out = tmp_path / "seed1"
    write_profile(str(out), "criteo", ROWS, seed=1, valid_rows=0,
                  test_rows=0, output="tsv", workers=1, quiet=True)
    other = read_tree(out)
    assert sorted(other) == ["planted.json", "train.txt",
                             "train_logit.npy"]
    assert other["train.txt"] != want["train.txt"]


def test_tsv_converts_the_same_with_both_engines(criteo_tsv, tmp_path):
    files = {s: str(criteo_tsv / f"{s}.txt")
             for s in ("train", "valid", "test")}
    convert("criteo", files["train"], str(tmp_path / "py"),
            valid=files["valid"], test=files["test"], engine="python",
            quiet=True)
    meta = json.loads((tmp_path / "py" / "dataset.json").read_text())
    assert {s: v["rows"] for s, v in meta["splits"].items()} == {
        "train": ROWS, "valid": EVAL_ROWS, "test": EVAL_ROWS}
    assert all(not r for r in meta["rejected"].values())
    if native.available()[0] is None:
        pytest.skip("native converter not available")
    convert("criteo", files["train"], str(tmp_path / "c"),
            valid=files["valid"], test=files["test"], engine="native",
            quiet=True)
    py, c = read_tree(tmp_path / "py"), read_tree(tmp_path / "c")
    assert sorted(py) == sorted(c)
    assert all(py[k] == c[k] for k in py if k != "dataset.json")


@pytest.mark.parametrize("profile", ["criteo", "avazu"])
def test_dataset_output_holds_the_truth(profile, tmp_path):
    from tfdsmlp.dataset_dir import DatasetDir

    from data_tools.inspect_dataset import decode_rows, load_examples

    out = tmp_path / profile
    summary = write_profile(str(out), profile, 3000, valid_rows=1000,
                            test_rows=1000, workers=1, quiet=True)
    data = DatasetDir.open(out)
    assert {s: data.rows(s) for s in data.splits} == summary["rows"]
    truth = data.meta["synthetic"]
    assert truth["true_logits"] == "synthetic/<split>_logit.npy"
    prof = profiles.PROFILES[profile]
    assert truth["positive_rate"] == pytest.approx(prof.positive_rate,
                                                   abs=0.03)
    for split in data.splits:
        ex = load_examples(str(out), split)
        z = np.load(out / "synthetic" / f"{split}_logit.npy")
        assert truth["true_logit_auc"][split] == pytest.approx(
            roc_auc(ex["label"], z), abs=1e-6)
        assert truth["true_logit_auc"][split] > 0.75
    # The truth is a function of the converted row: rebuild the training
    # logits from the decoded tokens (all in the training vocabulary).
    ex = load_examples(str(out), "train")
    rows = decode_rows(str(out), ex)
    teacher = RowGenerator(prof, 0, 3000).teacher
    names = [f.name for f in teacher.fields]
    assert names == [f.name for f in data.spec.fields]
    tokens = [[r[n].encode() for n in names] for r in rows]
    z = np.load(out / "synthetic" / "train_logit.npy")
    np.testing.assert_allclose(teacher.logits_of_tokens(tokens), z,
                               rtol=0, atol=1e-5)


def test_avazu_raw_layout(tmp_path):
    out = tmp_path / "avazu"
    write_profile(str(out), "avazu", 3000, valid_rows=0, test_rows=0,
                  output="tsv", workers=1, quiet=True)
    lines = (out / "train.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["id", "click", "hour", "C1"]
    assert len(header) == 24 and header[-1] == "C21"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == 3000 and {len(r) for r in rows} == {24}
    cols = dict(zip(header, zip(*rows)))
    assert all(h[:6] in {f"1410{d}" for d in range(21, 31)}
               and 0 <= int(h[6:]) < 24 for h in cols["hour"])
    assert len(set(cols["id"])) == 3000
    assert len(set(cols["device_ip"])) > 20 * len(set(cols["C1"]))
    top = collections.Counter(cols["C1"]).most_common(1)[0][1] / 3000
    assert top == pytest.approx(0.92, abs=0.03)
    assert np.mean([c == "1" for c in cols["click"]]) == pytest.approx(
        0.17, abs=0.03)


def test_histogram_auc_within_its_bound():
    rng = np.random.default_rng(0)
    z = rng.normal(-1, 2, 20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-z))).astype(np.int64)
    meter = BayesMeter()
    meter.add(z[:8192], y[:8192])
    meter.add(z[8192:], y[8192:])
    got, bound = meter.histogram_auc()
    assert abs(got - roc_auc(y, z)) <= bound + 1e-12
    assert bound < 1e-4
    loss = np.mean(np.logaddexp(0, z) - y * z)
    assert meter.logloss == pytest.approx(loss, rel=1e-12)


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["synth", "--profile", "avazu", "--rows", "2048",
                 "--valid-rows", "0", "--test-rows", "0", "--output",
                 "tsv", "--workers", "1", "--quiet", "--out",
                 str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == {"train": 2048}
    assert (out / "planted.json").exists()
    assert main(["synth", "--profile", "avazu", "--rows", "2048", "--out",
                 str(out), "--output", "tsv"]) == 2  # exists
    for bad in (["--output", "tsv"], ["--profile", "criteo", "--vocab-size",
                                      "9"], ["--profile", "criteo",
                                             "--gzip"],
                ["--profile", "criteo", "--chunk-rows", "1000"]):
        assert main(["synth", "--out", str(tmp_path / "bad"), *bad]) == 2
        assert "error" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_small_profile_is_the_default_and_unchanged(tmp_path, capsys):
    from data_tools.synth import write_synthetic

    assert main(["synth", "--rows", "2000", "--out",
                 str(tmp_path / "cli")]) == 0
    write_synthetic(str(tmp_path / "lib"), num_rows=2000)
    assert read_tree(tmp_path / "cli") == read_tree(tmp_path / "lib")


def test_cross_share_sets_the_planted_cross_part(tmp_path):
    from data_tools.planted import SHARES, SIGMA

    out = tmp_path / "cross08"
    write_profile(str(out), "criteo", 2048, valid_rows=0, test_rows=0,
                  output="tsv", workers=1, quiet=True, cross_share=0.8)
    truth = json.loads((out / "planted.json").read_text())
    shares = truth["variance_shares"]
    assert shares == pytest.approx({"first_order": 0.1, "cross": 0.8,
                                    "mlp": 0.1})
    # each part's standard deviation after calibration: SIGMA sqrt(share)
    part_std = truth["calibration"]["part_std"]
    assert part_std == pytest.approx(
        [SIGMA * np.sqrt(shares[k]) for k in ("first_order", "cross",
                                               "mlp")], abs=1e-3)
    default = json.loads(json.dumps(SHARES))
    out = tmp_path / "default"
    write_profile(str(out), "criteo", 2048, valid_rows=0, test_rows=0,
                  output="tsv", workers=1, quiet=True)
    base = json.loads((out / "planted.json").read_text())
    assert base["variance_shares"] == default
    # the same rows and tokens, other labels
    rows = [r[1:] for r in _table(out / "train.txt")]
    assert rows == [r[1:] for r in _table(tmp_path / "cross08" /
                                          "train.txt")]
    assert not np.array_equal(np.load(out / "train_logit.npy"),
                              np.load(tmp_path / "cross08" /
                                      "train_logit.npy"))


def test_cross_share_is_checked(tmp_path, capsys):
    from data_tools.planted import shares_for

    with pytest.raises(ValueError, match=r"--cross-share should be in "
                                         r"\[0, 1\)"):
        shares_for(1.0)
    assert shares_for(0.0)["cross"] == 0.0
    for bad in (["--profile", "criteo", "--cross-share", "-0.1"],
                ["--cross-share", "0.5"]):  # small: no planted cross part
        assert main(["synth", "--out", str(tmp_path / "bad"), *bad]) == 2
        assert "cross-share" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
