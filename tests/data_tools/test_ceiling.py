"""`python -m data_tools ceiling`: the planted optimum a converted dataset
still allows (data_tools/ceiling.py)."""

from __future__ import annotations

import json

from tfdsmlp.metrics import roc_auc

import numpy as np
import pytest

from data_tools.__main__ import main
from data_tools.ceiling import (
    ceiling,
    load_truth,
    param_tables,
    rebuild_teacher,
    row_probabilities,
)
from data_tools.convert import convert
from data_tools.synth_profile import write_profile


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A 3000-row criteo TSV with its truth, converted twice: every token
    kept (min-count 1) and rare ones folded into OOV (min-count 3)."""
    root = tmp_path_factory.mktemp("ceiling")
    raw = root / "raw"
    write_profile(str(raw), "criteo", 3000, valid_rows=0, test_rows=1000,
                  output="tsv", workers=1, quiet=True)
    out = {"raw": raw}
    for m in (1, 3):
        out[m] = root / f"min{m}"
        convert("criteo", str(raw / "train.txt"), str(out[m]),
                test=str(raw / "test.txt"), min_count=m, quiet=True)
    return out


def test_no_oov_gives_the_bayes_optimum(planted):
    # Every training token is in the min-count-1 vocabulary: p* is the
    # true probability and the figures are the recorded Bayes ones.
    truth = load_truth(str(planted["raw"]))
    got = ceiling(str(planted[1]), truth, split="train", draws=2)
    assert got["oov_cell_share"] == 0
    assert got["ceiling_auc"] == pytest.approx(
        truth["true_logit_auc"]["train"], abs=1e-6)
    assert got["ceiling_logloss"] == pytest.approx(
        truth["true_logit_logloss"]["train"], abs=1e-5)


def test_oov_cells_are_averaged_over_their_prior(planted, teacher_tables):
    truth = load_truth(str(planted["raw"] / "planted.json"))
    got = ceiling(str(planted[3]), truth, split="test", draws=8, seed=1)
    assert 0 < got["oov_cell_share"] < got["rows_with_oov_share"] <= 1
    # Folding tokens into OOV loses information the Bayes optimum has;
    # the Bayes figures of the rows come from the true logits, in order.
    assert 0.6 < got["ceiling_auc"] < got["bayes_auc"]
    assert got["bayes_auc"] == pytest.approx(
        truth["true_logit_auc"]["test"], abs=1e-6)
    assert got["oov_as_missing_auc"] == pytest.approx(roc_auc(
        _labels(planted[3]),
        _logits_with_oov_as_missing(planted[3], teacher_tables[0])),
        abs=1e-6)
    assert set(got) >= {"ceiling_auc_4_draws", "draws", "ceiling_logloss"}


@pytest.fixture(scope="module")
def teacher_tables(planted):
    """The rebuilt teacher and its parameter tables by min-count-3 id."""
    from data_tools.inspect_dataset import load_vocabs
    teacher = rebuild_teacher(load_truth(str(planted["raw"])))
    return teacher, param_tables(teacher, load_vocabs(str(planted[3])))


def test_row_probabilities_match_a_brute_force_average(teacher_tables,
                                                        planted):
    # p*(x) of a few rows with OOV cells against an independent average:
    # each OOV cell of field f drawn as s_f * N(0, I), cell by cell.
    from data_tools.inspect_dataset import load_examples
    teacher, tables = teacher_tables
    names = [f.name for f in teacher.fields]
    ids = load_examples(str(planted[3]), "test")["ids"]
    ids = ids[(ids == 1).sum(axis=1) >= 2][:6]
    _, _, p = row_probabilities(teacher, tables, ids, 2000,
                                np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for r, row in enumerate(ids):
        params = np.stack([tables[i][row[i]] for i in range(len(names))])
        draws = np.repeat(params[None], 4000, axis=0)
        for i in np.nonzero(row == 1)[0]:
            draws[:, i] = rng.standard_normal((4000, teacher.width)) * \
                teacher.field_scale[i]
        want = np.mean(1 / (1 + np.exp(-teacher.logits_of_params(draws))))
        assert p[r] == pytest.approx(want, abs=0.015)


def test_same_seed_same_draws(teacher_tables, planted):
    from data_tools.inspect_dataset import load_examples
    teacher, tables = teacher_tables
    ids = load_examples(str(planted[3]), "test", num=200)["ids"]
    runs = [row_probabilities(teacher, tables, ids, 4,
                              np.random.default_rng(s))[2] for s in (0, 0, 5)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_wrong_truth_or_draws_are_named(planted, tmp_path):
    truth = load_truth(str(planted["raw"]))
    with pytest.raises(ValueError, match="another version"):
        ceiling(str(planted[3]), {**truth, "num_rows": 5000}, draws=2)
    for bad in (1, 3):
        with pytest.raises(ValueError, match="draws"):
            ceiling(str(planted[3]), truth, draws=bad)
    with pytest.raises(ValueError, match="no planted truth"):
        load_truth(str(planted[3]))  # convert's dataset.json: no truth
    with pytest.raises(FileNotFoundError, match="planted.json"):
        load_truth(str(tmp_path))


def test_cli_prints_json(planted, capsys):
    assert main(["ceiling", str(planted[3]), "--truth", str(planted["raw"]),
                 "--draws", "2", "--rows", "300", "--quiet"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["split"] == "test" and got["rows"] == 300
    # The Bayes figures of those 300 rows, not of the whole split.
    truth = load_truth(str(planted["raw"]))
    assert got["bayes_auc"] != truth["true_logit_auc"]["test"]
    assert main(["ceiling", str(planted[3]), "--quiet"]) == 2
    assert "no planted truth" in capsys.readouterr().err


def _labels(data_dir):
    from data_tools.inspect_dataset import load_examples
    return load_examples(str(data_dir), "test")["label"]


def _logits_with_oov_as_missing(data_dir, teacher):
    """The planted logits with every OOV cell's parameters zeroed, from
    the rows decoded back to tokens."""
    from data_tools.inspect_dataset import decode_rows, load_examples
    ex = load_examples(str(data_dir), "test")
    names = [f.name for f in teacher.fields]
    rows = decode_rows(str(data_dir), ex)
    tokens = [[b"" if r[n] == "<OOV>" else r[n].encode() for n in names]
              for r in rows]
    return np.asarray(teacher.logits_of_tokens(tokens))
