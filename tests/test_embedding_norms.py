"""`python -m tfdsmlp.experiments.embedding_norms`: embedding row norms
grouped by the id's frequency rank within its field."""

from __future__ import annotations

from tfdsmlp import cli
from tfdsmlp.experiments import embedding_norms
from tfdsmlp.experiments.embedding_norms import rank_groups

import numpy as np
import pytest


def test_rows_are_grouped_by_rank_within_their_field():
    # Two fields of 3 and 2 ids (+ padding and OOV rows, left out).
    sizes = [5, 4]
    table = np.zeros((9, 2), np.float32)
    table[[0, 1, 5, 6]] = 9.0             # padding / OOV: not counted
    table[2] = [3.0, 4.0]                 # field 0, rank 0: norm 5
    table[3] = [0.0, 1.0]                 # field 0, rank 1: norm 1
    table[4] = [0.0, 0.005]               # field 0, rank 2: norm 0.005
    table[7] = [0.0, 3.0]                 # field 1, rank 0: norm 3
    table[8] = [0.0, 0.0]                 # field 1, rank 1: norm 0
    groups = rank_groups(table, sizes, edges=(0, 1, 2))
    assert [(g.label, g.rows) for g in groups] == [
        ("0-1", 2), ("1-2", 2), ("2+", 1)]
    top, middle, tail = groups
    assert top.mean == pytest.approx(4.0) and top.median == pytest.approx(4.0)
    assert middle.mean == pytest.approx(0.5) and middle.near_zero == 0.5
    assert tail.mean == pytest.approx(0.005) and tail.near_zero == 1.0
    with pytest.raises(ValueError, match="9 rows but the fields' "
                       "vocabularies 10"):
        rank_groups(table, [5, 5])


def test_cli_reads_a_trained_teacher(tiny_dataset_dir, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli.main(["train", "--data", tiny_dataset_dir, "--model", "gdcn",
                     "--preset", "synthetic", "--set", "train.epochs=1",
                     "--set", "train.batch_size=32",
                     "--set", "train.check_learned=false",
                     "--out", out, "--quiet"]) == 0
    capsys.readouterr()
    assert embedding_norms.main(["--data", tiny_dataset_dir, out]) == 0
    lines = capsys.readouterr().out.splitlines()
    # tiny vocabularies (5, 7, 4 ids with padding and OOV): ranks 0-4,
    # one group
    assert lines[2].startswith(f"| {out} embedding/embeddings | 0-100 | 10 |")
    assert embedding_norms.main(["--data", tiny_dataset_dir, "--phase",
                                 "distill", out]) == 2
    assert "no finished `distill` phase" in capsys.readouterr().err


def test_cli_refuses_a_run_of_another_dataset(tiny_dataset_dir, synth_data,
                                              tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli.main(["train", "--data", tiny_dataset_dir, "--model", "dnn",
                     "--preset", "synthetic", "--set", "train.epochs=1",
                     "--set", "train.check_learned=false",
                     "--out", out, "--quiet"]) == 0
    capsys.readouterr()
    assert embedding_norms.main(["--data", synth_data, out]) == 2
    assert "trained on another dataset" in capsys.readouterr().err
